package picker

import (
	"testing"
	"time"
)

// TestSetPeerStatsBursts: a source that delivers whole pieces at once (a
// web seed: a piece's 64 blocks arrive in one instant) cannot be timed
// block by block; told its rate, the picker keeps about a second of it
// queued, and the bursts do not talk the estimate down.
func TestSetPeerStatsBursts(t *testing.T) {
	const rate = 200 << 20 // bytes/s: 1 MiB pieces every 5 ms
	p := New(bigCfg(All))
	seed(p, 1)
	now := t0
	var queued int
	for round := range 3 {
		p.SetPeerStats(1, rate, 2*time.Millisecond)
		reqs := p.Next(1, now, maxOutPerPeer)
		if round > 0 {
			queued = min(queued, p.Outstanding(1))
		} else {
			queued = p.Outstanding(1)
		}
		// Deliver the requests' pieces one burst each, 5 ms apart.
		for i := 0; i < len(reqs); {
			now = now.Add(5 * time.Millisecond)
			j := i
			for j < len(reqs) && reqs[j].Piece == reqs[i].Piece {
				p.BlockReceived(1, reqs[j], now)
				j++
			}
			i = j
		}
	}
	// 200 MB/s for a second is more than maxOutPerPeer blocks: the queue
	// is full each round (three rounds leave a quarter of the torrent).
	if queued < 512 {
		t.Fatalf("queued %d blocks at least once, want >= 512", queued)
	}
	pe := p.peer(1)
	if pe.rate != rate {
		t.Fatalf("rate %v after bursts, want %v as told", pe.rate, float64(rate))
	}
}

// TestSetPeerStatsNotPrior: a told source (a web seed far faster than
// any peer) does not make unmeasured peers look fast.
func TestSetPeerStatsNotPrior(t *testing.T) {
	p := New(bigCfg(All))
	seed(p, 1)
	seed(p, 2)
	seed(p, 3)
	train(p, 2, 1<<20, 50*time.Millisecond)
	p.SetPeerStats(1, 1<<30, time.Millisecond)
	p.Next(3, t0, 16)
	if got := p.peer(3).rateOrDefault(); got != 1<<20 {
		t.Fatalf("an unmeasured peer is assumed to do %v bytes/s, want the measured peer's %v", got, 1<<20)
	}
}
