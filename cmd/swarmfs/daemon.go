package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// --daemon, the way rclone does it: the process re-executes itself with
// daemonEnv set and a pipe as file descriptor 3, in a new session, with
// stdin on /dev/null and stdout and stderr on the log file (or /dev/null).
// The child mounts as usual; when the mount answers it writes "ready MSG"
// on the pipe and closes it, and the parent prints MSG and exits 0. If the
// child fails first it writes "error MSG" (or dies, closing the pipe with
// nothing said) and the parent exits 1 with that error. A mount helper
// must work this way: mount(8) waits for it to exit, and an fstab mount is
// only done when the filesystem can be used.

// daemonEnv marks the re-executed child of --daemon.
const daemonEnv = "_SWARMFS_DAEMON"

// daemonFD is the child's end of the readiness pipe (ExtraFiles[0]).
const daemonFD = 3

func daemonFlag(f *flag.FlagSet) *bool {
	return f.Bool("daemon", false, "run in the background: return once the mount answers (exit 0), or with its error (exit 1); output goes to --log-file")
}

// lifecycle tells whoever waits for the mount that it is ready, then that
// it is stopping: the parent of --daemon through the pipe, systemd through
// $NOTIFY_SOCKET. Its zero value tells nobody.
type lifecycle struct {
	pipe   *os.File // readiness pipe to the --daemon parent; nil when none
	stderr io.Writer

	mu    sync.Mutex // guards the following
	ready bool
	early []byte // what went to stderr before ready, for the parent; bounded
}

// maxEarly bounds the stderr kept for the --daemon parent.
const maxEarly = 16 << 10

// earlyWriter is stderr for a --daemon child: what is written before the
// mount is ready is also kept for the parent, which prints it if the
// mount fails (the child's own stderr is the log file or /dev/null).
type earlyWriter struct {
	lc *lifecycle
	w  io.Writer
}

func (e earlyWriter) Write(p []byte) (int, error) {
	e.lc.mu.Lock()
	if !e.lc.ready && len(e.lc.early) < maxEarly {
		e.lc.early = append(e.lc.early, p[:min(len(p), maxEarly-len(e.lc.early))]...)
	}
	e.lc.mu.Unlock()
	return e.w.Write(p)
}

// wrapStderr returns the stderr the mount should use.
func (lc *lifecycle) wrapStderr(w io.Writer) io.Writer {
	if lc.pipe == nil {
		return w
	}
	return earlyWriter{lc, w}
}

// newLifecycle takes over the readiness pipe when this process is the
// child of --daemon. The variable is cleared so that nothing this process
// starts takes itself for a daemon child, and the descriptor made
// close-on-exec so that no helper (fusermount3) holds the pipe open.
func newLifecycle(stderr io.Writer) *lifecycle {
	lc := &lifecycle{stderr: stderr}
	if os.Getenv(daemonEnv) == "1" {
		os.Unsetenv(daemonEnv)
		syscall.CloseOnExec(daemonFD)
		lc.pipe = os.NewFile(daemonFD, "readiness")
	}
	return lc
}

// daemonChild reports whether this process is the child of --daemon.
func (lc *lifecycle) daemonChild() bool { return lc.pipe != nil }

// markReady says the mount answers; msg is the one line a user sees.
func (lc *lifecycle) markReady(msg string) {
	lc.mu.Lock()
	lc.ready = true
	lc.early = nil
	lc.mu.Unlock()
	if lc.pipe != nil {
		fmt.Fprintf(lc.pipe, "ready %s\n", msg)
		lc.pipe.Close()
		lc.pipe = nil
	}
	if err := sdNotify("READY=1\nSTATUS=" + msg); err != nil {
		fmt.Fprintf(lc.stderr, "swarmfs: %v\n", err)
	}
}

// stopping says the mount is going away (systemd shows "deactivating").
func (lc *lifecycle) stopping() {
	if err := sdNotify("STOPPING=1"); err != nil {
		fmt.Fprintf(lc.stderr, "swarmfs: %v\n", err)
	}
}

// finish reports how the mount ended to a parent still waiting for it.
func (lc *lifecycle) finish(err error) {
	if lc.pipe == nil {
		return
	}
	if err == nil {
		err = errors.New("exited before the mount was ready")
	}
	lc.mu.Lock()
	early := string(lc.early)
	lc.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSuffix(early, "\n"), "\n") {
		if line != "" {
			fmt.Fprintf(lc.pipe, "log %s\n", line)
		}
	}
	fmt.Fprintf(lc.pipe, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	lc.pipe.Close()
	lc.pipe = nil
}

// startDaemon runs "swarmfs mount args..." in the background and waits for
// it to be ready or to fail. logFile, if set, receives its output.
func startDaemon(args []string, logFile string, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if logFile != "" {
		out, err = os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	}
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer out.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	br := bufio.NewReader(io.LimitReader(r, 64<<10))
	var line string
	for {
		l, err := br.ReadString('\n')
		line = strings.TrimSuffix(l, "\n")
		if msg, ok := strings.CutPrefix(line, "log "); ok && err == nil {
			fmt.Fprintln(stderr, msg)
			continue
		}
		break
	}
	if msg, ok := strings.CutPrefix(line, "ready "); ok {
		fmt.Fprintf(stdout, "swarmfs: %s\n", msg)
		return cmd.Process.Release()
	}
	// It failed: reap it (it exits right after saying why, or has died).
	werr := cmd.Wait()
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return errors.New(msg)
	}
	if logFile != "" {
		return fmt.Errorf("the daemon ended before the mount was ready (%v); see %s", werr, logFile)
	}
	return fmt.Errorf("the daemon ended before the mount was ready (%v); run without --daemon, or with --log-file, to see why", werr)
}
