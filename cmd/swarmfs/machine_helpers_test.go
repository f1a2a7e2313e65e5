package main

// Helpers for the tests of swarmfs on a real machine (mount helper,
// --daemon, systemd notify, the package): a local seeder, required tools,
// and a daemon that is always stopped.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// requireProgs fails (under CI=true) or skips unless every program is on
// PATH.
func requireProgs(tb testing.TB, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("missing test tool %s: %v", n, err)
			}
			tb.Skipf("missing test tool %s: %v", n, err)
		}
	}
}

// requireRoot fails (under CI=true) or skips unless the test runs as root,
// which private mount namespaces need.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("this test needs root (a private mount namespace)")
		}
		tb.Skip("this test needs root (a private mount namespace)")
	}
}

var seedAddrRE = regexp.MustCompile(`seeding .* on (127\.0\.0\.1:[0-9]+)`)

// startSeed writes a small single-file torrent, seeds it with "swarmfs
// seed" on loopback (stopped at cleanup) and returns the .torrent's path,
// the file's name and content, and the seeder's address.
func startSeed(t *testing.T, name string) (torrent, content, addr string) {
	t.Helper()
	torrent, _ = writeTorrent(t, name, nil)
	content = "the data of " + name
	var out syncBuffer
	c := startBg(t, &out, swarmfsBin(t), "seed", "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-trackers", torrent, filepath.Dir(torrent))
	deadline := time.Now().Add(time.Minute)
	for {
		if m := seedAddrRE.FindStringSubmatch(out.String()); m != nil {
			return torrent, content, m[1]
		}
		if !c.running() || time.Now().After(deadline) {
			t.Fatalf("swarmfs seed did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var daemonPidRE = regexp.MustCompile(`\(pid ([0-9]+)\)`)

// stopDaemonAt registers a cleanup that unmounts mnt and kills the daemon
// whose "(pid N)" is in out, whatever the test did: a daemon is nobody's
// child, so the leak check of TestMain cannot see it.
func stopDaemonAt(t *testing.T, mnt string, out func() string) {
	recordMount(mnt)
	t.Cleanup(func() {
		if isMounted(mnt) {
			_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
		m := daemonPidRE.FindStringSubmatch(out())
		if m == nil {
			return
		}
		pid, _ := strconv.Atoi(m[1])
		deadline := time.Now().Add(kernelSlack)
		for processAlive(pid) && time.Now().Before(deadline) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("daemon %d still running after unmount and SIGTERM: killed", pid)
		}
	})
}

// processAlive reports whether pid runs (a zombie does not: a daemon's
// parent is init, which may be slow to reap it).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ')' {
			return i+2 < len(s) && s[i+2] != 'Z'
		}
	}
	return true
}
