package engine

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// fixture is test data on disk and its torrent, made by our own Create.
type fixture struct {
	dir  string // folder holding the torrent's top folder
	root string // the torrent's top folder
	mi   *metainfo.MetaInfo
}

func newFixture(t *testing.T, pieceLength int64, files []swarmtest.FileSpec) fixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: pieceLength, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, root: root, mi: mi}
}

// saveTorrent writes mi to a .torrent file, for another client to load,
// and returns its path.
func saveTorrent(t testing.TB, mi *metainfo.MetaInfo) string {
	t.Helper()
	raw, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "t.torrent")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	cfg.NoTrackers = cfg.NoTrackers || false
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seeder starts a client seeding f from disk.
func seeder(t *testing.T, f fixture, cfg Config) (*Client, *Torrent) {
	t.Helper()
	cfg.Storage = storage.File{Dir: f.dir}
	c := newClient(t, cfg)
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tor.Complete():
	default:
		t.Fatalf("seeder has %d of %d pieces", tor.Stats().PiecesHave, f.mi.Info.NumPieces())
	}
	return c, tor
}

// leecher starts a client downloading f into a fresh folder.
func leecher(t *testing.T, f fixture, cfg Config, peers ...netip.AddrPort) (*Client, *Torrent, string) {
	t.Helper()
	dir := t.TempDir()
	cfg.Storage = storage.File{Dir: dir}
	c := newClient(t, cfg)
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return c, tor, dir
}

func waitComplete(t *testing.T, tor *Torrent, timeout time.Duration) {
	t.Helper()
	select {
	case <-tor.Complete():
	case <-time.After(timeout):
		s := tor.Stats()
		t.Fatalf("not complete after %v: %d/%d pieces, %d peers", timeout, s.PiecesHave, s.Pieces, s.Peers)
	}
}

// waitDone polls another client's done every 50 ms until it holds; past
// timeout the test fails, naming the client and what swarmfs's torrent
// uploaded.
func waitDone(t *testing.T, client string, timeout time.Duration, tor *Torrent, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			st := tor.Stats()
			t.Fatalf("%s has not finished after %v (swarmfs uploaded %d bytes, %d peers)", client, timeout, st.Uploaded, st.Peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addReader adds mi to c and opens a reader of its file i (media: as a
// player's), closed when the test ends.
func addReader(t testing.TB, c *Client, mi *metainfo.MetaInfo, opts TorrentOptions, i int, media bool) (*Torrent, *Reader) {
	t.Helper()
	tor, err := c.AddTorrent(mi, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tor.NewReader(i, media)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return tor, r
}

func peersOf(cs ...*Client) []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range cs {
		out = append(out, c.Addr())
	}
	return out
}

// logLines collects a client's log lines (and passes them to the test
// log); safe for concurrent use.
type logLines struct {
	tb    testing.TB
	mu    sync.Mutex // guards lines
	lines []string
}

func newLogLines(tb testing.TB) *logLines { return &logLines{tb: tb} }

func (l *logLines) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.tb.Log(s)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// find returns the first line that contains every one of parts.
func (l *logLines) find(parts ...string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, s := range l.lines {
		for _, p := range parts {
			if !strings.Contains(s, p) {
				continue next
			}
		}
		return s, true
	}
	return "", false
}

// wait waits up to d for a line with every one of parts.
func (l *logLines) wait(d time.Duration, parts ...string) (string, bool) {
	deadline := time.Now().Add(d)
	for {
		if s, ok := l.find(parts...); ok || time.Now().After(deadline) {
			return s, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}
