package utp

import (
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// ltSeeder starts a uTP-only libtorrent seeder of one file and returns
// it with the file and the torrent's shape.
func ltSeeder(t testing.TB, size int64, pieceLen int) (*swarmtest.LT, swarmtest.FileSpec, swarmtest.TorrentInfo) {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent")
	dir := t.TempDir()
	f := swarmtest.FileSpec{Path: "data.bin", Size: size}
	swarmtest.WriteFiles(t, dir, []swarmtest.FileSpec{f})
	ti := swarmtest.MakeTorrentInfo(t, filepath.Join(dir, f.Path), nil, pieceLen)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", UTPOnly: true, NoTrackers: true, SeedMode: true})
	lt.AddTorrent(ti.Path, dir, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)
	return lt, f, ti
}

// dialLT connects to a libtorrent peer at addr and exchanges plain
// handshakes. A just-added torrent may make libtorrent hang up on the
// first connection (it closes with a FIN before its handshake): that is
// retried, as any client would.
func dialLT(t testing.TB, s *Socket, addr string, ih [20]byte) *Conn {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := s.Dial(ctx, addr)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := peer.WriteHandshake(c, peer.Handshake{InfoHash: ih, PeerID: peer.NewPeerID()}); err != nil {
			t.Fatal(err)
		}
		h, err := peer.ReadHandshake(c)
		if errors.Is(err, io.EOF) && attempt < 4 {
			t.Logf("attempt %d: libtorrent hung up before its handshake; again", attempt)
			c.Close()
			time.Sleep(300 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("libtorrent's handshake: %v", err)
		}
		if h.InfoHash != ih {
			t.Fatalf("handshake for %x, want %x", h.InfoHash, ih)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// download fetches every piece of the torrent over c (after the
// handshakes) with plain BEP 3 messages, checks each piece's SHA-1
// against the file's, and returns the bytes received.
func download(t testing.TB, c net.Conn, f swarmtest.FileSpec, ti swarmtest.TorrentInfo) int64 {
	t.Helper()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(peer.AppendMessage(nil, &peer.Message{Type: peer.Interested})); err != nil {
		t.Fatal(err)
	}
	dec := peer.NewDecoder(c, 1<<20)
	var m peer.Message
	for m.Type != peer.Unchoke || m.KeepAlive {
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("waiting for unchoke: %v", err)
		}
	}
	const block = 16 << 10
	type req struct{ index, begin, length uint32 }
	var reqs []req
	for off := int64(0); off < ti.TotalSize; off += block {
		reqs = append(reqs, req{uint32(off / int64(ti.PieceLength)), uint32(off % int64(ti.PieceLength)), uint32(min(block, ti.TotalSize-off))})
	}
	pieces := make([][]byte, ti.NumPieces)
	for i := range pieces {
		pieces[i] = make([]byte, min(int64(ti.PieceLength), ti.TotalSize-int64(i)*int64(ti.PieceLength)))
	}
	// Keep 64 requests outstanding, as a real downloader would.
	sent, got := 0, 0
	var out []byte
	for got < len(reqs) {
		out = out[:0]
		for sent < len(reqs) && sent-got < 64 {
			r := reqs[sent]
			out = peer.AppendMessage(out, &peer.Message{Type: peer.Request, Index: r.index, Begin: r.begin, Length: r.length})
			sent++
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("after %d of %d blocks: %v", got, len(reqs), err)
		}
		if m.KeepAlive || m.Type != peer.Piece {
			continue
		}
		if int(m.Index) >= len(pieces) || int(m.Begin)+len(m.Block) > len(pieces[m.Index]) {
			t.Fatalf("unexpected block %v", &m)
		}
		copy(pieces[m.Index][m.Begin:], m.Block)
		got++
	}
	var total int64
	for i, p := range pieces {
		want := make([]byte, len(p))
		f.ReadAt(want, int64(i)*int64(ti.PieceLength))
		if sha1.Sum(p) != sha1.Sum(want) {
			t.Fatalf("piece %d: SHA-1 mismatch", i)
		}
		total += int64(len(p))
	}
	return total
}

// TestLibtorrentSeeder dials a uTP-only libtorrent seeder, downloads the
// torrent with BEP 3 messages and checks every piece; libtorrent must list
// the connection as uTP.
func TestLibtorrentSeeder(t *testing.T) {
	lt, f, ti := ltSeeder(t, 3<<20+5000, 256<<10)
	s := testSocket(t, Config{})
	c := dialLT(t, s, lt.Addr(), ti.InfoHash)
	start := time.Now()
	n := download(t, c, f, ti)
	t.Logf("downloaded %d bytes from libtorrent in %v (%+v)", n, time.Since(start), c.Stats())
	st := lt.Status(ti.InfoHash)
	if len(st.UTPPeers) != 1 || st.UTPPeers[0] != s.Addr().String() {
		t.Fatalf("libtorrent's uTP peers %v, want [%s] (all peers %v)", st.UTPPeers, s.Addr(), st.Peers)
	}
}

// TestLibtorrentSeederLossy is TestLibtorrentSeeder over 20 ms each way
// and 1% loss.
func TestLibtorrentSeederLossy(t *testing.T) {
	lt, f, ti := ltSeeder(t, 1<<20, 256<<10)
	s := testSocket(t, Config{})
	link := func(seed uint64) utptest.Link {
		return utptest.Link{Delay: 20 * time.Millisecond, Loss: 0.01, Seed: seed}
	}
	r := relay(t, lt.Addr(), link(3), link(4))
	c := dialLT(t, s, r.Addr(), ti.InfoHash)
	start := time.Now()
	n := download(t, c, f, ti)
	up, down := r.Stats()
	t.Logf("downloaded %d bytes in %v over the lossy link (relay up %+v down %+v; %+v)", n, time.Since(start), up, down, c.Stats())
}

// TestLibtorrentDialsUs: libtorrent connects to our listener over uTP
// and we read its handshake.
func TestLibtorrentDialsUs(t *testing.T) {
	lt, _, ti := ltSeeder(t, 64<<10, 16<<10)
	s := testSocket(t, Config{})
	lt.ConnectPeer(ti.InfoHash, s.Addr().String())
	// libtorrent tries an encrypted handshake (MSE) first and falls back
	// to plaintext on a new connection when we hang up: accept until the
	// plaintext one comes.
	var c *Conn
	var h peer.Handshake
	for attempt := 0; ; attempt++ {
		if attempt == 4 {
			t.Fatal("no plaintext handshake from libtorrent")
		}
		c = acceptTimeout(t, s, 20*time.Second)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var err error
		h, err = peer.ReadHandshake(c)
		if err == nil {
			break
		}
		t.Logf("connection %d: %v", attempt, err)
		c.Close()
	}
	defer c.Close()
	if h.InfoHash != ti.InfoHash {
		t.Fatalf("handshake for %x, want %x", h.InfoHash, ti.InfoHash)
	}
	if err := peer.WriteHandshake(c, peer.Handshake{InfoHash: ti.InfoHash, PeerID: peer.NewPeerID()}); err != nil {
		t.Fatal(err)
	}
	// libtorrent follows with its bitfield: the stream works both ways.
	var m peer.Message
	dec := peer.NewDecoder(c, 1<<20)
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("after the handshake: %v", err)
	}
	t.Logf("libtorrent sent %v", &m)
	want := c.RemoteAddr().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := lt.Status(ti.InfoHash)
		if slices.Contains(st.UTPPeers, s.Addr().String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent lists uTP peers %v (all %v), want ours (%s, we see it at %s)", st.UTPPeers, st.Peers, s.Addr(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// acceptTimeout accepts one connection or fails the test.
func acceptTimeout(t testing.TB, s *Socket, d time.Duration) *Conn {
	t.Helper()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := s.AcceptUTP()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.c
	case <-time.After(d):
		s.Close()
		<-ch
		t.Fatal("no incoming uTP connection")
		return nil
	}
}
