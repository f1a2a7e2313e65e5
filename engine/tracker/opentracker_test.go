package tracker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

const opentrackerPath = "/usr/bin/opentracker"

// lockedBuffer collects a child's output while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOpentracker runs Debian's opentracker on 127.0.0.1, serving only the
// given info-hashes (its build insists on a whitelist), and returns its
// HTTP and UDP announce URLs.
func startOpentracker(t *testing.T, hashes ...[20]byte) (httpURL, udpURL string) {
	t.Helper()
	if _, err := os.Stat(opentrackerPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("opentracker is required in CI (apt-get install opentracker): %v", err)
		}
		t.Skipf("opentracker not installed: %v", err)
	}
	// opentracker reads the whitelist after dropping to user nobody (and
	// refuses -u root), so its folder must be readable by all; t.TempDir's
	// parent is not.
	dir, err := os.MkdirTemp("", "opentracker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One more listed hash tells when the whitelist is loaded.
	readyHash := [20]byte{0xee, 0xee, 0xee}
	var wl bytes.Buffer
	for _, h := range append(hashes, readyHash) {
		wl.WriteString(hex.EncodeToString(h[:]) + "\n")
	}
	whitelist := filepath.Join(dir, "whitelist")
	if err := os.WriteFile(whitelist, wl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The port may be taken between our probe and opentracker's bind: retry.
	for attempt := range 5 {
		port := freePort(t)
		ps := strconv.Itoa(port)
		// Debian's build chroots to -d (default ".") and drops privileges
		// to nobody; it runs in the temporary directory.
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, opentrackerPath, "-i", "127.0.0.1", "-p", ps, "-P", ps, "-w", whitelist)
		cmd.Dir = dir
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("starting opentracker: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		stop := func() {
			cancel() // kills it
			<-exited
		}
		addr := net.JoinHostPort("127.0.0.1", ps)
		if waitReady("http://"+addr+"/announce", readyHash, exited) {
			t.Cleanup(stop)
			return "http://" + addr + "/announce", "udp://" + addr + "/announce"
		}
		stop()
		t.Logf("opentracker attempt %d on port %d failed: %s", attempt+1, port, out.String())
	}
	t.Fatal("opentracker did not start")
	return "", ""
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// waitReady reports whether the tracker at url accepts the listed info-hash
// within 5 s: it loads its whitelist in the background, refusing everything
// until then. Stopped events pass without the check, so this uses started.
func waitReady(url string, hash [20]byte, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := Announce(ctx, url, AnnounceRequest{InfoHash: hash, Port: 1, Event: Started, NumWant: 0})
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestOpentracker(t *testing.T) {
	hashHTTP := [20]byte{0xaa, 1}
	hashUDP := [20]byte{0xaa, 2}
	hashAnnouncer := [20]byte{0xaa, 3}
	httpURL, udpURL := startOpentracker(t, hashHTTP, hashUDP, hashAnnouncer)

	peer := func(hash [20]byte, id string, port uint16, ev Event) AnnounceRequest {
		req := AnnounceRequest{InfoHash: hash, Port: port, Left: 1000, Event: ev, NumWant: 50, Key: uint32(port)}
		copy(req.PeerID[:], fmt.Sprintf("-SW0001-%012s", id))
		return req
	}
	for _, tc := range []struct {
		name string
		url  string
		hash [20]byte
	}{
		{"http", httpURL, hashHTTP},
		{"udp", udpURL, hashUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Announce(ctxT(t), tc.url, peer(tc.hash, "a", 40001, Started))
			if err != nil {
				t.Fatal(err)
			}
			if a.Interval <= 0 {
				t.Errorf("interval %v", a.Interval)
			}
			b, err := Announce(ctxT(t), tc.url, peer(tc.hash, "b", 40002, Started))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(b.Peers, ap("127.0.0.1:40001")) || b.Leechers != 2 {
				t.Fatalf("b got %+v, want to see a (127.0.0.1:40001) and 2 leechers", b)
			}
			a, err = Announce(ctxT(t), tc.url, peer(tc.hash, "a", 40001, None))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(a.Peers, ap("127.0.0.1:40002")) {
				t.Fatalf("a got %+v, want to see b (127.0.0.1:40002)", a)
			}
			// b leaves; a no longer sees it.
			if _, err := Announce(ctxT(t), tc.url, peer(tc.hash, "b", 40002, Stopped)); err != nil {
				t.Fatal(err)
			}
			a, err = Announce(ctxT(t), tc.url, peer(tc.hash, "a", 40001, None))
			if err != nil {
				t.Fatal(err)
			}
			// (opentracker may list the asking peer itself.)
			if slices.Contains(a.Peers, ap("127.0.0.1:40002")) || a.Leechers != 1 {
				t.Fatalf("after b stopped a got %+v", a)
			}
			// A torrent outside the whitelist is refused.
			_, err = Announce(ctxT(t), tc.url, peer([20]byte{0xbb}, "c", 40003, Started))
			if err == nil {
				t.Fatal("unlisted torrent accepted")
			}
			if tc.name == "http" && !errors.Is(err, ErrFailure) {
				t.Fatalf("unlisted torrent: %v, want ErrFailure", err)
			}
			t.Logf("unlisted torrent: %v", err)
		})
	}

	t.Run("announcer", func(t *testing.T) {
		got := make(chan []netip.AddrPort, 10)
		an := NewAnnouncer(AnnouncerConfig{
			Tiers:    [][]string{{udpURL}, {httpURL}},
			InfoHash: hashAnnouncer,
			Port:     40010,
			Stats:    func() (int64, int64, int64) { return 0, 0, 500 },
			OnPeers:  func(p []netip.AddrPort) { got <- p },
			Logf:     t.Logf,
		})
		copy(an.cfg.PeerID[:], "-SW0001-announcer000")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			an.Run(ctx)
		}()
		defer func() {
			cancel()
			<-done
		}()
		// Wait for its started to land.
		deadline := time.Now().Add(5 * time.Second)
		for an.Status()[0].LastAnnounce.IsZero() {
			if time.Now().After(deadline) {
				t.Fatalf("no announce: %+v", an.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		other := peer(hashAnnouncer, "other", 40011, Started)
		r, err := Announce(ctxT(t), httpURL, other)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(r.Peers, ap("127.0.0.1:40010")) {
			t.Fatalf("other peer got %+v, want to see the announcer", r)
		}
		// AnnounceNow is limited by opentracker's min interval, so the
		// announcer does not see the other peer yet; its stopped removes it.
		cancel()
		<-done
		other.Event = None
		r, err = Announce(ctxT(t), udpURL, other)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(r.Peers, ap("127.0.0.1:40010")) {
			t.Fatalf("after stopped the other peer still sees the announcer: %+v", r)
		}
	})
}
