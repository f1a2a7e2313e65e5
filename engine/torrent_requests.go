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

	// maxOutstandingBytes bounds a torrent's requests in flight over all
	// its peers, and so the blocks waiting for the loop and the piece
	// buffers they open: without it every peer's pipeline counted, and 4
	// peers looking slow because our own loop lagged (maxSlowPipeline)
	// had 32 MiB in flight and 16 MiB of blocks queued to the loop. 8
	// MiB is 28 ms at 300 MB/s; the first peers to ask take it, then each
	// block that arrives frees a request for its sender, so the share
	// follows who delivers. Each peer may still keep minOwnOutstanding
	// requests of its own (an urgent read on a peer that got nothing
	// must not wait for the tick): memory per peer stays bounded, as the
	// number of peers is.
	maxOutstandingBytes = 8 << 20
	minOwnOutstanding   = 16
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
	if t.hashing >= t.hashLimit() {
		return // pieceHashed refills once the disk has caught up
	}
	out := t.picker.Outstanding(c.id)
	free := c.flow.pipeline - out
	if free <= 0 {
		return
	}
	// The torrent's requests in flight share maxOutstandingBytes, beyond
	// each peer's floor (minOwnOutstanding).
	if left := (maxOutstandingBytes - t.outstandingBytes()) / peer.BlockSize; free > left {
		free = min(free, max(left, minOwnOutstanding-out))
		if free <= 0 {
			return // the next block to arrive or the next tick refills
		}
	}
	reqs := t.picker.Next(c.id, now, free)
	// Next may withdraw queued requests to make room for urgent ones.
	t.sendCancels(t.picker.Cancels())
	if len(reqs) == 0 {
		return
	}
	c.sendRequests(reqs)
}

// outstandingBytes is what the torrent's peers owe it: the bytes of every
// request in flight, which each become part of a piece buffer when they
// arrive, and meanwhile may wait in the loop's queue as blocks. Web seeds'
// runs are not counted (registerWebSeed uncounts them): their pipeline
// bounds them. O(1): the picker keeps the sum, and fill asks for it
// before every request it sends (it was a walk over every connection's
// count, per block received).
func (t *Torrent) outstandingBytes() int { return int(t.picker.OutstandingBytes()) }

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
