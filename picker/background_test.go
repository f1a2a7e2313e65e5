package picker

import (
	"slices"
	"testing"
	"time"
)

// TestSetBackground: pausing the All policy stops background requests at
// once (queued ones are withdrawn) while readers are still served;
// resuming brings them back.
func TestSetBackground(t *testing.T) {
	cfg := Config{NumPieces: 64, PieceLength: 64 << 10, Background: All}
	p := New(cfg)
	seed(p, 1)
	now := t0
	if reqs := p.Next(1, now, 200); len(reqs) == 0 {
		t.Fatal("no background requests under All")
	}
	out := p.Outstanding(1)
	now = now.Add(time.Second)
	p.tick(now)
	p.SetBackground(OnlyWanted)
	if p.Background() != OnlyWanted {
		t.Fatal("policy not changed")
	}
	if n := len(p.Cancels()); n == 0 || p.Outstanding(1) >= out {
		t.Fatalf("pausing withdrew %d of %d queued background requests", n, out)
	}
	if reqs := p.Next(1, now, 200); len(reqs) != 0 {
		t.Fatalf("paused background still requested %v", reqs)
	}
	p.tick(now.Add(interestLinger))
	if p.Interesting(1) {
		t.Fatal("interested in a seed with the background paused and no reader")
	}
	// A reader is served while the background is paused.
	r := p.AddReader(ReaderOptions{Start: 0, End: cfg.PieceLength * 64}, now)
	p.ReaderRead(r, 40*cfg.PieceLength, 1000, now)
	reqs := p.Next(1, now, 200)
	if len(reqs) == 0 || reqs[0].Piece != 40 {
		t.Fatalf("reader's piece not requested while paused: %v", reqs)
	}
	p.ReaderDone(r, 40*cfg.PieceLength, 1000)
	p.RemoveReader(r)
	p.SetBackground(All)
	if reqs := p.Next(1, now.Add(time.Second), 200); len(reqs) == 0 {
		t.Fatal("no background requests after resuming")
	}
}

// TestCompletePieceNotRequested: a piece whose every block arrived but
// which was neither verified nor failed (its store refused it) is asked of
// nobody, not even for a reader waiting on it, until PieceFailed.
func TestCompletePieceNotRequested(t *testing.T) {
	cfg := Config{NumPieces: 8, PieceLength: 64 << 10, Background: All}
	p := New(cfg)
	seed(p, 1)
	now := t0
	r := p.AddReader(ReaderOptions{Start: 0, End: 8 * cfg.PieceLength}, now)
	p.ReaderRead(r, 3*cfg.PieceLength, 100, now)
	for _, q := range p.Next(1, now, 4) {
		if q.Piece != 3 {
			t.Fatalf("requested %v before the urgent piece", q)
		}
		if _, ok := p.BlockReceived(1, q, now); !ok {
			t.Fatalf("block %v not useful", q)
		}
	}
	if pa := p.partOf(3); pa == nil || pa.nRecv != len(pa.blocks) {
		t.Fatal("piece 3 not complete")
	}
	p.SetBackground(OnlyWanted)
	for i := range 5 {
		if reqs := p.Next(1, now.Add(time.Duration(i)*time.Second), 100); len(reqs) != 0 {
			t.Fatalf("a complete piece waiting for its store was requested again: %v", reqs)
		}
	}
	p.PieceFailed(3)
	reqs := p.Next(1, now.Add(10*time.Second), 100)
	if len(reqs) == 0 || reqs[0].Piece != 3 {
		t.Fatalf("piece 3 not requested again after PieceFailed: %v", reqs)
	}
}

// reqPieces lists the pieces of reqs in order, each run of requests of one
// piece once.
func reqPieces(reqs []Request) []int {
	var out []int
	for _, r := range reqs {
		if len(out) == 0 || out[len(out)-1] != r.Piece {
			out = append(out, r.Piece)
		}
	}
	return out
}

// TestPeerInOrder: a peer set in order gets its background pieces lowest
// first from the piece given, then from the start, skipping pieces had
// or busy; a reader's piece still comes first; -1 restores rarest first.
func TestPeerInOrder(t *testing.T) {
	const n = 64
	cfg := Config{NumPieces: n, PieceLength: 64 << 10, Background: All}
	bpp := int(cfg.PieceLength / (16 << 10))
	p := New(cfg)
	seed(p, 1)
	p.SetHave(61)
	p.SetPeerInOrder(1, 60)
	now := t0
	if got := reqPieces(p.Next(1, now, 4*bpp)); !slices.Equal(got, []int{60, 62, 63, 0}) {
		t.Fatalf("in order from 60: pieces %v, want [60 62 63 0]", got)
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: cfg.PieceLength * n}, now)
	p.ReaderRead(r, 40*cfg.PieceLength, 1000, now)
	if got := reqPieces(p.Next(1, now, bpp)); len(got) != 1 || got[0] != 40 {
		t.Fatalf("a reader's piece: pieces %v, want [40]", got)
	}
	p.ReaderDone(r, 40*cfg.PieceLength, 1000)
	p.RemoveReader(r)

	// Rarest first again: the seeded shuffle, not the order of indexes.
	q := New(cfg)
	seed(q, 1)
	q.SetPeerInOrder(1, 5)
	q.SetPeerInOrder(1, -1)
	if got := reqPieces(q.Next(1, now, 8*bpp)); slices.Equal(got, []int{5, 6, 7, 8, 9, 10, 11, 12}) || slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("rarest first asked pieces in order: %v", got)
	}
}
