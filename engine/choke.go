package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

const (
	chokeInterval      = 10 * time.Second
	optimisticInterval = 30 * time.Second
)

// chokeState is choking and interest with one peer, both ways. Loop-owned.
type chokeState struct {
	amChoking, amInterested     bool
	peerChoking, peerInterested bool
	optimistic                  bool      // our optimistic unchoke
	chokedAt                    time.Time // when we last choked it; zero while never unchoked
	refused                     int       // requests refused that a well-behaved peer would not send
}

// Compared with BEP 3 and libtorrent 2.0's defaults (checked for issue 15):
// the rechoke every 10 s, tit-for-tat by download rate while leeching and
// one optimistic unchoke rotated every 30 s follow both. Differences,
// left as they are for now: while seeding we rank by upload rate (BEP 3's
// rule, libtorrent's fastest_upload) where libtorrent by default rotates
// round-robin, which is fairer and harder for one greedy peer to hog;
// libtorrent unchokes 8 peers (unchoke_slots_limit) to our UploadSlots
// (4), fixed rather than derived from the upload limit, and gives
// optimistic unchokes to a fifth of its slots, preferring newcomers; and
// there is no anti-snubbing (a peer that has sent us nothing for a minute
// keeps its regular slot, though a zero rate sorts it last).

// rechoke runs tit-for-tat: the interested peers that give us the most (or,
// when we seed, take the most) are unchoked, plus one optimistic unchoke that
// rotates so newcomers get a chance to prove themselves.
func (t *Torrent) rechoke(now time.Time) {
	t.lastChoke = now
	if t.goal.met {
		return // goalMet choked everyone for good
	}
	var interested []*conn
	for c := range t.conns {
		if c.choke.peerInterested {
			interested = append(interested, c)
		}
	}
	score := func(c *conn) float64 {
		if t.isComplete {
			return c.flow.up.value
		}
		return c.flow.down.value
	}
	sort.Slice(interested, func(i, j int) bool { return score(interested[i]) > score(interested[j]) })
	slots := t.client.cfg.UploadSlots
	unchoke := map[*conn]bool{}
	for _, c := range interested[:min(slots, len(interested))] {
		unchoke[c] = true
	}
	var optimistic *conn
	for c := range t.conns {
		if c.choke.optimistic && c.choke.peerInterested {
			optimistic = c
		}
	}
	if optimistic == nil || now.Sub(t.lastOptim) >= optimisticInterval {
		var pool []*conn
		for _, c := range interested {
			if !unchoke[c] {
				pool = append(pool, c)
			}
		}
		if optimistic != nil {
			optimistic.choke.optimistic = false
		}
		optimistic = nil
		if len(pool) > 0 {
			optimistic = pool[rand.IntN(len(pool))]
			optimistic.choke.optimistic = true
		}
		t.lastOptim = now
	}
	if optimistic != nil {
		unchoke[optimistic] = true
	}
	for c := range t.conns {
		t.setChoke(c, !unchoke[c], now)
	}
}

// unchokeIfFree unchokes a newly interested peer at once when a slot is free,
// instead of making it wait for the next rechoke.
func (t *Torrent) unchokeIfFree(c *conn, now time.Time) {
	if !c.choke.amChoking || t.goal.met {
		return
	}
	n := 0
	for o := range t.conns {
		if !o.choke.amChoking {
			n++
		}
	}
	if n < t.client.cfg.UploadSlots+1 {
		t.setChoke(c, false, now)
	}
}

func (t *Torrent) setChoke(c *conn, choke bool, now time.Time) {
	if c.choke.amChoking == choke {
		return
	}
	c.choke.amChoking = choke
	if choke {
		c.choke.chokedAt = now
		c.send(peer.Message{Type: peer.Choke})
		c.dropUploads()
	} else {
		c.choke.refused = 0
		c.send(peer.Message{Type: peer.Unchoke})
	}
}

// onRequest validates and queues an upload request.
func (t *Torrent) onRequest(c *conn, m *peer.Message) {
	n := t.info.NumPieces()
	if int(m.Index) >= n || m.Length == 0 || m.Length > maxBlockRequest ||
		int64(m.Begin)+int64(m.Length) > t.servedPieceLen(int(m.Index)) {
		t.violation(c, "request %d+%d/%d out of range", m.Index, m.Begin, m.Length)
		return
	}
	switch {
	case c.choke.amChoking:
		// Requests our choke crossed on the wire are the peer's due;
		// later ones, or any before we ever unchoked it, are not.
		t.refuseRequest(c, m, c.choke.chokedAt.IsZero() || time.Since(c.choke.chokedAt) > chokeGrace)
	case !t.HavePiece(int(m.Index)):
		t.refuseRequest(c, m, false) // evicted since we announced it
	case !t.superMayServe(c, int(m.Index)):
		t.refuseRequest(c, m, false) // super-seeding: a piece we did not offer it
	case !c.queueUpload(m):
		t.refuseRequest(c, m, true) // beyond the queue we advertised
	}
}

// errRequestFlood drops a peer that keeps sending requests we refuse.
var errRequestFlood = errors.New("too many refused requests")

// refuseRequest rejects a request (with the fast extension; without it the
// request is ignored). A request a well-behaved peer would not have sent
// counts against the peer, which is dropped past maxRefusedRequests: the
// rejects we queue for it are bounded, whether or not it reads them.
func (t *Torrent) refuseRequest(c *conn, m *peer.Message, counts bool) {
	if counts {
		if c.choke.refused++; c.choke.refused > maxRefusedRequests {
			c.drop(fmt.Errorf("%w: %d (choked, or beyond the queue of %d we advertised)", errRequestFlood, c.choke.refused, maxUploadQueue))
			t.removeConn(c)
			return
		}
	}
	if c.fast {
		c.send(peer.Message{Type: peer.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
	}
}
