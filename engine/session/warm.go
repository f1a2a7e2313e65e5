package session

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/cache"
)

// Warm restart: the session keeps each torrent's best peers in the cache
// (beside its record) and, when the torrent is added again (Restore at the
// next start, or an Add of a torrent seen before), hands them to the engine
// at once, so their dials start before any tracker or DHT answer comes
// (and do without one: a tracker down, a DHT slow to find peers again).

// peerKeeper is what a Handle offers for warm restarts; an
// *engine.Torrent has it. A Handle without it gets no warm start.
type peerKeeper interface {
	// GoodPeers returns up to n addresses worth dialling first next time.
	GoodPeers(n int) []netip.AddrPort
	// AddPeers gives the torrent addresses to dial.
	AddPeers(peers []netip.AddrPort)
}

// peerStore is what a Store offers to keep peers; *cache.Cache has it.
type peerStore interface {
	PutPeers(ih cache.InfoHash, b []byte) error
	Peers(ih cache.InfoHash) ([]byte, error)
}

var (
	_ peerKeeper = engineTorrent{}
	_ peerStore  = (*cache.Cache)(nil)
)

const (
	// keptPeers is how many peers are kept per torrent: enough to start
	// at full speed, few enough to dial at once.
	keptPeers = 16
	// keepInterval is how often the kept peers are refreshed (and once
	// more at Close): a kill -9 loses at most that much.
	keepInterval = 30 * time.Second
	// maxPeerLines bounds what decodePeers reads.
	maxPeerLines = 64
)

// warmStart hands t the peers kept from its last run, if any.
func (s *Session) warmStart(t *Torrent) {
	pk, ok1 := t.h.(peerKeeper)
	ps, ok2 := s.store.(peerStore)
	if !ok1 || !ok2 {
		return
	}
	b, err := ps.Peers(t.ih)
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			s.logf("%s (%s): kept peers: %v", t.Name(), t.ih, err)
		}
		return
	}
	peers, err := decodePeers(b)
	if err != nil {
		s.logf("%s (%s): kept peers: %v", t.Name(), t.ih, err)
	}
	if len(peers) == 0 {
		return
	}
	t.keptPeers = b
	pk.AddPeers(peers)
	s.logf("%s (%s): dialling the %d peers that served it last time", t.Name(), t.ih, len(peers))
}

// keepPeersLoop refreshes every torrent's kept peers each keepInterval
// until the session closes; Close waits for it, then refreshes them once
// more.
func (s *Session) keepPeersLoop() {
	tick := time.NewTicker(keepInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.keepPeers()
		case <-s.ctx.Done():
			return
		}
	}
}

// keepPeers stores each torrent's best peers where they changed. Only the
// keeper goroutine calls it, and Close once that has ended: t.keptPeers
// needs no lock.
func (s *Session) keepPeers() {
	ps, ok := s.store.(peerStore)
	if !ok {
		return
	}
	for _, t := range s.Torrents() {
		pk, ok := t.h.(peerKeeper)
		if !ok {
			continue
		}
		peers := pk.GoodPeers(keptPeers)
		if len(peers) == 0 {
			continue // keep the last run's rather than none
		}
		b := encodePeers(peers)
		if bytes.Equal(b, t.keptPeers) {
			continue
		}
		// A removal wins over this write, as over remember's.
		s.mu.Lock()
		if s.torrents[t.ih] != t {
			s.mu.Unlock()
			continue
		}
		t.writes.Add(1)
		s.mu.Unlock()
		err := ps.PutPeers(t.ih, b)
		t.writes.Done()
		if err != nil {
			s.logf("%s (%s): keeping its peers: %v", t.Name(), t.ih, err)
			continue
		}
		t.keptPeers = b
	}
}

// encodePeers writes one address per line ("1.2.3.4:6881", "[::1]:6881").
func encodePeers(peers []netip.AddrPort) []byte {
	var b []byte
	for _, p := range peers {
		b = p.AppendTo(b)
		b = append(b, '\n')
	}
	return b
}

// decodePeers reads what encodePeers wrote (from the cache: a damaged
// record yields an error and the addresses read before it), at most
// maxPeerLines addresses, each with a port.
func decodePeers(b []byte) ([]netip.AddrPort, error) {
	if len(b) > cache.MaxPeersLen {
		return nil, fmt.Errorf("peer list of %d bytes, more than %d", len(b), cache.MaxPeersLen)
	}
	var out []netip.AddrPort
	for len(b) > 0 && len(out) < maxPeerLines {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		p, err := netip.ParseAddrPort(string(line))
		if err != nil || p.Port() == 0 || !p.Addr().IsValid() {
			return out, fmt.Errorf("bad peer address %q in the kept list", line)
		}
		out = append(out, p)
	}
	return out, nil
}
