package fs

import (
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// lateHost is a fakeHost that must not be called before ready closes.
type lateHost struct {
	*fakeHost
	ready chan struct{}
	early atomic.Int32
}

func (h *lateHost) Torrents() []Torrent {
	select {
	case <-h.ready:
	default:
		h.early.Add(1)
	}
	return h.fakeHost.Torrents()
}

// TestHostReady: a mount whose Host is not ready yet (Options.HostReady)
// is up, but a lookup, a listing and a change in its root wait until the
// Host is, and then see its torrents; the Host is not asked before. If it
// never becomes ready, the waiting requests end with the mount.
func TestHostReady(t *testing.T) {
	tor := newFakeTorrent("movie", 32<<10, fakeFile{path: "a.bin", data: []byte("hello")})
	h := &lateHost{fakeHost: newFakeHost(tor), ready: make(chan struct{})}
	_, mnt, _ := mountT(t, h, Options{HostReady: h.ready})

	stat := make(chan error, 1)
	go func() {
		_, err := os.Stat(filepath.Join(mnt, "movie", "a.bin"))
		stat <- err
	}()
	list := make(chan []string, 1)
	go func() {
		ents, _ := os.ReadDir(mnt)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		list <- names
	}()
	mkdir := make(chan error, 1)
	go func() { mkdir <- os.Mkdir(filepath.Join(mnt, "not-a-hash"), 0o755) }()
	select {
	case err := <-stat:
		t.Fatalf("a lookup returned (%v) before the host was ready", err)
	case names := <-list:
		t.Fatalf("a listing returned %q before the host was ready", names)
	case err := <-mkdir:
		t.Fatalf("a mkdir returned (%v) before the host was ready", err)
	case <-time.After(300 * time.Millisecond):
	}
	if n := h.early.Load(); n != 0 {
		t.Errorf("the host was asked for its torrents %d times before it was ready", n)
	}
	close(h.ready)
	for _, what := range []string{"stat", "list", "mkdir"} {
		select {
		case err := <-stat:
			if err != nil {
				t.Errorf("stat after the host was ready: %v", err)
			}
		case names := <-list:
			if !slices.Equal(names, []string{"movie"}) {
				t.Errorf("listing after the host was ready: %q, want [movie]", names)
			}
		case err := <-mkdir:
			if !os.IsPermission(err) {
				t.Errorf("mkdir of a name that is not an info-hash: %v, want EPERM", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still waiting 10 s after the host was ready", what)
		}
	}
}

// TestHostNeverReady: a lookup waiting for a Host that never becomes
// ready ends when the mount does; the unmount does not hang on it.
func TestHostNeverReady(t *testing.T) {
	h := &lateHost{fakeHost: newFakeHost(), ready: make(chan struct{})}
	srv, mnt, _ := mountT(t, h, Options{HostReady: h.ready})
	stat := make(chan error, 1)
	go func() {
		_, err := os.Stat(filepath.Join(mnt, "anything"))
		stat <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unmountT(t, srv)
	select {
	case err := <-stat:
		if err == nil {
			t.Error("a lookup in a mount that never became ready succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lookup still waits 10 s after the unmount")
	}
	if n := h.early.Load(); n != 0 {
		t.Errorf("the host was asked for its torrents %d times though never ready", n)
	}
}
