package dht

import (
	"net/netip"
	"time"
)

// limiter counts incoming queries per source IP in one-second windows.
// The map is cleared each window and never holds more than maxIPs entries:
// a flood from many (spoofed) sources costs bounded memory, and sources
// beyond the bound are refused until the window ends.
// Not safe for concurrent use; the Node's mutex guards it.
type limiter struct {
	rate   int // queries per IP per window
	maxIPs int
	start  time.Time
	counts map[netip.Addr]int
}

func newLimiter(rate, maxIPs int) *limiter {
	return &limiter{rate: rate, maxIPs: maxIPs, counts: make(map[netip.Addr]int)}
}

// allow reports whether one more query from ip fits the limit.
func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	if now.Sub(l.start) >= time.Second {
		clear(l.counts)
		l.start = now
	}
	n, ok := l.counts[ip]
	if !ok && len(l.counts) >= l.maxIPs {
		return false
	}
	if n >= l.rate {
		return false
	}
	l.counts[ip] = n + 1
	return true
}
