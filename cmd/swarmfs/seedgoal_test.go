package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestGetSeedRatio: get --seed-ratio 0.5 downloads from a libtorrent seed,
// uploads to a libtorrent leecher (capped at 2 MB/s, so the goal comes
// before the leecher is done) and exits once it uploaded half the
// content, leaving the leecher incomplete.
func TestGetSeedRatio(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	src := t.TempDir()
	files := []swarmtest.FileSpec{{Path: "movie.bin", Size: 12 << 20}}
	swarmtest.WriteFiles(t, filepath.Join(src, "data"), files)
	tor, ih := swarmtest.MakeTorrent(t, filepath.Join(src, "data"), nil, 256<<10)
	seed := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.10", NoTrackers: true})
	seed.AddTorrent(tor, src, true)
	seed.WaitSeeding(t, ih, 30*time.Second)
	leech := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.12", NoTrackers: true})
	leech.AddTorrent(tor, t.TempDir(), false)

	out, code, _ := runWatched(t, 2*time.Minute, "get", "--listen", "127.0.0.11:0", "--no-dht", "--no-lsd", "--no-pex", "--no-trackers",
		"--max-upload-rate", "2MB", "--peer", seed.Addr(), "--peer", leech.Addr(), "--seed-ratio", "0.5", tor, t.TempDir())
	t.Logf("get: exit %d:\n%s", code, out)
	if code != 0 || !strings.Contains(out, "seeding goal reached") {
		t.Fatalf("get --seed-ratio 0.5: exit %d, want 0 and \"seeding goal reached\"", code)
	}
	// The leecher counts whole verified pieces; what we uploaded of the
	// pieces it was still assembling when we stopped (a few of 256 KiB)
	// is not in its count.
	st := leech.Status(ih)
	if size := swarmtest.TotalSize(files); st.TotalDone >= size || st.TotalDone < size/2-4*256<<10 {
		t.Errorf("the leecher has %d of %d bytes; want about half (less the pieces in flight), not all", st.TotalDone, size)
	}
}
