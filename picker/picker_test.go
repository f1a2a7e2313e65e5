package picker

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// smallCfg is 8 pieces of 4 blocks of 16 KiB, the last one short.
func smallCfg() Config {
	return Config{NumPieces: 8, PieceLength: 64 << 10, TotalLength: 7*64<<10 + 20000, Background: All}
}

func seed(p *Picker, id PeerID) {
	p.AddPeer(id)
	p.PeerHaveAll(id)
	p.PeerChoked(id, false)
}

// fetch delivers every block of reqs from id and verifies completed pieces.
func fetch(t *testing.T, p *Picker, id PeerID, reqs []Request, now time.Time) {
	t.Helper()
	for _, r := range reqs {
		if _, ok := p.BlockReceived(id, r, now); !ok {
			t.Fatalf("block %+v not useful", r)
		}
		pa := p.partOf(r.Piece)
		if pa != nil && pa.nRecv == len(pa.blocks) {
			p.SetHave(r.Piece)
		}
	}
}

func TestDownloadAll(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1)
	now := t0
	for i := 0; i < 100 && p.NumHave() < 8; i++ {
		now = now.Add(10 * time.Millisecond)
		reqs := p.Next(1, now, 5)
		if len(reqs) == 0 {
			t.Fatalf("no requests at %d pieces", p.NumHave())
		}
		fetch(t, p, 1, reqs, now.Add(time.Millisecond))
	}
	if p.NumHave() != 8 {
		t.Fatalf("have %d pieces", p.NumHave())
	}
	if p.Interesting(1) {
		t.Fatal("seed interesting after completion")
	}
}

func TestBlockGeometry(t *testing.T) {
	p := New(smallCfg())
	if got := p.blockReq(7, 1); got.Length != 20000-16384 {
		t.Fatalf("last block %+v", got)
	}
	if _, ok := p.blockOf(Request{Piece: 7, Begin: 16384, Length: 16384}); ok {
		t.Fatal("overlong last block accepted")
	}
	if _, ok := p.blockOf(Request{Piece: 8, Begin: 0, Length: 16384}); ok {
		t.Fatal("piece out of range accepted")
	}
}
