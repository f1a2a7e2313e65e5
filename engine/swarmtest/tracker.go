package swarmtest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// Tracker is an opentracker process on 127.0.0.1 serving HTTP and UDP
// announces on one port. Debian's opentracker is built with a whitelist: it
// answers only for the info-hashes it was started with or later given to
// Allow. Methods are safe for concurrent use.
type Tracker struct {
	// HTTP and UDP are announce URLs for torrents and clients:
	// "http://127.0.0.1:PORT/announce" and "udp://127.0.0.1:PORT/announce".
	HTTP, UDP string
	// Port is the TCP and UDP port.
	Port int

	tb   testing.TB
	dir  string // whitelist folder, also opentracker's working folder
	proc *proc

	mu      sync.Mutex // guards allowed and the whitelist file
	allowed map[[20]byte]bool
}

const whitelistName = "whitelist"

// StartTracker starts opentracker on 127.0.0.1 on a free port (HTTP and UDP)
// whose whitelist holds infoHashes. The process is killed and waited for in
// tb.Cleanup. It returns once the tracker answers HTTP.
//
// As root, opentracker refuses to keep root privileges; it is started as
// user nobody (with the parent-death signal still armed) in a world-readable
// temporary folder that holds its whitelist.
func StartTracker(tb testing.TB, infoHashes ...[20]byte) *Tracker {
	tb.Helper()
	RequireTools(tb, "opentracker")
	sweepTrackerDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", trackerDirPrefix, os.Getpid()))
	if err != nil {
		tb.Fatalf("swarmtest.StartTracker: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatalf("swarmtest.StartTracker: %v", err)
	}
	t := &Tracker{tb: tb, dir: dir, allowed: make(map[[20]byte]bool)}
	for _, ih := range infoHashes {
		t.allowed[ih] = true
	}
	if err := t.writeWhitelistLocked(); err != nil {
		tb.Fatalf("swarmtest.StartTracker: %v", err)
	}
	var lastErr error
	for range 3 { // a port taken between FreePort and bind: try another
		port := FreePort(tb, "127.0.0.1")
		if err := t.start(port); err != nil {
			lastErr = err
			continue
		}
		// opentracker reads its whitelist in a thread of its own after it
		// starts answering: wait until it serves every listed hash (an
		// immediate announce was refused in about one start in seven).
		for _, ih := range infoHashes {
			t.Allow(ih)
		}
		return t
	}
	tb.Fatalf("swarmtest.StartTracker: %v", lastErr)
	return nil
}

// trackerDirPrefix+PID+"-"+random names a tracker's folder in os.TempDir.
const trackerDirPrefix = "swarmtest-tracker-"

// sweepTrackerDirs removes the folders of test binaries that died before
// their cleanup ran (a killed process runs no tb.Cleanup).
func sweepTrackerDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), trackerDirPrefix+"*-*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), trackerDirPrefix)
		pid, err := strconv.Atoi(rest[:strings.IndexByte(rest, '-')])
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

func (t *Tracker) start(port int) error {
	t.tb.Helper()
	p := strconv.Itoa(port)
	// -d: opentracker chroots there when root (we are not root by then, so
	// it only changes folder); the whitelist path is relative to it.
	cmd := exec.Command("opentracker", "-i", "127.0.0.1", "-p", p, "-P", p, "-d", t.dir, "-w", whitelistName)
	cmd.Dir = t.dir
	if os.Geteuid() == 0 {
		uid, gid, err := nobody()
		if err != nil {
			return err
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	pr, err := startProc(t.tb, "opentracker", cmd, nil, 0)
	if err != nil {
		return err
	}
	t.proc = pr
	t.Port = port
	t.HTTP = fmt.Sprintf("http://127.0.0.1:%d/announce", port)
	t.UDP = fmt.Sprintf("udp://127.0.0.1:%d/announce", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if done, werr := pr.exited(); done {
			return fmt.Errorf("opentracker on port %d exited: %v: %s", port, werr, pr.stderr.String())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			// TCP and UDP sockets are bound before opentracker serves. But
			// what answered may be another process that took the port
			// between FreePort and opentracker's bind (parallel test
			// binaries start peers all the time): opentracker then exits
			// at once. Give it a moment to do so, and try another port.
			time.Sleep(100 * time.Millisecond)
			if done, werr := pr.exited(); done {
				return fmt.Errorf("opentracker on port %d exited: %v: %s", port, werr, pr.stderr.String())
			}
			return nil
		}
		if time.Now().After(deadline) {
			pr.kill()
			return fmt.Errorf("opentracker on port %d not answering: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nobody() (uint32, uint32, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, fmt.Errorf("opentracker must not run as root and there is no user nobody: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	return uint32(uid), uint32(gid), nil
}

// writeWhitelistLocked replaces the whitelist file atomically.
func (t *Tracker) writeWhitelistLocked() error {
	var b bytes.Buffer
	for ih := range t.allowed {
		b.WriteString(hex.EncodeToString(ih[:]))
		b.WriteByte('\n')
	}
	tmp := filepath.Join(t.dir, whitelistName+".tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // umask
		return err
	}
	return os.Rename(tmp, filepath.Join(t.dir, whitelistName))
}

// Allow adds ih to the whitelist and makes the running tracker reload it
// (opentracker rereads its whitelist on SIGHUP, in a thread of its own). It
// returns once the tracker answers announces for ih, proven by an announce
// of a placeholder peer (127.0.0.1, port 1) that is withdrawn at once with
// event=stopped. It fails the test (from the calling goroutine, as
// t.Fatal) if the tracker does not take ih within 10 s.
func (t *Tracker) Allow(ih [20]byte) {
	t.tb.Helper()
	t.mu.Lock()
	t.allowed[ih] = true
	err := t.writeWhitelistLocked()
	t.mu.Unlock()
	if err != nil {
		t.tb.Fatalf("swarmtest.Tracker.Allow: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := t.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.tb.Fatalf("swarmtest.Tracker.Allow: SIGHUP: %v", err)
		}
		ok, err := t.probe(ih)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("swarmtest.Tracker.Allow: tracker does not serve %x after reload: %v", ih, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probe reports whether the tracker accepts announces for ih. (A stopped
// event alone is no proof: opentracker answers it for any info-hash.)
func (t *Tracker) probe(ih [20]byte) (bool, error) {
	peerID := "-ST0001-swarmtestprb"
	body, err := t.announce(ih, peerID, "started")
	if err != nil {
		return false, err
	}
	if bytes.Contains(body, []byte("failure reason")) {
		return false, fmt.Errorf("tracker answered %q", body)
	}
	_, err = t.announce(ih, peerID, "stopped")
	return err == nil, err
}

// Peers returns the peers (ip:port) the tracker hands out for ih, as seen
// by a placeholder peer that announces and withdraws at once. It is how a
// test checks what an engine under test announced.
func (t *Tracker) Peers(tb testing.TB, ih [20]byte) []string {
	tb.Helper()
	const peerID = "-ST0001-swarmtestpee"
	body, err := t.announce(ih, peerID, "started")
	if err != nil {
		tb.Fatalf("swarmtest.Tracker.Peers: %v", err)
	}
	defer func() {
		if _, err := t.announce(ih, peerID, "stopped"); err != nil {
			tb.Errorf("swarmtest.Tracker.Peers: withdraw: %v", err)
		}
	}()
	var resp struct {
		Failure string `bencode:"failure reason"`
		Peers   []byte `bencode:"peers"`
	}
	if err := bencode.Unmarshal(body, &resp); err != nil {
		tb.Fatalf("swarmtest.Tracker.Peers: %v in %q", err, body)
	}
	if resp.Failure != "" {
		tb.Fatalf("swarmtest.Tracker.Peers(%x): %s", ih, resp.Failure)
	}
	if len(resp.Peers)%6 != 0 {
		tb.Fatalf("swarmtest.Tracker.Peers: compact peers of %d bytes", len(resp.Peers))
	}
	var out []string
	for p := resp.Peers; len(p) > 0; p = p[6:] {
		addr := net.JoinHostPort(net.IP(p[:4]).String(), strconv.Itoa(int(p[4])<<8|int(p[5])))
		if addr != "127.0.0.1:1" { // placeholder peers (ours, Allow's)
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}

func (t *Tracker) announce(ih [20]byte, peerID, event string) ([]byte, error) {
	q := "info_hash=" + escapeBytes(ih[:]) +
		"&peer_id=" + escapeBytes([]byte(peerID)) +
		"&port=1&uploaded=0&downloaded=0&left=1&compact=1&numwant=200&event=" + event
	// No keep-alive: an idle connection would leave transport goroutines
	// behind for goleak to find in the caller's test.
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(t.HTTP + "?" + q)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

// escapeBytes percent-encodes every byte but unreserved ones.
// url.QueryEscape would turn a 0x20 byte into '+', which opentracker does
// not decode: about one info-hash in fourteen was then never served.
func escapeBytes(b []byte) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}
