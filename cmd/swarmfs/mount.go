package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/fs"
)

// defaultDataDir is $XDG_CACHE_HOME/swarmfs, or ~/.cache/swarmfs.
func defaultDataDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "swarmfs")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "swarmfs")
	}
	return filepath.Join(os.TempDir(), "swarmfs")
}

func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", defaultDataDir(), "where the piece cache, the control socket and the DHT state live")
}

// sessionFlags are the flags of the commands that run a session on a data
// directory, mount and serve: the engine's, the cache's, reads, downloads
// and logging. Both start their session with start, so the two cannot
// drift apart.
type sessionFlags struct {
	ef          engineFlags
	lf          logFlags
	dataDir     *string
	cacheSize   *string
	readTimeout *time.Duration
	download    *string
	// indexPrefetch bounds the bytes of media heads and tails fetched
	// per torrent before anything reads them (session.Config.IndexBudget).
	indexPrefetch *string
	goals         seedFlags
	trackers      trackersFlag
	// superSeed super-seeds each torrent that is complete in the cache
	// when it starts.
	superSeed *bool
}

// register adds the flags; failedRead says what a read that times out
// does ("fails with EIO").
func (sf *sessionFlags) register(f *flag.FlagSet, failedRead string) {
	sf.ef.register(f)
	sf.dataDir = dataDirFlag(f)
	sf.cacheSize = f.String("cache-size", "10GiB", "piece cache capacity, e.g. 512MiB or 20GiB")
	sf.readTimeout = f.Duration("read-timeout", fs.DefaultReadTimeout, "a read the swarm cannot serve in this time "+failedRead)
	sf.download = f.String("download", "wanted", "what to download: \"wanted\" (what is read, plus readahead and media heads and tails) or \"all\"")
	sf.indexPrefetch = f.String("index-prefetch", "64MiB", "fetch the head and tail of media files (where containers keep their indexes) shortly after a torrent is added, up to this much per torrent, so players and ffprobe start at once; 0 turns it off")
	sf.goals.register(f)
	sf.trackers.register(f)
	sf.superSeed = f.Bool("super-seed", false, "super-seed (BEP 16) each torrent that is complete in the cache when it starts: hand peers one piece at a time, as seed --super-seed does")
	sf.lf.register(f)
}

// runningSession is what sessionFlags.start makes.
type runningSession struct {
	logf     func(format string, args ...any)
	capacity int64
	client   *engine.Client
	sess     *session.Session

	// What open needs, from prepare.
	dataDir     string
	cfg         engine.Config
	topts       engine.TorrentOptions
	indexBudget int64
	closers     []func() // the log's, then the cache's, the engine's, the session's
}

// close closes what was opened: the session, the engine, the cache, the
// log, in that order.
func (rs *runningSession) close() {
	for i := len(rs.closers) - 1; i >= 0; i-- {
		rs.closers[i]()
	}
	rs.closers = nil
}

// start checks the flags and opens, in order, the log, the cache of the
// data directory, the engine and the session (onInfo: see
// session.Config.OnInfo). It restores nothing and adds nothing.
func (sf *sessionFlags) start(stderr io.Writer, onInfo func(*session.Torrent)) (*runningSession, error) {
	rs, err := sf.prepare(stderr)
	if err != nil {
		return nil, err
	}
	if err := rs.open(onInfo); err != nil {
		rs.close()
		return nil, err
	}
	return rs, nil
}

// prepare is start's first half: it checks the flags and opens the log.
func (sf *sessionFlags) prepare(stderr io.Writer) (*runningSession, error) {
	capacity, err := cache.ParseSize(*sf.cacheSize)
	if err != nil {
		return nil, usageErr("--cache-size: %v", err)
	}
	downloadAll, err := parseDownload(*sf.download)
	if err != nil {
		return nil, err
	}
	indexBudget, err := cache.ParseSize(*sf.indexPrefetch)
	if err != nil {
		return nil, usageErr("--index-prefetch: %v", err)
	}
	// A small cache keeps its room for what is read.
	indexBudget = min(indexBudget, capacity/4)
	if err := sf.goals.check(); err != nil {
		return nil, err
	}
	cfg, peers, err := sf.ef.config(stderr)
	if err != nil {
		return nil, err
	}
	topts := engine.TorrentOptions{DownloadAll: downloadAll, Peers: peers}
	topts.SuperSeed = *sf.superSeed
	sf.goals.set(&topts)
	if err := sf.trackers.set(&topts); err != nil {
		return nil, err
	}
	logger, closeLog, err := sf.lf.open(stderr, sf.ef.verbose)
	if err != nil {
		return nil, err
	}
	cfg.Logf = nil // -v's stderr logger: the engine's events are debug messages
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		cfg.Logf = slogf(logger, slog.LevelDebug)
	}
	return &runningSession{
		logf:        slogf(logger, slog.LevelInfo),
		capacity:    capacity,
		dataDir:     *sf.dataDir,
		cfg:         cfg,
		topts:       topts,
		indexBudget: indexBudget,
		closers:     []func(){closeLog},
	}, nil
}

// open is start's second half: it opens the cache of the data directory,
// the engine and the session. The caller closes rs whatever the outcome.
func (rs *runningSession) open(onInfo func(*session.Torrent)) error {
	ca, err := openStore(rs.dataDir, rs.capacity, &rs.cfg, rs.logf)
	if err != nil {
		return err
	}
	rs.closers = append(rs.closers, func() { ca.Close() })
	client, err := engine.New(rs.cfg)
	if err != nil {
		return err
	}
	rs.closers = append(rs.closers, func() { client.Close() })
	sess, err := session.New(session.Config{
		Engine: session.NewEngine(client, rs.topts),
		Store:  ca,
		Logf:   rs.logf,
		OnInfo: onInfo,

		IndexFile:   fs.IsMedia,
		IndexBudget: rs.indexBudget,
	})
	if err != nil {
		return err
	}
	rs.closers = append(rs.closers, func() { sess.Close() })
	rs.client, rs.sess = client, sess
	return nil
}

func runMount(args []string, stdout, stderr io.Writer) (err error) {
	f := newFlags("mount", stderr)
	var sf sessionFlags
	sf.register(f, "fails with EIO")
	debugFuse := f.Bool("debug-fuse", false, "log every FUSE request")
	var hf httpFlags
	hf.register(f, "also serve the mount's files, API, metrics and status page over HTTP on ADDRESS, e.g. 127.0.0.1:8080")
	allowOther := f.Bool("allow-other", false, "let other local users read the mount; only you and root can add or remove torrents (needs user_allow_other in /etc/fuse.conf unless root)")
	daemon := daemonFlag(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if f.NArg() < 1 {
		return usageErr("mount needs a MOUNTPOINT")
	}
	lc := newLifecycle(stderr)
	defer func() { lc.finish(err) }()
	if *daemon && !lc.daemonChild() {
		return startDaemon(args, sf.lf.file, stdout, stderr)
	}
	stderr = lc.wrapStderr(stderr)
	mountpoint := f.Arg(0)
	for _, arg := range f.Args()[1:] {
		// The flag package stops at the first argument that is not a
		// flag: a flag after the mountpoint would be taken for a torrent.
		if strings.HasPrefix(arg, "-") && !fileExists(arg) {
			return usageErr("%s after MOUNTPOINT: flags go before it", arg)
		}
	}
	// Signals are caught from the start. One that comes while the mount is
	// being set up then unmounts it cleanly once it is up; caught only
	// later, it would kill the process with the mount left behind, or be
	// lost if the process started with SIGINT ignored (a background job of
	// a shell script), leaving the mount running.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	// Refuse a bad address or missing credentials before touching the
	// cache.
	if *hf.addr != "" {
		if _, err := hf.options(); err != nil {
			return err
		}
	}

	rs, err := sf.prepare(stderr)
	if err != nil {
		return err
	}
	defer rs.close()
	logf := rs.logf
	// The cache, the engine and the session open while the filesystem is
	// mounted (the cache's store is most of a mount's start): the root's
	// lookups and listings wait until the session's torrents are shown
	// (fs.Options.HostReady), so a program started with the mount never
	// sees an empty folder. Once mounted, the session refreshes the
	// filesystem when a magnet's metadata arrives or the control socket
	// adds a torrent.
	var mounted atomic.Pointer[fs.Server]
	refresh := func() {
		if srv := mounted.Load(); srv != nil {
			srv.Refresh()
		}
	}
	opened := make(chan error, 1)
	go func() {
		err := rs.open(func(*session.Torrent) { refresh() })
		if err == nil {
			rs.sess.Restore()
			err = addSources(rs.sess, f.Args()[1:], stderr)
		}
		opened <- err
	}()
	host := &fsHost{m: hf.metrics} // its session is set before ready closes
	ready := make(chan struct{})
	srv, err := fs.Mount(mountpoint, host, fs.Options{ReadTimeout: *sf.readTimeout, Debug: *debugFuse, AllowOther: *allowOther, Logf: logf, HostReady: ready})
	if oerr := <-opened; err == nil && oerr != nil {
		srv.Unmount()
		err = oerr
	}
	if err != nil {
		return err
	}
	sess := rs.sess
	mounted.Store(srv)
	host.s = sess
	close(ready)
	cs, err := startControl(*sf.dataDir, sess.Handler(refresh))
	if err != nil {
		srv.Unmount()
		return err
	}
	defer cs.close()
	if *hf.addr != "" {
		hf.readTimeout = *sf.readTimeout
		hs, err := startHTTP(&hf, sess, rs.client, refresh, logf)
		if err != nil {
			srv.Unmount()
			return err
		}
		defer hs.close()
		fmt.Fprintf(stdout, "serving HTTP at http://%s/\n", hs.addr)
	}

	fmt.Fprintf(stdout, "swarmfs %s: %d torrent(s) mounted at %s (peers on %s, cache %s in %s)\n",
		engine.Version, len(sess.Torrents()), mountpoint, rs.client.Addr(), humanBytes(rs.capacity), *sf.dataDir)
	fmt.Fprintf(stdout, "add more with: swarmfs add TORRENT|MAGNET; stop with Ctrl-C or: fusermount3 -u %s\n", mountpoint)
	lc.markReady(fmt.Sprintf("%d torrent(s) mounted at %s (pid %d)", len(sess.Torrents()), mountpoint, os.Getpid()))

	unmounted := make(chan struct{})
	go func() {
		srv.Wait()
		close(unmounted)
	}()
	select {
	case <-unmounted:
		lc.stopping()
		fmt.Fprintln(stdout, "unmounted")
	case s := <-sig:
		lc.stopping()
		fmt.Fprintf(stdout, "%v: unmounting %s\n", s, mountpoint)
		if err := unmountRetry(srv, unmounted, sig); err != nil {
			return err
		}
	}
	return nil
}

// unmountRetry unmounts, retrying while the mount is busy; a second signal
// detaches lazily instead.
func unmountRetry(srv *fs.Server, unmounted <-chan struct{}, sig <-chan os.Signal) error {
	for i := 0; ; i++ {
		err := srv.Unmount()
		if err != nil && !stillMounted(srv.Mountpoint()) {
			return nil // detached by someone else (fusermount3 -u -z)
		}
		if err == nil {
			select {
			case <-unmounted:
			case <-time.After(10 * time.Second):
			}
			return nil
		}
		if i == 0 {
			fmt.Fprintf(os.Stderr, "swarmfs: unmount: %v (close the programs using the mount; Ctrl-C again to detach it lazily)\n", err)
		}
		select {
		case <-sig:
			if err := lazyUnmount(srv.Mountpoint()); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "swarmfs: detached lazily; it disappears when the last program closes it")
			return nil
		case <-unmounted:
			return nil
		case <-time.After(time.Second):
		}
	}
}

// addSources adds the torrents named on the command line. A bad one never
// stops the others, but when every one failed the mount does not start, as
// btfs does: it would run with none of what was asked for. One already
// there (restored from the cache, or named twice) counts as loaded.
func addSources(s *session.Session, args []string, stderr io.Writer) error {
	loaded := 0
	for _, arg := range args {
		err := addSource(s, arg)
		switch {
		case err == nil, errors.Is(err, os.ErrExist):
			loaded++
		default:
			fmt.Fprintf(stderr, "swarmfs: %v\n", err)
		}
	}
	if len(args) > 0 && loaded == 0 {
		return fmt.Errorf("none of the %d torrent(s) given could be added; not mounting", len(args))
	}
	return nil
}

// addSource adds a magnet URI, or a .torrent or .magnet file.
func addSource(s *session.Session, arg string) error {
	if strings.HasPrefix(arg, "magnet:") {
		_, err := s.AddMagnet(arg)
		return err
	}
	b, err := readTorrentFile(arg)
	if err != nil {
		return err
	}
	if _, err := s.Add(b); err != nil {
		return fmt.Errorf("%s: %w", arg, err)
	}
	return nil
}

// stillMounted reports whether mnt is still a mount point of this process's
// mount namespace.
func stillMounted(mnt string) bool {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return true
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.ReplaceAll(f[1], "\\040", " ") == abs {
			return true
		}
	}
	return false
}

// parseDownload reads --download: whether to complete every torrent in the
// background ("all") or fetch only what is read ("wanted").
func parseDownload(s string) (bool, error) {
	switch s {
	case "wanted":
		return false, nil
	case "all":
		return true, nil
	}
	return false, usageErr("--download %q: want \"wanted\" or \"all\"", s)
}

// gcFloorBytes is the smallest heap goal the collector aims for (see
// gcFloor); gcTuner starts it once per process.
const gcFloorBytes = 24 << 20

var gcTuner sync.Once

// memLimit is the default soft memory limit for a cache of capacity
// bytes: 56 MiB, plus room for the cache's index (about 270 bytes a piece,
// counted for 256 KiB pieces). The process's other memory is outside the
// limit: its mapped code (about 16 MiB) and, before pieces moved to
// files of their own, the value log's mapped pages (up to about 13 MiB),
// so the limit is what keeps its peak RSS under 100 MiB. A base of 64 MiB left the fast bench's peak at 88.7-92.7 MiB
// and 4 GiB streamed through a 64 MiB cache at 94.8-101 MiB; 56 MiB takes
// about 6 MiB off the first (84.7-85.6 MiB, its cold read unchanged) and
// 7-11 off the second (87.5-89.5 MiB, for 10-15% of that stream's rate:
// a full small cache makes more garbage per byte, which the collector
// now has less room for). A cache under 64 MiB lowers the base further,
// to 48 MiB plus an eighth of it.
func memLimit(capacity int64) int64 {
	base := min(int64(56<<20), 48<<20+capacity/8)
	return base + capacity/(256<<10)*270
}

// openStore makes dataDir, opens the piece cache under it and points cfg at it, as
// mount and serve both run the engine: pieces in the cache, readahead and
// pins within a quarter of it (at most 256 MiB), the DHT's state beside it.
// The caller closes the cache after the engine.
func openStore(dataDir string, capacity int64, cfg *engine.Config, logf func(string, ...any)) (*cache.Cache, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	ca, err := cache.Open(cache.Options{Dir: filepath.Join(dataDir, "cache"), Capacity: capacity, Logf: logf})
	if err != nil {
		return nil, err
	}
	cfg.Storage = storage.NewCache(ca)
	cfg.MaxWindowBytes = min(capacity/4, 256<<20)
	if os.Getenv("GOGC") == "" {
		// Piece buffers are large and short-lived: collecting at 50% growth
		// instead of 100% keeps peak memory near what is live, for about 1%
		// more CPU. While the heap is small (a mount's first moments), the
		// goal stays at gcFloorBytes instead: 50% of a few MiB was a
		// collection every piece or two, which the first reads after a
		// mount waited for (first byte from a web seed right after the
		// listing: median 16 ms, 5.7 ms with the floor; from the fast
		// bench swarm 28-37 ms, 22-24 ms). Started once the files are
		// served instead, it did not help the swarm's first byte.
		gcTuner.Do(func() { startGCFloor(gcFloorBytes, 50) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit on the Go heap and runtime: near it the collector
		// runs earlier than GOGC alone would, so the garbage of piece
		// buffers and badger's write buffers does not pile up on top of
		// what is live (about 40 MiB streaming at full speed). The cache's
		// index grows with the pieces it holds (see package cache), so the
		// limit does too: past it the collector would run all the time.
		debug.SetMemoryLimit(memLimit(capacity))
	}
	if cfg.DHT && cfg.DHTStatePath != "" {
		// Everything of a mount's own lives under its data directory.
		cfg.DHTStatePath = filepath.Join(dataDir, "dht.state")
	}
	return ca, nil
}
