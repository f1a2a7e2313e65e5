package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/fs"
)

// runServe is "swarmfs serve": the session, the control socket and the
// HTTP front-end, with no FUSE mount, for machines without FUSE. It shares
// the data directory (cache, control socket) with mount: one of the two
// runs on a data directory at a time.
func runServe(args []string, stdout, stderr io.Writer) error {
	f := newFlags("serve", stderr)
	var ef engineFlags
	ef.register(f)
	var sf seedFlags
	sf.register(f)
	var tf trackersFlag
	tf.register(f)
	var hf httpFlags
	hf.register(f, "ADDRESS to serve HTTP on, e.g. 127.0.0.1:8080 (required)")
	dataDir := dataDirFlag(f)
	cacheSize := f.String("cache-size", "10GiB", "piece cache capacity, e.g. 512MiB or 20GiB")
	readTimeout := f.Duration("read-timeout", fs.DefaultReadTimeout, "a read the swarm cannot serve in this time fails")
	download := f.String("download", "wanted", "what to download: \"wanted\" (what is read, plus readahead and media heads and tails) or \"all\"")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if *hf.addr == "" {
		return usageErr("serve needs --http ADDRESS")
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	// Refuse a bad address or missing credentials before touching the
	// cache.
	if _, err := hf.options(); err != nil {
		return err
	}
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
	topts := engine.TorrentOptions{DownloadAll: downloadAll, Peers: peers}
	sf.set(&topts)
	if err := tf.set(&topts); err != nil {
		return err
	}
	logger := log.New(stderr, "swarmfs: ", log.Ltime)
	logf := logger.Printf
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
	sess, err := session.New(session.Config{
		Engine: session.NewEngine(client, topts),
		Store:  ca,
		Logf:   logf,
	})
	if err != nil {
		return err
	}
	defer sess.Close()
	// The control socket first: it refuses to start if a mount or another
	// serve already uses the data directory.
	cs, err := startControl(*dataDir, sess.Handler(nil))
	if err != nil {
		return err
	}
	defer cs.close()
	sess.Restore()
	if err := addSources(sess, f.Args(), stderr); err != nil {
		return err
	}
	hf.readTimeout = *readTimeout
	hs, err := startHTTP(&hf, sess, client, func() {}, logf)
	if err != nil {
		return err
	}
	defer hs.close()
	fmt.Fprintf(stdout, "swarmfs %s: %d torrent(s) served at http://%s/ (peers on %s, cache %s in %s)\n",
		engine.Version, len(sess.Torrents()), hs.addr, client.Addr(), humanBytes(capacity), *dataDir)
	fmt.Fprintln(stdout, "add more with: swarmfs add TORRENT|MAGNET; stop with Ctrl-C")
	s := <-sig
	fmt.Fprintf(stdout, "%v: stopping\n", s)
	return nil
}
