//go:build linux && (amd64 || arm64)

package utp

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ownFD is the socket's UDP descriptor taken out of Go's network poller:
// its reader waits in ppoll on this descriptor alone, on the goroutine's
// own thread. Through the poller, every datagram that found the reader
// asleep cost a round of the Go scheduler on top of the read: an idle
// thread woken in epoll_wait, the goroutine handed to a thread that runs
// it, that thread spinning for more work before it slept again, and a
// read that found nothing before the goroutine parked. On loopback from
// a libtorrent seeder that was about a third of swarmfs's CPU time per
// uTP download, on the two cores the seeder needs (see bench_test.go).
//
// The descriptor stays non-blocking: a system call that would block
// (EAGAIN) waits in ppoll, which Go sees as a blocking system call (its
// thread's P may be lent out meanwhile).
type ownFD struct {
	// mu guards the descriptor's life, not protocol state: every system
	// call on fd holds it for reading (a closed descriptor's number may be
	// reused by the next open), close holds it to close fd.
	mu      sync.RWMutex
	fd      int // -1 once closed
	closing atomic.Bool
}

// takeFD moves uc's socket out of Go's poller: it duplicates the
// descriptor and closes uc, which unregisters the original from the
// poller's epoll set; the duplicate (the same socket, options included)
// was never in it.
func takeFD(uc *net.UDPConn) (*ownFD, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	uc.Close()
	return &ownFD{fd: nfd}, nil
}

// do runs f on the descriptor until f is done (it returns false when
// its system call would block), waiting in between for events (POLLIN or
// POLLOUT) until deadline (zero: none; then os.ErrDeadlineExceeded).
// waitFirst waits before the first call: for a reader whose last read
// drained the socket, one ppoll and one read beat a read that finds
// nothing, a ppoll and a second read.
func (o *ownFD) do(events int16, deadline time.Time, waitFirst bool, f func(fd uintptr) bool) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.fd < 0 {
		return net.ErrClosed
	}
	pfd := []unix.PollFd{{Fd: int32(o.fd), Events: events}}
	for {
		if o.closing.Load() {
			return net.ErrClosed
		}
		if !waitFirst && f(uintptr(o.fd)) {
			return nil
		}
		waitFirst = false
		var ts *unix.Timespec
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := unix.NsecToTimespec(int64(d))
			ts = &t
		}
		if _, err := unix.Ppoll(pfd, ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// close wakes whoever waits in ppoll (shutdown marks the socket shut in
// both directions, which every poller sees as an event; on a UDP socket
// it also answers ENOTCONN, which does not matter), waits for the system
// calls in progress and closes the descriptor.
func (o *ownFD) close() error {
	o.closing.Store(true)
	o.mu.RLock()
	fd := o.fd
	if fd >= 0 {
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	o.mu.RUnlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return net.ErrClosed
	}
	err := unix.Close(o.fd)
	o.fd = -1
	return err
}
