package engine

import (
	"cmp"
	"net/netip"
	"slices"
)

// Warm restart: the peers that served a torrent best, for the caller to
// keep (the session stores them in the cache) and hand back through
// AddPeers when the torrent starts again, so that a remount dials them at
// once instead of waiting for trackers and the DHT.

// GoodPeers returns up to n addresses worth dialling first when this
// torrent starts again: those of the open connections that sent us piece
// data, most data first, then those of other peers we reached since the
// start, most recently reached first. Only addresses we can dial count (a
// candidate's, not an incoming connection's ephemeral port). Nil once the
// torrent is closed. It waits for the torrent's loop; call it from no
// goroutine of the torrent's.
func (t *Torrent) GoodPeers(n int) []netip.AddrPort {
	ch := make(chan []netip.AddrPort, 1)
	if !t.post(func() { ch <- t.goodPeers(n) }) {
		return nil
	}
	select {
	case p := <-ch:
		return p
	case <-t.done:
		return nil
	}
}

// goodPeers is GoodPeers on the loop.
func (t *Torrent) goodPeers(n int) []netip.AddrPort {
	type ranked struct {
		addr   netip.AddrPort
		served int64
	}
	var open []ranked
	seen := make(map[netip.AddrPort]bool)
	for c := range t.conns {
		if c.cand == nil || t.candidates[c.cand.addr] != c.cand {
			continue
		}
		if d := c.downloaded.Load(); d > 0 && !seen[c.cand.addr] {
			seen[c.cand.addr] = true
			open = append(open, ranked{c.cand.addr, d})
		}
	}
	slices.SortFunc(open, func(a, b ranked) int { return cmp.Compare(b.served, a.served) })
	var before []*candidate
	for _, c := range t.candidates {
		if !c.lastConnected.IsZero() && !seen[c.addr] && !t.isBanned(c.addr.Addr()) {
			before = append(before, c)
		}
	}
	slices.SortFunc(before, func(a, b *candidate) int { return b.lastConnected.Compare(a.lastConnected) })
	out := make([]netip.AddrPort, 0, min(n, len(open)+len(before)))
	for _, r := range open {
		if len(out) == n {
			return out
		}
		out = append(out, r.addr)
	}
	for _, c := range before {
		if len(out) == n {
			break
		}
		out = append(out, c.addr)
	}
	return out
}
