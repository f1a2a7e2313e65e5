package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// recordHost is an fs.Host that records the magnets added.
type recordHost struct{ added chan string }

func (h recordHost) Torrents() []fs.Torrent                    { return nil }
func (h recordHost) AddTorrentFile([]byte) (fs.Torrent, error) { return nil, errors.New("no") }
func (h recordHost) Remove(metainfo.Hash) error                { return nil }
func (h recordHost) AddMagnet(uri string) (fs.Torrent, error) {
	h.added <- uri
	return nil, nil
}

// TestLateHostWaitsForSession: an add made through the mount before the
// session is ready waits for it and then reaches it; the listing is empty
// meanwhile; once the start failed, adds fail with its error.
func TestLateHostWaitsForSession(t *testing.T) {
	l := &lateHost{ready: make(chan struct{})}
	if ts := l.Torrents(); ts != nil {
		t.Fatalf("Torrents before the session: %v", ts)
	}
	h := recordHost{added: make(chan string, 1)}
	errc := make(chan error, 1)
	go func() {
		_, err := l.AddMagnet("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("AddMagnet returned (%v) before the session was set", err)
	case <-time.After(20 * time.Millisecond):
	}
	l.set(h, nil)
	if err := <-errc; err != nil {
		t.Fatalf("AddMagnet: %v", err)
	}
	if uri := <-h.added; !strings.HasPrefix(uri, "magnet:") {
		t.Fatalf("host got %q", uri)
	}

	failed := &lateHost{ready: make(chan struct{})}
	why := errors.New("cache: open store: bad")
	failed.set(nil, why)
	failed.set(h, nil) // the first set wins
	if _, err := failed.AddTorrentFile(nil); !errors.Is(err, why) {
		t.Fatalf("AddTorrentFile after a failed start: %v, want %v", err, why)
	}
	if ts := failed.Torrents(); ts != nil {
		t.Fatalf("Torrents after a failed start: %v", ts)
	}
}

// TestMountStoreFailsAfterLock: the cache's store fails to open after its
// data directory was locked, while the mount is being made: swarmfs mount
// says why, exits non-zero and leaves nothing mounted.
func TestMountStoreFailsAfterLock(t *testing.T) {
	dataDir := t.TempDir()
	cacheDir := filepath.Join(dataDir, "cache")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Not a badger manifest: the open fails after the lock is taken.
	if err := os.WriteFile(filepath.Join(cacheDir, "MANIFEST"), []byte("not a manifest at all, not even close"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, mountOpts{IP: "127.0.0.36", DataDir: dataDir, NoWait: true})
	if !m.c.wait(kernelSlack) {
		t.Fatalf("swarmfs mount still running %v after start:\n%s", kernelSlack, m.Output())
	}
	if m.c.exitCode() == 0 {
		t.Errorf("swarmfs mount exited 0 with a broken store:\n%s", m.Output())
	}
	if !strings.Contains(m.Output(), "open store") {
		t.Errorf("no word of the store in the output:\n%s", m.Output())
	}
	if isMounted(m.Dir) {
		t.Fatalf("%s left mounted:\n%s", m.Dir, m.Output())
	}
}

// TestMountDataDirInUse: a second mount of a data directory another mount
// holds fails with a clear message before it mounts anything (the mount
// waits for the cache's lock).
func TestMountDataDirInUse(t *testing.T) {
	dataDir := t.TempDir()
	first := startMount(t, mountOpts{IP: "127.0.0.37", DataDir: dataDir})
	second := startMount(t, mountOpts{IP: "127.0.0.37", DataDir: dataDir, NoWait: true})
	if !second.c.wait(kernelSlack) {
		t.Fatalf("second swarmfs mount still running %v after start:\n%s", kernelSlack, second.Output())
	}
	if second.c.exitCode() == 0 || !strings.Contains(second.Output(), "in use by another swarmfs process") {
		t.Errorf("second mount of one data directory: exit %d:\n%s", second.c.exitCode(), second.Output())
	}
	if isMounted(second.Dir) {
		t.Fatalf("%s mounted by the second swarmfs:\n%s", second.Dir, second.Output())
	}
	if !isMounted(first.Dir) {
		t.Fatalf("the first mount went away")
	}
	first.StopClean(t)
}
