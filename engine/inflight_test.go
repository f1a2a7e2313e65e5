package engine

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// slowSink is a store that writes one piece at a time, each taking delay,
// and keeps nothing: a disk slower than the swarm, under a torrent far
// larger than any cache. Pieces count as stored (it is no Evicter).
type slowSink struct {
	delay time.Duration
	mu    sync.Mutex // held while a piece is "written"
}

func (s *slowSink) Open(metainfo.Hash, *metainfo.Info) (storage.Torrent, []int, error) {
	return s, nil, nil
}
func (s *slowSink) ReadAt([]byte, int64) (int, error) { return 0, storage.ErrNotStored }
func (s *slowSink) Close() error                      { return nil }

func (s *slowSink) WritePiece(int, []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(s.delay)
	return nil
}

// TestInFlightBounded: the bytes of piece and block buffers a download
// holds (blocks queued for the loop, pieces being assembled, hashed and
// written) stay within a bound set by maxOutstandingBytes and
// maxHashBytes, whatever the torrent's size and however many peers send,
// when the store is slower than sixteen fast peers. Before the bound, every
// peer's pipeline counted (up to maxSlowPipeline each) and the pieces that
// arrived after the hash backlog was full were kept too.
func TestInFlightBounded(t *testing.T) {
	const pieceLen = 1 << 20
	file := swarmtest.FileSpec{Path: "big.bin", Size: 96 << 20}
	f := newFixture(t, pieceLen, []swarmtest.FileSpec{file})
	var peers []netip.AddrPort
	for i := range 16 {
		s := &scriptSeed{fast: true, ext: true, reqq: 2048, file: file}
		peers = append(peers, startScriptSeed(t, fmt.Sprintf("127.0.0.%d", 2+i), f.mi, s).addr())
	}
	c := newClient(t, Config{ListenAddr: "127.0.0.9:0", Storage: &slowSink{delay: 10 * time.Millisecond}, Logf: func(string, ...any) {}})
	base := held.now.Load()
	held.resetPeak()
	start := time.Now()
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 2*time.Minute)
	peak := held.peak.Load() - base
	t.Logf("96 MiB in %v; peak of piece and block buffers held: %.1f MiB", time.Since(start).Round(time.Millisecond), float64(peak)/(1<<20))
	// Requests in flight (and so blocks queued) within maxOutstandingBytes
	// plus each peer's floor; the hash backlog; the pieces being assembled
	// (one a peer, and those the requests in flight complete past the
	// backlog's limit). The old code held 53 MiB here.
	bound := int64(maxOutstandingBytes) + 16*minOwnOutstanding*16<<10 + maxHashBytes + 16*pieceLen
	if peak > bound {
		t.Errorf("peak of buffers held %.1f MiB, want at most %.1f MiB", float64(peak)/(1<<20), float64(bound)/(1<<20))
	}
}
