package main

// Helpers for the end-to-end tests and benchmarks: the swarmfs binary, a
// "swarmfs mount" child process that is always unmounted and killed, the
// shared test data (files and an MP4 whose index is at its end), and small
// process and mount-table utilities.
//
// Nothing here reads the mount from a goroutine that holds a lock the mount
// needs: the mount is another process, so the only way to wedge the test
// binary is a mount that stops answering, and every mount has a watchdog
// (mountProc.abort) that kills it and detaches the mount, which fails every
// pending request with ENOTCONN.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// e2eTemp is a folder for the whole test binary (the binary, shared data);
// TestMain removes it.
var e2eTemp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "swarmfs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2eTemp = dir
	// A race-enabled swarmfs sleeps a second at exit (atexit_sleep_ms),
	// which every subcommand the tests run would pay.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	// Every test stops what it started, also when it fails; a leak here
	// is a bug in a test's cleanup, so it fails the run.
	if leaks := leftovers(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "end-to-end tests left behind:\n  %s\n", strings.Join(leaks, "\n  "))
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// leftovers lists live child processes of this binary and swarmfs mounts on
// folders of its tests, detaching the mounts.
func leftovers() []string {
	var out []string
	self := strconv.Itoa(os.Getpid())
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); i > 0 && len(f) > 1 && f[1] == self && f[0] != "Z" {
			out = append(out, "process "+s[:i+1])
		}
	}
	mounted.Lock()
	defer mounted.Unlock()
	for mnt := range mounted.dirs {
		if isMounted(mnt) {
			out = append(out, "mount "+mnt)
			_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	}
	return out
}

// childPids lists the processes whose parent is pid.
func childPids(pid int) []int {
	var out []int
	parent := strconv.Itoa(pid)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); i > 0 && len(f) > 1 && f[1] == parent {
			if n, err := strconv.Atoi(strings.Fields(s)[0]); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// mounted records every folder this binary mounted something on, for the
// leak check (other processes' mounts are none of its business).
var mounted struct {
	sync.Mutex
	dirs map[string]bool
}

func recordMount(dir string) {
	mounted.Lock()
	defer mounted.Unlock()
	if mounted.dirs == nil {
		mounted.dirs = map[string]bool{}
	}
	mounted.dirs[dir] = true
}

// kernelSlack bounds what waits on the kernel to unmount or to end a
// process. It is long because on a small VM with every CPU busy (make test
// runs packages in parallel) those can take minutes: with two CPU hogs on
// two vCPUs a plain tmpfs umount took 59 s here (waiting in
// synchronize_rcu_expedited under namespace_unlock), and a FUSE umount more
// than 90 s (in wb_shutdown, flushing the writeback work of the mount's
// bdi). Nothing waits this long when the machine is idle.
const kernelSlack = 3 * time.Minute

// The binary is built once, on first use, so unit tests that need none
// don't pay for it.
var binOnce struct {
	sync.Once
	path string
	err  error
}

// swarmfsBin returns $SWARMFS_BIN, or builds ./ into e2eTemp once. When the
// test binary runs with the race detector, so does the child (unless
// SWARMFS_E2E_RACE=0): the end-to-end tests then also hunt races in the
// real filesystem and engine, and mountProc fails the test on a report.
func swarmfsBin(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("SWARMFS_BIN"); p != "" {
			binOnce.path, binOnce.err = filepath.Abs(p)
			return
		}
		out := filepath.Join(e2eTemp, "swarmfs")
		args := []string{"build", "-o", out}
		// Static, as make build makes it, unless the race detector
		// (which needs cgo) is wanted.
		cgo := "CGO_ENABLED=0"
		if raceEnabled && os.Getenv("SWARMFS_E2E_RACE") != "0" {
			args = append(args, "-race")
			cgo = "CGO_ENABLED=1"
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, ".")...)
		cmd.Env = append(os.Environ(), cgo)
		if msg, err := cmd.CombinedOutput(); err != nil {
			binOnce.err = fmt.Errorf("go build: %v\n%s", err, msg)
			return
		}
		binOnce.path = out
	})
	if binOnce.err != nil {
		tb.Fatalf("swarmfs binary: %v", binOnce.err)
	}
	return binOnce.path
}

// swarmfsBinPath is the binary swarmfsBin made, for goroutines that have
// no testing.TB to hand.
func swarmfsBinPath() string { return binOnce.path }

// mountHelp is "swarmfs mount -h", to pass flags only the binary knows.
var mountHelp struct {
	sync.Once
	out string
}

// mountHasFlag reports whether "swarmfs mount" takes --name.
func mountHasFlag(tb testing.TB, name string) bool {
	mountHelp.Do(func() {
		out, _ := exec.Command(swarmfsBin(tb), "mount", "-h").CombinedOutput()
		mountHelp.out = string(out)
	})
	return strings.Contains(mountHelp.out, "  -"+name+"\n") || strings.Contains(mountHelp.out, "  -"+name+" ")
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// child is a process started by a test, waited for on a goroutine locked
// to its thread so that Pdeathsig (SIGKILL if the test binary dies) stays
// armed for the child's whole life.
type child struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed after Wait returned
	waitErr error
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.WaitDelay = 2 * time.Second
	c := &child{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			close(c.done)
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// wait waits up to d for the process to end; false if it has not.
func (c *child) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *child) signal(s os.Signal) {
	if c.running() {
		_ = c.cmd.Process.Signal(s)
	}
}

// exitCode is the exit status, -1 when killed by a signal or still running.
func (c *child) exitCode() int {
	if c.running() || c.cmd.ProcessState == nil {
		return -1
	}
	return c.cmd.ProcessState.ExitCode()
}

// startBg starts a program that reads the mount, killed at cleanup. Its
// output goes to out (nil: discarded).
func startBg(tb testing.TB, out io.Writer, name string, args ...string) *child {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := startChild(cmd)
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		c.signal(syscall.SIGKILL)
		// A process in a FUSE request that reached the mount dies only
		// once the mount answers; the mount's cleanup (registered
		// earlier, so it runs later) guarantees that.
		c.wait(kernelSlack)
	})
	return c
}

// runProg runs a program to completion within timeout and returns its
// combined output, failing the test on a non-zero exit.
func runProg(tb testing.TB, timeout time.Duration, name string, args ...string) string {
	tb.Helper()
	out, err := runProgErr(tb, timeout, name, args...)
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runProgErr is runProg returning the error instead of failing.
func runProgErr(tb testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	tb.Helper()
	var out syncBuffer
	c := startBg(tb, &out, name, args...)
	if !c.wait(timeout) {
		c.signal(syscall.SIGKILL)
		c.wait(kernelSlack)
		return out.String(), fmt.Errorf("still running after %v; killed", timeout)
	}
	return out.String(), c.waitErr
}

// mountOpts describe a "swarmfs mount".
type mountOpts struct {
	// IP is the loopback address to listen on (port chosen by the kernel).
	IP string
	// DataDir and Mountpoint default to fresh temporary folders.
	DataDir, Mountpoint string
	// Flags are extra flags; Sources the torrents, magnets given to mount.
	Flags, Sources []string
	// Watchdog bounds the mount's life: after it, the mount is killed and
	// detached so nothing waiting on it can hang the test run. Default
	// 6 min (more than kernelSlack).
	Watchdog time.Duration
	// Ready is how long to wait for the mount to come up; default
	// kernelSlack.
	Ready time.Duration
	// NoWait returns as soon as the process started, for callers that
	// time the mount themselves.
	NoWait bool
	// CacheSize is --cache-size; default 512MiB.
	CacheSize string
}

// mountProc is a running "swarmfs mount". It is stopped, unmounted and
// killed in tb.Cleanup, whatever the test did.
type mountProc struct {
	tb       testing.TB
	Dir      string // mountpoint
	DataDir  string
	out      syncBuffer // stdout and stderr
	c        *child
	watchdog *time.Timer
	aborted  chan struct{} // closed when the watchdog fired
}

func startMount(tb testing.TB, o mountOpts) *mountProc {
	tb.Helper()
	swarmtest.RequireTools(tb, "fuse")
	bin := swarmfsBin(tb)
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	if o.Mountpoint == "" {
		o.Mountpoint = tb.TempDir()
	}
	if o.Watchdog == 0 {
		o.Watchdog = 6 * time.Minute
	}
	if o.Ready == 0 {
		o.Ready = kernelSlack
	}
	if o.CacheSize == "" {
		o.CacheSize = "512MiB"
	}
	args := []string{"mount", "--data-dir", o.DataDir, "--listen", o.IP + ":0", "--cache-size", o.CacheSize}
	// Nothing may look beyond loopback: no DHT bootstrap, no LSD multicast.
	for _, f := range []string{"no-dht", "no-lsd"} {
		if mountHasFlag(tb, f) {
			args = append(args, "--"+f)
		}
	}
	args = append(args, o.Flags...)
	args = append(args, o.Mountpoint)
	args = append(args, o.Sources...)
	m := &mountProc{tb: tb, Dir: o.Mountpoint, DataDir: o.DataDir, aborted: make(chan struct{})}
	recordMount(o.Mountpoint)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &m.out, &m.out
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0 exitcode=66 atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	c, err := startChild(cmd)
	if err != nil {
		tb.Fatalf("start swarmfs mount: %v", err)
	}
	m.c = c
	m.watchdog = time.AfterFunc(o.Watchdog, func() {
		if !c.running() {
			return // it ended; the cleanup only has to check how
		}
		close(m.aborted)
		m.dumpState()
		m.abort()
	})
	tb.Cleanup(m.cleanup)
	if o.NoWait {
		return m
	}
	// Up when the mount table shows it and the control socket answers
	// (the "mounted at" line is printed after both).
	deadline := time.Now().Add(o.Ready)
	for !strings.Contains(m.out.String(), " mounted at ") {
		if !c.running() {
			tb.Fatalf("swarmfs mount exited (%v) before mounting:\n%s", c.waitErr, m.out.String())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmfs mount not up after %v:\n%s", o.Ready, m.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !isMounted(m.Dir) {
		tb.Fatalf("swarmfs mount says it is mounted but %s is not in the mount table:\n%s", m.Dir, m.out.String())
	}
	return m
}

// Output is what the mount printed so far.
func (m *mountProc) Output() string { return m.out.String() }

// Pid is the mount process's pid.
func (m *mountProc) Pid() int { return m.c.cmd.Process.Pid }

// abort kills the mount and detaches it: every request still waiting on it
// fails with ENOTCONN, so nothing can hang on it.
func (m *mountProc) abort() {
	m.c.signal(syscall.SIGKILL)
	m.c.wait(kernelSlack)
	if isMounted(m.Dir) {
		_ = exec.Command("fusermount3", "-u", "-z", m.Dir).Run()
	}
}

// dumpState writes the mount's status and its goroutines (SIGQUIT makes a
// Go program print them and exit) into its output, for the test log.
func (m *mountProc) dumpState() {
	// Its children first (a fusermount3 that hangs): what the kernel has
	// them wait on.
	for _, pid := range childPids(m.Pid()) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		stack, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stack", pid))
		fmt.Fprintf(&m.out, "\n=== child %d of the stuck mount: %s\n%s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), stack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := exec.CommandContext(ctx, swarmfsBinPath(), "status", "--json", "--data-dir", m.DataDir).CombinedOutput(); err == nil {
		fmt.Fprintf(&m.out, "\n=== swarmfs status when stuck:\n%s\n", st)
	}
	fmt.Fprintf(&m.out, "\n=== goroutines when stuck (SIGQUIT):\n")
	m.c.signal(syscall.SIGQUIT)
	m.c.wait(3 * time.Second)
}

// stop asks the mount to end (SIGINT) and reports whether it exited within
// grace. It does not fail the test.
func (m *mountProc) stop(grace time.Duration) bool {
	m.c.signal(os.Interrupt)
	return m.c.wait(grace)
}

// StopClean stops the mount with SIGINT, as a user's Ctrl-C, and fails the
// test unless it exits with status 0 within kernelSlack and leaves no mount.
func (m *mountProc) StopClean(tb testing.TB) {
	tb.Helper()
	if !m.stop(kernelSlack) {
		m.dumpState()
		tb.Fatalf("swarmfs mount still running %v after SIGINT:\n%s", kernelSlack, m.Output())
	}
	if code := m.c.exitCode(); code != 0 {
		tb.Fatalf("swarmfs mount exited with %d (%v) after SIGINT:\n%s", code, m.c.waitErr, m.Output())
	}
	if isMounted(m.Dir) {
		tb.Fatalf("%s still mounted after swarmfs mount exited", m.Dir)
	}
	m.checkRace(tb)
}

// Kill9 kills the mount as a crash would, leaving a dead mount behind.
func (m *mountProc) Kill9(tb testing.TB) {
	tb.Helper()
	m.c.signal(syscall.SIGKILL)
	if !m.c.wait(kernelSlack) {
		tb.Fatal("swarmfs mount survived SIGKILL")
	}
}

func (m *mountProc) cleanup() {
	m.watchdog.Stop()
	select {
	case <-m.aborted:
		m.tb.Errorf("swarmfs mount on %s was still running at its watchdog deadline: killed and detached", m.Dir)
	default:
	}
	if m.c.running() && !m.stop(kernelSlack) {
		m.tb.Errorf("swarmfs mount did not exit within %v of SIGINT; killing it", kernelSlack)
		m.dumpState()
		m.abort()
	}
	if isMounted(m.Dir) {
		_ = exec.Command("fusermount3", "-u", "-z", m.Dir).Run()
	}
	if !m.c.wait(kernelSlack) {
		stack, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stack", m.Pid()))
		m.tb.Errorf("swarmfs mount (pid %d) did not exit after SIGKILL; kernel stack:\n%s", m.Pid(), stack)
	}
	m.checkRace(m.tb)
	if m.tb.Failed() {
		m.tb.Logf("swarmfs mount %s output:\n%s", m.Dir, m.Output())
	}
}

// checkRace fails the test if the (race-enabled) mount reported a race.
func (m *mountProc) checkRace(tb testing.TB) {
	if out := m.Output(); strings.Contains(out, "WARNING: DATA RACE") {
		i := strings.Index(out, "WARNING: DATA RACE")
		tb.Errorf("swarmfs mount reported a data race:\n%s", out[max(0, i-100):])
	}
}

// waitPath waits until path exists, failing after timeout.
func waitPath(tb testing.TB, path string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear within %v: %v", path, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGone waits until path no longer exists, failing after timeout.
func waitGone(tb testing.TB, path string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s still there after %v (%v)", path, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isMounted reports whether dir is a mount point, from /proc/self/mountinfo
// (never stat: a dead mount's stat fails, a wedged one's blocks).
func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMountinfo(f[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// swarmfsCmd runs a swarmfs subcommand (add, rm, status, ...) and returns
// its output and exit code.
func swarmfsCmd(tb testing.TB, args ...string) (string, int) {
	tb.Helper()
	out, err := runProgErr(tb, 60*time.Second, swarmfsBin(tb), args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	default:
		tb.Fatalf("swarmfs %s: %v\n%s", strings.Join(args, " "), err, out)
		return out, -1
	}
}

// makeVideo writes an MP4 of secs seconds with the index (moov) after the
// media data (mdat), as ffmpeg writes it without -movflags +faststart:
// a player must read the file's end before it can play its start. GOP one
// second, so a seek lands near its target.
func makeVideo(tb testing.TB, path string, secs int, size string, bitrate string) {
	tb.Helper()
	swarmtest.RequireTools(tb, "ffmpeg")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	d := strconv.Itoa(secs)
	runProg(tb, 5*time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=duration="+d+":size="+size+":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-shortest", path)
	boxes, err := topBoxes(path)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	mdat, moov := slicesIndex(boxes, "mdat"), slicesIndex(boxes, "moov")
	if mdat < 0 || moov < mdat {
		tb.Fatalf("%s: top-level boxes %v: want moov after mdat", path, boxes)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// topBoxes lists the types of an MP4 file's top-level boxes, in order.
func topBoxes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var types []string
	var hdr [16]byte
	for off := int64(0); off < st.Size(); {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return types, fmt.Errorf("box header at %d: %w", off, err)
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch size {
		case 0: // to the end of the file
			size = st.Size() - off
		case 1: // 64-bit size follows
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				return types, err
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if size < 8 {
			return types, fmt.Errorf("box %q at %d: size %d", typ, off, size)
		}
		types = append(types, typ)
		off += size
	}
	return types, nil
}

// startTracker starts opentracker serving ihs and waits until it answers
// announces for each. (Not Tracker.Allow: its probe escapes the info-hash
// with url.QueryEscape, which turns a 0x20 byte into '+', which opentracker
// does not decode, so it never sees a hash with such a byte served. And
// StartTracker returns before opentracker has read its whitelist.)
func startTracker(tb testing.TB, ihs ...[20]byte) *swarmtest.Tracker {
	tb.Helper()
	tr := swarmtest.StartTracker(tb, ihs...)
	for _, ih := range ihs {
		waitTracker(tb, tr, ih)
	}
	return tr
}

// waitTracker announces a placeholder peer (127.0.0.1:1) for ih until the
// tracker takes it, then withdraws it.
func waitTracker(tb testing.TB, tr *swarmtest.Tracker, ih [20]byte) {
	tb.Helper()
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	announce := func(event string) (string, error) {
		var q strings.Builder
		q.WriteString(tr.HTTP + "?info_hash=")
		for _, b := range ih {
			fmt.Fprintf(&q, "%%%02X", b)
		}
		q.WriteString("&peer_id=-SF0001-swarmfse2eprobe&port=1&uploaded=0&downloaded=0&left=1&compact=1&event=" + event)
		resp, err := c.Get(q.String())
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return string(b), err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := announce("started")
		if err == nil && !strings.Contains(body, "failure reason") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("tracker does not serve %x: %v %q", ih, err, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := announce("stopped"); err != nil {
		tb.Fatalf("tracker: withdraw the probe: %v", err)
	}
}
