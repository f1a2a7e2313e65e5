package main

// End-to-end tests of a mount's edges: a mount given nothing it can load
// does not start, and removing a torrent whose tracker hangs returns at
// once.

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestE2ENothingLoaded starts mounts whose every named torrent fails to
// load (unreadable, not a torrent, over the size limit, /dev/zero, a flag
// put after the mountpoint): each exits non-zero at once, as btfs does,
// without mounting and without reading without bound. A torrent named again
// that the cache already restored counts as loaded.
func TestE2ENothingLoaded(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.torrent")
	if err := os.WriteFile(bad, []byte("not a torrent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.torrent")
	big := writeBigTorrent(t)
	tests := []struct {
		name    string
		sources []string
		code    int
		want    []string
	}{
		{"bad and missing", []string{bad, missing}, 1, []string{bad + ": ", missing + ": ", "not mounting"}},
		{"over the limit", []string{big}, 1, []string{"larger than the 16 MiB limit", "not mounting"}},
		{"dev zero", []string{"/dev/zero"}, 1, []string{"larger than the 16 MiB limit", "not mounting"}},
		{"flag after the mountpoint", []string{"--download=all"}, 2, []string{"--download=all after MOUNTPOINT"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := startMount(t, mountOpts{IP: "127.0.0.9" + string(rune('1'+i)), NoWait: true, Sources: tc.sources})
			var peak int64
			deadline := time.Now().Add(time.Minute)
			for !m.c.wait(10*time.Millisecond) && time.Now().Before(deadline) {
				rss := processRSS(m.Pid())
				peak = max(peak, rss)
				if rss > maxTestRSS {
					t.Fatalf("the mount's resident memory reached %d MiB", rss>>20)
				}
			}
			if m.c.running() {
				t.Fatalf("the mount still runs after a minute:\n%s", m.Output())
			}
			out := m.Output()
			t.Logf("exit %d, peak RSS %d MiB:\n%s", m.c.exitCode(), peak>>20, out)
			if code := m.c.exitCode(); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(out, " mounted at ") || isMounted(m.Dir) {
				t.Error("it mounted")
			}
		})
	}

	t.Run("restored and named again", func(t *testing.T) {
		tor, _ := writeTorrent(t, "again.bin", nil)
		m := startMount(t, mountOpts{IP: "127.0.0.96", Sources: []string{tor}})
		waitPath(t, filepath.Join(m.Dir, "again.bin"), time.Minute)
		m.StopClean(t)
		m = startMount(t, mountOpts{IP: "127.0.0.97", DataDir: m.DataDir, Sources: []string{tor}})
		waitPath(t, filepath.Join(m.Dir, "again.bin"), time.Minute)
		if out := m.Output(); strings.Contains(out, "already") {
			t.Errorf("a torrent restored and named again is reported:\n%s", out)
		}
		m.StopClean(t)
	})
}

// hangingTracker is an HTTP tracker on 127.0.0.1 that accepts "started"
// (no peers) and never answers "stopped": a tracker that went away while
// the torrent ran. A torrent that announced to it must then wait up to the
// engine's stop timeout (5 s) to stop.
type hangingTracker struct {
	url  string
	quit chan struct{} // closed at cleanup: ends the hanging requests

	mu      sync.Mutex // guards the fields below
	started map[string]bool
	stopped int
}

func startHangingTracker(t *testing.T) *hangingTracker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &hangingTracker{url: "http://" + ln.Addr().String() + "/announce", quit: make(chan struct{}), started: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		tr.mu.Lock()
		if q.Get("event") == "stopped" {
			tr.stopped++
			tr.mu.Unlock()
			select {
			case <-tr.quit:
			case <-r.Context().Done():
			}
			return
		}
		tr.started[q.Get("info_hash")] = true
		tr.mu.Unlock()
		w.Write([]byte("d8:intervali1800e5:peers0:e"))
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		close(tr.quit)
		srv.Close()
		<-done
	})
	return tr
}

// waitStarted waits until ih announced "started".
func (tr *hangingTracker) waitStarted(t *testing.T, ih [20]byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tr.mu.Lock()
		ok := tr.started[string(ih[:])]
		tr.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%x never announced to the tracker", ih)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tr *hangingTracker) stops() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.stopped
}

// TestE2ERemoveHangingTracker removes torrents whose tracker never answers
// "stopped", with rmdir and with swarmfs rm: each returns at once and the
// folder is gone (the stop and the drop of its pieces go on in the
// background), and the torrent copied in again while its drop is pending
// comes back.
func TestE2ERemoveHangingTracker(t *testing.T) {
	tr := startHangingTracker(t)
	one, mi1 := writeTorrent(t, "one.bin", [][]string{{tr.url}})
	two, mi2 := writeTorrent(t, "two.bin", [][]string{{tr.url}})
	m := startMount(t, mountOpts{IP: "127.0.0.98", Sources: []string{one, two}})
	tr.waitStarted(t, mi1.InfoHash)
	tr.waitStarted(t, mi2.InfoHash)

	start := time.Now()
	runProg(t, kernelSlack, "rmdir", filepath.Join(m.Dir, "one.bin"))
	el := time.Since(start)
	if _, err := os.Lstat(filepath.Join(m.Dir, "one.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after rmdir: %v, want ENOENT", err)
	}
	t.Logf("rmdir returned after %v", el.Round(time.Millisecond))
	if el >= time.Second {
		t.Errorf("rmdir took %v: it waited for the tracker", el.Round(time.Millisecond))
	}

	// swarmfs rm pays a process start as well: still far below the 5 s
	// a stop waits for a tracker.
	start = time.Now()
	if out, code := swarmfsCmd(t, "rm", "--data-dir", m.DataDir, "two.bin"); code != 0 {
		t.Fatalf("swarmfs rm: exit %d: %s", code, out)
	}
	el = time.Since(start)
	t.Logf("swarmfs rm returned after %v", el.Round(time.Millisecond))
	if el >= 3*time.Second {
		t.Errorf("swarmfs rm took %v: it waited for the tracker", el.Round(time.Millisecond))
	}
	waitGone(t, filepath.Join(m.Dir, "two.bin"), 10*time.Second)

	// Copied in again while its stop still waits for the tracker (nobody
	// seeds it: its files are listed, not read).
	runProg(t, kernelSlack, "cp", one, filepath.Join(m.Dir, "again.torrent"))
	waitPath(t, filepath.Join(m.Dir, "one.bin", "one.bin"), time.Minute)
	if st := mountStatus(t, m.DataDir); len(st) != 1 || st[0].Name != "one.bin" {
		t.Errorf("status after adding one.bin again: %+v", st)
	}
	if n := tr.stops(); n == 0 {
		t.Error("no stopped announce reached the tracker: the test did not test a slow stop")
	}
	m.StopClean(t)
	m = startMount(t, mountOpts{IP: "127.0.0.99", DataDir: m.DataDir})
	if ents, err := os.ReadDir(m.Dir); err != nil || len(ents) != 1 || ents[0].Name() != "one.bin" {
		t.Errorf("root after a restart: %v, %v (want one.bin alone)", ents, err)
	}
	m.StopClean(t)
}
