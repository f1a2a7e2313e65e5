package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// unitExecStart reads the ExecStart line of the repository's unit file
// and expands it the way systemd would for mount point mnt (%f, %i, %I),
// with bin for /usr/bin/swarmfs and dataDir for the service's cache dir.
func unitExecStart(t *testing.T, bin, mnt, dataDir string) []string {
	t.Helper()
	unit, err := os.ReadFile("../../contrib/systemd/swarmfs@.service")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			line = v
		}
	}
	if !strings.Contains(string(unit), "\nType=notify\n") || line == "" {
		t.Fatalf("the unit is not Type=notify with an ExecStart:\n%s", unit)
	}
	inst := strings.ReplaceAll(strings.TrimPrefix(mnt, "/"), "/", "-") // systemd-escape --path, enough for temp dirs
	line = strings.NewReplacer("/var/cache/swarmfs/%i", dataDir, "%f", mnt, "%I", mnt, "%i", inst).Replace(line)
	args := strings.Fields(line)
	if args[0] != "/usr/bin/swarmfs" || args[1] != "mount" {
		t.Fatalf("ExecStart %q does not run /usr/bin/swarmfs mount", line)
	}
	args[0] = bin
	return args
}

// TestSystemdNotify runs the unit's ExecStart as systemd would, with
// NOTIFY_SOCKET set to a socket the test reads: READY=1 must come after
// the mount answers, and SIGTERM must bring STOPPING=1 and a clean exit
// that leaves no mount.
func TestSystemdNotify(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	torrent, content, addr := startSeed(t, "n.txt")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-readerDone })

	args := unitExecStart(t, swarmfsBin(t), mnt, filepath.Join(dir, "cache"))
	// The test's own settings: loopback only, the seeder as the peer.
	args = append(args[:2:2], append([]string{"--listen=127.0.0.1:0", "--no-dht", "--no-lsd", "--no-trackers", "--peer=" + addr}, args[2:]...)...)
	args = append(args, torrent) // a real service restores its torrents from the cache
	var out syncBuffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	recordMount(mnt)
	c, err := startChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.signal(syscall.SIGKILL)
		c.wait(kernelSlack)
		if isMounted(mnt) {
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
		if t.Failed() {
			t.Logf("swarmfs output:\n%s", out.String())
		}
	})
	next := func(what string) string {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(kernelSlack):
			t.Fatalf("no %s notification after %v", what, kernelSlack)
		case <-c.done:
			t.Fatalf("swarmfs exited before %s", what)
		}
		return ""
	}
	m := next("READY=1")
	if !strings.Contains(m, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	// Ready means ready: no waiting from here.
	if !isMounted(mnt) {
		t.Fatal("READY=1 before the mount is in the mount table")
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "n.txt", "n.txt")); err != nil || string(b) != content {
		t.Fatalf("read after READY=1: %q, %v", b, err)
	}
	c.signal(syscall.SIGTERM)
	if m := next("STOPPING=1"); !strings.Contains(m, "STOPPING=1") {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", m)
	}
	if !c.wait(kernelSlack) {
		t.Fatal("swarmfs still running after SIGTERM")
	}
	if code := c.exitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after SIGTERM")
	}
}

func TestSdNotifyAbstract(t *testing.T) {
	name := "@swarmfs-test-" + filepath.Base(t.TempDir())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if line != "READY=1" {
		t.Fatalf("got %q, %v", line, err)
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1")
	if err := sdNotify("READY=1"); err == nil {
		t.Fatal("a vsock address accepted")
	}
}
