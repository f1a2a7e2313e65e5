package picker

import (
	"testing"
	"time"
)

// Rules for a slow swarm: a few rate-capped seeders (libtorrent's limiter
// hands out its quota in bursts, so one peer's latency sample is often
// 100 ms where another's is 10 ms). A piece from one 2 MB/s seeder takes
// half a second; from four, an eighth: every urgent piece must be spread
// over all of them.

// TestUrgentSharedByAllCappedPeers: four 2 MB/s seeds, one of which
// measured 100 ms of latency (a quota pause) against 10 ms for the others,
// all take a part of an urgent 1 MiB piece. The old rule compared a peer's
// time for one block with the best peer's (0.108 s against 2 × 0.018 s +
// slack) and left the fourth peer idle, a quarter of the swarm, while the
// others would need 0.16 s for the whole piece.
func TestUrgentSharedByAllCappedPeers(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	lats := map[PeerID]time.Duration{1: 10 * time.Millisecond, 2: 10 * time.Millisecond, 3: 10 * time.Millisecond, 4: 100 * time.Millisecond}
	for id := PeerID(1); id <= 4; id++ {
		seed(p, id)
		train(p, id, 2e6, lats[id])
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 3<<20, 4096, t0)
	got := map[PeerID]int{}
	for id := PeerID(1); id <= 4; id++ {
		for _, q := range p.Next(id, t0, 64) {
			if q.Piece != 3 {
				t.Fatalf("peer %d asked for piece %d", id, q.Piece)
			}
			got[id]++
		}
	}
	for id := PeerID(1); id <= 4; id++ {
		if got[id] < 4 || got[id] > 24 {
			t.Fatalf("blocks of the urgent piece per peer %v: want all four peers to share it", got)
		}
	}
	// The peer that answers later takes less: all finish together.
	if got[4] >= got[1] {
		t.Fatalf("blocks per peer %v: the 100 ms peer took as much as a 10 ms one", got)
	}
}

// TestMediaSeekToMiddleOpensWindow: a player opens a video, reads its head
// and its index at the tail, then seeks to the middle. The piece after the
// seek's must be asked right behind it: ffmpeg's next reads (the kernel's
// readahead) reach it within a few hundred milliseconds, and at 8 MB/s a
// piece takes 130 ms. A scanner that stays within the head and tail, or a
// reader that is not media, earns no window.
func TestMediaSeekToMiddleOpensWindow(t *testing.T) {
	tests := []struct {
		name   string
		media  bool
		seekTo int64
		window bool
	}{
		{"player seeks to the middle", true, 30<<20 + 1000, true},
		{"scanner reads the head again", true, 64 << 10, false},
		{"not media", false, 30<<20 + 1000, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(bigCfg(OnlyWanted))
			for id := PeerID(1); id <= 4; id++ {
				seed(p, id)
				train(p, id, 2e6, 10*time.Millisecond)
			}
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20, Media: tc.media}, t0)
			now := t0
			for _, rd := range [][2]int64{{0, 32 << 10}, {63<<20 + 500<<10, 32 << 10}, {tc.seekTo, 36 << 10}} {
				now = now.Add(100 * time.Millisecond)
				p.ReaderRead(r, rd[0], int(rd[1]), now)
				if rd[0] != tc.seekTo {
					p.SetHave(int(rd[0] >> 20)) // head and tail arrived
					p.ReaderDone(r, rd[0], int(rd[1]))
				}
			}
			next := int(tc.seekTo>>20) + 1
			if got := p.Pinned(next); got != tc.window {
				t.Fatalf("piece %d after the seek pinned %v, want %v (pins %v)", next, got, tc.window, p.PinnedPieces())
			}
			asked := false
			for id := PeerID(1); id <= 4; id++ {
				for _, q := range p.Next(id, now, 128) {
					asked = asked || q.Piece == next
				}
			}
			if asked != tc.window {
				t.Fatalf("piece %d after the seek asked %v, want %v", next, asked, tc.window)
			}
		})
	}
}

// TestUrgentPieceNotAllToFirstPeer: right after a mount, a read waits and
// the seeders' handshakes complete a fraction of a millisecond apart. The
// first peer to unchoke us must not take the whole urgent piece (half a
// second from one 2 MB/s seeder) just because it is the only peer known
// at that instant: it takes what it can deliver soon, and the peers that
// unchoke next share the rest, each block asked once.
func TestUrgentPieceNotAllToFirstPeer(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 3<<20, 16<<10, t0)
	got := map[PeerID]int{}
	asked := map[Request]bool{}
	for id := PeerID(1); id <= 4; id++ {
		now := at(time.Duration(id) * 300 * time.Microsecond)
		seed(p, id)
		for _, q := range p.Next(id, now, 256) {
			if q.Piece != 3 {
				t.Fatalf("peer %d asked for piece %d", id, q.Piece)
			}
			if asked[q] {
				t.Fatalf("peer %d asked %+v again", id, q)
			}
			asked[q] = true
			got[id]++
		}
	}
	for id := PeerID(1); id <= 4; id++ {
		if got[id] < 4 || got[id] > 32 {
			t.Fatalf("blocks of the urgent piece per peer as they unchoke: %v", got)
		}
	}
}

// TestNoDuplicateOfNewPeerStillDelivering: a seeder that has just
// unchoked us and is delivering has no measured rate yet, so the arrival
// times of its queued blocks were estimated from the 256 KiB/s prior. A
// peer measured since must not duplicate those blocks on that estimate: a
// rate-capped libtorrent seeder sends what it has read for us, CANCEL or
// not, so each duplicate costs a block of the swarm's bandwidth. Once the
// new peer falls silent, its blocks may be duplicated.
func TestNoDuplicateOfNewPeerStillDelivering(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 3<<20, 16<<10, t0)
	held := p.Next(1, t0, 16)
	if len(held) == 0 {
		t.Fatal("peer 1 took nothing")
	}
	// Peer 1 delivers its first block 70 ms later, and is still unmeasured.
	if _, ok := p.BlockReceived(1, held[0], at(70*time.Millisecond)); !ok {
		t.Fatal("block not useful")
	}
	seed(p, 2)
	train(p, 2, 2e6, 10*time.Millisecond)
	for _, q := range p.Next(2, at(100*time.Millisecond), 64) {
		for _, h := range held {
			if q == h {
				t.Fatalf("peer 2 duplicated %+v, held by a peer that is delivering", q)
			}
		}
	}
	// Silent for a second: its blocks are fair game.
	dup := false
	for _, q := range p.Next(2, at(1200*time.Millisecond), 64) {
		for _, h := range held {
			dup = dup || q == h
		}
	}
	if !dup {
		t.Fatal("no duplicate of a silent holder's blocks")
	}
}

// TestReadaheadSpreadOverPeers: a media reader's head and tail (and a
// window) are asked of four 2 MB/s seeds. Each piece is shared by the
// peers, so the pieces complete one after another in the order they are
// needed (the head in 130 ms, the index 130 ms later) instead of all at
// once after half a second, each from one peer; when ffprobe then reads
// the index, it is not waiting on a single seeder.
func TestReadaheadSpreadOverPeers(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	for id := PeerID(1); id <= 4; id++ {
		seed(p, id)
		train(p, id, 2e6, 10*time.Millisecond)
	}
	p.AddReader(ReaderOptions{Start: 0, End: 64 << 20, Media: true}, t0)
	perPiece := map[int]map[PeerID]int{}
	for id := PeerID(1); id <= 4; id++ {
		for _, q := range p.Next(id, t0, 256) {
			if perPiece[q.Piece] == nil {
				perPiece[q.Piece] = map[PeerID]int{}
			}
			perPiece[q.Piece][id]++
		}
	}
	for _, piece := range []int{0, 63} {
		if len(perPiece[piece]) != 4 {
			t.Fatalf("piece %d asked of peers %v, want all four (all: %v)", piece, perPiece[piece], perPiece)
		}
	}
}
