package main

import (
	"errors"
	"sync"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// earlyMount mounts the filesystem while the session starts: the mount (the
// kernel's FUSE handshake) and the cache's open (badger syncs several
// files) each take milliseconds, and a mount's first listing waits for
// both. The mount starts once the cache's data directory is locked, so a
// second swarmfs on the same data directory fails before it touches a
// mountpoint, as it always did. Until the session is ready the root is
// empty and adds wait; the caller then hands the host over with ready,
// which shows its torrents.
type earlyMount struct {
	host   *lateHost
	locked chan struct{} // closed by lock
	abort  chan struct{} // closed by stop: mount nothing
	done   chan struct{} // closed when the mount goroutine ended
	opts   fs.Options    // Logf set by lock
	srv    *fs.Server    // set before done closes
	err    error         // set before done closes

	lockOnce, abortOnce sync.Once
}

// startEarlyMount starts mounting on mountpoint as soon as lock is called.
func startEarlyMount(mountpoint string, opts fs.Options) *earlyMount {
	m := &earlyMount{
		opts:   opts,
		host:   &lateHost{ready: make(chan struct{})},
		locked: make(chan struct{}),
		abort:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		select {
		case <-m.locked:
		case <-m.abort:
			m.err = errEarlyMountStopped
			return
		}
		m.srv, m.err = fs.Mount(mountpoint, m.host, m.opts)
	}()
	return m
}

var errEarlyMountStopped = errors.New("swarmfs: mount stopped before it started")

// lock lets the mount start, logging to logf (sessionFlags.onLocked).
func (m *earlyMount) lock(logf func(string, ...any)) {
	m.lockOnce.Do(func() {
		m.opts.Logf = logf
		close(m.locked)
	})
}

// ready shows h's torrents in the mount and returns the server, or the
// mount's error.
func (m *earlyMount) ready(h fs.Host) (*fs.Server, error) {
	<-m.done
	if m.err != nil {
		m.host.set(nil, m.err)
		return nil, m.err
	}
	m.host.set(h, nil)
	m.srv.Refresh()
	return m.srv, nil
}

// stop gives up: the session did not start. A mount already up is
// unmounted, and adds waiting on it fail with why.
func (m *earlyMount) stop(why error) {
	m.abortOnce.Do(func() { close(m.abort) })
	<-m.done
	m.host.set(nil, why)
	if m.srv != nil {
		m.srv.Unmount()
	}
}

// lateHost is the fs.Host of an earlyMount: empty until set, then the
// session's.
type lateHost struct {
	ready chan struct{} // closed by set
	once  sync.Once
	h     fs.Host // set before ready closes
	err   error   // why there is no session; set before ready closes
}

var _ fs.Host = (*lateHost)(nil)

func (l *lateHost) set(h fs.Host, err error) {
	l.once.Do(func() {
		l.h, l.err = h, err
		close(l.ready)
	})
}

// get waits for set.
func (l *lateHost) get() (fs.Host, error) {
	<-l.ready
	return l.h, l.err
}

// Torrents does not wait: the mount calls it while mounting.
func (l *lateHost) Torrents() []fs.Torrent {
	select {
	case <-l.ready:
		if l.err == nil {
			return l.h.Torrents()
		}
	default:
	}
	return nil
}

func (l *lateHost) AddTorrentFile(data []byte) (fs.Torrent, error) {
	h, err := l.get()
	if err != nil {
		return nil, err
	}
	return h.AddTorrentFile(data)
}

func (l *lateHost) AddMagnet(uri string) (fs.Torrent, error) {
	h, err := l.get()
	if err != nil {
		return nil, err
	}
	return h.AddMagnet(uri)
}

func (l *lateHost) Remove(ih metainfo.Hash) error {
	h, err := l.get()
	if err != nil {
		return err
	}
	return h.Remove(ih)
}
