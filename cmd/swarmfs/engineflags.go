package main

import (
	"flag"
	"io"
	"log"
	"net/netip"
	"os"
	"strings"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
)

// engineFlags are the flags every command that runs a client shares.
type engineFlags struct {
	listen       string
	peers        listFlag
	uploadRate   string
	downloadRate string
	noTrackers   bool
	verbose      bool
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.listen, "listen", ":6881", "TCP address for incoming peers (\":0\" picks a free port)")
	fs.Var(&e.peers, "peer", "connect to this peer (ip:port); repeatable")
	fs.StringVar(&e.uploadRate, "max-upload-rate", "", "upload limit per second, e.g. 2MB (default unlimited)")
	fs.StringVar(&e.downloadRate, "max-download-rate", "", "download limit per second, e.g. 10MiB (default unlimited)")
	fs.BoolVar(&e.noTrackers, "no-trackers", false, "do not announce to the torrent's trackers")
	fs.BoolVar(&e.verbose, "v", false, "log peer and tracker events to stderr")
}

// config turns the flags into an engine configuration.
func (e *engineFlags) config(stderr io.Writer) (engine.Config, []netip.AddrPort, error) {
	cfg := engine.Config{ListenAddr: e.listen, NoTrackers: e.noTrackers}
	if e.uploadRate != "" {
		n, err := cache.ParseSize(strings.TrimSuffix(e.uploadRate, "/s"))
		if err != nil {
			return cfg, nil, usageErr("--max-upload-rate: %v", err)
		}
		cfg.UploadRate = n
	}
	if e.downloadRate != "" {
		n, err := cache.ParseSize(strings.TrimSuffix(e.downloadRate, "/s"))
		if err != nil {
			return cfg, nil, usageErr("--max-download-rate: %v", err)
		}
		cfg.DownloadRate = n
	}
	if e.verbose {
		l := log.New(stderr, "", log.Ltime|log.Lmicroseconds)
		cfg.Logf = l.Printf
	}
	var peers []netip.AddrPort
	for _, p := range e.peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return cfg, nil, usageErr("--peer %q: want ip:port", p)
		}
		peers = append(peers, ap)
	}
	return cfg, peers, nil
}

// fileExists reports whether path names an existing file or folder.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
