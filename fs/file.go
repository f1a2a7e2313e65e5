package fs

// Lock order: readCtx.mu is a leaf; fileHandle has no lock of its own.

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileNode is a file of a torrent. Its attributes are fixed except st_blocks,
// which follows the bytes cached.
type fileNode struct {
	gofs.Inode
	readOnly

	// Read-only once linked into the tree.
	srv   *Server
	t     Torrent
	index int // into Info().Files
	// removed is closed when the torrent is removed: pending reads end.
	removed <-chan struct{}
	size    int64
	ino     uint64
	mtime   time.Time
	media   bool
}

var (
	_ gofs.NodeGetattrer   = (*fileNode)(nil)
	_ gofs.NodeOpener      = (*fileNode)(nil)
	_ gofs.NodeStatfser    = (*fileNode)(nil)
	_ gofs.NodeGetxattrer  = (*fileNode)(nil)
	_ gofs.NodeListxattrer = (*fileNode)(nil)
)

// fill sets the file's attributes and returns how long the kernel may cache
// them: long once the file is complete, short while st_blocks still moves.
func (n *fileNode) fill(out *fuse.Attr) time.Duration {
	cached := n.cachedBytes()
	out.Ino = n.ino
	out.Mode = modeFile
	out.Nlink = 1
	out.Size = uint64(n.size)
	out.Blocks = uint64((cached + 511) / 512)
	out.Blksize = blockSize
	setTimes(out, n.mtime)
	if cached >= n.size {
		return longTimeout
	}
	return shortTimeout
}

// cachedBytes returns the verified bytes of the file, within [0, size].
func (n *fileNode) cachedBytes() int64 {
	if n.size == 0 {
		return 0
	}
	c := n.t.FileCachedBytes(n.index)
	return max(0, min(c, n.size))
}

func (n *fileNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.SetTimeout(n.fill(&out.Attr))
	return 0
}

func (n *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.srv.root.Statfs(ctx, out)
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return torrentXattr(attr, dest, n.t, n.progress)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return torrentListxattr(dest, n.t)
}

func (n *fileNode) progress() float64 {
	if n.size == 0 {
		return 1
	}
	return float64(n.cachedBytes()) / float64(n.size)
}

// Open gives each open file description its own Reader, so the engine sees
// one sequential stream per program and its readahead can grow. The content
// never changes: the kernel keeps its page cache across opens.
func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	h := &fileHandle{n: n}
	if n.size > 0 {
		// An empty file needs no reader: nothing to fetch.
		h.r = n.t.NewReader(n.index, n.media)
	}
	return h, fuse.FOPEN_KEEP_CACHE, 0
}

// fileHandle is one open file description of a torrent file.
type fileHandle struct {
	// Read-only after Open.
	n *fileNode
	r Reader // nil for an empty file

	closeOnce sync.Once
	// timedOut is when a read last timed out (UnixNano), or 0.
	timedOut atomic.Int64
}

// retryWindow is how long after a read timed out a read on the same handle
// gets no wait of its own.
const retryWindow = 2 * time.Second

var (
	_ gofs.FileReader   = (*fileHandle)(nil)
	_ gofs.FileReleaser = (*fileHandle)(nil)
)

// Read serves a read from the handle's Reader into the buffer go-fuse hands
// in. It waits for the data as long as the read timeout allows, and returns
// EINTR at once when the kernel interrupts the request.
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.n.size
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= size || h.r == nil || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	want := len(dest)
	if int64(want) > size-off {
		want = int(size - off)
	}
	timeout := h.n.srv.readTimeout
	if t := h.timedOut.Load(); t != 0 && time.Since(time.Unix(0, t)) < retryWindow {
		// The kernel retries a failed readahead as a single-page read at
		// once; do not make the program wait a second read timeout.
		timeout = 0
	}
	rc := newReadCtx(ctx, h.n.srv.closing, h.n.removed, timeout)
	got, err := h.r.ReadAt(rc, dest[:want], off)
	cause := rc.release()
	if err != nil && !(errors.Is(err, io.EOF) && got == want) {
		if cause != nil {
			err = cause
		}
		errno := toErrno(err)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			if timeout > 0 {
				h.timedOut.Store(time.Now().UnixNano())
				h.n.srv.logf("swarmfs: read %s at %d: no data after %v", h.n.Path(nil), off, timeout)
			}
		case errno == syscall.EINTR, errors.Is(err, errUnmounting), errors.Is(err, errRemoved):
		default:
			h.n.srv.logf("swarmfs: read %s at %d: %v", h.n.Path(nil), off, err)
		}
		return nil, errno
	}
	if got != want {
		// Never return a short read before end of file: the kernel would
		// fill the rest with zeros.
		h.n.srv.logf("swarmfs: read %s at %d: reader returned %d of %d bytes", h.n.Path(nil), off, got, want)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:got]), 0
}

// Release closes the handle's Reader once the last descriptor is closed.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.closeOnce.Do(func() {
		if h.r != nil {
			if err := h.r.Close(); err != nil {
				h.n.srv.logf("swarmfs: closing reader of %s: %v", h.n.Path(nil), err)
			}
		}
	})
	return 0
}

// readCtx is the context a Reader gets for one read: done when the kernel
// interrupts the request, when the read timeout passes, when the torrent is
// removed, or when the filesystem unmounts. Its Done channel, and the goroutine and timer behind
// it, are made only when a Reader has to wait: a read served from the cache
// costs no allocation, as readCtx values are pooled.
type readCtx struct {
	// Set by newReadCtx, read-only until release.
	parent   context.Context
	closing  <-chan struct{}
	removed  <-chan struct{} // may be nil
	deadline time.Time

	mu   sync.Mutex // guards the following
	done chan struct{}
	stop chan struct{} // closed by release to end the watcher
	exit chan struct{} // closed by the watcher when it returns
	err  error         // why done was closed
}

var _ context.Context = (*readCtx)(nil)

var readCtxPool = sync.Pool{New: func() any { return new(readCtx) }}

func newReadCtx(parent context.Context, closing, removed <-chan struct{}, timeout time.Duration) *readCtx {
	c := readCtxPool.Get().(*readCtx)
	c.parent = parent
	c.closing = closing
	c.removed = removed
	c.deadline = time.Now().Add(timeout)
	return c
}

func (c *readCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *readCtx) Value(key any) any { return c.parent.Value(key) }

func (c *readCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return c.checkLocked()
}

// checkLocked tells, without waiting, whether the read must stop.
func (c *readCtx) checkLocked() error {
	select {
	case <-c.parent.Done():
		return context.Canceled
	case <-c.closing:
		return errUnmounting
	case <-c.removed:
		return errRemoved
	default:
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *readCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if err := c.checkLocked(); err != nil {
			c.err = err
			close(c.done)
		} else {
			c.stop = make(chan struct{})
			c.exit = make(chan struct{})
			go c.watch()
		}
	}
	return c.done
}

// watch closes done when the read must stop. Its owner is the read: release
// stops it and waits for it.
func (c *readCtx) watch() {
	defer close(c.exit)
	timer := time.NewTimer(time.Until(c.deadline))
	defer timer.Stop()
	var err error
	select {
	case <-c.stop:
		return
	case <-c.parent.Done():
		err = context.Canceled
	case <-c.closing:
		err = errUnmounting
	case <-c.removed:
		err = errRemoved
	case <-timer.C:
		err = context.DeadlineExceeded
	}
	c.mu.Lock()
	c.err = err
	close(c.done)
	c.mu.Unlock()
}

// release ends the read: it stops the watcher, if any, and returns why the
// context is done (nil if it is not). A readCtx whose Done was never called
// goes back to the pool; the others are left to the garbage collector, in
// case a Reader kept one against the contract.
func (c *readCtx) release() error {
	c.mu.Lock()
	cause := c.err
	if cause == nil {
		cause = c.checkLocked()
	}
	stop, exit, used := c.stop, c.exit, c.done != nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-exit
	}
	if !used {
		c.parent, c.closing, c.removed = nil, nil, nil
		readCtxPool.Put(c)
	}
	return cause
}
