package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/session"
)

func runAdd(args []string, stdout, stderr io.Writer) error {
	f := newFlags("add", stderr)
	dataDir := dataDirFlag(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErr("add needs at least one TORRENT or MAGNET")
	}
	cc, err := dialControl(*dataDir)
	if err != nil {
		return err
	}
	var failed int
	for _, arg := range f.Args() {
		var body []byte
		if strings.HasPrefix(arg, "magnet:") {
			body = []byte(arg)
		} else if body, err = readTorrentFile(arg); err != nil {
			fmt.Fprintf(stderr, "swarmfs add: %v\n", err)
			failed++
			continue
		}
		var out map[string]string
		if err := cc.do("POST", "/add", bytes.NewReader(body), &out); err != nil {
			fmt.Fprintf(stderr, "swarmfs add: %s: %v\n", arg, err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "added %s (%s)\n", out["name"], out["info_hash"])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d not added", failed, f.NArg())
	}
	return nil
}

func runRm(args []string, stdout, stderr io.Writer) error {
	f := newFlags("rm", stderr)
	dataDir := dataDirFlag(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErr("rm needs at least one NAME or INFOHASH")
	}
	cc, err := dialControl(*dataDir)
	if err != nil {
		return err
	}
	for _, id := range f.Args() {
		var out map[string]string
		if err := cc.do("POST", "/rm?id="+url.QueryEscape(id), nil, &out); err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		fmt.Fprintf(stdout, "removed %s\n", out["name"])
	}
	return nil
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	f := newFlags("status", stderr)
	dataDir := dataDirFlag(f)
	asJSON := f.Bool("json", false, "print JSON")
	if err := parseFlags(f, args); err != nil {
		return err
	}
	cc, err := dialControl(*dataDir)
	if err != nil {
		return err
	}
	var ts []session.TorrentStatus
	if err := cc.do("GET", "/status", nil, &ts); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	if len(ts) == 0 {
		fmt.Fprintln(stdout, "no torrents mounted")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPROGRESS\tSIZE\tDOWN/s\tUP/s\tUPLOADED\tRATIO\tSEEDING\tPEERS\tSWARM S/L/DONE\tENCRYPTION\tTRANSPORT\tCACHED\tINFO-HASH")
	for _, t := range ts {
		ih := t.InfoHash
		if t.InfoHashV2 != "" {
			ih += " v2 " + t.InfoHashV2 // hybrid: both; v2-only: the first is the v2 truncated
		}
		prog := fmt.Sprintf("%.1f%%", 100*t.Progress)
		size := humanBytes(t.Size)
		if !t.HasInfo {
			prog, size = "metadata…", "?"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%d (%d seeds)\t%s\t%d rc4, %d plain\t%d tcp, %d utp\t%s\t%s\n", t.Name, prog, size,
			humanBytes(int64(t.DownloadRate)), humanBytes(int64(t.UploadRate)), humanBytes(t.Uploaded), t.Ratio, seedingColumn(t), t.Peers, t.Seeds, swarmColumn(t),
			t.EncryptedPeers, t.PlainPeers, t.TCPPeers, t.UTPPeers, humanBytes(t.CachedBytes), ih)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	// Web seeds and waiting reads, under the table: one line each.
	for _, t := range ts {
		for _, ws := range t.WebSeeds {
			line := fmt.Sprintf("%s: web seed %s: %s, %s/s, %s received", t.Name, ws.URL, ws.State, humanBytes(int64(ws.Rate)), humanBytes(ws.Bytes))
			if !ws.RetryAt.IsZero() {
				line += ", retry at " + ws.RetryAt.Local().Format("15:04:05")
			}
			if ws.DisabledFiles > 0 {
				line += fmt.Sprintf(", %d files gone", ws.DisabledFiles)
			}
			if ws.NoRanges {
				line += ", ignores ranges (files read from their start)"
			}
			if ws.LastError != "" {
				line += ", last error: " + ws.LastError
			}
			fmt.Fprintln(stdout, line)
		}
		if t.Waiting != "" {
			fmt.Fprintf(stdout, "%s: %s\n", t.Name, t.Waiting)
		}
	}
	return nil
}

// seedingColumn is the status table's SEEDING: the state, its goal, and
// super-seeding.
func seedingColumn(t session.TorrentStatus) string {
	s := t.SeedState
	if s == "" {
		s = "-"
	}
	if t.SeedGoal != "" {
		s += " (goal: " + t.SeedGoal + ")"
	}
	if t.SuperSeeding {
		s += ", super-seeding"
	}
	if t.NoSeeders {
		s += "; no seeders"
	}
	return s
}

// swarmColumn is the status table's SWARM: the trackers' seeders,
// leechers and completed downloads, "-" before a scrape answered.
func swarmColumn(t session.TorrentStatus) string {
	if t.Swarm == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d/%d", t.Swarm.Seeders, t.Swarm.Leechers, t.Swarm.Completed)
}

func runCache(args []string, stdout, stderr io.Writer) error {
	f := newFlags("cache", stderr)
	dataDir := dataDirFlag(f)
	if err := parseFlags(f, args); err != nil {
		return err
	}
	var drop string
	switch {
	case f.NArg() == 0:
	case f.NArg() == 2 && f.Arg(0) == "drop":
		drop = f.Arg(1)
	default:
		return usageErr("cache takes no arguments, or: drop NAME|INFOHASH")
	}
	// With a mount running, the cache is its: go through the control socket.
	cc, err := dialControl(*dataDir)
	if err != nil && !errors.Is(err, errNoMount) {
		return err
	}
	if err == nil {
		if drop != "" {
			var out map[string]string
			if err := cc.do("POST", "/cache/drop?id="+url.QueryEscape(drop), nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dropped %s\n", out["name"])
			return nil
		}
		var st session.CacheStatus
		if err := cc.do("GET", "/cache", nil, &st); err != nil {
			return err
		}
		return printCache(stdout, st)
	}
	dir := filepath.Join(*dataDir, "cache")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "no cache in %s\n", *dataDir)
		return nil
	}
	c, err := cache.Open(cache.Options{Dir: dir, Logf: func(string, ...any) {}})
	if err != nil {
		return err
	}
	defer c.Close()
	if drop != "" {
		ih, err := session.ResolveCached(c, drop)
		if err != nil {
			return err
		}
		if err := c.DropTorrent(ih); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dropped %s\n", ih)
		return nil
	}
	return printCache(stdout, session.CacheStatusOf(c, nil))
}

func printCache(w io.Writer, st session.CacheStatus) error {
	fmt.Fprintf(w, "cache: %s of %s used (%s on disk)\n", humanBytes(st.Size), humanBytes(st.Capacity), humanBytes(st.Disk))
	if len(st.Torrents) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPIECES\tBYTES\tINFO-HASH")
	for _, t := range st.Torrents {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Pieces, humanBytes(t.Bytes), t.InfoHash)
	}
	return tw.Flush()
}

// lazyUnmount detaches a busy mount.
func lazyUnmount(mnt string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %v: %s", mnt, err, bytes.TrimSpace(out))
	}
	return nil
}
