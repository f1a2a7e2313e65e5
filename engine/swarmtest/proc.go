package swarmtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startRetrying returns what start starts, calling it up to three times
// when the client's port was picked by FreePort (fixedPort false): another
// process may take a free port before the client binds it. It fails tb
// with what's error if every try failed.
func startRetrying[T any](tb testing.TB, what string, fixedPort bool, start func() (T, error)) T {
	tb.Helper()
	var lastErr error
	for range 3 {
		v, err := start()
		if err == nil {
			return v
		}
		lastErr = err
		if fixedPort {
			break
		}
	}
	tb.Fatalf("%s: %v", what, lastErr)
	var zero T
	return zero
}

// stderrTail is how much of a child's stderr is kept for the test log.
const stderrTail = 256 << 10

// proc is one child process owned by a test. Its stderr, with its stdout
// unless the caller reads that, is kept (the last stderrTail bytes) and
// written to the test log if the test fails. It is killed and waited for
// in tb.Cleanup, whatever happens to the test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *tailBuffer

	done    chan struct{} // closed once cmd.Wait has returned
	waitErr error         // set before done is closed
}

// startProc starts cmd and registers its cleanup. stop, if not nil, is
// called first at cleanup to ask the process to exit politely; it is killed
// if it has not exited within grace.
//
// The child gets SIGKILL if the test binary dies (Pdeathsig). Linux ties that
// signal to the thread that forked, not the process, and Go may end threads,
// so the child is started and waited for on one goroutine locked to its
// thread: the thread lives exactly as long as the child.
func startProc(tb testing.TB, name string, cmd *exec.Cmd, stop func(), grace time.Duration) (*proc, error) {
	tb.Helper()
	p := &proc{name: name, cmd: cmd, stderr: &tailBuffer{max: stderrTail}, done: make(chan struct{})}
	if os.Getenv("SWARMTEST_VERBOSE") != "" {
		cmd.Stderr = multiWriter{p.stderr, prefixWriter{prefix: name + ": ", w: os.Stderr}}
	} else {
		cmd.Stderr = p.stderr
	}
	if cmd.Stdout == nil {
		// What a child prints on stdout (rtorrent's start-up errors)
		// goes with its stderr, unless the caller reads it.
		cmd.Stdout = cmd.Stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Pipes are closed this long after the process exits even if a
	// grandchild still holds them, so Wait cannot hang.
	cmd.WaitDelay = 2 * time.Second

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine, after
		// the child is gone.
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	tb.Cleanup(func() {
		if stop != nil {
			stop()
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		p.kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			tb.Errorf("swarmtest: %s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if tb.Failed() {
			p.logStderr(tb)
		}
	})
	return p, nil
}

// kill sends SIGKILL unless the process has already been waited for.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

func (p *proc) logStderr(tb testing.TB) {
	tb.Helper()
	out := p.stderr.String()
	if out == "" {
		tb.Logf("swarmtest: %s (pid %d): no stderr output", p.name, p.cmd.Process.Pid)
		return
	}
	tb.Logf("swarmtest: %s (pid %d) stderr:\n%s", p.name, p.cmd.Process.Pid, out)
}

// tailBuffer is an io.Writer that keeps the last max bytes written.
// It is safe for concurrent use.
type tailBuffer struct {
	max int

	mu      sync.Mutex // guards the following
	buf     []byte
	dropped int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		// Drop whole lines where possible so the log starts cleanly.
		cut := over
		if i := bytes.IndexByte(b.buf[over:], '\n'); i >= 0 && i < 4096 {
			cut = over + i + 1
		}
		b.dropped += int64(cut)
		b.buf = append(b.buf[:0], b.buf[cut:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[... %d bytes dropped ...]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}

type multiWriter []io.Writer

func (m multiWriter) Write(p []byte) (int, error) {
	for _, w := range m {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

// prefixWriter writes p to w with prefix before it; used only for the
// SWARMTEST_VERBOSE live view, so lines split across writes are acceptable.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (pw prefixWriter) Write(p []byte) (int, error) {
	_, _ = pw.w.Write(append([]byte(pw.prefix), p...))
	return len(p), nil
}

// errExited is returned when a child ends while a caller waits on it.
var errExited = errors.New("process exited")
