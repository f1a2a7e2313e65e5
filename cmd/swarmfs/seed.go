package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
)

func runSeed(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", stderr)
	var ef engineFlags
	ef.register(fs)
	var sf seedFlags
	sf.register(fs)
	var tf trackersFlag
	tf.register(fs)
	superSeed := fs.Bool("super-seed", false, "super-seed (BEP 16): hide what we have and hand each peer one piece at a time, the rarest, "+
		"offering its next only once another peer has announced the last; for an initial seed with a small uplink, so that "+
		"each byte uploaded counts (peers with no one to share with are seeded normally)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErr("seed needs TORRENT and PATH")
	}
	if err := sf.check(); err != nil {
		return err
	}
	mi, err := metainfo.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	dir, err := dataDirFor(mi.Info, fs.Arg(1))
	if err != nil {
		return err
	}
	cfg, peers, err := ef.config(stderr)
	if err != nil {
		return err
	}
	cfg.Storage = storage.File{Dir: dir}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "checking %s ...\n", mi.Info.Name)
	c, err := engine.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	opts := engine.TorrentOptions{Peers: peers, DownloadAll: true, SuperSeed: *superSeed}
	sf.set(&opts)
	if err := tf.set(&opts); err != nil {
		return err
	}
	t, err := c.AddTorrent(mi, opts)
	if err != nil {
		return err
	}
	if sf.any() {
		// Seed until the goal, then exit.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-t.GoalReached():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	st := t.Stats()
	if st.PiecesHave < st.Pieces {
		fmt.Fprintf(stdout, "warning: only %d of %d pieces of %s are present and good; seeding those and downloading the rest\n", st.PiecesHave, st.Pieces, mi.Info.Name)
	}
	fmt.Fprintf(stdout, "seeding %s (%s) on %s\n", mi.Info.Name, mi.InfoHash, c.Addr())
	progress(ctx, stdout, t, false)
	fmt.Fprintln(stdout)
	s := t.Stats()
	fmt.Fprintf(stdout, "uploaded %s, %.2fx the content's %s\n", humanBytes(s.Uploaded), float64(s.Uploaded)/float64(max(s.TotalLength, 1)), humanBytes(s.TotalLength))
	if s.SeedState == engine.SeedStateGoalReached {
		fmt.Fprintf(stdout, "seeding goal reached (%s)\n", s.SeedGoal)
	}
	return nil
}

// dataDirFor finds the folder that holds the torrent's data given what the
// user pointed at: the single file itself, the torrent's own folder, or the
// folder containing either.
func dataDirFor(info *metainfo.Info, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		if !info.SingleFile {
			return "", fmt.Errorf("%s is a file, but the torrent %q is a folder of %d files", path, info.Name, len(info.Files))
		}
		return filepath.Dir(abs), nil
	}
	if fileExists(filepath.Join(abs, info.Name)) {
		return abs, nil
	}
	if filepath.Base(abs) == info.Name || !info.SingleFile {
		return filepath.Dir(abs), nil
	}
	return "", fmt.Errorf("%s does not contain %q", path, info.Name)
}

// progress prints a status line every second until ctx ends, or until the
// torrent completes when untilComplete.
func progress(ctx context.Context, w io.Writer, t *engine.Torrent, untilComplete bool) {
	tty := isTerminal(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastPrint time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Complete():
			if untilComplete {
				return
			}
		case <-tick.C:
		}
		s := t.Stats()
		if !tty && time.Since(lastPrint) < 5*time.Second {
			continue
		}
		lastPrint = time.Now()
		line := statusLine(s)
		if tty {
			fmt.Fprintf(w, "\r%-78s", line)
		} else {
			fmt.Fprintln(w, line)
		}
		if untilComplete && s.Complete {
			return
		}
	}
}

func statusLine(s engine.Stats) string {
	pct := 100.0
	if s.TotalLength > 0 {
		pct = 100 * float64(s.BytesCompleted) / float64(s.TotalLength)
	}
	eta := "-"
	if s.Complete {
		eta = "done"
	} else if s.DownloadRate > 1 {
		eta = (time.Duration(float64(s.TotalLength-s.BytesCompleted)/s.DownloadRate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%5.1f%%  down %s/s  up %s/s  peers %d (%d seeds)  ETA %s",
		pct, humanBytes(int64(s.DownloadRate)), humanBytes(int64(s.UploadRate)), s.Peers, s.Seeds, eta)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
