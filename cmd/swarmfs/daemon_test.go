package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// processesWith lists the pids of processes whose command line holds s.
func processesWith(s string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, strings.Split(p, "/")[2])
		}
	}
	return out
}

// TestDaemonReady mounts with --daemon: the command returns 0 only once
// the mount answers (the file reads at once, no waiting), and the daemon,
// nobody's child, ends when the mount is unmounted.
func TestDaemonReady(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	torrent, content, addr := startSeed(t, "d.txt")
	mnt, logFile := t.TempDir(), filepath.Join(t.TempDir(), "log")
	var out string
	stopDaemonAt(t, mnt, func() string { return out })
	out, err := runProgErr(t, 2*time.Minute, swarmfsBin(t), "mount", "--daemon", "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd",
		"--no-trackers", "--peer", addr, "--data-dir", t.TempDir(), "--log-file", logFile, mnt, torrent)
	if err != nil {
		t.Fatalf("mount --daemon: %v\n%s", err, out)
	}
	if !isMounted(mnt) {
		t.Fatalf("mount --daemon returned before mounting:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(mnt, "d.txt", "d.txt"))
	if err != nil || string(b) != content {
		t.Fatalf("read %q, %v; want %q", b, err, content)
	}
	m := daemonPidRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("mount --daemon did not say the daemon's pid:\n%s", out)
	}
	runProg(t, kernelSlack, "fusermount3", "-u", mnt)
	deadline := time.Now().Add(kernelSlack)
	for len(processesWith(mnt)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon still runs after its mount was unmounted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	logb, _ := os.ReadFile(logFile)
	if !strings.Contains(string(logb), "mounted at "+mnt) {
		t.Errorf("the log file lacks the daemon's output:\n%s", logb)
	}
}

// TestDaemonError: when the mount cannot start, --daemon exits 1 with the
// reason, leaves no mount and no process.
func TestDaemonError(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	bad := filepath.Join(t.TempDir(), "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod4:name1:xee"), 0o644)
	mnt := t.TempDir()
	var out string
	stopDaemonAt(t, mnt, func() string { return out })
	out, err := runProgErr(t, 2*time.Minute, swarmfsBin(t), "mount", "--daemon", "--listen", "127.0.0.1:0", "--no-dht", "--no-lsd",
		"--data-dir", t.TempDir(), mnt, bad)
	if err == nil {
		t.Fatalf("mount --daemon of a bad torrent succeeded:\n%s", out)
	}
	for _, want := range []string{"bad.torrent", "not mounting"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if isMounted(mnt) {
		t.Errorf("%s mounted", mnt)
	}
	if p := processesWith(mnt); len(p) > 0 {
		t.Errorf("processes left: %v", p)
	}
}
