package picker

import (
	"slices"
	"testing"
	"time"
)

// TestScannerDoesNotDisturbPlayer: a library scan opens many media files,
// reads a little of each head and tail and closes them, while a player
// streams another file. The scan opens no window, its head/tail pins stay
// within their quarter of the budget, and the player's pins survive.
func TestScannerDoesNotDisturbPlayer(t *testing.T) {
	const files = 200
	cfg := Config{NumPieces: 4096, PieceLength: 256 << 10, Background: OnlyWanted, MaxWindowBytes: 64 << 20}
	p := New(cfg)
	seed(p, 1)
	fileLen := int64(4 << 20) // 16 pieces each
	player := p.AddReader(ReaderOptions{Start: 0, End: 256 << 20, Media: true}, t0)
	var off int64
	now := t0
	for i := 0; i < 80; i++ {
		now = now.Add(50 * time.Millisecond)
		p.ReaderRead(player, off, 128<<10, now)
		p.ReaderDone(player, off, 128<<10)
		off += 128 << 10
	}
	playerPins := p.PinnedPieces()
	if len(playerPins) < 8 {
		t.Fatalf("player pins %v", playerPins)
	}
	maxPins := 0
	for f := 0; f < files; f++ {
		start := 256<<20 + int64(f)*fileLen
		id := p.AddReader(ReaderOptions{Start: start, End: start + fileLen, Media: true}, now)
		for _, rd := range [][2]int64{{start, 64 << 10}, {start + fileLen - 64<<10, 64 << 10}, {start + 64<<10, 32 << 10}} {
			p.ReaderRead(id, rd[0], int(rd[1]), now)
			if w := p.windowOf(p.reader(id)); w != 0 {
				t.Fatalf("scanner %d opened a %d byte window", f, w)
			}
			p.ReaderDone(id, rd[0], int(rd[1]))
		}
		maxPins = max(maxPins, len(p.PinnedPieces()))
		if f%2 == 0 { // half the handles stay open a while
			p.RemoveReader(id)
		}
	}
	if p.headTailUsed > cfg.MaxWindowBytes/4 {
		t.Fatalf("head/tail pins %d bytes exceed a quarter of the budget", p.headTailUsed)
	}
	for _, pc := range playerPins {
		if !p.Pinned(pc) {
			t.Fatalf("player's piece %d unpinned by the scan", pc)
		}
	}
	if int64(maxPins)*cfg.PieceLength > cfg.MaxWindowBytes+int64(len(playerPins))*cfg.PieceLength {
		t.Fatalf("%d pins during the scan", maxPins)
	}
}

func TestInterestingFollowsPolicyAndSelection(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		setup  func(p *Picker)
		want   bool
	}{
		{"all, peer has wanted piece", All, func(p *Picker) { p.PeerHave(1, 3) }, true},
		{"all, piece deselected", All, func(p *Picker) { p.PeerHave(1, 3); p.SetWanted(3<<20, 4<<20, false) }, false},
		{"all, piece verified", All, func(p *Picker) { p.PeerHave(1, 3); p.SetHave(3) }, false},
		{"all, piece lost again", All, func(p *Picker) { p.PeerHave(1, 3); p.SetHave(3); p.Lost(3) }, true},
		{"only wanted, just started", OnlyWanted, func(p *Picker) { p.PeerHave(1, 3); p.tick(t0) }, true},
		{"only wanted, no reader", OnlyWanted, func(p *Picker) { p.PeerHave(1, 3); p.tick(t0); p.tick(t0.Add(interestLinger)) }, false},
		{"only wanted, reader on it", OnlyWanted, func(p *Picker) {
			p.PeerHave(1, 3)
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r, 3<<20, 10, t0)
		}, true},
		{"only wanted, reader elsewhere", OnlyWanted, func(p *Picker) {
			p.PeerHave(1, 3)
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r, 9<<20, 10, t0)
			p.tick(t0.Add(interestLinger))
		}, false},
		// A remote peer chokes us when we lose interest and unchokes us a
		// round trip after we regain it: the next seek must not wait.
		{"only wanted, reader elsewhere, lingering", OnlyWanted, func(p *Picker) {
			p.PeerHave(1, 3)
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r, 9<<20, 10, t0)
			p.tick(t0.Add(interestLinger - time.Second))
		}, true},
		{"only wanted, read done, lingering", OnlyWanted, func(p *Picker) {
			p.PeerHave(1, 3)
			p.PeerHave(1, 9)
			r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
			p.ReaderRead(r, 9<<20, 10, t0)
			p.SetHave(9)
			p.ReaderDone(r, 9<<20, 10)
			p.tick(t0.Add(time.Second))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(bigCfg(tc.policy))
			p.AddPeer(1)
			tc.setup(p)
			if got := p.Interesting(1); got != tc.want {
				t.Fatalf("Interesting = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPinsAndDeadline(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	if _, ok := p.EarliestDeadline(); ok {
		t.Fatal("deadline with no reader")
	}
	v := p.PinVersion()
	r := p.AddReader(ReaderOptions{Start: 0, End: 64 << 20}, t0)
	p.ReaderRead(r, 7<<20, 100, at(time.Second))
	if p.PinVersion() == v || !p.Pinned(7) || p.Pinned(8) {
		t.Fatalf("pins %v version %d", p.PinnedPieces(), p.PinVersion())
	}
	if d, ok := p.EarliestDeadline(); !ok || !d.Equal(at(time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	p.ReaderDone(r, 7<<20, 100)
	p.RemoveReader(r)
	if len(p.PinnedPieces()) != 0 {
		t.Fatalf("pins after close %v", p.PinnedPieces())
	}
}

func TestChokedBlocksStillAccepted(t *testing.T) {
	p := New(bigCfg(All))
	seed(p, 1)
	reqs := p.Next(1, t0, 4)
	p.PeerChoked(1, true)
	// The peer had sent one block before its CHOKE: keep it.
	if _, ok := p.BlockReceived(1, reqs[0], t0); !ok {
		t.Fatal("block sent before the choke discarded")
	}
	seed(p, 2)
	got := p.Next(2, t0, 8)
	if slices.Contains(got, reqs[0]) || !slices.Contains(got, reqs[1]) {
		t.Fatalf("after choke got %v", got)
	}
}

// TestSeekBeforeFrontier: a cp blocked at the download frontier and a
// player that just seeked both wait; the seek is served first.
func TestSeekBeforeFrontier(t *testing.T) {
	p := New(bigCfg(OnlyWanted))
	seed(p, 1)
	train(p, 1, 100<<20, 10*time.Millisecond)
	cp := p.AddReader(ReaderOptions{Start: 0, End: 32 << 20}, t0)
	for i := 0; i < 20; i++ {
		off := int64(i) * 128 << 10
		p.ReaderRead(cp, off, 128<<10, at(time.Duration(i)*time.Millisecond))
		if i < 19 {
			p.ReaderDone(cp, off, 128<<10)
		}
	}
	player := p.AddReader(ReaderOptions{Start: 32 << 20, End: 64 << 20, Media: false}, at(time.Second))
	p.ReaderRead(player, 40<<20, 128<<10, at(time.Second))
	if got := reqPieces(p.Next(1, at(time.Second), 200)); len(got) == 0 || got[0] != 40 {
		t.Fatalf("pieces %v: the seek's piece 40 is not first", got)
	}
}

func TestConfigRepair(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		n              int
		last, blk, max int64
	}{
		{"derive count", Config{PieceLength: 1 << 20, TotalLength: 5<<20 + 1}, 6, 1, DefaultBlockSize, DefaultMaxWindowBytes},
		{"derive total", Config{NumPieces: 3, PieceLength: 1 << 20}, 3, 1 << 20, DefaultBlockSize, DefaultMaxWindowBytes},
		{"tiny pieces", Config{NumPieces: 4, PieceLength: 4096, MaxWindowBytes: 1 << 20}, 4, 4096, 4096, 1 << 20},
		{"no piece length", Config{NumPieces: 4, TotalLength: 100000}, 4, 100000 - 3*25000, DefaultBlockSize, DefaultMaxWindowBytes},
		{"empty", Config{}, 0, 0, DefaultBlockSize, DefaultMaxWindowBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(tc.cfg)
			if p.n != tc.n || p.blk != tc.blk || p.maxWindow != tc.max {
				t.Fatalf("n %d blk %d max %d", p.n, p.blk, p.maxWindow)
			}
			if p.n > 0 && p.pieceSize(p.n-1) != tc.last {
				t.Fatalf("last piece %d bytes", p.pieceSize(p.n-1))
			}
			seed(p, 1)
			p.Next(1, t0, 10) // must not panic, even empty
			r := p.AddReader(ReaderOptions{Start: 0, End: p.total}, t0)
			p.ReaderRead(r, 0, 10, t0)
			p.Next(1, t0, 10)
		})
	}
}

// TestHeadTail: a media reader is told the pieces of the head and tail it
// was granted; a plain reader, one past the head/tail share of the budget
// and a removed one get none.
// TestInOrderHeadTail: a source set in order (a web seed that ignores
// Range, which reads a file from its start or on from where its stream
// stands) is given a media reader's head, but its tail only when the
// stream stands near it or a read asks for it; other peers get the tail.
func TestInOrderHeadTail(t *testing.T) {
	const pl = 256 << 10
	cfg := Config{NumPieces: 400, PieceLength: pl, Background: OnlyWanted, MaxWindowBytes: 16 << 20}
	// Sources fast enough to queue a head and a tail at once.
	fastSeed := func(p *Picker, id PeerID) {
		seed(p, id)
		p.SetPeerStats(id, 100e6, time.Millisecond)
	}
	// A 10 MiB file at piece 4 plus 1000 bytes: head 4..8, tail 40..44.
	start := int64(4*pl + 1000)
	media := ReaderOptions{Start: start, End: start + 10<<20, Media: true}
	head, tail := []int{4, 5, 6, 7, 8}, []int{40, 41, 42, 43, 44}

	p := New(cfg)
	fastSeed(p, 1)
	p.SetPeerInOrder(1, 0)
	p.AddReader(media, t0)
	if got := reqPieces(p.Next(1, t0, 1000)); !slices.Equal(got, head) {
		t.Fatalf("in-order source, stream at the start: pieces %v, want the head %v", got, head)
	}
	fastSeed(p, 2)
	if got := reqPieces(p.Next(2, t0, 1000)); !slices.Equal(got, tail) {
		t.Fatalf("another peer: pieces %v, want the tail %v", got, tail)
	}

	// A read at the tail: its piece goes to the in-order source too.
	p = New(cfg)
	fastSeed(p, 1)
	p.SetPeerInOrder(1, 0)
	r := p.AddReader(media, t0)
	p.Next(1, t0, 1000)
	p.ReaderRead(r, 42*pl, 1000, t0)
	if got := reqPieces(p.Next(1, t0, 1000)); !slices.Contains(got, 42) {
		t.Fatalf("a read at piece 42: pieces %v, want 42 among them", got)
	}

	// The stream stands just before the tail: within reach, and so is the
	// head from the file's start, but for its first piece, which begins
	// in the file before (whose end such a source sends last).
	p = New(cfg)
	fastSeed(p, 1)
	p.SetPeerInOrder(1, 38)
	p.AddReader(media, t0)
	if got, want := reqPieces(p.Next(1, t0, 1000)), append(head[1:], tail...); !slices.Equal(got, want) {
		t.Fatalf("stream at piece 38: pieces %v, want %v", got, want)
	}
	// Rarest first again: both.
	p = New(cfg)
	fastSeed(p, 1)
	p.SetPeerInOrder(1, 0)
	p.SetPeerInOrder(1, -1)
	p.AddReader(media, t0)
	if got := reqPieces(p.Next(1, t0, 1000)); !slices.Equal(got, append(head, tail...)) {
		t.Fatalf("not in order: pieces %v, want head and tail", got)
	}
}

func TestHeadTail(t *testing.T) {
	const pl = 256 << 10
	p := New(Config{NumPieces: 400, PieceLength: pl, Background: OnlyWanted, MaxWindowBytes: 16 << 20})
	seed(p, 1)
	// A 10 MiB file at piece 4 plus 1000 bytes: its first MiB spans
	// pieces 4..8, its last MiB 40..44.
	start := int64(4*pl + 1000)
	media := p.AddReader(ReaderOptions{Start: start, End: start + 10<<20, Media: true}, t0)
	want := []int{4, 5, 6, 7, 8, 40, 41, 42, 43, 44}
	if got := p.HeadTail(media); !slices.Equal(got, want) {
		t.Errorf("media reader: head and tail %v, want %v", got, want)
	}
	// A short file: head and tail are the whole file, each piece once.
	short := p.AddReader(ReaderOptions{Start: 100 * pl, End: 100*pl + 3*pl/2, Media: true}, t0)
	if got := p.HeadTail(short); !slices.Equal(got, []int{100, 101}) {
		t.Errorf("short media file: %v, want [100 101]", got)
	}
	if got := p.HeadTail(p.AddReader(ReaderOptions{Start: 0, End: 10 << 20}, t0)); got != nil {
		t.Errorf("plain reader: %v, want none", got)
	}
	// The share is a quarter of 16 MiB: 4 MiB, of which 3 MiB are taken
	// (10 and 2 pieces).
	if got := p.HeadTail(p.AddReader(ReaderOptions{Start: 200 * pl, End: 300 * pl, Media: true}, t0)); got != nil {
		t.Errorf("past the share: %v, want none", got)
	}
	p.RemoveReader(media)
	if got := p.HeadTail(media); got != nil {
		t.Errorf("removed reader: %v, want none", got)
	}
	if got := p.HeadTail(p.AddReader(ReaderOptions{Start: 200 * pl, End: 300 * pl, Media: true}, t0)); len(got) != 8 {
		t.Errorf("after a removal freed the share: %v, want 8 pieces", got)
	}
}
