package engine

import "time"

// doubling is the engine's back-off: a wait that starts at lo and doubles
// with each failure in a row up to hi. The torrent's retries of peers,
// of refused pieces and of DHT announces all use it. (The accept loop has
// its own millisecond back-off against a full file table.)
type doubling struct{ lo, hi time.Duration }

// Back-offs of the torrent's retries.
var (
	// peerRetry: a failed dial, or a connection dropped within 30 s, waits
	// 15 s doubling to 16 min before the candidate is dialled again.
	peerRetry = doubling{15 * time.Second, 16 * time.Minute}
	// storeRetry: a piece the store refused is tried again after 2 s,
	// doubling to 2 min while refusals go on.
	storeRetry = doubling{2 * time.Second, 2 * time.Minute}
	// dhtRetry: a DHT announce that failed, or found no peer for an
	// incomplete torrent, is repeated after 5 s doubling to 5 min.
	dhtRetry = doubling{5 * time.Second, 5 * time.Minute}
)

// after is the wait after n failures in a row: none before the first, lo
// after it, then twice the previous up to hi.
func (d doubling) after(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	w := d.lo
	for ; n > 1 && w < d.hi; n-- {
		w *= 2
	}
	return min(w, d.hi)
}

// next is the wait that follows a wait of prev: lo after none, else twice
// prev, up to hi.
func (d doubling) next(prev time.Duration) time.Duration { return min(max(2*prev, d.lo), d.hi) }

// clamp bounds a wait to [lo, hi].
func (d doubling) clamp(w time.Duration) time.Duration { return min(max(w, d.lo), d.hi) }
