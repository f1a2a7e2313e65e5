// Package fs is the FUSE filesystem of swarmfs: it shows torrents as folders
// and serves their files from the swarm, with github.com/hanwen/go-fuse/v2's
// node API.
//
// The package knows nothing of the engine: it works against the small
// interfaces it declares (Host, Torrent, Reader), which the command line
// adapts the engine to, and which tests implement with in-memory fakes.
//
// # Tree
//
// The root holds one folder per torrent, named after the torrent (made
// unique, see rootNode.uniqueNameLocked); a single-file torrent is a folder
// holding its one file. A torrent's folders and files are built once, as
// persistent inodes, when its metadata is known: at once for a .torrent, when
// it arrives for a magnet, whose folder is empty (and named after its dn or
// info-hash) until then, and renamed after the torrent when it arrives.
// Listing a folder never waits on the swarm; a lookup inside a magnet's folder
// waits for the metadata (bounded by Options.ReadTimeout), so a program
// opening a path inside a just-added magnet gets the file, not ENOENT. Pad
// files (BEP 47) are not shown. Inode numbers are
// a hash of the info-hash and the path (inoOf), so they are the same at every
// mount; the inode generation counts torrents added, so a torrent removed and
// added again gets fresh inodes even while the kernel remembers the old ones.
//
// Everything under a torrent is read-only (EROFS). The root takes a few
// writes, as commands: a NAME.torrent or NAME.magnet file written into it is
// added when closed (uploadNode), mkdir of a 40-hex name adds that info-hash,
// and rmdir of a torrent folder removes the torrent.
//
// # Permissions
//
// Every node is owned by the mounting user: the root 0755, folders 0555,
// files 0444. The mount uses default_permissions, so the kernel checks these
// modes itself; and every handler that changes something (perm.go) lets only
// the mounting user and root through. With Options.AllowOther, other users
// can therefore read everything but not add or remove torrents (EACCES).
// Root passes the kernel's checks, as everywhere; a non-root mounting user
// writing under a torrent folder gets EACCES from the kernel (its modes say
// read-only) where root gets EROFS from us.
//
// # Caching
//
// The kernel caches three things (see go-fuse's fs/api.go), and the content
// of a torrent never changes, so:
//
//  1. File contents: files open with FOPEN_KEEP_CACHE, so the page cache
//     survives opens and a re-read never comes back to us.
//  2. Attributes: an hour, except a file still downloading, whose st_blocks
//     (the bytes cached, so du shows progress) moves: one second.
//  3. Entries: an hour. The root's entries change when torrents come and go;
//     those changes are pushed to the kernel as notifications.
//
// Kernel notifications are sent by one goroutine (notifier), never from a
// request handler: a notification about a folder takes the kernel's lock on
// that folder, which the request being served may hold. Handlers and Refresh
// only queue them, so the kernel may show a stale root entry for a moment.
// One exception: the file written into the root to add a torrent is removed
// from the kernel's cache directly, from Flush or Release, which hold no
// folder lock and which no request on the root waits for, so that a stat
// right after close(2) does not find it.
//
// # Reads
//
// Each open(2) makes one Reader (Torrent.NewReader), kept on the file handle
// and closed on release: the engine sees one stream per program, and its
// readahead can grow. An empty file gets no Reader. A read waits in
// Reader.ReadAt until the pieces under it are verified; it ends early, and
// fails with EIO, when Options.ReadTimeout passes, when the torrent is
// removed, or when the filesystem unmounts. A read the kernel retries right
// after a timeout (it retries a failed readahead page by page) does not wait
// again. A Reader that returns fewer bytes than asked before end of file gets
// EIO rather than the zeros the kernel would fill in.
//
// Reads are up to 1 MiB (max_read). The FUSE handshake cannot raise the
// kernel's readahead above 128 KiB, so Mount raises the mount's
// /sys/class/bdi/<dev>/read_ahead_kb to 1 MiB where it may (as root);
// buffered reads then reach us in 1 MiB requests. Data is read straight into
// the buffer go-fuse hands in and written back with writev (splice is off:
// it would add a copy through a pipe, and 1 MiB replies do not fit one). The
// read context (readCtx) is pooled and makes its channel, timer and goroutine
// only if the Reader has to wait, so a read of cached data allocates nothing
// of ours (go-fuse's ReadResultData is the one allocation).
//
// # Interrupts
//
// When the reading program gets a signal, the kernel sends an interrupt and
// go-fuse cancels the request's context; the Reader returns ctx.Err() and
// the read EINTR, and the program goes on (or dies) at once. This only works
// for reads sent on behalf of the program: with asynchronous reads the
// kernel sends readahead in the background, uninterruptibly, and a killed
// player would leave them waiting on the swarm. So the mount disables async
// reads (fuse.MountOptions.SyncRead); the kernel still reads ahead, from the
// program's context, one request at a time per file.
//
// Any signal interrupts, not only fatal ones: a Go program reading the mount
// gets SIGURG (goroutine preemption) now and then, and its runtime retries
// the read. A Reader should therefore keep its readahead state across a
// cancelled ReadAt, and only drop what nobody waits for after a while.
//
// # Parallelism
//
// go-fuse serves each request on its own goroutine, so every method here runs
// concurrently with every other, including ReadAt calls on one Reader. The
// locks, outermost first:
//
//	rootNode.mu → torrentDir.mu → uploadNode.mu → go-fuse's Inode locks
//
// with notifier.mu and readCtx.mu as leaves. None is held across a call into
// the Host, a Torrent or a Reader, nor across a kernel notification.
//
// # Deadlocks
//
//   - Kernel notifications from a handler: see Caching; only the notifier
//     sends them.
//   - Waiting forever on the swarm: every wait (a read, a lookup inside a
//     magnet's folder) selects on the request's context, the read timeout,
//     the torrent's removal and the filesystem's shutdown.
//   - Waiting for the Host (Options.HostReady: the mount is made while its
//     cache opens): the root's lookups, listings and changes wait on the
//     request's context and the filesystem's shutdown too.
//   - Unmounting while a program waits in a read: a plain unmount fails
//     (busy); Unmount then fails the pending reads (EIO), retries, and falls
//     back to a lazy unmount.
//   - A crashed swarmfs leaves a dead mount (stat gives ENOTCONN); Mount
//     detaches it with fusermount3 -u -z before mounting again.
//   - Tests that read the mount from the serving process must not start a
//     child with its working directory or inherited files on the mount (see
//     go-fuse's fs/api.go).
package fs
