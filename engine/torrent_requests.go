package engine

import (
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/picker"
)

// What we ask of peers: the request pipeline per peer (sized from its
// rate), interest, and topping pipelines up from the picker, with the
// cancels of what the picker withdrew.

const (
	// minPipeline and maxPipeline bound the requests outstanding per peer:
	// 1 MiB to 4 MiB in flight. 4 MiB covers 40 MB/s at 100 ms of round
	// trip; more only costs memory (measured: pipelines of 1000 blocks held
	// 77 MB of piece buffers live while streaming from one fast peer).
	// maxSlowPipeline (8 MiB) is for a peer that keeps our requests long
	// but serves them all: transmission answers every 500 ms, so a
	// pipeline of P blocks gets at most 2P a second from it.
	minPipeline     = 64
	maxPipeline     = 256
	maxSlowPipeline = 512
	// slowAnswer is the mean wait of a request (outstanding bytes over the
	// rate, Little's law) past which a peer gets maxSlowPipeline.
	slowAnswer = 250 * time.Millisecond
)

// pipelineFor sizes c's request pipeline at a tick: two seconds of its
// rate in flight (the smoothed rate, or the last second's when higher;
// the picker queues at most a second of work on a peer, this is the
// ceiling), within a bound and within what the peer accepts (transmission
// rejects the reqq-th request). A peer that serves in batches delivers at
// most a pipeline per batch (transmission: every 500 ms), so the pipeline
// must outgrow rate × period for the rate to grow at all: this way it
// grows several-fold a tick until the peer or the bound says stop. The
// bound is maxSlowPipeline for a peer that keeps requests long
// (slowAnswer), else maxPipeline: every outstanding block holds a share of
// a piece buffer.
func (t *Torrent) pipelineFor(c *conn, last int64, lastAt, now time.Time) int {
	rate := c.flow.down.value
	if dt := now.Sub(lastAt).Seconds(); !lastAt.IsZero() && dt > 0 {
		rate = max(rate, float64(c.flow.down.last-last)/dt)
	}
	bound := maxPipeline
	if t.picker != nil && rate > 0 {
		wait := float64(t.picker.Outstanding(c.id)*peer.BlockSize) / rate
		if wait >= slowAnswer.Seconds() {
			bound = maxSlowPipeline
		}
	}
	want := int(2*rate/float64(peer.BlockSize)) + 16
	return max(1, min(max(minPipeline, min(want, bound)), c.flow.peerReqq-1))
}

// updateInterest tells the peer whether we want something it has.
func (t *Torrent) updateInterest(c *conn) {
	if t.picker == nil {
		return
	}
	want := t.picker.Interesting(c.id)
	if want != c.choke.amInterested {
		c.choke.amInterested = want
		if want {
			c.send(peer.Message{Type: peer.Interested})
		} else {
			c.send(peer.Message{Type: peer.NotInterested})
		}
	}
}

// fill tops up c's request pipeline.
func (t *Torrent) fill(c *conn, now time.Time) {
	if c.removed || t.picker == nil {
		return
	}
	if t.hashing >= maxHashBacklog {
		return // pieceHashed refills once the disk has caught up
	}
	free := c.flow.pipeline - t.picker.Outstanding(c.id)
	if free <= 0 {
		return
	}
	reqs := t.picker.Next(c.id, now, free)
	// Next may withdraw queued requests to make room for urgent ones.
	t.sendCancels(t.picker.Cancels())
	if len(reqs) == 0 {
		return
	}
	c.sendRequests(reqs)
}

func (t *Torrent) fillAll() {
	if t.picker == nil {
		return
	}
	now := time.Now()
	for c := range t.conns {
		t.fill(c, now)
	}
	t.fillWebSeeds(now)
}

// sendCancels tells peers (and web seeds, see webSeedWithdrawn) about
// requests the picker withdrew (after a seek, for an urgent read, or
// because they timed out).
func (t *Torrent) sendCancels(prs []picker.PeerRequest) {
	for _, pr := range prs {
		if c := t.byID[pr.Peer]; c != nil {
			c.send(peer.Message{Type: peer.Cancel, Index: uint32(pr.Piece), Begin: pr.Begin, Length: pr.Length})
		} else if ws := t.webSeedByID(pr.Peer); ws != nil {
			t.webSeedWithdrawn(ws, pr.Piece) // no CANCEL: cut its run short
		}
	}
}
