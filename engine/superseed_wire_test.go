package engine

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// wireLeecher is a raw peer that dials a client and reads what it says.
type wireLeecher struct {
	t   *testing.T
	nc  net.Conn
	dec *peer.Decoder
}

func dialWire(t *testing.T, c *Client, ih [20]byte, local string) *wireLeecher {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", c.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var rsv peer.Reserved
	rsv.SetFast()
	if err := peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: ih, PeerID: peer.NewPeerID()}); err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := peer.ReadHandshake(nc); err != nil {
		t.Fatal(err)
	}
	w := &wireLeecher{t: t, nc: nc, dec: peer.NewDecoder(nc, 1<<20)}
	w.send(peer.Message{Type: peer.HaveNone})
	return w
}

func (w *wireLeecher) send(m peer.Message) {
	w.t.Helper()
	if _, err := w.nc.Write(peer.AppendMessage(nil, &m)); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message of one of the types asked for, skipping
// others; ok false when none comes within d.
func (w *wireLeecher) next(d time.Duration, types ...peer.MessageType) (peer.Message, bool) {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(d))
	for {
		var m peer.Message
		if err := w.dec.Decode(&m); err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return m, false
			}
			w.t.Fatalf("reading: %v", err)
		}
		if m.KeepAlive {
			continue
		}
		for _, ty := range types {
			if m.Type == ty {
				return m, true
			}
		}
	}
}

// TestSuperSeedWire checks BEP 16 on the wire with two raw leechers: the
// super-seed says HAVE NONE, offers each superOffers pieces, all different,
// refuses a piece it did not offer, offers A its next piece as soon as A
// announces one of its own while some piece is still unshown (the first
// pass), and after that only once B announced A's piece.
func TestSuperSeedWire(t *testing.T) {
	const pieces = 8
	f := newFixture(t, 16<<10, []swarmtest.FileSpec{{Path: "x.bin", Size: pieces << 14}})
	c, _ := seederSuper(t, f)
	have := []peer.MessageType{peer.Have, peer.HaveAll, peer.HaveNone, peer.Bitfield}
	shown := map[uint32]string{}
	// offers reads n HAVEs sent to w, each of a piece shown to nobody yet.
	offers := func(w *wireLeecher, who string, n int) []uint32 {
		t.Helper()
		var out []uint32
		for range n {
			m, ok := w.next(5*time.Second, have...)
			if !ok || m.Type != peer.Have {
				t.Fatalf("offer to %s: %v %v, want HAVE", who, m.Type, ok)
			}
			if prev, dup := shown[m.Index]; dup {
				t.Fatalf("offer to %s of piece %d, already shown to %s", who, m.Index, prev)
			}
			shown[m.Index] = who
			out = append(out, m.Index)
		}
		return out
	}
	a := dialWire(t, c, f.mi.InfoHash, "127.0.0.1")
	if m, ok := a.next(5*time.Second, have...); !ok || m.Type != peer.HaveNone {
		t.Fatalf("first announce to A: %v %v, want HAVE NONE", m.Type, ok)
	}
	offerA := offers(a, "A", superOffers)
	b := dialWire(t, c, f.mi.InfoHash, "127.0.0.2")
	if m, ok := b.next(5*time.Second, have...); !ok || m.Type != peer.HaveNone {
		t.Fatalf("first announce to B: %v %v, want HAVE NONE", m.Type, ok)
	}
	b.send(peer.Message{Type: peer.Interested}) // wants its offers: not shown everything (superUnwanted)
	offerB := offers(b, "B", superOffers)
	// A asks for B's piece, which it was not offered: refused.
	a.send(peer.Message{Type: peer.Interested})
	a.send(peer.Message{Type: peer.Request, Index: offerB[0], Begin: 0, Length: 16 << 10})
	if m, ok := a.next(5*time.Second, peer.Reject, peer.Piece); !ok || m.Type != peer.Reject {
		t.Fatalf("A's request for a piece not offered: %v %v, want REJECT", m.Type, ok)
	}
	// The first pass: each piece A announces frees its slot at once,
	// while pieces nobody was shown remain.
	for len(shown) < pieces {
		a.send(peer.Message{Type: peer.Have, Index: offerA[0]})
		offerA = append(offerA[1:], offers(a, "A", 1)...)
	}
	// Every piece is shown: A announcing its own piece gets nothing new,
	// nobody passed it on.
	a.send(peer.Message{Type: peer.Have, Index: offerA[0]})
	if m, ok := a.next(2*time.Second, have...); ok {
		t.Fatalf("A got %v %d after announcing its own piece with every piece shown; want nothing yet", m.Type, m.Index)
	}
	// B announces A's piece: it was passed on, A gets its next, one of
	// B's pieces (every other is A's already).
	b.send(peer.Message{Type: peer.Have, Index: offerA[0]})
	next, ok := a.next(5*time.Second, have...)
	if !ok || next.Type != peer.Have || shown[next.Index] != "B" {
		t.Fatalf("A's next offer: %v %d %v; want a HAVE of one of B's pieces %v", next.Type, next.Index, ok, offerB)
	}
}

// seederSuper is seeder with TorrentOptions.SuperSeed.
func seederSuper(t *testing.T, f fixture) (*Client, *Torrent) {
	t.Helper()
	c := newClient(t, Config{Storage: storage.File{Dir: f.dir}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, SuperSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 5*time.Second)
	return c, tor
}
