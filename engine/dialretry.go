package engine

import (
	"errors"
	"io"
	"syscall"
	"time"
)

// A dial to a peer fails in one of two ways: a refusal (the connection is
// refused or closed during the handshake, at once) or a silence (no answer
// until the dial's timeout). A refusal from a peer we never reached is
// most often a peer that is not ready yet: a --peer started a second after
// us, a seeder still checking its data, a client restarting. Waiting
// peerRetry's 15 s for it would leave a mount without its best peer for
// that long, so its first retries come quickly (quickRetry); after those,
// or for a silence, or for a peer we once reached, peerRetry applies (up
// to namedRetryMax for a peer the user named).

// quickRetry: a peer we never reached that refused our dial is dialled
// again after 1 s, then 2 s and 4 s (quickRetries in all; the loop's tick
// makes each up to a second later).
var quickRetry = doubling{time.Second, 4 * time.Second}

const (
	quickRetries = 3
	// refusalTime: a dial that failed sooner than this was refused, not
	// left unanswered.
	refusalTime = 2 * time.Second
)

// dialRetryWait is how long cand waits before its next dial, after a dial
// that failed with err (already counted in cand.failures) after took.
func dialRetryWait(cand *candidate, err error, took time.Duration) time.Duration {
	if errors.Is(err, errSelf) {
		return backoff(cand.failures)
	}
	if cand.lastConnected.IsZero() && cand.failures <= quickRetries && refused(err, took) {
		return quickRetry.after(cand.failures)
	}
	return cand.retryWait(cand.failures)
}

// refused tells a refusal from a silence: a dial that failed fast, or
// whose every transport was refused or closed (a TCP refusal followed by
// a uTP attempt that timed out is still a refusal).
func refused(err error, took time.Duration) bool {
	if took < refusalTime {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
