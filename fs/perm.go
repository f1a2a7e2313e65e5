package fs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Who may do what. Reading (listing, stat, reading files, getxattr) is open
// to everyone the kernel lets in: the mounting user only, or, with
// Options.AllowOther, every local user. Changing is not: adding a torrent (a
// .torrent or .magnet written into the root, a mkdir of an info-hash) makes
// the process fetch from the network and fill the cache, and removing one
// (rmdir) deletes its cached data, so only the mounting user and root may.
//
// Two layers enforce it, each enough on its own:
//
//   - The mount's default_permissions option makes the kernel check the modes
//     and owners we report (attr.go: everything is owned by the mounting
//     user; the root is 0755, folders 0555, files 0444), so another user's
//     mkdir, rmdir or create in the root fails with EACCES before it reaches
//     us. Root passes the kernel's checks, as on any filesystem.
//   - Every handler that can change something calls mayChange first, so the
//     rule holds whatever modes the nodes report.
//
// A handler refuses with EACCES, the errno the kernel gives for a write to a
// folder one may not write. An open file handle keeps the rights of whoever
// opened it, as with any file: its writes are not checked again (only the
// mounting user or root can have created it).

// mayChange tells whether the caller of the request in ctx may change the
// filesystem: the mounting user or root. A context without a caller (not a
// FUSE request) may not.
func (s *Server) mayChange(ctx context.Context) bool {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return false
	}
	return c.Uid == 0 || c.Uid == s.owner
}

// changeErrno is 0 if the caller may change the filesystem, EACCES if not.
// It waits for the Host to be ready first (see Options.HostReady).
func (s *Server) changeErrno(ctx context.Context) syscall.Errno {
	if !s.mayChange(ctx) {
		return syscall.EACCES
	}
	return s.awaitReady(ctx)
}
