package picker

import "testing"

// TestSolo: a piece a reader waits for is shared among the peers that
// have it; after it failed and Solo, its next copy comes from the first
// peer that takes a block of it, all of it and no one else's (duplicates
// included), until that peer chokes us; then another may take it over. Had
// again, it is no longer solo.
func TestSolo(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1)
	seed(p, 2)
	now := at(0)
	r := p.AddReader(ReaderOptions{Start: 0, End: 7*64<<10 + 20000}, now)
	p.ReaderRead(r, 0, 4096, now)
	count := func(reqs []Request, piece int) int {
		n := 0
		for _, q := range reqs {
			if q.Piece == piece {
				n++
			}
		}
		return n
	}
	a, b := p.Next(1, now, 2), p.Next(2, now, 2)
	if count(a, 0) == 0 || count(b, 0) == 0 {
		t.Fatalf("the urgent piece 0 is not shared: peer 1 got %v, peer 2 %v", a, b)
	}
	// Every block of piece 0 arrives; it fails its check.
	deliver := func(id PeerID, reqs []Request) {
		for _, q := range reqs {
			if q.Piece == 0 {
				p.BlockReceived(id, q, now)
			}
		}
	}
	deliver(1, a)
	deliver(2, b)
	for _, id := range []PeerID{1, 2} {
		deliver(id, p.Next(id, now, 8))
	}
	p.PieceFailed(0)
	p.Solo(0)
	a = p.Next(1, now, 8)
	if n := count(a, 0); n != 4 {
		t.Fatalf("peer 1 took %d blocks of the solo piece, want all 4: %v", n, a)
	}
	later := at(5e9) // long past every estimate: duplicates would be due
	if n := count(p.Next(2, later, 8), 0); n != 0 {
		t.Fatalf("peer 2 took %d blocks of a piece peer 1 fetches alone", n)
	}
	p.PeerChoked(1, true)
	for _, q := range a {
		p.RequestReturned(1, q)
	}
	if n := count(p.Next(2, later, 8), 0); n != 4 {
		t.Fatalf("after peer 1 choked us, peer 2 took %d blocks of the solo piece, want 4", n)
	}
	p.SetHave(0)
	if p.isSolo(0) {
		t.Fatal("piece 0 is still solo once had")
	}
}
