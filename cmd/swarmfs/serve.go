package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/swarmfs/swarmfs/engine"
)

// runServe is "swarmfs serve": the session, the control socket and the
// HTTP front-end, with no FUSE mount, for machines without FUSE. It shares
// the data directory (cache, control socket) with mount, and its flags and
// session setup (sessionFlags): one of the two runs on a data directory at
// a time.
func runServe(args []string, stdout, stderr io.Writer) error {
	f := newFlags("serve", stderr)
	var sf sessionFlags
	sf.register(f, "fails (the response is cut short)")
	var hf httpFlags
	hf.register(f, "ADDRESS to serve HTTP on, e.g. 127.0.0.1:8080 (required)")
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
	rs, err := sf.start(stderr, nil)
	if err != nil {
		return err
	}
	defer rs.close()
	sess := rs.sess
	// The control socket first: it refuses to start if a mount or another
	// serve already uses the data directory.
	cs, err := startControl(*sf.dataDir, sess.Handler(nil))
	if err != nil {
		return err
	}
	defer cs.close()
	sess.Restore()
	if err := addSources(sess, f.Args(), stderr); err != nil {
		return err
	}
	hf.readTimeout = *sf.readTimeout
	hs, err := startHTTP(&hf, sess, rs.client, func() {}, rs.logf)
	if err != nil {
		return err
	}
	defer hs.close()
	fmt.Fprintf(stdout, "swarmfs %s: %d torrent(s) served at http://%s/ (peers on %s, cache %s in %s)\n",
		engine.Version, len(sess.Torrents()), hs.addr, rs.client.Addr(), humanBytes(rs.capacity), *sf.dataDir)
	fmt.Fprintln(stdout, "add more with: swarmfs add TORRENT|MAGNET; stop with Ctrl-C")
	s := <-sig
	fmt.Fprintf(stdout, "%v: stopping\n", s)
	return nil
}
