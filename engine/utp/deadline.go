package utp

import (
	"sync"
	"time"
)

// deadline is a read or write deadline: a channel closed when the
// deadline passes, re-armed by set. Its mutex is a leaf lock.
//
// The engine sets a read deadline per peer-wire message (about one per
// 16 KiB block), so set re-arms its timer with Reset where it can
// rather than allocate a new one each time.
type deadline struct {
	mu      sync.Mutex // guards the following
	timer   *time.Timer
	timerCh chan struct{} // the channel timer's func closes
	armed   bool          // timer is scheduled, or fired and closing timerCh
	cancel  chan struct{} // closed when the deadline has passed
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

// set arms the deadline at t; the zero time disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed {
		d.armed = false
		if !d.timer.Stop() {
			<-d.timerCh // the timer fired: wait until its func closed it
			d.timer = nil
		}
	}
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		if d.timer != nil && d.timerCh == d.cancel {
			// Stopped before it fired, and its channel is still ours.
			d.timer.Reset(dur)
		} else {
			c := d.cancel
			d.timer, d.timerCh = time.AfterFunc(dur, func() { close(c) }), c
		}
		d.armed = true
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns the channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// stop releases the timer. A timer that was stopped is forgotten, so a
// later set does not wait for it to close cancel, which it never will;
// one that has fired is kept, since its func will close cancel.
func (d *deadline) stop() {
	d.mu.Lock()
	if d.armed && d.timer.Stop() {
		d.armed = false
		d.timer = nil
	}
	d.mu.Unlock()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
