package main

// Tests of the command line's hard edges (issue 17, item 6), run against
// the binary without FUSE: one size limit for .torrent files everywhere
// and a bound on reading them, get into a folder too deep for the paths,
// and another user's control socket.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// writeTorrent makes a .torrent of one small file named name, with the
// given trackers, and returns its path and metainfo.
func writeTorrent(t *testing.T, name string, trackers [][]string) (string, *metainfo.MetaInfo) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, name)
	if err := os.WriteFile(data, []byte("the data of "+name), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Create(data, metainfo.CreateOptions{Trackers: trackers, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".torrent")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, mi
}

// writeBigTorrent writes a valid .torrent just over metainfo.MaxTorrentSize:
// a small torrent with a comment that makes up the rest, as a hostile
// torrent site could serve.
func writeBigTorrent(t *testing.T) string {
	t.Helper()
	_, mi := writeTorrent(t, "big.bin", nil)
	comment := bytes.Repeat([]byte("x"), metainfo.MaxTorrentSize)
	var b bytes.Buffer
	b.WriteString("d7:comment" + strconv.Itoa(len(comment)) + ":")
	b.Write(comment)
	b.WriteString("4:info")
	b.Write(mi.InfoBytes)
	b.WriteString("e")
	if _, err := metainfo.Parse(b.Bytes()); err != nil {
		t.Fatalf("the big torrent does not parse: %v", err)
	}
	p := filepath.Join(t.TempDir(), "big.torrent")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// maxTestRSS is the resident memory above which a swarmfs child is taken
// to read without a bound, and killed. An idle race-enabled swarmfs is
// well under 100 MiB; holding a 16 MiB .torrent adds tens.
const maxTestRSS = 400 << 20

// runWatched runs swarmfs with args within timeout, killing it if its
// resident memory passes maxTestRSS, and returns its output, exit code
// (-1 if killed) and peak RSS.
func runWatched(t *testing.T, timeout time.Duration, args ...string) (string, int, int64) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(swarmfsBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := startChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.signal(syscall.SIGKILL)
		c.wait(kernelSlack)
	}()
	var peak int64
	deadline := time.Now().Add(timeout)
	for !c.wait(10 * time.Millisecond) {
		rss := processRSS(cmd.Process.Pid)
		peak = max(peak, rss)
		if rss > maxTestRSS {
			c.signal(syscall.SIGKILL)
			c.wait(kernelSlack)
			t.Errorf("swarmfs %s: resident memory reached %d MiB: killed", strings.Join(args, " "), rss>>20)
			return out.String(), -1, peak
		}
		if time.Now().After(deadline) {
			t.Errorf("swarmfs %s: still running after %v: killed\n%s", strings.Join(args, " "), timeout, out.String())
			return out.String(), -1, peak
		}
	}
	return out.String(), c.exitCode(), peak
}

// processRSS is a process's resident set size in bytes, 0 if unknown.
func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fakeControl serves a control API on dataDir's socket that lists no
// torrents and counts the adds it is sent.
func fakeControl(t *testing.T, dataDir string) *atomic.Int32 {
	t.Helper()
	var adds atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "[]") })
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		adds.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, "the fake control socket adds nothing", http.StatusBadRequest)
	})
	cs, err := startControl(dataDir, mux)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cs.close)
	return &adds
}

// TestTorrentSizeLimit gives every command that reads a .torrent from the
// command line a valid torrent just over the limit, and /dev/zero: each
// refuses it at once, with the limit in the message, without holding more
// than the limit (memory checked on the process's RSS).
func TestTorrentSizeLimit(t *testing.T) {
	big := writeBigTorrent(t)
	dataDir := t.TempDir()
	adds := fakeControl(t, dataDir)
	engineArgs := []string{"--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-trackers"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"get", append(append([]string{"get"}, engineArgs...), big, t.TempDir()), "limit"},
		{"seed", append(append([]string{"seed"}, engineArgs...), big, t.TempDir()), "limit"},
		{"add", []string{"add", "--data-dir", dataDir, big}, "16 MiB limit"},
		{"add /dev/zero", []string{"add", "--data-dir", dataDir, "/dev/zero"}, "16 MiB limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code, peak := runWatched(t, time.Minute, tc.args...)
			t.Logf("exit %d, peak RSS %d MiB: %s", code, peak>>20, strings.TrimSpace(out))
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want 1 with %q in:\n%s", code, tc.want, out)
			}
		})
	}
	if n := adds.Load(); n != 0 {
		t.Errorf("add sent %d oversized torrents to the mount", n)
	}
}

// TestGetPathTooLong gets a torrent into a folder so deep that its file's
// path passes PATH_MAX: get fails at once and says why, instead of
// downloading for ever what it can never write.
func TestGetPathTooLong(t *testing.T) {
	name := strings.Repeat("n", 200)
	tor, _ := writeTorrent(t, name, nil)
	dir := t.TempDir()
	for len(dir) < pathMax-150 {
		dir = filepath.Join(dir, strings.Repeat("d", 100))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code, _ := runWatched(t, time.Minute, "get", "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-trackers", tor, dir)
	if code != 1 || !strings.Contains(out, "longer than the system allows") {
		t.Errorf("get into a folder %d bytes deep: exit %d:\n%s", len(dir), code, out)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), name)); err == nil {
		t.Error("get created the file anyway")
	}
}

// TestControlOtherUser runs status and add as user nobody against a data
// directory whose mount runs as root: both say permission denied, not that
// no mount runs. A data directory with no mount, or a dead socket, still
// says no mount runs.
func TestControlOtherUser(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) not found")
		}
		t.Skip("setpriv (util-linux) not found")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run a command as nobody")
		}
		t.Skip("needs root to run a command as nobody")
	}
	// A copy of the binary that nobody may run (the test's temporary
	// folders are 0700).
	binDir, err := os.MkdirTemp("", "swarmfs-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	bin := filepath.Join(binDir, "swarmfs")
	b, err := os.ReadFile(swarmfsBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	fakeControl(t, dataDir)
	tor, _ := writeTorrent(t, "mine.bin", nil)
	if err := os.Chmod(filepath.Dir(tor), 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := []string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin}
	for _, args := range [][]string{{"status", "--data-dir", dataDir}, {"add", "--data-dir", dataDir, tor}} {
		out, err := runProgErr(t, time.Minute, setpriv, append(asNobody, args...)...)
		if err == nil || !strings.Contains(out, "permission denied") || strings.Contains(out, "no swarmfs mount") {
			t.Errorf("swarmfs %s as nobody: %v:\n%s", args[0], err, out)
		}
	}
	if out, err := runProgErr(t, time.Minute, bin, "status", "--data-dir", dataDir); err != nil || !strings.Contains(out, "no torrents mounted") {
		t.Errorf("swarmfs status as the owner: %v:\n%s", err, out)
	}

	// No mount: no socket, or one nobody listens on.
	if _, err := dialControl(filepath.Join(t.TempDir(), "none")); !errors.Is(err, errNoMount) {
		t.Errorf("dial with no data directory: %v", err)
	}
	dead := t.TempDir()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: filepath.Join(dead, controlSocketName)})
	syscall.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialControl(dead); !errors.Is(err, errNoMount) {
		t.Errorf("dial of a dead socket: %v", err)
	}
}
