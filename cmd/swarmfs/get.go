package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
)

func runGet(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("get", stderr)
	var ef engineFlags
	ef.register(fs)
	seedAfter := fs.Bool("seed", false, "keep seeding after the download completes, until interrupted")
	var sf seedFlags
	sf.register(fs)
	var tf trackersFlag
	tf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErr("get needs TORRENT (a .torrent file or a magnet link) and DIR")
	}
	if err := sf.check(); err != nil {
		return err
	}
	src, dir := fs.Arg(0), fs.Arg(1)
	var (
		mi  *metainfo.MetaInfo
		mag *metainfo.Magnet
		err error
	)
	if strings.HasPrefix(strings.ToLower(src), "magnet:") {
		mag, err = metainfo.ParseMagnet(src)
	} else {
		mi, err = metainfo.Load(src)
	}
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if mi != nil {
		if err := checkPaths(dir, mi.Info); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, peers, err := ef.config(stderr)
	if err != nil {
		return err
	}
	cfg.Storage = storage.File{Dir: dir}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := engine.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	opts := engine.TorrentOptions{Peers: peers, DownloadAll: true}
	sf.set(&opts)
	if err := tf.set(&opts); err != nil {
		return err
	}
	var t *engine.Torrent
	if mag != nil {
		t, err = c.AddMagnet(mag, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "fetching metadata of %s (%s)\n", t.Name(), t.InfoHash())
		if !waitMetadata(ctx, stdout, t) {
			return fmt.Errorf("interrupted before the metadata arrived")
		}
		mi = t.MetaInfo()
		fmt.Fprintf(stdout, "metadata received in %s\n", time.Since(start).Round(time.Millisecond))
		if err := checkPaths(dir, mi.Info); err != nil {
			return err
		}
	} else {
		t, err = c.AddTorrent(mi, opts)
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "downloading %s (%s, %s) into %s\n", mi.Info.Name, mi.InfoHash, humanBytes(mi.Info.TotalLength), dir)
	progress(ctx, stdout, t, true)
	select {
	case <-t.Complete():
	default:
		fmt.Fprintln(stdout)
		return fmt.Errorf("interrupted at %.1f%%", 100*float64(t.BytesCompleted())/float64(max(1, mi.Info.TotalLength)))
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "\ncompleted %s in %s (%.1f MB/s)\n", mi.Info.Name, el.Round(time.Millisecond), float64(mi.Info.TotalLength)/el.Seconds()/1e6)
	switch {
	case *seedAfter:
		fmt.Fprintf(stdout, "seeding on %s; Ctrl-C to stop\n", c.Addr())
		progress(ctx, stdout, t, false)
		fmt.Fprintln(stdout)
	case sf.any():
		fmt.Fprintf(stdout, "seeding on %s until %s\n", c.Addr(), t.Stats().SeedGoal)
		gctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-t.GoalReached():
				cancel()
			case <-gctx.Done():
			}
		}()
		progress(gctx, stdout, t, false)
		fmt.Fprintln(stdout)
		select {
		case <-t.GoalReached():
		default:
			return fmt.Errorf("interrupted while seeding, before the goal")
		}
		s := t.Stats()
		fmt.Fprintf(stdout, "seeding goal reached: uploaded %s, ratio %.2f\n", humanBytes(s.Uploaded), s.Ratio)
	}
	return nil
}

// waitMetadata prints a status line every second until the magnet's
// metadata arrives (true) or ctx ends (false).
func waitMetadata(ctx context.Context, w io.Writer, t *engine.Torrent) bool {
	tty := isTerminal(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var lastPrint time.Time
	for {
		select {
		case <-t.InfoReady():
			if tty && !lastPrint.IsZero() {
				fmt.Fprintln(w)
			}
			return true
		case <-ctx.Done():
			if tty && !lastPrint.IsZero() {
				fmt.Fprintln(w)
			}
			return false
		case <-tick.C:
		}
		if !tty && time.Since(lastPrint) < 5*time.Second {
			continue
		}
		lastPrint = time.Now()
		s := t.Stats()
		line := fmt.Sprintf("waiting for metadata: %s, peers %d (%d known)", time.Since(start).Round(time.Second), s.Peers, s.KnownPeers)
		if tty {
			fmt.Fprintf(w, "\r%-78s", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
}
