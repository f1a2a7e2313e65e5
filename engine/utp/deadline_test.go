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

// TestDeadlineRearmNoAlloc: moving an armed deadline (the engine does it
// once per peer-wire message) re-arms the same timer: no allocation, and
// it still fires at the new time and not the old.
func TestDeadlineRearmNoAlloc(t *testing.T) {
	d := newDeadline()
	defer d.stop()
	d.set(time.Now().Add(time.Hour))
	allocs := testing.AllocsPerRun(100, func() { d.set(time.Now().Add(time.Hour)) })
	if allocs > 0 {
		t.Errorf("re-arming a deadline allocates %.1f times, want 0", allocs)
	}
	d.set(time.Now().Add(10 * time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(5 * time.Second):
		t.Fatal("re-armed deadline did not fire")
	}
	// Passed, then disarmed and armed far ahead: open again.
	d.set(time.Time{})
	d.set(time.Now().Add(time.Hour))
	select {
	case <-d.wait():
		t.Fatal("deadline re-armed an hour ahead is closed")
	case <-time.After(20 * time.Millisecond):
	}
	// A deadline in the past closes at once, and one set after it opens
	// a fresh channel with a timer of its own.
	d.set(time.Now().Add(-time.Second))
	if !isClosed(d.wait()) {
		t.Fatal("deadline in the past is open")
	}
	d.set(time.Now().Add(10 * time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(5 * time.Second):
		t.Fatal("deadline after a past one did not fire")
	}
}
