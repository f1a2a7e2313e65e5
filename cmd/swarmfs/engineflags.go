package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/mse"
)

// engineFlags are the flags every command that runs a client shares.
type engineFlags struct {
	listen       string
	peers        listFlag
	uploadRate   string
	downloadRate string
	noTrackers   bool
	verbose      bool
	noDHT        bool
	dhtBootstrap string
	dhtListen    string
	noLSD        bool
	noPEX        bool
	encryption   string
	noUTP        bool
	noTCP        bool
	noWebSeeds   bool
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.listen, "listen", "", "TCP address for incoming peers, e.g. :6881 or [::1]:6881 (\":0\" picks a free port; no host is every IPv4 and IPv6 address, TCP, uTP and the DHT alike; default: 6881 on every address, else the first free of 6882-6889, else any free port)")
	fs.Var(&e.peers, "peer", "connect to this peer (ip:port, or [ipv6]:port), redialled at least once a minute while unreachable; repeatable")
	fs.StringVar(&e.uploadRate, "max-upload-rate", "", "upload limit per second, e.g. 2MB (default unlimited)")
	fs.StringVar(&e.downloadRate, "max-download-rate", "", "download limit per second, e.g. 10MiB (default unlimited)")
	fs.BoolVar(&e.noTrackers, "no-trackers", false, "do not announce to the torrent's trackers")
	fs.BoolVar(&e.verbose, "v", false, "log peer and tracker events to stderr")
	fs.BoolVar(&e.noDHT, "no-dht", false, "do not use the DHT to find peers (private torrents never do)")
	fs.StringVar(&e.dhtBootstrap, "dht-bootstrap", "", "DHT entry points, host:port or [ipv6]:port,... (default: the public routers, or none when --listen is a loopback address)")
	fs.StringVar(&e.dhtListen, "dht-listen", "", "UDP address of the DHT node (default: the --listen host and port)")
	fs.BoolVar(&e.noLSD, "no-lsd", false, "do not announce or look for peers on the local network (BEP 14)")
	fs.BoolVar(&e.noPEX, "no-pex", false, "do not exchange peer lists with peers (BEP 11)")
	fs.StringVar(&e.encryption, "encryption", "prefer", "MSE/PE protocol encryption: prefer, require or off. "+
		"prefer accepts both and dials with an encrypted (MSE) handshake first, offering RC4 and plaintext: "+
		"it reaches peers that require encryption (they drop a plain handshake without a word) as well as "+
		"those that merely allow it, and retries once in plain BitTorrent with a peer that hangs up on it; "+
		"require talks RC4 only, off plain BitTorrent only. "+
		"RC4 costs about 2 ns of CPU per byte each way (a third of a core at 150 MB/s); a peer that selects plaintext costs nothing, "+
		"and off saves the handshake's round trips but misses the peers that require encryption")
	fs.BoolVar(&e.noUTP, "no-utp", false, "do not use uTP (BEP 29): TCP only (default: uTP on the UDP port with the TCP port's number, shared with the DHT; peers known to speak uTP are dialled over it first, others over TCP first)")
	fs.BoolVar(&e.noTCP, "no-tcp", false, "dial peers over uTP only and drop incoming TCP connections")
	fs.BoolVar(&e.noWebSeeds, "no-webseeds", false, "do not fetch from the torrents' HTTP(S) web seeds (url-list, BEP 19)")
}

// config turns the flags into an engine configuration.
func (e *engineFlags) config(stderr io.Writer) (engine.Config, []netip.AddrPort, error) {
	cfg := engine.Config{
		ListenAddr: e.listen,
		NoTrackers: e.noTrackers,
		DHT:        !e.noDHT,
		DHTListen:  e.dhtListen,
		LSD:        !e.noLSD,
		NoPEX:      e.noPEX,
		NoWebSeeds: e.noWebSeeds,
	}
	// A client bound to loopback cannot reach the public DHT routers, nor
	// be reached by peers on the local network: keep it to itself (tests).
	loopback := false
	if host, _, err := net.SplitHostPort(e.listen); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			loopback = true
		}
	}
	if cfg.DHT {
		switch {
		case e.dhtBootstrap != "":
			for _, hp := range strings.Split(e.dhtBootstrap, ",") {
				hp = strings.TrimSpace(hp)
				if _, _, err := net.SplitHostPort(hp); err != nil || hp == "" {
					return cfg, nil, usageErr("--dht-bootstrap %q: want host:port,...", e.dhtBootstrap)
				}
				cfg.DHTBootstrap = append(cfg.DHTBootstrap, hp)
			}
		case loopback:
			cfg.DHTBootstrap = []string{}
		}
		if dir, err := os.UserCacheDir(); err == nil && !loopback {
			cfg.DHTStatePath = filepath.Join(dir, "swarmfs", "dht.state")
		}
	}
	if loopback {
		cfg.LSD = false
	}
	pol, err := mse.ParsePolicy(e.encryption)
	if err != nil {
		return cfg, nil, usageErr("--encryption: %v", err)
	}
	cfg.Encryption = pol
	if e.noUTP && e.noTCP {
		return cfg, nil, usageErr("--no-utp and --no-tcp leave no transport")
	}
	cfg.NoUTP, cfg.NoTCP = e.noUTP, e.noTCP
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
			return cfg, nil, usageErr("--peer %q: want ip:port or [ipv6]:port", p)
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
