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

func runMount(args []string, stdout, stderr io.Writer) (err error) {
	f := newFlags("mount", stderr)
	var ef engineFlags
	ef.register(f)
	var sf seedFlags
	sf.register(f)
	var tf trackersFlag
	tf.register(f)
	dataDir := dataDirFlag(f)
	cacheSize := f.String("cache-size", "10GiB", "piece cache capacity, e.g. 512MiB or 20GiB")
	readTimeout := f.Duration("read-timeout", fs.DefaultReadTimeout, "a read the swarm cannot serve in this time fails with EIO")
	download := f.String("download", "wanted", "what to download: \"wanted\" (what is read, plus readahead and media heads and tails) or \"all\"")
	debugFuse := f.Bool("debug-fuse", false, "log every FUSE request")
	superSeed := f.Bool("super-seed", false, "super-seed (BEP 16) each torrent that is complete in the cache when it starts: hand peers one piece at a time, as seed --super-seed does")
	var hf httpFlags
	hf.register(f, "also serve the mount's files, API, metrics and status page over HTTP on ADDRESS, e.g. 127.0.0.1:8080")
	allowOther := f.Bool("allow-other", false, "let other local users read the mount; only you and root can add or remove torrents (needs user_allow_other in /etc/fuse.conf unless root)")
	daemon := daemonFlag(f)
	var lf logFlags
	lf.register(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if f.NArg() < 1 {
		return usageErr("mount needs a MOUNTPOINT")
	}
	lc := newLifecycle(stderr)
	defer func() { lc.finish(err) }()
	if *daemon && !lc.daemonChild() {
		return startDaemon(args, lf.file, stdout, stderr)
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
	capacity, err := cache.ParseSize(*cacheSize)
	if err != nil {
		return usageErr("--cache-size: %v", err)
	}
	downloadAll, err := parseDownload(*download)
	if err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	cfg, peers, err := ef.config(stderr)
	if err != nil {
		return err
	}
	topts := engine.TorrentOptions{DownloadAll: downloadAll, Peers: peers, SuperSeed: *superSeed}
	sf.set(&topts)
	if err := tf.set(&topts); err != nil {
		return err
	}
	logger, closeLog, err := lf.open(stderr, ef.verbose)
	if err != nil {
		return err
	}
	defer closeLog()
	logf := slogf(logger, slog.LevelInfo)
	cfg.Logf = nil // -v's stderr logger: the engine's events are debug messages
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		cfg.Logf = slogf(logger, slog.LevelDebug)
	}

	ca, err := openStore(*dataDir, capacity, &cfg, logf)
	if err != nil {
		return err
	}
	defer ca.Close()
	client, err := engine.New(cfg)
	if err != nil {
		return err
	}
	defer client.Close()

	// The filesystem is made after the session, which may need to refresh
	// it (a magnet's metadata arrived, a torrent added through the control
	// socket).
	var mounted atomic.Pointer[fs.Server]
	refresh := func() {
		if srv := mounted.Load(); srv != nil {
			srv.Refresh()
		}
	}
	sess, err := session.New(session.Config{
		Engine: session.NewEngine(client, topts),
		Store:  ca,
		Logf:   logf,
		OnInfo: func(*session.Torrent) { refresh() },
	})
	if err != nil {
		return err
	}
	defer sess.Close()
	sess.Restore()
	if err := addSources(sess, f.Args()[1:], stderr); err != nil {
		return err
	}

	if *hf.addr != "" {
		if _, err := hf.options(); err != nil {
			return err
		}
	}
	srv, err := fs.Mount(mountpoint, fsHost{sess, hf.metrics}, fs.Options{ReadTimeout: *readTimeout, Debug: *debugFuse, AllowOther: *allowOther, Logf: logf})
	if err != nil {
		return err
	}
	mounted.Store(srv)
	cs, err := startControl(*dataDir, sess.Handler(refresh))
	if err != nil {
		srv.Unmount()
		return err
	}
	defer cs.close()
	if *hf.addr != "" {
		hf.readTimeout = *readTimeout
		hs, err := startHTTP(&hf, sess, client, refresh, logf)
		if err != nil {
			srv.Unmount()
			return err
		}
		defer hs.close()
		fmt.Fprintf(stdout, "serving HTTP at http://%s/\n", hs.addr)
	}

	fmt.Fprintf(stdout, "swarmfs %s: %d torrent(s) mounted at %s (peers on %s, cache %s in %s)\n",
		engine.Version, len(sess.Torrents()), mountpoint, client.Addr(), humanBytes(capacity), *dataDir)
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
		// more CPU.
		debug.SetGCPercent(50)
	}
	if cfg.DHT && cfg.DHTStatePath != "" {
		// Everything of a mount's own lives under its data directory.
		cfg.DHTStatePath = filepath.Join(dataDir, "dht.state")
	}
	return ca, nil
}
