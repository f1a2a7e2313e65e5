package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/swarmfs/swarmfs/engine"
)

// Bounds on a --trackers file: public lists hold a few hundred URLs.
const (
	maxTrackersFile = 1 << 20
	maxTrackers     = 1000
)

// trackersFlag is --trackers FILE: announce URLs added as a last tier to
// every torrent that is not private.
type trackersFlag struct{ file string }

func (f *trackersFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&f.file, "trackers", "", "add the trackers listed in FILE (one announce URL per line; blank lines and # comments allowed), "+
		"e.g. a public list such as newTrackon's, as a last tier to every torrent added with its info that is not private "+
		"(never to a private one, BEP 27); being a last tier, they are announced to when the torrent's own trackers fail or it has none")
}

// set reads the file, if any, into opts.
func (f *trackersFlag) set(opts *engine.TorrentOptions) error {
	if f.file == "" {
		return nil
	}
	fh, err := os.Open(f.file)
	if err != nil {
		return usageErr("--trackers: %v", err)
	}
	defer fh.Close()
	urls, err := parseTrackerList(io.LimitReader(fh, maxTrackersFile+1))
	if err != nil {
		return usageErr("--trackers %s: %v", f.file, err)
	}
	opts.ExtraTrackers = urls
	return nil
}

// parseTrackerList reads one announce URL per line; blank lines and lines
// starting with # are skipped. Only http, https and udp URLs are taken.
func parseTrackerList(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	n, size := 0, 0
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		if size > maxTrackersFile {
			return nil, fmt.Errorf("longer than %d bytes", maxTrackersFile)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("line %d: %q is not a tracker URL", n, line)
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https", "udp":
		default:
			return nil, fmt.Errorf("line %d: %q: want an http, https or udp URL", n, line)
		}
		if len(out) == maxTrackers {
			return nil, fmt.Errorf("more than %d trackers", maxTrackers)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
