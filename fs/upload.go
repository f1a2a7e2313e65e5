package fs

// Lock order: rootNode.mu → uploadNode.mu → go-fuse Inode locks; uploadNode.mu
// is not held across the Host call.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// uploadNode is a NAME.torrent or NAME.magnet file being written into the
// root. Its content is held in memory, bounded, and handed to the Host when
// the file is closed; then the file disappears, whether the add worked or
// not. A bad torrent fails the close(2) (EINVAL) and leaves a log line.
type uploadNode struct {
	gofs.Inode

	// Read-only after construction.
	srv  *Server
	root *rootNode
	name string
	kind string // ".torrent" or ".magnet"

	mu sync.Mutex // guards the following
	// buf holds what was written so far.
	buf []byte
	// done is set once the content was handed to the Host; result is the
	// errno that add returned.
	done   bool
	result syscall.Errno
	// gone is set once the file is unlinked from the root.
	gone bool
}

var (
	_ gofs.NodeGetattrer   = (*uploadNode)(nil)
	_ gofs.NodeSetattrer   = (*uploadNode)(nil)
	_ gofs.NodeOpener      = (*uploadNode)(nil)
	_ gofs.NodeSetxattrer  = (*uploadNode)(nil)
	_ gofs.NodeGetxattrer  = (*uploadNode)(nil)
	_ gofs.NodeListxattrer = (*uploadNode)(nil)
)

// limit is the most this file may hold.
func (u *uploadNode) limit() int64 {
	if u.kind == ".magnet" {
		return MaxMagnetFileSize
	}
	return MaxTorrentFileSize
}

// fill sets the attributes of the file being written.
func (u *uploadNode) fill(out *fuse.Attr) {
	u.mu.Lock()
	size := len(u.buf)
	u.mu.Unlock()
	out.Mode = modeUpload
	out.Nlink = 1
	out.Size = uint64(size)
	out.Blocks = uint64((size + 511) / 512)
	out.Blksize = blockSize
	setTimes(out, u.srv.mountTime)
}

func (u *uploadNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	u.fill(&out.Attr)
	out.SetTimeout(1)
	return 0
}

// Setattr accepts a truncation (O_TRUNC, ftruncate) and ignores mode, owner
// and times, so cp -p works. By path (truncate(2), no handle), only the
// mounting user and root may (perm.go): the content is what will be added.
// Through a handle, the handle's rights apply, as for its writes.
func (u *uploadNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if f == nil {
		if errno := u.srv.changeErrno(ctx); errno != 0 {
			return errno
		}
	}
	if size, ok := in.GetSize(); ok {
		if int64(size) > u.limit() {
			return toErrno(errTooLarge)
		}
		u.mu.Lock()
		if int(size) <= len(u.buf) {
			u.buf = u.buf[:size]
		} else {
			u.buf = append(u.buf, make([]byte, int(size)-len(u.buf))...)
		}
		u.mu.Unlock()
	}
	u.fill(&out.Attr)
	out.SetTimeout(1)
	return 0
}

// Open of a file still being written by someone else is refused.
func (u *uploadNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, syscall.EBUSY
}

// Setxattr is ignored (cp --preserve=all), Getxattr finds nothing.
func (u *uploadNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

func (u *uploadNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

func (u *uploadNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

func (u *uploadNode) write(data []byte, off int64) (uint32, syscall.Errno) {
	end := off + int64(len(data))
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if end > u.limit() {
		u.srv.logf("swarmfs: %s: larger than %d bytes", u.name, u.limit())
		return 0, toErrno(errTooLarge)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		// Already added: a second close would add it again.
		return 0, syscall.EBADF
	}
	if end > int64(len(u.buf)) {
		if end > int64(cap(u.buf)) {
			nb := make([]byte, end, max(end, 2*int64(cap(u.buf))))
			copy(nb, u.buf)
			u.buf = nb
		} else {
			u.buf = u.buf[:end]
		}
	}
	copy(u.buf[off:], data)
	return uint32(len(data)), 0
}

// submit hands the content to the Host, once, and unlinks the file. Before
// the last close (final unset) an empty file is left alone: a shell's
// "> x.magnet" opens, dups and closes the descriptor before the first write.
func (u *uploadNode) submit(final bool) syscall.Errno {
	u.mu.Lock()
	if u.done {
		r := u.result
		u.mu.Unlock()
		return r
	}
	if len(u.buf) == 0 && !final {
		u.mu.Unlock()
		return 0
	}
	u.done = true
	data := u.buf
	u.buf = nil
	u.mu.Unlock()

	errno := u.add(data)

	u.mu.Lock()
	u.result = errno
	u.mu.Unlock()
	u.unlink()
	return errno
}

// add adds the torrent in data and shows its folder.
func (u *uploadNode) add(data []byte) syscall.Errno {
	var t Torrent
	var err error
	switch u.kind {
	case ".magnet":
		uri := firstLine(data)
		if uri == "" {
			err = fmt.Errorf("empty magnet file: %w", os.ErrInvalid)
		} else {
			t, err = u.srv.host.AddMagnet(uri)
		}
	default:
		if len(data) == 0 {
			err = fmt.Errorf("empty torrent file: %w", os.ErrInvalid)
		} else {
			t, err = u.srv.host.AddTorrentFile(data)
		}
	}
	if err != nil {
		u.srv.logf("swarmfs: adding %s: %v", u.name, err)
		return toErrno(err)
	}
	// The file goes first so the folder may take its name.
	u.unlink()
	u.root.add(context.Background(), t, "")
	return 0
}

// unlink removes the file from the root and tells the kernel, once. It
// notifies the kernel directly, unlike the rest of the package (see
// notifier): it runs from Flush or Release, which hold no directory lock,
// and no request on the root waits for a flush; going through the notifier
// would leave the name visible to a stat right after close(2).
func (u *uploadNode) unlink() {
	u.mu.Lock()
	gone := u.gone
	u.gone = true
	u.mu.Unlock()
	if gone {
		return
	}
	if u.root.GetChild(u.name) == u.EmbeddedInode() {
		u.root.RmChild(u.name)
	}
	u.root.NotifyDelete(u.name, u.EmbeddedInode())
}

// firstLine returns the first non-blank line of data, trimmed.
func firstLine(data []byte) string {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if s := strings.TrimSpace(string(line)); s != "" {
			return s
		}
	}
	return ""
}

// uploadHandle is the open file of an uploadNode.
type uploadHandle struct {
	u *uploadNode
}

var (
	_ gofs.FileWriter   = (*uploadHandle)(nil)
	_ gofs.FileFlusher  = (*uploadHandle)(nil)
	_ gofs.FileReleaser = (*uploadHandle)(nil)
	_ gofs.FileReader   = (*uploadHandle)(nil)
	_ gofs.FileFsyncer  = (*uploadHandle)(nil)
)

func (h *uploadHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return h.u.write(data, off)
}

func (h *uploadHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.u.mu.Lock()
	defer h.u.mu.Unlock()
	if off >= int64(len(h.u.buf)) {
		return fuse.ReadResultData(nil), 0
	}
	n := copy(dest, h.u.buf[off:])
	return fuse.ReadResultData(dest[:n]), 0
}

// Flush runs for every close(2): the first one after some bytes were written
// adds the torrent, and its result is what close returns.
func (h *uploadHandle) Flush(ctx context.Context) syscall.Errno {
	return h.u.submit(false)
}

func (h *uploadHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// Release, after the last close, adds the torrent if no close did (the file
// was left empty: the add fails and is logged) and drops the file.
func (h *uploadHandle) Release(ctx context.Context) syscall.Errno {
	h.u.submit(true)
	return 0
}
