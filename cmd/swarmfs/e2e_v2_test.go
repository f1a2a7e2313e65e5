package main

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestE2EV2 mounts the multi-file test data (an empty file, files smaller
// than a piece, a file of a hundred pieces, a video) as a v2-only and as a
// hybrid torrent made by libtorrent and seeded by it, and as the v2-only
// torrent's btmh magnet (the info and the piece layers come from the
// seeder): the listing has no pad file, every file reads byte-exact, and
// the xattrs and swarmfs status show the v2 info-hash.
func TestE2EV2(t *testing.T) {
	d := testData(t)
	for i, tc := range []struct{ format, how string }{
		{"v2", "torrent"},
		{"hybrid", "torrent"},
		{"v2", "magnet"},
	} {
		t.Run(tc.format+"/"+tc.how, func(t *testing.T) {
			tr := swarmtest.StartTracker(t)
			ti := swarmtest.MakeTorrentFormat(t, d.Multi, [][]string{{tr.HTTP}}, pieceLen, tc.format)
			tr.Allow(ti.InfoHash)
			seeder := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
			seeder.AddTorrent(ti.Path, d.Root, true)
			seeder.WaitSeeding(t, ti.InfoHash, 30*time.Second)
			src := ti.Path
			if tc.how == "magnet" {
				src = swarmtest.MagnetV2([20]byte{}, ti.InfoHashV2, tr.HTTP)
			}
			ip := "127.0.0." + []string{"81", "82", "83"}[i]
			m, dir := mountTorrent(t, mountOpts{IP: ip, Sources: []string{src}}, "e2e-data")
			checkListing(t, d.Multi, dir)
			checkCmp(t, d.Multi, dir, 2*time.Minute)
			v2 := hex.EncodeToString(ti.InfoHashV2[:])
			out := runProg(t, 10*time.Second, "getfattr", "-d", "-m", "^user\\.swarmfs\\.", "--", filepath.Join(dir, "big.bin"))
			for _, want := range []string{
				"user.swarmfs.infohash=\"" + hex.EncodeToString(ti.InfoHash[:]) + "\"",
				"user.swarmfs.infohash_v2=\"" + v2 + "\"",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("getfattr -d:\n%s\nlacks %s", out, want)
				}
			}
			st := mountStatus(t, m.DataDir)
			if len(st) != 1 || st[0].InfoHash != hex.EncodeToString(ti.InfoHash[:]) || st[0].InfoHashV2 != v2 {
				t.Errorf("status %+v: want info-hashes %x and %s", st, ti.InfoHash, v2)
			}
			m.StopClean(t)
		})
	}
}

// TestE2EGetV2: `swarmfs get` of a v2-only torrent made and seeded by
// libtorrent (an empty file, files smaller than a piece, a file of a
// hundred pieces), from the .torrent and from its btmh magnet (the info
// and the piece layers come from the seeder), writes every file
// byte-exact and no pad file.
func TestE2EGetV2(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	root := filepath.Join(t.TempDir(), "v2get")
	swarmtest.WriteFiles(t, root, swarmtest.StandardFiles())
	ti := swarmtest.MakeTorrentFormat(t, root, nil, pieceLen, "v2")
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2"})
	lt.AddTorrent(ti.Path, filepath.Dir(root), true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)
	for i, src := range []string{ti.Path, swarmtest.MagnetV2([20]byte{}, ti.InfoHashV2)} {
		t.Run([]string{"torrent", "magnet"}[i], func(t *testing.T) {
			dir := t.TempDir()
			ip := []string{"127.0.0.84", "127.0.0.85"}[i]
			out, code, _ := runWatched(t, 2*time.Minute, "get", "-v", "--listen", ip+":0", "--no-dht", "--no-lsd", "--no-trackers",
				"--peer", lt.Addr(), src, dir)
			if code != 0 {
				t.Fatalf("swarmfs get exited %d:\n%s", code, out)
			}
			swarmtest.VerifyTree(t, root, filepath.Join(dir, "v2get"))
		})
	}
}
