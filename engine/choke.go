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
	unchokedAt                  time.Time // when we last unchoked it
	upAtUnchoke                 int64     // bytes uploaded to it when we last unchoked it
	peerUnchokedAt              time.Time // when it last unchoked us
	refused                     int       // requests refused that a well-behaved peer would not send
}

const (
	// snubTime is how long a peer that unchoked us may send nothing we
	// asked for before it counts as snubbing us (libtorrent: 60 s): it
	// then loses its regular upload slot, keeping only a chance at the
	// optimistic one.
	snubTime = 60 * time.Second
	// seedQuota is what a peer may take, while we seed, before its slot
	// goes round to a peer that has waited (libtorrent's round robin
	// rotates after seeding_piece_quota pieces); seedTurn is the least
	// time it keeps the slot even so.
	seedQuota = 8 << 20
	seedTurn  = 30 * time.Second
	// slotRate is the upload rate each regular slot should get at least,
	// under --max-upload-rate: a low limit spread over many peers gives
	// none of them enough to be worth reciprocating.
	slotRate = 40 << 10
)

// uploadSlots is how many peers get a regular upload slot: Config's
// UploadSlots when set, else 4, fewer under an upload limit too low to
// feed 4 (slotRate each, at least 2).
func uploadSlots(cfg *Config) int {
	if cfg.UploadSlots > 0 {
		return cfg.UploadSlots
	}
	if cfg.UploadRate > 0 {
		return int(min(max(cfg.UploadRate/slotRate, 2), defaultUploadSlots))
	}
	return defaultUploadSlots
}

// defaultUploadSlots is the regular upload slots without a limit.
const defaultUploadSlots = 4

// Compared with BEP 3 and libtorrent 2.0's defaults (issue 15): the
// rechoke every 10 s, tit-for-tat by download rate while leeching and one
// optimistic unchoke rotated every 30 s follow both. While seeding the
// slots go round as libtorrent's round_robin does: a peer keeps its slot
// until it has taken seedQuota (and held it seedTurn), then the peers
// that have waited longest come first. A peer that snubs us (snubTime)
// loses its regular slot while we leech, as in libtorrent. The regular
// slots are 4 (libtorrent: 8), fewer under a low --max-upload-rate
// (uploadSlots). Left as it is: libtorrent gives optimistic unchokes to a
// fifth of its slots and prefers newcomers; we give one, at random.

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
	if t.isComplete {
		t.rankSeeding(interested, now)
	} else {
		// Tit-for-tat: who gives us the most; a peer snubbing us last.
		sort.SliceStable(interested, func(i, j int) bool {
			a, b := interested[i], interested[j]
			if sa, sb := t.snubbing(a, now), t.snubbing(b, now); sa != sb {
				return sb
			}
			return a.flow.down.value > b.flow.down.value
		})
	}
	slots := uploadSlots(&t.client.cfg)
	unchoke := map[*conn]bool{}
	for _, c := range interested[:min(slots, len(interested))] {
		if !t.isComplete && t.snubbing(c, now) {
			break // only the optimistic slot for it
		}
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
	if n < uploadSlots(&t.client.cfg)+1 {
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
		c.choke.unchokedAt = now
		c.choke.upAtUnchoke = c.uploaded.Load()
		c.send(peer.Message{Type: peer.Unchoke})
	}
}

// snubbing reports whether c, which unchoked us and has our interest,
// has sent nothing we asked for in snubTime.
func (t *Torrent) snubbing(c *conn, now time.Time) bool {
	if !c.choke.amInterested || c.choke.peerChoking {
		return false
	}
	last := c.choke.peerUnchokedAt
	if c.flow.lastPiece.After(last) {
		last = c.flow.lastPiece
	}
	return !last.IsZero() && now.Sub(last) > snubTime
}

// rankSeeding orders the interested peers for the slots while we seed,
// round robin: first the unchoked peers still within their turn (they
// have taken less than seedQuota or held the slot less than seedTurn),
// then the choked ones by how long ago they last had a slot (never
// first), and last the unchoked ones whose turn is over.
func (t *Torrent) rankSeeding(cs []*conn, now time.Time) {
	group := func(c *conn) int {
		switch {
		case c.choke.amChoking:
			return 1
		case c.uploaded.Load()-c.choke.upAtUnchoke < seedQuota || now.Sub(c.choke.unchokedAt) < seedTurn:
			return 0
		default:
			return 2
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if ga, gb := group(a), group(b); ga != gb {
			return ga < gb
		}
		return a.choke.unchokedAt.Before(b.choke.unchokedAt)
	})
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
