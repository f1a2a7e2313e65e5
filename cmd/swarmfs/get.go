package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErr("get needs TORRENT and DIR")
	}
	src, dir := fs.Arg(0), fs.Arg(1)
	if strings.HasPrefix(src, "magnet:") {
		return fmt.Errorf("magnet links are not supported by get yet; give a .torrent file")
	}
	mi, err := metainfo.Load(src)
	if err != nil {
		return err
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
	t, err := c.AddTorrent(mi, engine.TorrentOptions{Peers: peers, DownloadAll: true})
	if err != nil {
		return err
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
	if *seedAfter {
		fmt.Fprintf(stdout, "seeding on %s; Ctrl-C to stop\n", c.Addr())
		progress(ctx, stdout, t, false)
		fmt.Fprintln(stdout)
	}
	return nil
}
