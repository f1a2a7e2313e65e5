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
// super-seed says HAVE NONE, offers each one piece, different ones,
// refuses a piece it did not offer, and offers A its next piece only once
// B announced A's piece, not when A itself did.
func TestSuperSeedWire(t *testing.T) {
	f := newFixture(t, 16<<10, []swarmtest.FileSpec{{Path: "x.bin", Size: 8 << 14}})
	c, _ := seederSuper(t, f)
	have := []peer.MessageType{peer.Have, peer.HaveAll, peer.HaveNone, peer.Bitfield}
	a := dialWire(t, c, f.mi.InfoHash, "127.0.0.1")
	if m, ok := a.next(5*time.Second, have...); !ok || m.Type != peer.HaveNone {
		t.Fatalf("first announce to A: %v %v, want HAVE NONE", m.Type, ok)
	}
	offerA, ok := a.next(5*time.Second, have...)
	if !ok || offerA.Type != peer.Have {
		t.Fatalf("A's offer: %v %v, want HAVE", offerA.Type, ok)
	}
	b := dialWire(t, c, f.mi.InfoHash, "127.0.0.2")
	if m, ok := b.next(5*time.Second, have...); !ok || m.Type != peer.HaveNone {
		t.Fatalf("first announce to B: %v %v, want HAVE NONE", m.Type, ok)
	}
	offerB, ok := b.next(5*time.Second, have...)
	if !ok || offerB.Type != peer.Have || offerB.Index == offerA.Index {
		t.Fatalf("B's offer: %v %d (A's: %d), want another HAVE", offerB.Type, offerB.Index, offerA.Index)
	}
	// A asks for B's piece, which it was not offered: refused.
	a.send(peer.Message{Type: peer.Interested})
	a.send(peer.Message{Type: peer.Request, Index: offerB.Index, Begin: 0, Length: 16 << 10})
	if m, ok := a.next(5*time.Second, peer.Reject, peer.Piece); !ok || m.Type != peer.Reject {
		t.Fatalf("A's request for a piece not offered: %v %v, want REJECT", m.Type, ok)
	}
	// A announces its own piece: no new offer, nobody passed it on.
	a.send(peer.Message{Type: peer.Have, Index: offerA.Index})
	if m, ok := a.next(2*time.Second, have...); ok {
		t.Fatalf("A got %v %d after announcing its own piece; want nothing yet", m.Type, m.Index)
	}
	// B announces A's piece: A's piece was passed on, A gets its next.
	b.send(peer.Message{Type: peer.Have, Index: offerA.Index})
	next, ok := a.next(5*time.Second, have...)
	if !ok || next.Type != peer.Have || next.Index == offerA.Index || next.Index == offerB.Index {
		t.Fatalf("A's next offer: %v %d %v; want a HAVE of a third piece", next.Type, next.Index, ok)
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
