package picker

import (
	"slices"
	"testing"
	"time"
)

// bigCfg is 64 pieces of 1 MiB (64 blocks each).
func bigCfg(pol Policy) Config {
	return Config{NumPieces: 64, PieceLength: 1 << 20, TotalLength: 64 << 20, Background: pol}
}

// train sets a peer's measured rate (bytes/s) and latency.
func train(p *Picker, id PeerID, rate float64, lat time.Duration) {
	pe := p.peer(id)
	pe.rate, pe.nRate, pe.lat, pe.nLat = rate, 1, lat.Seconds(), 1
	p.rank.dirty = true
}

func pieces(reqs []Request) []int {
	var out []int
	for _, r := range reqs {
		if len(out) == 0 || out[len(out)-1] != r.Piece {
			out = append(out, r.Piece)
		}
	}
	return out
}

func TestPriorityOrder(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *Picker) // readers etc., at t0
		want  []int           // pieces of the first Next, in order
	}{
		{"urgent before background", func(p *Picker) {
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r, 40<<20+5, 100, t0)
		}, []int{40}},
		{"older read first", func(p *Picker) {
			r1 := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			r2 := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r2, 30<<20, 100, at(2*time.Millisecond))
			p.ReaderRead(r1, 20<<20, 100, at(time.Millisecond))
		}, []int{20, 30}},
		{"media head and tail", func(p *Picker) {
			p.AddReader(ReaderOptions{Start: 10 << 20, End: 20 << 20, Media: true}, t0)
		}, []int{10, 19}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(bigCfg(OnlyWanted))
			seed(p, 1)
			train(p, 1, 100<<20, 10*time.Millisecond)
			tc.setup(p)
			got := pieces(p.Next(1, at(10*time.Millisecond), 128))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pieces %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOnlyWantedIdle(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	p.tick(t0)
	if !p.Interesting(1) {
		t.Fatal("not interesting right after the start: the first read would wait for an unchoke")
	}
	p.tick(t0.Add(interestLinger))
	if p.Interesting(1) {
		t.Fatal("interesting with no reader")
	}
	if r := p.Next(1, t0, 10); len(r) != 0 {
		t.Fatalf("requests with no reader: %v", r)
	}
	id := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(id, 0, 4096, t0)
	if !p.Interesting(1) {
		t.Fatal("not interesting with a pending read")
	}
}

func TestUrgentSpreadAcrossPeers(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	for id := PeerID(1); id <= 4; id++ {
		seed(p, id)
		train(p, id, 1<<20, 20*time.Millisecond)
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 5<<20, 4096, t0)
	counts := map[PeerID]int{}
	for id := PeerID(1); id <= 4; id++ {
		for _, q := range p.Next(id, t0, 64) {
			if q.Piece == 5 {
				counts[id]++
			}
		}
	}
	for id := PeerID(1); id <= 4; id++ {
		if counts[id] < 8 || counts[id] > 24 {
			t.Fatalf("urgent blocks per peer %v: not spread", counts)
		}
	}
}

func TestSlowPeerGetsNoUrgent(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	seed(p, 2)
	train(p, 1, 10<<20, 10*time.Millisecond)
	train(p, 2, 20<<10, 800*time.Millisecond)
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 3<<20, 4096, t0)
	if got := p.Next(2, t0, 16); len(got) != 0 {
		t.Fatalf("slow peer got %v", pieces(got))
	}
	if got := pieces(p.Next(1, t0, 64)); !slices.Equal(got, []int{3}) {
		t.Fatalf("fast peer got %v", got)
	}
}

func TestDuplicateLateUrgentAndCancelLoser(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	train(p, 1, 4<<20, 50*time.Millisecond) // may hold a whole piece (urgentHorizon)
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 0, 4096, t0)
	first := p.Next(1, t0, 64)
	if len(first) != 64 {
		t.Fatalf("peer 1 took %d blocks", len(first))
	}
	// Peer 1 stalls; peer 2 arrives, fast, and the blocks are now late.
	seed(p, 2)
	train(p, 2, 10<<20, 10*time.Millisecond)
	late := at(3 * time.Second)
	dups := p.Next(2, late, 64)
	if len(dups) == 0 {
		t.Fatal("no duplicate of late urgent blocks")
	}
	cancels, ok := p.BlockReceived(2, dups[0], late.Add(20*time.Millisecond))
	if !ok || len(cancels) != 1 || cancels[0].Peer != 1 || cancels[0].Request != dups[0] {
		t.Fatalf("cancels %v ok %v", cancels, ok)
	}
	if _, ok := p.BlockReceived(1, dups[0], late.Add(30*time.Millisecond)); ok {
		t.Fatal("loser's copy counted as useful")
	}
}

func TestWindowGrowsOnlyWithEvidence(t *testing.T) {
	tests := []struct {
		name   string
		reads  [][2]int64 // off, n
		window bool
	}{
		{"one read", [][2]int64{{0, 128 << 10}}, false},
		{"scanner head and tail", [][2]int64{{0, 64 << 10}, {63 << 20, 64 << 10}, {0, 64 << 10}}, false},
		{"two small reads", [][2]int64{{0, 4096}, {4096, 4096}}, false},
		{"sequential", [][2]int64{{0, 128 << 10}, {128 << 10, 128 << 10}, {256 << 10, 128 << 10}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(bigCfg(OnlyWanted))
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20, Media: false}, t0)
			for i, rd := range tc.reads {
				now := at(time.Duration(i) * 100 * time.Millisecond)
				p.ReaderRead(r, rd[0], int(rd[1]), now)
				p.ReaderDone(r, rd[0], int(rd[1]))
			}
			got := p.windowOf(p.reader(r)) > 0
			if got != tc.window {
				t.Fatalf("window open %v, want %v (pins %v)", got, tc.window, p.PinnedPieces())
			}
		})
	}
}

// playFromStart adds a reader of the whole torrent that reads its first 5
// MiB in order over 2 s (a proven player with a window), and returns it.
func playFromStart(p *Picker) ReaderID {
	r := p.AddReader(ReaderOptions{Start: 0, End: p.total}, t0)
	var off int64
	for i := 0; i < 40; i++ {
		now := at(time.Duration(i) * 50 * time.Millisecond)
		p.ReaderRead(r, off, 128<<10, now)
		p.ReaderDone(r, off, 128<<10)
		off += 128 << 10
	}
	return r
}

func TestSeekReleasesWindow(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	r := playFromStart(p)
	pins := p.PinnedPieces()
	if len(pins) < 3 || pins[0] != 5 {
		t.Fatalf("window pins %v after 5 MiB sequential", pins)
	}
	reqs := p.Next(1, at(2*time.Second), 128)
	if len(reqs) == 0 {
		t.Fatal("no window requests")
	}
	p.ReaderRead(r, 50<<20, 4096, at(3*time.Second))
	// A proven reader restarts from a one-piece window at the new position.
	if got := p.PinnedPieces(); !slices.Equal(got, []int{50, 51}) {
		t.Fatalf("pins after seek %v, want [50 51]", got)
	}
	c := p.Cancels()
	if len(c) == 0 {
		t.Fatal("seek withdrew no queued window requests")
	}
	for _, q := range c {
		if q.Piece == 50 {
			t.Fatalf("cancelled the new urgent piece: %v", q)
		}
	}
	if got := pieces(p.Next(1, at(3*time.Second), 128)); len(got) == 0 || got[0] != 50 {
		t.Fatalf("after seek got %v, want 50 first", got)
	}
}

func TestWindowBudget(t *testing.T) {
	cfg := bigCfg(OnlyWanted)
	cfg.MaxWindowBytes = 8 << 20
	p := New(cfg)
	var ids []ReaderID
	for k := 0; k < 4; k++ {
		ids = append(ids, p.AddReader(ReaderOptions{Start: int64(k) * 16 << 20, End: int64(k+1) * 16 << 20}, t0))
	}
	for i := 0; i < 60; i++ {
		now := at(time.Duration(i) * 20 * time.Millisecond)
		for k, id := range ids {
			off := int64(k)*16<<20 + int64(i)*(128<<10)
			p.ReaderRead(id, off, 128<<10, now)
			p.ReaderDone(id, off, 128<<10)
		}
	}
	if n := len(p.PinnedPieces()); int64(n)*cfg.PieceLength > cfg.MaxWindowBytes+4*cfg.PieceLength {
		t.Fatalf("%d pinned pieces exceed the %d MiB budget", n, cfg.MaxWindowBytes>>20)
	}
	for _, id := range ids {
		if p.windowOf(p.reader(id)) <= 0 {
			t.Fatalf("reader %d starved of window", id)
		}
	}
}

func TestFairnessByDeadline(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	train(p, 1, 100<<20, 10*time.Millisecond)
	fast := p.AddReader(ReaderOptions{Start: 0, End: 32 << 20}, t0)
	slow := p.AddReader(ReaderOptions{Start: 32 << 20, End: 64 << 20}, t0)
	// fast reads 4 MiB/s, slow 512 KiB/s: both have windows.
	for i := 0; i < 40; i++ {
		now := at(time.Duration(i) * 50 * time.Millisecond)
		off := int64(i) * 200 << 10
		p.ReaderRead(fast, off, 200<<10, now)
		p.ReaderDone(fast, off, 200<<10)
		off = 32<<20 + int64(i)*25<<10
		p.ReaderRead(slow, off, 25<<10, now)
		p.ReaderDone(slow, off, 25<<10)
	}
	got := pieces(p.Next(1, at(2*time.Second), 512))
	if len(got) < 4 {
		t.Fatalf("pieces %v", got)
	}
	// The slow reader's next piece is due before the fast reader's far pieces.
	si := slices.Index(got, 32)
	if si < 0 || si > 3 {
		t.Fatalf("slow reader's next piece 32 at %d in %v", si, got)
	}
}

func TestPartialBeforeNewAndRarest(t *testing.T) {
	p := New(Config{NumPieces: 16, PieceLength: 64 << 10, Background: All})
	p.AddPeer(1)
	p.AddPeer(2)
	p.AddPeer(3)
	for i := 0; i < 16; i++ {
		p.PeerHave(1, i)
		if i != 9 {
			p.PeerHave(2, i)
		}
	}
	p.PeerChoked(1, false)
	p.PeerChoked(3, false)
	got := p.Next(1, t0, 2)
	if len(got) != 2 || got[0].Piece != 9 {
		t.Fatalf("rarest piece 9 not first: %v", got)
	}
	p.PeerHaveAll(3)
	if got := pieces(p.Next(3, t0, 2)); !slices.Equal(got, []int{9}) {
		t.Fatalf("partial piece 9 not continued: %v", got)
	}
}

func TestChokeAndAllowedFast(t *testing.T) {
	p := New(bigCfg(All))
	seed(p, 1)
	p.PeerAllowedFast(1, 7)
	reqs := p.Next(1, t0, 8)
	p.PeerChoked(1, true)
	if p.Outstanding(1) != 0 {
		t.Fatalf("%d outstanding after choke", p.Outstanding(1))
	}
	seed(p, 2)
	if got := pieces(p.Next(2, t0, 8)); !slices.Equal(got, pieces(reqs)) {
		t.Fatalf("choked peer's blocks not requestable: %v vs %v", got, pieces(reqs))
	}
	if got := pieces(p.Next(1, t0, 4)); !slices.Equal(got, []int{7}) {
		t.Fatalf("choked peer with allowed fast 7 got %v", got)
	}
}

func TestRemovePeerReturnsRequests(t *testing.T) {
	p := New(bigCfg(All))
	seed(p, 1)
	reqs := p.Next(1, t0, 8)
	p.RemovePeer(1)
	seed(p, 2)
	if got := p.Next(2, t0, 8); !slices.Equal(got, reqs) {
		t.Fatalf("got %v want %v", got, reqs)
	}
	if _, ok := p.BlockReceived(1, reqs[0], t0); ok {
		t.Fatal("block from removed peer useful")
	}
}

func TestTimeouts(t *testing.T) {
	p := New(bigCfg(All))
	seed(p, 1)
	train(p, 1, 1<<20, 20*time.Millisecond)
	reqs := p.Next(1, t0, 4)
	if got := p.Timeouts(at(time.Second)); len(got) != 0 {
		t.Fatalf("timed out early: %v", got)
	}
	got := p.Timeouts(at(30 * time.Second))
	if len(got) != 4 || p.Outstanding(1) != 0 {
		t.Fatalf("timeouts %v, outstanding %d", got, p.Outstanding(1))
	}
	// A late copy still counts if nobody else delivered it.
	if _, ok := p.BlockReceived(1, reqs[0], at(31*time.Second)); !ok {
		t.Fatal("late block after timeout discarded")
	}
}

func TestPieceFailedAndLost(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1)
	reqs := p.Next(1, t0, 4)
	for _, r := range reqs {
		p.BlockReceived(1, r, t0)
	}
	p.PieceFailed(reqs[0].Piece)
	again := p.Next(1, t0, 4)
	if !slices.Equal(again, reqs) {
		t.Fatalf("after failure got %v, want %v", again, reqs)
	}
	for _, r := range again {
		p.BlockReceived(1, r, t0)
	}
	p.SetHave(reqs[0].Piece)
	p.Lost(reqs[0].Piece)
	if p.Have(reqs[0].Piece) || p.NumHave() != 0 {
		t.Fatal("lost piece still had")
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: p.total}, t0)
	p.ReaderRead(r, int64(reqs[0].Piece)*p.pieceLen, 10, t0)
	if got := pieces(p.Next(1, t0, 4)); !slices.Equal(got, []int{reqs[0].Piece}) {
		t.Fatalf("lost piece not urgent again: %v", got)
	}
}

func TestEndgame(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1)
	seed(p, 2)
	train(p, 1, 10<<20, 10*time.Millisecond)
	var all []Request
	for {
		r := p.Next(1, t0, 100)
		if len(r) == 0 {
			break
		}
		all = append(all, r...)
	}
	// Peer 1 stalls: its blocks are late, so peer 2 duplicates them.
	got := p.Next(2, at(5*time.Second), 100)
	if len(got) == 0 || len(all) != 30 {
		t.Fatalf("no endgame duplicates (%d blocks first)", len(all))
	}
	cancels, ok := p.BlockReceived(2, got[0], t0)
	if !ok || len(cancels) != 1 || cancels[0].Peer != 1 {
		t.Fatalf("endgame cancels %v", cancels)
	}
}

func TestBitfieldOrder(t *testing.T) {
	p := New(Config{NumPieces: 10, PieceLength: 16 << 10})
	p.AddPeer(1)
	p.PeerBitfield(1, []byte{0x80, 0x40})
	pe := p.peer(1)
	for i := 0; i < 10; i++ {
		if want := i == 0 || i == 9; pe.hasPiece(i) != want {
			t.Fatalf("piece %d: has %v", i, pe.hasPiece(i))
		}
	}
	if p.avail[0] != 1 || p.avail[1] != 0 || p.avail[9] != 1 {
		t.Fatalf("avail %v", p.avail)
	}
	p.PeerBitfield(1, []byte{0xff, 0xc0})
	if !pe.seed || p.avail[0] != 0 {
		t.Fatal("full bitfield not treated as seed")
	}
}

func TestOutstandingBounded(t *testing.T) {
	p := New(Config{NumPieces: 4096, PieceLength: 1 << 20, Background: All})
	seed(p, 1)
	train(p, 1, 1<<30, time.Millisecond)
	p.Next(1, t0, 1<<20)
	p.Next(1, t0, 1<<20)
	if n := p.Outstanding(1); n > maxOutPerPeer {
		t.Fatalf("%d outstanding", n)
	}
}

// TestUrgentNobodyHasDoesNotBlock: a read waits on a piece no peer has
// (a super-seeding origin has not offered it yet); a peer that has other
// wanted pieces must still be asked for them, or a fleet of mounts
// reading every file stalls against a super-seed.
func TestUrgentNobodyHasDoesNotBlock(t *testing.T) {
	p := New(bigCfg(All))
	p.AddPeer(1)
	p.PeerHave(1, 7)
	p.PeerChoked(1, false)
	train(p, 1, 10<<20, 10*time.Millisecond)
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 0, 4096, t0)
	if got := pieces(p.Next(1, at(time.Millisecond), 64)); !slices.Equal(got, []int{7}) {
		t.Fatalf("peer with piece 7 while a read waits on piece 0 nobody has: got pieces %v, want [7]", got)
	}
}

// TestSeedLeavesPiecesToPartners: the missing pieces are 3, 4 and 5, and
// a partial peer has them. A seed (in a fleet, the origin) is asked for
// none of them while that peer is about as fast and has room in its
// queue, so the origin's upload goes to pieces nobody else has; it is
// asked when the partial peer is far slower or its queue is full.
func TestSeedLeavesPiecesToPartners(t *testing.T) {
	tests := []struct {
		name        string
		partnerRate float64
		fillPartner bool // the partial peer's queue is full first
		wantSeed    bool // the seed is asked for something
	}{
		{"comparable partner with room", 128 << 10, false, false},
		{"slow partner", 16 << 10, false, true},
		{"busy partner", 128 << 10, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(bigCfg(All))
			for i := range 64 {
				if i < 3 || i > 5 {
					p.SetHave(i)
				}
			}
			seed(p, 1)
			train(p, 1, 160<<10, 10*time.Millisecond)
			p.AddPeer(2)
			for i := 3; i <= 5; i++ {
				p.PeerHave(2, i)
			}
			p.PeerChoked(2, false)
			train(p, 2, tc.partnerRate, 10*time.Millisecond)
			if tc.fillPartner {
				if got := p.Next(2, t0, 64); len(got) == 0 {
					t.Fatal("the partial peer was asked for nothing")
				}
			}
			got := p.Next(1, at(time.Millisecond), 64)
			if (len(got) > 0) != tc.wantSeed {
				t.Fatalf("the seed was asked for pieces %v; want some: %v", pieces(got), tc.wantSeed)
			}
		})
	}
}

// TestSparseTieBreakSeeded: a peer with few pieces (scanned through its
// own bitfield) is asked for the rarest of them with ties broken by the
// picker's seeded order, not by index: hosts of a fleet asking one peer
// must not all ask for the same piece.
func TestSparseTieBreakSeeded(t *testing.T) {
	first := map[int]bool{}
	for s := uint64(1); s <= 8; s++ {
		cfg := bigCfg(All)
		cfg.Seed = s
		p := New(cfg)
		p.AddPeer(1)
		for i := 10; i < 40; i++ {
			p.PeerHave(1, i)
		}
		p.PeerChoked(1, false)
		got := pieces(p.Next(1, t0, 1))
		if len(got) != 1 {
			t.Fatalf("seed %d: pieces %v, want one", s, got)
		}
		first[got[0]] = true
	}
	if len(first) < 4 {
		t.Fatalf("8 differently seeded pickers asked for only %d distinct pieces %v; want at least 4", len(first), first)
	}
}

// TestQuickSeeksReleaseWindows: a seek right after another (a user
// scrubbing) withdraws the requests for the window it leaves, however
// soon after the peer's last preemption: before, preemptions of a peer
// were at least preemptGap apart, so the second window's requests stayed
// queued ahead of the third position's.
func TestQuickSeeksReleaseWindows(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	train(p, 1, 2<<20, 50*time.Millisecond) // keeps 7 blocks on a preemption
	r := playFromStart(p)
	p.Next(1, at(2*time.Second), 128)
	now := at(3 * time.Second)
	positions := []int64{50 << 20, 40 << 20, 20 << 20}
	for i, pos := range positions {
		p.Cancels()
		p.ReaderRead(r, pos, 4096, now)
		p.ReaderDone(r, pos, 4096)
		if i > 0 {
			left := map[int]bool{}
			for _, q := range p.Cancels() {
				left[q.Piece] = true
			}
			if prev := int(positions[i-1] >> 20); !left[prev+1] && !left[prev] {
				t.Fatalf("seek %d to %d MiB withdrew %v, nothing of the window at %d MiB it left", i, pos>>20, left, prev)
			}
		}
		// The reader plays on at the new position for a moment, so its
		// window grows and is asked for.
		for k := range int64(8) {
			p.ReaderRead(r, pos+k*(128<<10), 128<<10, now)
			p.ReaderDone(r, pos+k*(128<<10), 128<<10)
		}
		if len(p.Next(1, now, 128)) == 0 {
			t.Fatalf("nothing asked at %d MiB", pos>>20)
		}
		now = now.Add(100 * time.Millisecond)
	}
}
