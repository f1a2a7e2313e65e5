package picker

import (
	"slices"
	"testing"
	"time"
)

// TestRejectedNotAskedAgainAtOnce: a peer that claims every piece but
// refuses (REJECT) most blocks it is asked for must not get the same
// blocks back at once: the engine asks it again on every REJECT, and the
// refused blocks went round between us and it for ever while an honest
// seeder sat idle (TestV2BadBlockIdentified stalled so). Refused blocks go
// to the other peer; after rejectBackoff the refuser may be asked again.
func TestRejectedNotAskedAgainAtOnce(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1) // refuses every block but the second of each piece
	seed(p, 2) // honest, asked once a round
	train(p, 1, 50<<20, time.Millisecond)
	train(p, 2, 1<<20, 50*time.Millisecond)
	now := t0
	var pending []Request // asked of peer 1, not answered yet
	for round := 0; round < 100 && p.NumHave() < 8; round++ {
		now = now.Add(100 * time.Millisecond)
		pending = append(pending, p.Next(1, now, 64)...)
		for range 20 { // peer 1 answers at once; we ask it again at once
			now = now.Add(time.Millisecond)
			reqs := pending
			pending = nil
			for _, r := range reqs {
				if r.Begin == 16<<10 {
					fetch(t, p, 1, []Request{r}, now)
				} else {
					p.RequestRejected(1, r)
				}
				pending = append(pending, p.Next(1, now, 64)...)
			}
		}
		fetch(t, p, 2, p.Next(2, now, 64), now.Add(time.Millisecond))
	}
	if p.NumHave() != 8 {
		t.Fatalf("have %d of 8 pieces: the blocks peer 1 refuses stay with it", p.NumHave())
	}

	// After the back-off the refuser is asked again. Peer 2 has the
	// piece but is choked, then unchoked.
	p = New(smallCfg())
	seed(p, 1)
	p.AddPeer(2)
	p.PeerHaveAll(2)
	reqs := p.Next(1, t0, 1)
	p.RequestRejected(1, reqs[0])
	if got := p.Next(1, at(100*time.Millisecond), 1); len(got) != 1 || got[0] == reqs[0] {
		t.Fatalf("refused block %+v asked again at once: %v", reqs[0], got)
	}
	// The only unchoked source: asked again after the short back-off, or
	// a read behind the block would wait the whole of it.
	if got := p.Next(1, at(rejectBackoffAlone+100*time.Millisecond), 1); !slices.Contains(got, reqs[0]) {
		t.Fatalf("refused block %+v not asked again of the only source after %v: %v", reqs[0], rejectBackoffAlone, got)
	}
	p.RequestRejected(1, reqs[0])
	p.PeerChoked(2, false)
	now = at(rejectBackoffAlone + 200*time.Millisecond)
	if got := p.Next(1, now.Add(time.Second), 1); len(got) != 1 || got[0] == reqs[0] {
		t.Fatalf("refused block %+v asked again of peer 1 while peer 2 has it: %v", reqs[0], got)
	}
	if got := p.Next(1, now.Add(rejectBackoff+time.Second), 1); !slices.Contains(got, reqs[0]) {
		t.Fatalf("refused block %+v not asked again after the back-off: %v", reqs[0], got)
	}
}

// TestUrgentUnasked: a full source learns that a read waits for a piece
// it has and nobody was asked for, and only then.
func TestUrgentUnasked(t *testing.T) {
	cfg := smallCfg()
	cfg.Background = OnlyWanted
	p := New(cfg)
	seed(p, 1)
	p.AddPeer(2) // has piece 0 only
	p.PeerHave(2, 0)
	p.PeerChoked(2, false)
	if p.UrgentUnasked(1) {
		t.Fatal("no read is pending, yet UrgentUnasked")
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: cfg.TotalLength}, t0)
	p.ReaderRead(r, 3*cfg.PieceLength, 100, t0)
	if !p.UrgentUnasked(1) {
		t.Fatal("a read waits for piece 3, asked of nobody, and peer 1 has it: want UrgentUnasked")
	}
	if p.UrgentUnasked(2) {
		t.Fatal("peer 2 lacks piece 3: want no UrgentUnasked for it")
	}
	reqs := p.Next(1, t0, 64)
	if len(reqs) == 0 {
		t.Fatal("peer 1 got nothing for the urgent read")
	}
	if p.UrgentUnasked(1) {
		t.Fatalf("every block of piece 3 is asked of peer 1 (%d requests), yet UrgentUnasked", len(reqs))
	}
	p.ReaderDone(r, 3*cfg.PieceLength, 100)
	p.PeerChoked(1, true)
	p.ReaderRead(r, 5*cfg.PieceLength, 100, t0)
	if p.UrgentUnasked(1) {
		t.Fatal("peer 1 chokes us: want no UrgentUnasked")
	}
}

// TestReturnedAskedAgainAtOnce: a block a source hands back unserved
// (RequestReturned: a web seed's run that was full or cut short) may be
// asked of it again at once, unlike a rejected one: for a torrent whose
// only source is a web seed, a 3 s back-off on every returned block cut
// its download from about 130 to 15 MB/s.
func TestReturnedAskedAgainAtOnce(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1)
	reqs := p.Next(1, t0, 1)
	p.RequestReturned(1, reqs[0])
	if got := p.Next(1, at(time.Millisecond), 1); len(got) != 1 || got[0] != reqs[0] {
		t.Fatalf("returned block %+v not asked again at once: %v", reqs[0], got)
	}
}
