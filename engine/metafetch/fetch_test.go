package metafetch

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }

// dict is a dictionary of n bytes whose pieces differ.
func dict(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/PieceSize)
	}
	return b
}

func piece(b []byte, i int) []byte { return b[i*PieceSize : min((i+1)*PieceSize, len(b))] }

// perPeerCount counts requests per peer.
func perPeerCount(reqs []Request) map[PeerID]int {
	m := map[PeerID]int{}
	for _, r := range reqs {
		m[r.Peer]++
	}
	return m
}

// deliver answers every request with the true piece (or, for the peers in
// bad, a corrupted one) until the copy is complete; it returns the copy.
func deliver(t *testing.T, f *Fetch, good []byte, bad map[PeerID]bool, now time.Time) ([]byte, []Mark) {
	t.Helper()
	for range 1000 {
		f.Next(now)
		var reqs []Request // everything in flight, asked now or before
		for i, p := range f.asked {
			if p != nil {
				reqs = append(reqs, Request{Peer: p.id, Piece: i})
			}
		}
		if len(reqs) == 0 {
			t.Fatal("nothing asked, copy incomplete")
		}
		for _, r := range reqs {
			data := slices.Clone(piece(good, r.Piece))
			if bad[r.Peer] {
				data[0] ^= 0xff
			}
			asked, complete := f.Received(r.Peer, r.Piece, len(good), data, now)
			if !asked {
				t.Fatalf("Received(%v) not asked", r)
			}
			if complete {
				return f.Assemble()
			}
		}
	}
	t.Fatal("copy never completed")
	return nil, nil
}

func TestSpreadsOverPeersOfTheMajoritySize(t *testing.T) {
	good := dict(20*PieceSize + 100) // 21 pieces
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	f.SetPeer(2, addr(2), len(good))
	f.SetPeer(3, addr(3), 999)   // outvoted
	f.SetPeer(4, addr(4), 2<<20) // over MaxSize
	f.SetPeer(5, addr(5), 0)     // no ut_metadata
	f.SetPeer(6, addr(6), len(good))
	reqs := f.Next(t0)
	got := perPeerCount(reqs)
	if len(reqs) != 3*PerPeer || got[1] != PerPeer || got[2] != PerPeer || got[6] != PerPeer {
		t.Fatalf("requests per peer %v, want %d from each of 1, 2, 6", got, PerPeer)
	}
	seen := map[int]bool{}
	for _, r := range reqs {
		if seen[r.Piece] {
			t.Fatalf("piece %d asked twice", r.Piece)
		}
		seen[r.Piece] = true
	}
	if more := f.Next(t0); len(more) != 0 {
		t.Fatalf("asked more of full peers: %v", more)
	}
	if f.Out(1) != PerPeer || f.Out(3) != 0 || f.Out(99) != 0 {
		t.Fatalf("Out = %d, %d, %d", f.Out(1), f.Out(3), f.Out(99))
	}
	buf, marks := deliver(t, f, good, nil, t0)
	if !bytes.Equal(buf, good) || len(marks) != 21 {
		t.Fatalf("assembled %d bytes, %d marks; want the dictionary and 21", len(buf), len(marks))
	}
	for _, mk := range marks {
		if mk.From != addr(1) && mk.From != addr(2) && mk.From != addr(6) {
			t.Fatalf("mark %+v from a peer never asked", mk)
		}
	}
}

func TestTimeoutAndRejectGoElsewhere(t *testing.T) {
	good := dict(2 * PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	reqs := f.Next(t0)
	if len(reqs) != 2 {
		t.Fatalf("asked %v", reqs)
	}
	f.SetPeer(2, addr(2), len(good))
	f.Expire(t0.Add(requestTimeout)) // not yet
	if f.Out(1) != 2 {
		t.Fatal("expired before requestTimeout")
	}
	now := t0.Add(requestTimeout + time.Second)
	f.Expire(now)
	if f.Out(1) != 0 {
		t.Fatal("not expired after requestTimeout")
	}
	if got := perPeerCount(f.Next(now)); got[2] != 2 || got[1] != 0 {
		t.Fatalf("after a timeout asked %v, want both pieces of peer 2", got)
	}
	// A reject sends the piece back, and peer 2 is passed over too.
	if !f.Rejected(2, 0, now) || f.Rejected(2, 0, now) || f.Rejected(1, 1, now) {
		t.Fatal("Rejected took a piece not asked of the peer")
	}
	if reqs := f.Next(now); len(reqs) != 0 {
		t.Fatalf("asked %v of skipped peers", reqs)
	}
	// A late answer from peer 1 is ignored; peer 2's is taken.
	if asked, _ := f.Received(1, 1, len(good), piece(good, 1), now); asked {
		t.Fatal("late piece taken")
	}
	if asked, complete := f.Received(2, 1, len(good), piece(good, 1), now); !asked || complete {
		t.Fatalf("Received = %v, %v", asked, complete)
	}
	later := now.Add(skipFor)
	if reqs := f.Next(later); len(reqs) != 1 || reqs[0].Piece != 0 {
		t.Fatalf("after the skip asked %v, want piece 0", reqs)
	}
}

func TestWrongTotalSizeSkipsThePeer(t *testing.T) {
	good := dict(PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	r := f.Next(t0)[0]
	if asked, complete := f.Received(1, r.Piece, len(good)+1, good, t0); !asked || complete {
		t.Fatalf("Received = %v, %v", asked, complete)
	}
	if reqs := f.Next(t0.Add(time.Second)); len(reqs) != 0 {
		t.Fatalf("asked %v of a peer that answered with another size", reqs)
	}
}

func TestRemovePeer(t *testing.T) {
	good := dict(8 * PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	f.SetPeer(2, addr(2), len(good))
	f.SetPeer(3, addr(3), 0)
	f.Next(t0)
	if f.RemovePeer(3) || f.RemovePeer(42) {
		t.Fatal("RemovePeer released pieces of a peer without any")
	}
	if !f.RemovePeer(1) {
		t.Fatal("RemovePeer released nothing")
	}
	if got := perPeerCount(f.Next(t0)); got[2] != 0 {
		t.Fatalf("peer 2 was full, yet asked %v", got)
	}
	buf, _ := deliver(t, f, good, nil, t0)
	if !bytes.Equal(buf, good) {
		t.Fatal("wrong copy")
	}
}

func TestSizeChosenAgainWhenNobodyCanBeAsked(t *testing.T) {
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), 3*PieceSize)
	f.SetPeer(2, addr(2), 3*PieceSize)
	f.SetPeer(3, addr(3), PieceSize)
	f.Next(t0)
	f.RemovePeer(1)
	f.RemovePeer(2)
	reqs := f.Next(t0)
	if len(reqs) != 1 || reqs[0].Peer != 3 {
		t.Fatalf("asked %v, want peer 3's size", reqs)
	}
}

func TestSoleSenderIsTheCulprit(t *testing.T) {
	good := dict(3 * PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	_, marks := deliver(t, f, good, map[PeerID]bool{1: true}, t0)
	f.BeginCheck()
	if reqs := f.Next(t0); reqs != nil {
		t.Fatalf("asked %v during a check", reqs)
	}
	fl := f.Failed(marks)
	if fl.Culprit != addr(1) || fl.Senders != nil || fl.Next != nil {
		t.Fatalf("Failed = %+v, want peer 1 the culprit", fl)
	}
	if liars := f.Liars(good); liars != nil {
		t.Fatalf("a sole culprit's marks kept: %v", liars)
	}
}

func TestSeveralSendersThenSingleSupplier(t *testing.T) {
	good := dict(6 * PieceSize)
	strikes := map[netip.Addr]int{}
	f := New(Config{MaxSize: 1 << 20, Strikes: func(a netip.Addr) int { return strikes[a] }})
	for i := 1; i <= 3; i++ {
		f.SetPeer(PeerID(i), addr(i), len(good))
	}
	_, marks := deliver(t, f, good, map[PeerID]bool{2: true}, t0)
	f.BeginCheck()
	fl := f.Failed(marks)
	if fl.Culprit.IsValid() || !slices.Equal(fl.Senders, []netip.Addr{addr(1), addr(2), addr(3)}) {
		t.Fatalf("Failed = %+v, want all three senders", fl)
	}
	for _, a := range fl.Senders {
		strikes[a]++
	}
	strikes[addr(1)]++ // peer 1 was in another failure too

	// Single supplier now: the first with the fewest strikes, all pieces.
	reqs := f.Next(t0)
	if got := perPeerCount(reqs); len(got) != 1 || got[2] != len(reqs) || len(reqs) != 6 {
		t.Fatalf("asked %v, want every piece of peer 2 (fewest strikes, added first)", got)
	}
	// It goes away mid-copy: its pieces are dropped, another starts over.
	f.Received(2, reqs[0].Piece, len(good), piece(good, reqs[0].Piece), t0)
	f.RemovePeer(2)
	reqs = f.Next(t0)
	if got := perPeerCount(reqs); got[3] != 6 {
		t.Fatalf("asked %v, want all 6 pieces of peer 3", got)
	}
	for _, r := range reqs {
		if _, complete := f.Received(3, r.Piece, len(good), piece(good, r.Piece), t0); complete {
			buf, _ := f.Assemble()
			if !bytes.Equal(buf, good) {
				t.Fatal("wrong copy")
			}
		}
	}
	f.BeginCheck()
	liars := f.Liars(good)
	if len(liars) == 0 {
		t.Fatal("no liar found")
	}
	for _, mk := range liars {
		if mk.From != addr(2) {
			t.Fatalf("liar %+v, want peer 2 only", mk)
		}
	}
}

func TestOfferDuringCheck(t *testing.T) {
	good := dict(PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	if !f.Offer(good) {
		t.Fatal("Offer refused while idle")
	}
	f.BeginCheck()
	other := []byte("d4:name1:xe")
	if f.Offer(other) {
		t.Fatal("Offer accepted during a check")
	}
	fl := f.Failed(nil)
	if !bytes.Equal(fl.Next, other) || fl.Culprit.IsValid() || len(fl.Senders) != 0 {
		t.Fatalf("Failed = %+v, want the offer next and nobody to blame", fl)
	}
	if f.Failed(nil).Next != nil {
		t.Fatal("the offer came back twice")
	}
}

func TestUnusableStops(t *testing.T) {
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), PieceSize)
	f.BeginCheck()
	f.Unusable()
	if reqs := f.Next(t0.Add(time.Hour)); reqs != nil {
		t.Fatalf("asked %v after Unusable", reqs)
	}
}

func TestReceivedIgnoredDuringCheck(t *testing.T) {
	good := dict(2 * PieceSize)
	f := New(Config{MaxSize: 1 << 20})
	f.SetPeer(1, addr(1), len(good))
	reqs := f.Next(t0)
	f.BeginCheck()
	if f.Out(1) != 0 {
		t.Fatal("BeginCheck kept requests in flight")
	}
	if asked, _ := f.Received(1, reqs[0].Piece, len(good), piece(good, 0), t0); asked {
		t.Fatal("a piece taken during a check")
	}
}

// TestManyPeersManyFailures runs attempts against a crowd with liars and
// checks the bounds: a peer never has more than perSupplier pieces asked,
// and every failure is blamed on a liar.
func TestManyPeersManyFailures(t *testing.T) {
	good := dict(40*PieceSize + 1)
	strikes := map[netip.Addr]int{}
	f := New(Config{MaxSize: 1 << 20, Strikes: func(a netip.Addr) int { return strikes[a] }})
	bad := map[PeerID]bool{}
	for i := 1; i <= 12; i++ {
		f.SetPeer(PeerID(i), addr(i), len(good))
		if i%4 == 0 {
			bad[PeerID(i)] = true
		}
	}
	banned := map[netip.Addr]bool{}
	for attempt := range 20 {
		buf, marks := deliver(t, f, good, bad, t0)
		for _, p := range f.order {
			if p.out > perSupplier {
				t.Fatalf("peer %d has %d out", p.id, p.out)
			}
		}
		f.BeginCheck()
		if bytes.Equal(buf, good) {
			for _, mk := range f.Liars(good) {
				if !bad[PeerID(mk.From.As4()[3])] {
					t.Fatalf("honest %v named a liar", mk.From)
				}
			}
			return
		}
		fl := f.Failed(marks)
		switch {
		case fl.Culprit.IsValid():
			id := PeerID(fl.Culprit.As4()[3])
			if !bad[id] {
				t.Fatalf("attempt %d: honest peer %d blamed", attempt, id)
			}
			banned[fl.Culprit] = true
			f.RemovePeer(id)
		default:
			for _, a := range fl.Senders {
				strikes[a]++
			}
		}
	}
	t.Fatalf("no good copy after 20 attempts; banned %v", banned)
}
