package engine

import (
	"testing"
	"time"
)

func TestDoubling(t *testing.T) {
	d := doubling{15 * time.Second, 16 * time.Minute}
	for n, want := range map[int]time.Duration{
		-1: 0, 0: 0, 1: 15 * time.Second, 2: 30 * time.Second, 6: 8 * time.Minute,
		7: 16 * time.Minute, 8: 16 * time.Minute, 1000: 16 * time.Minute,
	} {
		if got := d.after(n); got != want {
			t.Errorf("after(%d) = %v, want %v", n, got, want)
		}
	}
	var w time.Duration
	var seq []time.Duration
	for range 8 {
		w = d.next(w)
		seq = append(seq, w)
	}
	for i, got := range seq {
		if want := d.after(i + 1); got != want {
			t.Errorf("next #%d = %v, want after(%d) = %v", i+1, got, i+1, want)
		}
	}
	for in, want := range map[time.Duration]time.Duration{0: 15 * time.Second, time.Minute: time.Minute, time.Hour: 16 * time.Minute} {
		if got := d.clamp(in); got != want {
			t.Errorf("clamp(%v) = %v, want %v", in, got, want)
		}
	}
}
