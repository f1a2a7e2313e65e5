package picker

import (
	"slices"
	"testing"
	"time"
)

// TestViews: ReaderView follows a reader's position and window, and
// InFlight lists the pieces with blocks requested until they are verified.
func TestViews(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	if got := p.InFlight(nil); len(got) != 0 {
		t.Fatalf("in flight before any request: %v", got)
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	if v, ok := p.ReaderView(r); !ok || v.Pos != -1 || v.Window != 0 {
		t.Fatalf("before a read: %+v %v", v, ok)
	}
	now := t0
	var off int64
	for range 8 {
		now = now.Add(50 * time.Millisecond)
		p.ReaderRead(r, off, 128<<10, now)
		p.ReaderDone(r, off, 128<<10)
		off += 128 << 10
	}
	v, ok := p.ReaderView(r)
	if !ok || v.Pos != off || v.Window <= 0 {
		t.Fatalf("after reading %d bytes: %+v %v", off, v, ok)
	}
	reqs := p.Next(1, now, 4)
	if len(reqs) == 0 {
		t.Fatal("no request")
	}
	got := p.InFlight(nil)
	if !slices.Contains(got, reqs[0].Piece) {
		t.Fatalf("in flight %v, lacks piece %d requested", got, reqs[0].Piece)
	}
	p.SetHave(reqs[0].Piece)
	if slices.Contains(p.InFlight(nil), reqs[0].Piece) {
		t.Fatalf("piece %d still in flight once verified", reqs[0].Piece)
	}
	p.RemoveReader(r)
	if _, ok := p.ReaderView(r); ok {
		t.Fatal("a removed reader is still described")
	}
}
