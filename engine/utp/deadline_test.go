package utp

import (
	"testing"
	"time"
)

// TestDeadlineSetAfterStop: a deadline armed, stopped (the conn closed)
// and set again returns at once. set used to wait for the stopped timer
// to close its channel, which it never does: a reader setting its next
// deadline after Close hung for good (swarmfs get did not exit).
func TestDeadlineSetAfterStop(t *testing.T) {
	d := newDeadline()
	d.set(time.Now().Add(time.Hour))
	d.stop()
	done := make(chan struct{})
	go func() {
		d.set(time.Now().Add(time.Hour))
		d.set(time.Time{})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("set after stop did not return")
	}
	// A timer that fired before stop still closes the channel.
	d.set(time.Now().Add(time.Millisecond))
	time.Sleep(20 * time.Millisecond)
	d.stop()
	d.set(time.Now().Add(time.Hour))
	select {
	case <-d.wait():
		t.Fatal("re-armed deadline is already closed")
	default:
	}
	d.stop()
}
