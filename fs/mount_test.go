package fs

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childMountEnv makes the test binary, re-executed, mount a sample torrent on
// the folder it names and wait to be killed (TestStaleMountCleared).
const childMountEnv = "SWARMFS_FS_TEST_CHILD_MOUNT"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childMountEnv); dir != "" {
		childMount(dir)
		return
	}
	flag.Parse()
	stop := startWatchdog()
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "fs: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// childMount serves a sample torrent on dir until killed.
func childMount(dir string) {
	host := newFakeHost(newFakeTorrent("sample", 256<<10, sampleFiles()...))
	srv, err := Mount(dir, host, Options{Logf: func(string, ...any) {}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	srv.Wait()
}

// liveMounts holds the mountpoints of the running tests, so that the
// watchdog can detach them before the test binary dies: a FUSE server that
// dies leaves a dead mount behind.
var liveMounts sync.Map

// startWatchdog detaches every live mount shortly before go test's own
// timeout would kill the binary with them still mounted.
func startWatchdog() (stop func()) {
	limit := 10 * time.Minute
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			limit = d
		}
	}
	limit -= min(limit/10, 30*time.Second)
	timer := time.AfterFunc(limit, func() {
		fmt.Fprintln(os.Stderr, "fs: test watchdog: detaching mounts")
		liveMounts.Range(func(k, _ any) bool {
			exec.Command("fusermount3", "-u", "-z", k.(string)).Run()
			return true
		})
	})
	return func() { timer.Stop() }
}

// requireFUSE skips the test when FUSE is not available, or fails it when
// CI=true says it must be.
func requireFUSE(t testing.TB) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing = append(missing, "/dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		missing = append(missing, "fusermount3")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("FUSE not available (missing %s)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// testLog collects the filesystem's log lines and forwards them to the test
// while it runs.
type testLog struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	done  bool
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if !l.done {
		l.t.Logf("fs log: %s", line)
	}
}

// contains tells whether some line contains s.
func (l *testLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// mountT mounts host on a new folder and unmounts it when the test ends,
// whatever happens: a mount that will not go is detached lazily so the
// folder can be removed and nothing is left behind.
func mountT(t testing.TB, host Host, opts Options) (*Server, string, *testLog) {
	t.Helper()
	requireFUSE(t)
	return mountAtT(t, t.TempDir(), host, opts)
}

// mountAtT is mountT on a folder the test made.
func mountAtT(t testing.TB, dir string, host Host, opts Options) (*Server, string, *testLog) {
	t.Helper()
	requireFUSE(t)
	log := newTestLog(t)
	if opts.Logf == nil {
		opts.Logf = log.logf
	}
	srv, err := Mount(dir, host, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	liveMounts.Store(srv.Mountpoint(), true)
	t.Cleanup(func() {
		defer liveMounts.Delete(srv.Mountpoint())
		unmountT(t, srv)
	})
	return srv, srv.Mountpoint(), log
}

// unmountT unmounts srv within a deadline, detaching it if need be.
func unmountT(t testing.TB, srv *Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Unmount: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Unmount of %s hung; detaching", srv.Mountpoint())
	}
	if _, mounted := mountedOn(srv.Mountpoint()); mounted {
		t.Errorf("%s still mounted after Unmount; detaching", srv.Mountpoint())
		exec.Command("fusermount3", "-u", "-z", srv.Mountpoint()).Run()
	}
}

// eventually retries cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// within runs f and fails the test if it does not return within d (f then
// keeps running in the background; the cleanup detaches the mount).
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
	}
}

// startChild starts a command whose first line of output says it is ready,
// and kills it when the test ends.
func startChild(t testing.TB, cmd *exec.Cmd) *bufio.Reader {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return bufio.NewReader(out)
}
