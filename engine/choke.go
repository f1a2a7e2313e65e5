package engine

import (
	"math/rand/v2"
	"sort"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

const (
	chokeInterval      = 10 * time.Second
	optimisticInterval = 30 * time.Second
)

// rechoke runs tit-for-tat: the interested peers that give us the most (or,
// when we seed, take the most) are unchoked, plus one optimistic unchoke that
// rotates so newcomers get a chance to prove themselves.
func (t *Torrent) rechoke(now time.Time) {
	t.lastChoke = now
	var interested []*conn
	for c := range t.conns {
		if c.peerInterested {
			interested = append(interested, c)
		}
	}
	score := func(c *conn) float64 {
		if t.isComplete {
			return c.up.value
		}
		return c.down.value
	}
	sort.Slice(interested, func(i, j int) bool { return score(interested[i]) > score(interested[j]) })
	slots := t.client.cfg.UploadSlots
	unchoke := map[*conn]bool{}
	for _, c := range interested[:min(slots, len(interested))] {
		unchoke[c] = true
	}
	var optimistic *conn
	for c := range t.conns {
		if c.optimistic && c.peerInterested {
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
			optimistic.optimistic = false
		}
		optimistic = nil
		if len(pool) > 0 {
			optimistic = pool[rand.IntN(len(pool))]
			optimistic.optimistic = true
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
	if !c.amChoking {
		return
	}
	n := 0
	for o := range t.conns {
		if !o.amChoking {
			n++
		}
	}
	if n < t.client.cfg.UploadSlots+1 {
		t.setChoke(c, false, now)
	}
}

func (t *Torrent) setChoke(c *conn, choke bool, now time.Time) {
	if c.amChoking == choke {
		return
	}
	c.amChoking = choke
	if choke {
		c.send(peer.Message{Type: peer.Choke})
		c.dropUploads()
	} else {
		c.unchokedAt = now
		c.send(peer.Message{Type: peer.Unchoke})
	}
}
