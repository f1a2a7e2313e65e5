package picker

import (
	"testing"
)

// TestPieceArrived: a web seed delivers a whole verified piece of which it
// was asked two blocks and another peer one: every block counts as
// received, the other peer's request is cancelled, nothing of the piece is
// asked again, and a second copy (or a piece here or complete already) is
// not taken.
func TestPieceArrived(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1) // the web seed
	seed(p, 2)
	now := at(0)
	var web, other []Request
	for _, r := range p.Next(1, now, 2) {
		if r.Piece == 0 {
			web = append(web, r)
		}
	}
	for _, r := range p.Next(2, now, 1) {
		if r.Piece == 0 {
			other = append(other, r)
		}
	}
	if len(web) != 2 || len(other) != 1 {
		t.Fatalf("piece 0 asked of the web seed %v and the peer %v, want 2 and 1 blocks", web, other)
	}
	cancels, ok := p.PieceArrived(1, 0, now)
	if !ok {
		t.Fatal("the piece was not taken")
	}
	if len(cancels) != 1 || cancels[0].Peer != 2 || cancels[0].Request != other[0] {
		t.Fatalf("cancels %v, want the peer's %v", cancels, other)
	}
	if n := p.Outstanding(1); n != 0 {
		t.Fatalf("the web seed has %d requests outstanding, want 0", n)
	}
	if n := p.Outstanding(2); n != 0 {
		t.Fatalf("the peer has %d requests outstanding, want 0", n)
	}
	for _, id := range []PeerID{1, 2} {
		for _, r := range p.Next(id, now, 64) {
			if r.Piece == 0 {
				t.Fatalf("piece 0 asked of %d again: %v", id, r)
			}
		}
	}
	if _, ok := p.PieceArrived(1, 0, now); ok {
		t.Fatal("a second copy of the piece was taken while the first is checked")
	}
	// The peer's block arrives after all (it crossed the cancel): not
	// useful.
	if _, ok := p.BlockReceived(2, other[0], now); ok {
		t.Fatal("a block of the arrived piece was taken again")
	}
	p.SetHave(0)
	if _, ok := p.PieceArrived(1, 0, now); ok {
		t.Fatal("a piece here already was taken")
	}
	// A piece nobody was asked for is taken too.
	if _, ok := p.PieceArrived(1, 7, now); !ok {
		t.Fatal("an unasked piece was not taken")
	}
	// If its check fails, it is asked again.
	p.PieceFailed(7)
	asked := false
	for _, r := range p.Next(2, now, 256) {
		asked = asked || r.Piece == 7
	}
	if !asked {
		t.Fatal("a piece that failed its check after PieceArrived is not asked again")
	}
}
