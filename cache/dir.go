package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// lockName is our own lock file in the data directory. Badger has its own
// ("LOCK"), but its error does not say who holds it; ours records the pid and
// is taken first, so a second swarmfs gets a message a user can act on.
const lockName = "swarmfs.lock"

// dirLock is an exclusive flock(2) on lockName, held until release. flock
// locks belong to the open file description, so a second Open in the same
// process conflicts too, and the kernel drops the lock when a killed process's
// descriptors close: a crash never leaves a stale lock behind.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: data directory %s is not writable: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: data directory %s is in use by another swarmfs process%s",
				ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("cache: lock data directory %s: %w", dir, err)
	}
	// The pid is informational only; failing to write it is not fatal.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Closing the descriptor releases the flock.
	err := l.f.Close()
	l.f = nil
	return err
}

// checkWritable fails early, with a message naming the directory, when files
// cannot be created in dir (badger's own errors are less direct).
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cache: cannot create data directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return fmt.Errorf("cache: data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// freeSpace returns the bytes available to an unprivileged writer on dir's
// file system.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// diskUsage sums the disk space allocated to the store's files (badger's
// logs, tables and manifest, and the piece files). Badger preallocates logs
// as sparse files, and piece files are sparse: counting allocated blocks
// rather than apparent sizes leaves out what holds no data.
func diskUsage(dir string) int64 {
	return blocksUsed(dir) + blocksUsed(filepath.Join(dir, piecesDir))
}

// blocksUsed sums the blocks allocated to the regular files in dir.
func blocksUsed(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += info.Size()
		}
	}
	return n
}

// diskGuard refuses writes that would fill the file system. Badger writes its
// value log and memtable logs through mmap; on a full disk a store to a mapped
// page of a sparse file raises SIGBUS, which kills the process instead of
// returning ENOSPC. So we keep a reserve free and check before each write.
// statfs is called at most every guardInterval or after guardBytes of writes.
type diskGuard struct {
	dir     string
	reserve int64

	mu      sync.Mutex // guards the fields below; a leaf lock
	free    int64      // at the last statfs
	written int64      // bytes admitted since then, less those released
	when    time.Time
}

const (
	guardInterval = time.Second
	guardBytes    = 64 << 20
)

// admit reports ErrDiskFull (wrapped) if n more bytes would eat into the
// reserve, and otherwise counts them as written.
func (g *diskGuard) admit(n int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(); err != nil {
		return err
	}
	if g.free-g.written-n < g.reserve {
		g.when = time.Time{} // look again next time: GC may have freed space
		return g.fullErrLocked()
	}
	g.written += n
	return nil
}

// unadmit takes back bytes admitted for a write that did not happen.
func (g *diskGuard) unadmit(n int64) {
	g.mu.Lock()
	g.written = max(g.written-n, 0)
	g.mu.Unlock()
}

// release counts n bytes given back to the file system (a punched slot)
// until the next statfs.
func (g *diskGuard) release(n int64) {
	g.mu.Lock()
	g.written -= n
	g.mu.Unlock()
}

// room returns how many more bytes admit would take now (negative: the
// disk is already inside the reserve).
func (g *diskGuard) room() (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(); err != nil {
		return 0, err
	}
	r := g.free - g.written - g.reserve
	if r <= 0 {
		g.when = time.Time{}
	}
	return r, nil
}

// fullErr is admit's error for a full disk.
func (g *diskGuard) fullErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fullErrLocked()
}

func (g *diskGuard) fullErrLocked() error {
	return fmt.Errorf("%w: %s free in %s, keeping %s in reserve",
		ErrDiskFull, formatSize(max(g.free-g.written, 0)), g.dir, formatSize(g.reserve))
}

// refreshLocked calls statfs when the last figure is too old.
func (g *diskGuard) refreshLocked() error {
	if g.when.IsZero() || time.Since(g.when) > guardInterval || g.written > guardBytes {
		free, err := freeSpace(g.dir)
		if err != nil {
			return fmt.Errorf("cache: statfs %s: %w", g.dir, err)
		}
		g.free, g.written, g.when = free, 0, time.Now()
	}
	return nil
}

// storeExists reports whether dir already holds a badger store.
func storeExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, badger.ManifestFilename))
	return err == nil
}
