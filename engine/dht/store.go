package dht

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// peerTTL is how long an announced peer is kept without a new announce.
const peerTTL = 30 * time.Minute

// store keeps the peers announced to us (announce_peer), bounded in both
// the number of info-hashes and the peers per info-hash. When full, the
// oldest of a few randomly sampled entries is evicted: an attacker with
// valid tokens cannot pin the table, and eviction stays O(1).
// Not safe for concurrent use; the Node's mutex guards it.
type store struct {
	maxHashes, maxPeers int
	hashes              map[[idLen]byte]*peerSet
	peers               int // total stored peers
}

type peerSet struct {
	peers map[netip.AddrPort]time.Time // last announce
	last  time.Time                    // last announce of any peer
}

func newStore(maxHashes, maxPeers int) *store {
	return &store{maxHashes: maxHashes, maxPeers: maxPeers, hashes: make(map[[idLen]byte]*peerSet)}
}

// evictSample is how many random entries eviction looks at.
const evictSample = 8

// add stores peer for ih.
func (s *store) add(ih [idLen]byte, peer netip.AddrPort, now time.Time) {
	ps := s.hashes[ih]
	if ps == nil {
		if len(s.hashes) >= s.maxHashes {
			var oldK [idLen]byte
			var old *peerSet
			i := 0
			for k, v := range s.hashes { // map order is randomised
				if old == nil || v.last.Before(old.last) {
					oldK, old = k, v
				}
				if i++; i >= evictSample {
					break
				}
			}
			s.peers -= len(old.peers)
			delete(s.hashes, oldK)
		}
		ps = &peerSet{peers: make(map[netip.AddrPort]time.Time)}
		s.hashes[ih] = ps
	}
	if _, ok := ps.peers[peer]; !ok {
		if len(ps.peers) >= s.maxPeers {
			var oldK netip.AddrPort
			var oldT time.Time
			i := 0
			for k, v := range ps.peers {
				if i == 0 || v.Before(oldT) {
					oldK, oldT = k, v
				}
				if i++; i >= evictSample {
					break
				}
			}
			delete(ps.peers, oldK)
			s.peers--
		}
		s.peers++
	}
	ps.peers[peer] = now
	ps.last = now
}

// get returns up to max peers stored for ih, in random order.
//
// Only peers of family f are returned: an asker gets the peers it can
// reach over the family it asked on (BEP 32, as libtorrent).
func (s *store) get(ih [idLen]byte, f family, max int, now time.Time) []netip.AddrPort {
	ps := s.hashes[ih]
	if ps == nil || max <= 0 {
		return nil
	}
	out := make([]netip.AddrPort, 0, min(max, len(ps.peers)))
	for p, t := range ps.peers {
		if now.Sub(t) >= peerTTL || famOf(p.Addr()) != f {
			continue
		}
		out = append(out, p)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// expire drops peers not re-announced within peerTTL.
func (s *store) expire(now time.Time) {
	for ih, ps := range s.hashes {
		for p, t := range ps.peers {
			if now.Sub(t) >= peerTTL {
				delete(ps.peers, p)
				s.peers--
			}
		}
		if len(ps.peers) == 0 {
			delete(s.hashes, ih)
		}
	}
}
