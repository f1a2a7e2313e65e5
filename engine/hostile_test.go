package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// liar is a peer that claims every piece and answers each request with
// random bytes.
type liar struct {
	*fakePeer
}

func startLiar(t *testing.T, ip string, mi *metainfo.MetaInfo) *liar {
	t.Helper()
	l := &liar{}
	l.fakePeer = listenFake(t, ip, func(nc net.Conn) { l.serve(nc, mi) })
	return l
}

func (l *liar) serve(nc net.Conn, mi *metainfo.MetaInfo) {
	if _, err := peer.ReadHandshake(nc); err != nil {
		return
	}
	var rsv peer.Reserved
	rsv.SetFast()
	if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
		return
	}
	var out []byte
	out = peer.AppendMessage(out, &peer.Message{Type: peer.HaveAll})
	out = peer.AppendMessage(out, &peer.Message{Type: peer.Unchoke})
	nc.Write(out)
	dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
	var m peer.Message
	for {
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.Type != peer.Request {
			continue
		}
		junk := make([]byte, m.Length)
		for i := range junk {
			junk[i] = byte(rand.Uint32())
		}
		out = peer.AppendMessage(out[:0], &peer.Message{Type: peer.Piece, Index: m.Index, Begin: m.Begin, Block: junk})
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// TestLyingPeer: corrupt blocks are rejected, the liar is banned, the
// download completes from the honest seeder, nothing corrupt is stored.
func TestLyingPeer(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 3 << 20}, {Path: "b.bin", Size: 100 << 10}})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 4 << 20})
	l := startLiar(t, "127.0.0.5", f.mi)
	_, tor, dir := leecher(t, f, Config{}, l.addr(), sc.Addr())
	waitComplete(t, tor, 90*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	banned := tor.Banned()
	found := false
	for _, a := range banned {
		if a == l.addr().Addr() {
			found = true
		}
		if a == sc.Addr().Addr() {
			t.Errorf("the honest seeder %v was banned", a)
		}
	}
	if !found {
		t.Errorf("liar %v not banned (banned: %v)", l.addr(), banned)
	}
}

// TestHostilePeers sends protocol violations that can do harm to a seeder
// (out-of-range indexes, over-long or malformed messages, bitfields of the
// wrong size): each gets the connection closed promptly, and the seeder
// keeps serving. What real clients send that is merely unusual is in
// quirks_test.go: it must not cost the peer.
func TestHostilePeers(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1<<20 + 5000}}) // 33 pieces: spare bits
	logs := newLogLines(t)
	sc, _ := seeder(t, f, Config{Logf: logs.logf})
	n := uint32(f.mi.Info.NumPieces())
	msg := func(m peer.Message) []byte { return peer.AppendMessage(nil, &m) }
	raw := func(length uint32, id byte, payload ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, length)
		b = append(b, id)
		return append(b, payload...)
	}
	cases := []struct {
		name string
		send []byte
	}{
		{"huge length", binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF)},
		{"length just over the bound", raw(1<<24, byte(peer.Piece))},
		{"unknown message id", raw(1, 99)},
		{"have with wrong length", raw(3, byte(peer.Have), 0, 0)},
		{"have out of range", msg(peer.Message{Type: peer.Have, Index: n})},
		{"bitfield of the wrong size", msg(peer.Message{Type: peer.Bitfield, Bitfield: make([]byte, int(n)/8+5)})},
		{"bitfield with spare bits set", msg(peer.Message{Type: peer.Bitfield, Bitfield: bytes.Repeat([]byte{0xFF}, int(n+7)/8+0)})},
		{"request out of range", msg(peer.Message{Type: peer.Request, Index: n + 3, Begin: 0, Length: 16 << 10})},
		{"request beyond the piece", msg(peer.Message{Type: peer.Request, Index: 0, Begin: 32 << 10, Length: 16 << 10})},
		{"request too large", msg(peer.Message{Type: peer.Request, Index: 0, Begin: 0, Length: 1 << 20})},
		{"piece out of range", msg(peer.Message{Type: peer.Piece, Index: n, Begin: 0, Block: make([]byte, 16)})},
		{"garbage handshake", []byte("GET / HTTP/1.1\r\n\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", sc.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.name != "garbage handshake" {
				// No reserved bits.
				if err := peer.WriteHandshake(nc, peer.Handshake{InfoHash: f.mi.InfoHash, PeerID: peer.NewPeerID()}); err != nil {
					t.Fatal(err)
				}
				if _, err := peer.ReadHandshake(nc); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, nc)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open 10 s after %s", tc.name)
			}
			if tc.name == "garbage handshake" {
				return // refused before it became a connection
			}
			// The log says why (-v).
			if _, ok := logs.wait(5*time.Second, nc.LocalAddr().String()+": ended after", "protocol violation"); !ok {
				t.Errorf("no log line says why %v was disconnected", nc.LocalAddr())
			}
		})
	}
	// The seeder still works.
	_, tor, dir := leecher(t, f, Config{}, sc.Addr())
	waitComplete(t, tor, 30*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestLyingPeerUnderReader: the pieces a reader waits for are shared among
// the peers that have them, so the liar's blocks spoil each copy; the
// pieces are fetched again from one peer each, the reader gets only the
// true bytes, the liar is banned and the honest seeder is not: swarmfs,
// libtorrent and transmission as the seeder. They are checked as their
// blocks arrive, on the loop (hashArrived), wrong bytes included.
func TestLyingPeerUnderReader(t *testing.T) {
	for _, seederKind := range []string{"swarmfs", "libtorrent", "transmission"} {
		t.Run(seederKind, func(t *testing.T) {
			f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1<<20 + 5000}})
			var honest netip.AddrPort
			switch seederKind {
			case "swarmfs":
				sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 4 << 20})
				honest = sc.Addr()
			case "libtorrent":
				tor := saveTorrent(t, f.mi)
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
				lt.AddTorrent(tor, f.dir, true)
				lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
				honest = netip.MustParseAddrPort(lt.Addr())
			case "transmission":
				tor := saveTorrent(t, f.mi)
				tr := swarmtest.StartTransmission(t, swarmtest.TROptions{IP: "127.0.0.2"})
				tr.WaitSeeding(t, tr.AddTorrent(t, tor, f.dir), 30*time.Second)
				honest = netip.MustParseAddrPort(tr.Addr())
			}
			readPastLiar(t, f, honest)
		})
	}
}

// readPastLiar reads f's file through a Reader from the honest seeder and a
// liar, and checks what TestLyingPeerUnderReader says.
func readPastLiar(t *testing.T, f fixture, honest netip.AddrPort) {
	l := startLiar(t, "127.0.0.5", f.mi)
	c := newClient(t, Config{Storage: storage.File{Dir: t.TempDir()}})
	tor, r := addReader(t, c, f.mi, TorrentOptions{Peers: []netip.AddrPort{l.addr(), honest}}, 0, false)
	want, err := os.ReadFile(filepath.Join(f.root, "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make([]byte, len(want))
	for off := 0; off < len(got); off += 48 << 10 {
		if _, err := r.ReadAt(ctx, got[off:min(off+48<<10, len(got))], int64(off)); err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the reader got bytes that differ from the file's")
	}
	if !slices.Contains(tor.Banned(), l.addr().Addr()) {
		t.Errorf("liar %v not banned (banned: %v)", l.addr(), tor.Banned())
	}
	if slices.Contains(tor.Banned(), honest.Addr()) {
		t.Errorf("the honest seeder %v was banned", honest)
	}
	arrived := make(chan int, 1)
	if !tor.post(func() { arrived <- tor.arrivedOK }) {
		t.Fatal("torrent closed")
	}
	if n := <-arrived; n == 0 {
		t.Error("no piece was verified as its blocks arrived")
	} else {
		t.Logf("%d of %d pieces verified as their blocks arrived", n, f.mi.Info.NumPieces())
	}
}
