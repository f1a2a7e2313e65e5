package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Errors the filesystem produces itself; toErrno maps them like any other.
var (
	// errTooLarge: a file written into the root exceeds its bound.
	errTooLarge = errors.New("file too large")
	// errUnmounting: the filesystem is shutting down; pending reads fail
	// (EIO). It wraps context.Canceled, so Readers see a cancellation.
	errUnmounting = fmt.Errorf("filesystem is unmounting: %w", context.Canceled)
	// errRemoved: the torrent was removed while a read waited on it (EIO).
	errRemoved = fmt.Errorf("torrent removed: %w", context.Canceled)
)

// toErrno is the one place where errors become errnos. Every FUSE method
// that gets an error from a Host, Torrent or Reader returns toErrno(err).
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errUnmounting),
		errors.Is(err, errRemoved):
		return syscall.EIO
	case errors.Is(err, context.Canceled):
		// The kernel interrupted the request.
		return syscall.EINTR
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, os.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, os.ErrPermission):
		return syscall.EPERM
	case errors.Is(err, errTooLarge):
		return syscall.EFBIG
	case errors.Is(err, metainfo.ErrInvalid), errors.Is(err, metainfo.ErrInvalidMagnet),
		errors.Is(err, os.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, metainfo.ErrUnsupported), errors.Is(err, errors.ErrUnsupported):
		return syscall.ENOTSUP
	default:
		return syscall.EIO
	}
}
