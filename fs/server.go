package fs

// Lock order in this package, outermost first:
//
//	rootNode.mu → torrentDir.mu → uploadNode.mu → go-fuse's Inode locks
//
// notifier.mu and readCtx.mu are leaves. No lock is held across a call into
// the Host, a Torrent or a Reader, nor across a kernel notification.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Server is a mounted swarmfs. Its methods are safe for concurrent use.
type Server struct {
	// Read-only after Mount.
	mountpoint  string
	host        Host
	readTimeout time.Duration
	logf        func(string, ...any)
	root        *rootNode
	fuse        *fuse.Server
	mountTime   time.Time
	debug       bool
	// owner is the mounting user's uid: it owns every node, and only it
	// and root may change the filesystem (perm.go).
	owner uint32

	// closing is closed when Unmount starts or the kernel ends the mount:
	// pending reads and lookups give up, watchers exit.
	closing     chan struct{}
	closingOnce sync.Once
	// finished is closed once the serve loop has ended and every goroutine
	// the Server started has returned.
	finished chan struct{}
	// wg counts the goroutines the Server owns (notifier, info watchers).
	wg sync.WaitGroup

	notify notifier

	// hostReady is Options.HostReady (nil if the Host answered at once);
	// ready is closed once the root shows the Host's torrents.
	hostReady <-chan struct{}
	ready     chan struct{}

	unmountMu sync.Mutex // serialises Unmount
}

// Mount mounts the torrents of host on mountpoint and serves it until
// Unmount, or until someone runs fusermount3 -u. A stale mount left on
// mountpoint by a crashed process is cleared first; a missing mountpoint, one
// that is not a folder, or one with a live mount on it is an error.
func Mount(mountpoint string, host Host, opts Options) (*Server, error) {
	dir, err := prepareMountpoint(mountpoint)
	if err != nil {
		return nil, err
	}
	s := &Server{
		mountpoint:  dir,
		host:        host,
		readTimeout: opts.ReadTimeout,
		logf:        opts.Logf,
		mountTime:   time.Now(),
		debug:       opts.Debug,
		owner:       uint32(os.Getuid()),
		closing:     make(chan struct{}),
		finished:    make(chan struct{}),
		hostReady:   opts.HostReady,
		ready:       make(chan struct{}),
	}
	if s.readTimeout <= 0 {
		s.readTimeout = DefaultReadTimeout
	}
	if s.logf == nil {
		s.logf = log.Printf
	}
	s.notify.init()
	s.root = &rootNode{srv: s}

	fsName := opts.FsName
	if fsName == "" {
		fsName = "swarmfs"
	}
	long := longTimeout
	fopts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: opts.AllowOther,
			FsName:     fsName,
			Name:       "swarmfs",
			Debug:      opts.Debug,
			MaxWrite:   maxRead, // also max_read
			// The kernel caps readahead at its own limit; ask for as much
			// as a read can carry.
			MaxReadAhead: maxRead,
			// Requests the kernel may have in flight without a waiting
			// program (readahead is synchronous, see SyncRead): many
			// programs reading at once each get theirs through.
			MaxBackground: 64,
			// Replies come from a buffer, not a file descriptor: splice
			// would only add a copy into a pipe, and fails (with a log
			// line) for 1 MiB replies, which exceed the pipe's size.
			DisableSplice: true,
			// SyncRead makes the kernel send reads (readahead included)
			// from the reading process rather than in the background, so
			// a signal to that process interrupts the read it waits for:
			// the Reader's ctx is cancelled and no work is left behind.
			// See doc.go, "Interrupts".
			SyncRead: true,
			// The kernel checks the modes and owners we report before
			// it sends a request: with AllowOther, other users may
			// read but not add or remove torrents (see perm.go).
			Options: []string{"default_permissions"},
			// Where the process may mount (root, or CAP_SYS_ADMIN in its
			// namespace), mount(2) directly instead of starting the
			// setuid fusermount3: a fork and exec less on the way to the
			// first listing (several ms, more on a busy machine). Anyone
			// else falls back to fusermount3 after one refused syscall.
			DirectMount: true,
		},
		EntryTimeout:    &long,
		AttrTimeout:     &long,
		NullPermissions: true,
		UID:             s.owner,
		GID:             uint32(os.Getgid()),
	}
	// go-fuse's own messages (debug traces, trouble it cannot return as an
	// error) go to Logf too.
	logger := log.New(logfWriter(s.logf), "go-fuse: ", 0)
	fopts.Logger = logger
	fopts.MountOptions.Logger = logger
	srv, err := gofs.Mount(dir, s.root, fopts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	s.fuse = srv
	s.raiseReadahead()
	s.wg.Add(1)
	go s.notify.run(&s.wg, s.closing)
	if s.hostAnswers() {
		close(s.ready) // OnAdd showed the torrents
	} else {
		s.wg.Add(1)
		go s.awaitHost()
	}
	s.root.startWatchers()
	go s.serveEnd()
	return s, nil
}

// hostAnswers tells whether the Host may be called: it answered at once,
// or has said it is ready since.
func (s *Server) hostAnswers() bool {
	if s.hostReady == nil {
		return true
	}
	select {
	case <-s.hostReady:
		return true
	default:
		return false
	}
}

// awaitHost shows the Host's torrents once it is ready, then lets the
// root's requests through.
func (s *Server) awaitHost() {
	defer s.wg.Done()
	select {
	case <-s.hostReady:
		s.Refresh()
		close(s.ready)
	case <-s.closing:
	}
}

// awaitReady holds a request to the root until its torrents are shown:
// EINTR if the caller gives up first, ENOENT if the mount ends.
func (s *Server) awaitReady(ctx context.Context) syscall.Errno {
	select {
	case <-s.ready:
		return 0
	default:
	}
	select {
	case <-s.ready:
		return 0
	case <-ctx.Done():
		return syscall.EINTR
	case <-s.closing:
		return syscall.ENOENT
	}
}

// raiseReadahead lets the kernel read ahead as much as one read carries. The
// FUSE handshake cannot raise a mount's readahead above the kernel's default
// (128 KiB), so buffered reads would reach us in 128 KiB pieces; the mount's
// backing device's read_ahead_kb can, when we may write it (root).
func (s *Server) raiseReadahead() {
	var st syscall.Stat_t
	if err := syscall.Stat(s.mountpoint, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(maxRead>>10)), 0); err != nil && s.debug {
		s.logf("swarmfs: cannot raise readahead (%v); reads will come in 128 KiB", err)
	}
}

// logfWriter turns a Logf into an io.Writer for log.Logger.
type logfWriter func(string, ...any)

func (w logfWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serveEnd waits for the kernel to end the mount (Unmount, or fusermount3 -u
// from outside) and then stops everything the Server started.
func (s *Server) serveEnd() {
	s.fuse.Wait()
	s.close()
	s.wg.Wait()
	close(s.finished)
}

// close starts the shutdown: pending reads and lookups fail, watchers and
// the notifier exit.
func (s *Server) close() {
	s.closingOnce.Do(func() { close(s.closing) })
}

// Mountpoint returns the absolute path of the mount.
func (s *Server) Mountpoint() string { return s.mountpoint }

// Wait blocks until the filesystem is unmounted and the Server's goroutines
// have ended.
func (s *Server) Wait() { <-s.finished }

// unmountGrace is how long Unmount waits for the kernel to release the
// connection after a lazy unmount before it reports the mount busy.
const unmountGrace = 5 * time.Second

// Unmount unmounts the filesystem. If the mount is busy (a program has a file
// open or its working directory inside), reads in flight are failed with EIO
// and the mount is detached lazily: it disappears from the namespace at once
// and the kernel lets go when the last user does. Unmount returns when the
// serve loop has ended, or an error if that takes longer than a few seconds;
// the Server then goes on serving the remaining users until they leave.
func (s *Server) Unmount() error {
	s.unmountMu.Lock()
	defer s.unmountMu.Unlock()
	select {
	case <-s.finished:
		return nil
	default:
	}
	err := fusermount(s.mountpoint, false)
	if err != nil {
		// Busy: fail what is pending so readers let go, then retry a few
		// times before detaching lazily.
		s.close()
		for i := 0; i < 5 && err != nil; i++ {
			select {
			case <-s.finished:
				return nil
			case <-time.After(time.Duration(20<<i) * time.Millisecond):
			}
			err = fusermount(s.mountpoint, false)
		}
		if err != nil {
			if lerr := fusermount(s.mountpoint, true); lerr != nil {
				select {
				case <-s.finished:
					return nil
				default:
				}
				return fmt.Errorf("unmount %s: %w", s.mountpoint, lerr)
			}
		}
	}
	select {
	case <-s.finished:
		return nil
	case <-time.After(unmountGrace):
		return fmt.Errorf("unmount %s: detached, but still in use", s.mountpoint)
	}
}

// Refresh makes the filesystem match the Host's torrent set after torrents
// were added or removed elsewhere (the control socket): new folders appear,
// removed ones go, and the kernel's cached entries are invalidated. It is safe
// to call from anywhere, also from within a Host method: the kernel is told
// asynchronously.
func (s *Server) Refresh() {
	if !s.hostAnswers() {
		return // awaitHost shows them once it may
	}
	s.root.refresh(s.host.Torrents())
}

// prepareMountpoint checks mountpoint and clears a stale FUSE mount on it.
func prepareMountpoint(mountpoint string) (string, error) {
	dir, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	}
	if isStale(statfs(dir)) {
		// A crashed swarmfs left its mount behind: the kernel answers
		// ENOTCONN. Detach it so we can mount again. (statfs, unlike
		// stat, is always sent to the server: a stat may be answered
		// from attributes the kernel still caches.)
		if uerr := fusermount(dir, true); uerr != nil {
			return "", fmt.Errorf("mountpoint %s: clearing stale mount: %w", dir, uerr)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mountpoint %s does not exist", dir)
		}
		return "", fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("mountpoint %s is not a folder", dir)
	}
	if fstype, ok := mountedOn(dir); ok {
		return "", fmt.Errorf("mountpoint %s: already mounted (%s); unmount it first", dir, fstype)
	}
	return dir, nil
}

// statfs returns the error of statfs(2) on dir.
func statfs(dir string) error {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st)
}

// isStale tells whether a stat error means a dead FUSE mount.
func isStale(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

// mountedOn reports whether something is mounted on dir, per
// /proc/self/mountinfo, and its filesystem type.
func mountedOn(dir string) (string, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found, fstype := false, ""
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != dir {
			continue
		}
		found, fstype = true, "unknown"
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
				break
			}
		}
	}
	return fstype, found
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fusermount unmounts dir with fusermount3 (or fusermount), lazily if lazy
// is set. As root without either, it unmounts directly.
func fusermount(dir string, lazy bool) error {
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	args = append(args, dir)
	var bin string
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		flags := 0
		if lazy {
			flags = syscall.MNT_DETACH
		}
		if err := syscall.Unmount(dir, flags); err != nil {
			return fmt.Errorf("umount: %w", err)
		}
		return nil
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// notifier sends cache invalidations to the kernel from its own goroutine.
// A notification about a folder waits for the kernel's lock on that folder,
// which a FUSE request in progress may hold: sending it from inside a request
// handler, or from code a handler waits for, could deadlock. So handlers and
// Refresh only queue them.
type notifier struct {
	mu    sync.Mutex // guards queue
	queue []func()
	wake  chan struct{} // capacity 1: "the queue is not empty"
}

func (n *notifier) init() {
	n.wake = make(chan struct{}, 1)
}

// sync waits until everything queued so far has been sent, or closing.
func (n *notifier) sync(closing <-chan struct{}) {
	done := make(chan struct{})
	n.add(func() { close(done) })
	select {
	case <-done:
	case <-closing:
	}
}

// add queues f; it never blocks.
func (n *notifier) add(f func()) {
	n.mu.Lock()
	n.queue = append(n.queue, f)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) run(wg *sync.WaitGroup, closing <-chan struct{}) {
	defer wg.Done()
	for {
		select {
		case <-closing:
			return
		case <-n.wake:
		}
		for {
			n.mu.Lock()
			q := n.queue
			n.queue = nil
			n.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, f := range q {
				f()
			}
		}
	}
}
