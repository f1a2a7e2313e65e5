package engine

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// slowWrites is a provider whose stores take writeDelay to write a piece,
// so that some writes are in flight when the client closes.
type slowWrites struct {
	p        storage.Provider
	delay    time.Duration
	inFlight atomic.Int32
	written  atomic.Int32
}

func (s *slowWrites) Open(ih metainfo.Hash, info *metainfo.Info) (storage.Torrent, []int, error) {
	st, have, err := s.p.Open(ih, info)
	if err != nil {
		return nil, nil, err
	}
	return &slowStore{Torrent: st, w: s}, have, nil
}

type slowStore struct {
	storage.Torrent
	w *slowWrites
}

func (s *slowStore) WritePiece(i int, data []byte) error {
	s.w.inFlight.Add(1)
	defer s.w.inFlight.Add(-1)
	time.Sleep(s.w.delay)
	s.w.written.Add(1)
	return s.Torrent.WritePiece(i, data)
}

// TestCloseLeavesNoGoroutine: Client.Close returns only once everything it
// started has ended: with peers connected, pieces being hashed and
// written, and incoming handshakes stalled half way, no goroutine of
// either client, and no write, outlives Close.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = time.Second // Close waits for stalled handshakes this long

	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "big", Size: 16 << 20}})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	store := &slowWrites{p: &storage.Memory{}, delay: 3 * time.Second} // outlasts the handshakes
	lc := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: store})
	lt, err := lc.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{sc.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	// Strangers that send the handshake's first byte and nothing more.
	for range 3 {
		nc, err := net.Dial("tcp", lc.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Write([]byte{byte(len("BitTorrent protocol"))}); err != nil {
			t.Fatal(err)
		}
	}
	handshakes := func() int {
		lc.hsMu.Lock()
		defer lc.hsMu.Unlock()
		return lc.hsTotal
	}
	deadline := time.Now().Add(20 * time.Second)
	for lt.pub.numConns.Load() == 0 || store.inFlight.Load() == 0 || handshakes() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("never busy: %d peers, %d writes in flight, %d handshakes", lt.pub.numConns.Load(), store.inFlight.Load(), handshakes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lt.BytesCompleted() == f.mi.Info.TotalLength {
		t.Fatal("the download finished before Close: nothing was in flight")
	}

	start := time.Now()
	lc.Close()
	if n := store.inFlight.Load(); n != 0 {
		t.Errorf("Close returned with %d piece writes still running", n)
	}
	if n := handshakes(); n != 0 {
		t.Errorf("Close returned with %d incoming handshakes still running", n)
	}
	t.Logf("Close took %v (%d pieces written)", time.Since(start).Round(time.Millisecond), store.written.Load())
	sc.Close()
}
