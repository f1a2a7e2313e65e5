package main

// End-to-end tests (issue 5, "How it is tested"): the swarmfs binary mounts
// torrents served by a real libtorrent seeder behind opentracker, and plain
// programs read the mount: find, cmp, sha256sum, cat, cp, rmdir, getfattr,
// ffprobe, ffmpeg. Each test starts its own tracker, seeder and mounts on
// its own loopback addresses; every mount is stopped, unmounted and killed
// in cleanup, also when the test fails (see mountProc).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// e2eData is the data the end-to-end tests share, written once per test
// binary under e2eTemp.
type e2eData struct {
	Root   string // the save folder of every torrent below
	Multi  string // Root/e2e-data: swarmtest.StandardFiles and media/clip.mp4
	Clip   string // Multi/media/clip.mp4: 12 s, moov after mdat
	Solo   string // Root/solo.bin: the data of a single-file torrent
	Orphan string // Root/orphan: a torrent nobody seeds (data.bin, empty)
	// MultiHash and SoloHash are the info-hashes of Multi and Solo with
	// pieceLen pieces (trackers are not part of the hash).
	MultiHash, SoloHash [20]byte
}

var dataOnce struct {
	sync.Once
	d  e2eData
	ok bool
}

// pieceLen is the piece length of the test torrents: small, so a few MiB
// make many pieces and reads cross piece boundaries.
const pieceLen = 32 << 10

// testData checks the tools the end-to-end tests need (skipping, or failing
// under CI=true, without them) and returns the shared data.
func testData(tb testing.TB) e2eData {
	tb.Helper()
	swarmtest.RequireTools(tb, "libtorrent", "opentracker", "fuse", "ffprobe", "ffmpeg")
	dataOnce.Do(func() {
		root := filepath.Join(e2eTemp, "data")
		d := e2eData{
			Root:   root,
			Multi:  filepath.Join(root, "e2e-data"),
			Solo:   filepath.Join(root, "solo.bin"),
			Orphan: filepath.Join(root, "orphan"),
		}
		d.Clip = filepath.Join(d.Multi, "media", "clip.mp4")
		swarmtest.WriteFiles(tb, d.Multi, swarmtest.StandardFiles())
		makeVideo(tb, d.Clip, 12, "320x240", "1M")
		swarmtest.WriteFiles(tb, root, []swarmtest.FileSpec{{Path: "solo.bin", Size: 1<<20 + 4321}})
		swarmtest.WriteFiles(tb, d.Orphan, []swarmtest.FileSpec{{Path: "data.bin", Size: 2 << 20}, {Path: "empty", Size: 0}})
		d.MultiHash = swarmtest.MakeTorrentInfo(tb, d.Multi, nil, pieceLen).InfoHash
		d.SoloHash = swarmtest.MakeTorrentInfo(tb, d.Solo, nil, pieceLen).InfoHash
		dataOnce.d, dataOnce.ok = d, true
	})
	if !dataOnce.ok {
		tb.Fatal("the shared end-to-end test data could not be made: see the first test that failed")
	}
	return dataOnce.d
}

// swarm is an opentracker and a libtorrent seeder on 127.0.0.2 seeding the
// multi-file and the single-file test torrents.
type swarm struct {
	tr          *swarmtest.Tracker
	seeder      *swarmtest.LT
	multi, solo swarmtest.TorrentInfo
}

// startSwarm starts the tracker and the seeder; uploadRate caps the seeder
// (bytes/s, 0 for none).
func startSwarm(t *testing.T, d e2eData, uploadRate int) *swarm {
	t.Helper()
	s := &swarm{tr: startTracker(t, d.MultiHash, d.SoloHash)}
	tiers := [][]string{{s.tr.HTTP}}
	s.multi = swarmtest.MakeTorrentInfo(t, d.Multi, tiers, pieceLen)
	s.solo = swarmtest.MakeTorrentInfo(t, d.Solo, tiers, pieceLen)
	if s.multi.InfoHash != d.MultiHash || s.solo.InfoHash != d.SoloHash {
		t.Fatal("the info-hash of a test torrent depends on its trackers")
	}
	s.seeder = swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.0.2", UploadRate: uploadRate})
	s.seeder.AddTorrent(s.multi.Path, d.Root, true)
	s.seeder.AddTorrent(s.solo.Path, d.Root, true)
	s.seeder.WaitSeeding(t, s.multi.InfoHash, 30*time.Second)
	s.seeder.WaitSeeding(t, s.solo.InfoHash, 30*time.Second)
	return s
}

// mountTorrent mounts one torrent and waits for its folder, name.
func mountTorrent(t *testing.T, o mountOpts, name string) (*mountProc, string) {
	t.Helper()
	m := startMount(t, o)
	dir := filepath.Join(m.Dir, name)
	waitPath(t, dir, time.Minute)
	return m, dir
}

// regularFiles lists the regular files under dir, relative, sorted.
func regularFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			out = append(out, rel)
			return err
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// findListing is the tree under dir as find(1) prints it: "path type size",
// sorted, without folder sizes.
func findListing(tb testing.TB, dir string) []string {
	tb.Helper()
	out := runProg(tb, 30*time.Second, "find", dir, "-mindepth", "1", "-printf", `%P\t%y\t%s\n`)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if f := strings.Split(l, "\t"); len(f) == 3 && f[1] == "d" {
			lines[i] = f[0] + "\td"
		}
	}
	slices.Sort(lines)
	return lines
}

// checkListing compares the mounted tree with the original, names, kinds
// and sizes, and checks that nothing in it is writable.
func checkListing(t *testing.T, orig, mnt string) {
	t.Helper()
	got, want := findListing(t, mnt), findListing(t, orig)
	if !slices.Equal(got, want) {
		t.Fatalf("find in the mount:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	err := filepath.WalkDir(mnt, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s: mode %v, want read-only", p, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkSHA256 runs sha256sum over every file of the mounted tree and
// compares with the originals.
func checkSHA256(t *testing.T, orig, mnt string, timeout time.Duration) {
	t.Helper()
	rels := regularFiles(t, orig)
	args := []string{"--"}
	for _, r := range rels {
		args = append(args, filepath.Join(mnt, r))
	}
	out := runProg(t, timeout, "sha256sum", args...)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		sum, path, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("sha256sum printed %q", line)
		}
		got[path] = sum
	}
	for _, r := range rels {
		b, err := os.ReadFile(filepath.Join(orig, r))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(b)
		if g := got[filepath.Join(mnt, r)]; g != hex.EncodeToString(want[:]) {
			t.Errorf("sha256sum %s = %q, want %x", r, g, want)
		}
	}
}

// checkCmp runs cmp on every file of the mounted tree against the original.
func checkCmp(t *testing.T, orig, mnt string, timeout time.Duration) {
	t.Helper()
	for _, r := range regularFiles(t, orig) {
		runProg(t, timeout, "cmp", "--", filepath.Join(orig, r), filepath.Join(mnt, r))
	}
}

// checkPreads reads n random ranges of random files through the mount with
// pread (os.File.ReadAt) and compares them with the originals, plus the
// edges: first and last byte, piece boundaries, and reads past the end.
func checkPreads(t *testing.T, orig, mnt string, n int, seed uint64) {
	t.Helper()
	type file struct {
		rel  string
		want []byte
		f    *os.File
	}
	var files []file
	for _, r := range regularFiles(t, orig) {
		want, err := os.ReadFile(filepath.Join(orig, r))
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(mnt, r))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, file{r, want, f})
	}
	check := func(fl file, off int64, size int) {
		t.Helper()
		buf := make([]byte, size)
		got, err := fl.f.ReadAt(buf, off)
		end := min(off+int64(size), int64(len(fl.want)))
		wantN := int(max(0, end-off))
		switch {
		case got != wantN:
			t.Fatalf("%s: pread(%d bytes at %d) = %d, %v; want %d bytes", fl.rel, size, off, got, err, wantN)
		case wantN < size && err != io.EOF:
			t.Fatalf("%s: pread(%d bytes at %d) past the end: err %v, want EOF", fl.rel, size, off, err)
		case wantN == size && err != nil:
			t.Fatalf("%s: pread(%d bytes at %d): %v", fl.rel, size, off, err)
		}
		if wantN > 0 && !bytes.Equal(buf[:got], fl.want[off:end]) {
			i := 0
			for buf[i] == fl.want[off+int64(i)] {
				i++
			}
			t.Fatalf("%s: pread(%d bytes at %d) differs at file offset %d: got %#02x, want %#02x",
				fl.rel, size, off, off+int64(i), buf[i], fl.want[off+int64(i)])
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var reads int
	for _, fl := range files {
		size := int64(len(fl.want))
		for _, off := range []int64{0, size - 1, size, size + 10, pieceLen - 1, pieceLen, 3*pieceLen - 7} {
			if off >= 0 {
				check(fl, off, 1+int(rng.IntN(3*pieceLen)))
				reads++
			}
		}
	}
	for ; reads < n; reads++ {
		fl := files[rng.IntN(len(files))]
		if len(fl.want) == 0 || rng.IntN(2) == 0 {
			fl = slices.MaxFunc(files, func(a, b file) int { return len(a.want) - len(b.want) })
		}
		check(fl, rng.Int64N(int64(len(fl.want))), 1+rng.IntN(256<<10))
	}
}

// mountStatus is "swarmfs status --json" of the mount using dataDir.
func mountStatus(t *testing.T, dataDir string) []session.TorrentStatus {
	t.Helper()
	out, code := swarmfsCmd(t, "status", "--data-dir", dataDir, "--json")
	if code != 0 {
		t.Fatalf("swarmfs status --json: exit %d:\n%s", code, out)
	}
	var st []session.TorrentStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("swarmfs status --json: %v:\n%s", err, out)
	}
	return st
}

// diskUsage is du(1)'s figure for path in bytes: st_blocks × 512.
func diskUsage(t *testing.T, path string) int64 {
	t.Helper()
	out := runProg(t, 10*time.Second, "du", "-s", "--block-size=1", path)
	n, err := strconv.ParseInt(strings.Fields(out)[0], 10, 64)
	if err != nil {
		t.Fatalf("du %s: %q", path, out)
	}
	return n
}

// TestE2EReadAll mounts the multi-file torrent from an unlimited seeder and
// checks the listing, random preads on a cold mount, sha256sum and cmp of
// every file (nested and empty ones included), the extended attributes,
// du, and swarmfs status.
func TestE2EReadAll(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 0)
	m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.11", Sources: []string{s.multi.Path}}, "e2e-data")

	t.Run("listing", func(t *testing.T) { checkListing(t, d.Multi, dir) })
	t.Run("random preads", func(t *testing.T) { checkPreads(t, d.Multi, dir, 400, 1) })
	t.Run("sha256sum", func(t *testing.T) { checkSHA256(t, d.Multi, dir, time.Minute) })
	t.Run("cmp", func(t *testing.T) { checkCmp(t, d.Multi, dir, time.Minute) })
	t.Run("xattrs", func(t *testing.T) {
		out := runProg(t, 10*time.Second, "getfattr", "-d", "-m", "^user\\.swarmfs\\.", "--", filepath.Join(dir, "a", "b", "c", "d.bin"))
		if want := "user.swarmfs.infohash=\"" + hex.EncodeToString(s.multi.InfoHash[:]) + "\""; !strings.Contains(out, want) {
			t.Errorf("getfattr -d:\n%s\nlacks %s", out, want)
		}
		for _, name := range []string{"user.swarmfs.progress", "user.swarmfs.peers"} {
			if !strings.Contains(out, name+"=") {
				t.Errorf("getfattr -d:\n%s\nlacks %s", out, name)
			}
		}
	})
	t.Run("du", func(t *testing.T) {
		// Everything is cached now: st_blocks covers each file (the
		// attributes of a file that was downloading live up to a second).
		big := filepath.Join(dir, "big.bin")
		deadline := time.Now().Add(5 * time.Second)
		for {
			du := diskUsage(t, big)
			if du >= 3<<20+12345 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("du big.bin = %d after reading it all, want >= its size", du)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("status", func(t *testing.T) {
		st := mountStatus(t, m.DataDir)
		if len(st) != 1 {
			t.Fatalf("status lists %d torrents, want 1: %+v", len(st), st)
		}
		ts := st[0]
		want := hex.EncodeToString(s.multi.InfoHash[:])
		if ts.Name != "e2e-data" || ts.InfoHash != want || !ts.HasInfo || ts.Size != s.multi.TotalSize {
			t.Errorf("status %+v: want e2e-data, %s, size %d, with info", ts, want, s.multi.TotalSize)
		}
		if ts.Progress != 1 || ts.Completed != ts.Size {
			t.Errorf("status after reading everything: progress %v, completed %d of %d", ts.Progress, ts.Completed, ts.Size)
		}
		if ts.Downloaded < ts.Size || ts.CachedBytes < ts.Size || ts.CachedBytes > ts.Size+pieceLen {
			t.Errorf("status: downloaded %d, cached %d, size %d", ts.Downloaded, ts.CachedBytes, ts.Size)
		}
		if ts.DownloadRate < 0 || ts.UploadRate < 0 || ts.Peers < 0 || ts.Seeds > ts.Peers {
			t.Errorf("status: rates %v/%v, peers %d, seeds %d", ts.DownloadRate, ts.UploadRate, ts.Peers, ts.Seeds)
		}
		out, code := swarmfsCmd(t, "status", "--data-dir", m.DataDir)
		if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "e2e-data") ||
			!strings.Contains(out, "100.0%") || !strings.Contains(out, want) {
			t.Errorf("swarmfs status: exit %d:\n%s", code, out)
		}
	})
	m.StopClean(t)
}

// probeDuration is the container duration ffprobe reads from path.
func probeDuration(t testing.TB, path string) float64 {
	t.Helper()
	out := runProg(t, 5*time.Minute, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		t.Fatalf("ffprobe %s printed %q", path, out)
	}
	return d
}

// TestE2EMedia reads the end-indexed MP4 from a seeder capped at 2 MB/s,
// each step on a fresh mount (cold cache): ffprobe, ffmpeg seeking to the
// middle and decoding 2 s, and several programs reading at once.
func TestE2EMedia(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 2_000_000)
	clip := filepath.Join("media", "clip.mp4")
	want := probeDuration(t, d.Clip)

	t.Run("ffprobe", func(t *testing.T) {
		m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.21", Sources: []string{s.multi.Path}}, "e2e-data")
		if got := probeDuration(t, filepath.Join(dir, clip)); got < want-0.05 || got > want+0.05 {
			t.Errorf("ffprobe through the mount: duration %v, want %v", got, want)
		}
		m.StopClean(t)
	})
	t.Run("index prefetch", func(t *testing.T) {
		// Nothing reads: the mount fetches the clip's head and tail
		// (here the whole clip, under 2 MiB) on its own, and nothing
		// else but pieces the clip shares; with --index-prefetch 0 it
		// fetches nothing.
		cached := func(p string) int64 {
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			return st.Blocks * 512
		}
		fi, err := os.Stat(d.Clip)
		if err != nil {
			t.Fatal(err)
		}
		clipSize := fi.Size()
		m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.25", Sources: []string{s.multi.Path}}, "e2e-data")
		deadline := time.Now().Add(time.Minute)
		for cached(filepath.Join(dir, clip)) < clipSize {
			if time.Now().After(deadline) {
				t.Fatalf("the clip's head and tail were not fetched in a minute: %d of %d bytes cached\n%s", cached(filepath.Join(dir, clip)), clipSize, m.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		for !strings.Contains(m.Output(), "fetched the head and tail of 1 media file") {
			if time.Now().After(deadline) {
				t.Fatalf("no log line for the prefetch:\n%s", m.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n := cached(filepath.Join(dir, "big.bin")); n > 2*pieceLen {
			t.Errorf("big.bin has %d bytes cached with nothing read; want at most the %d of pieces shared with the clip", n, 2*pieceLen)
		}
		if got := probeDuration(t, filepath.Join(dir, clip)); got < want-0.05 || got > want+0.05 {
			t.Errorf("ffprobe through the mount: duration %v, want %v", got, want)
		}
		m.StopClean(t)

		m, dir = mountTorrent(t, mountOpts{IP: "127.0.0.25", Sources: []string{s.multi.Path}, Flags: []string{"--index-prefetch", "0"}}, "e2e-data")
		time.Sleep(2 * time.Second)
		if n := cached(filepath.Join(dir, clip)); n != 0 {
			t.Errorf("--index-prefetch 0: the clip has %d bytes cached with nothing read", n)
		}
		m.StopClean(t)
	})
	t.Run("seek and decode", func(t *testing.T) {
		m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.22", Sources: []string{s.multi.Path}}, "e2e-data")
		ss := strconv.FormatFloat(want/2, 'f', 2, 64)
		out := runProg(t, time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-ss", ss,
			"-i", filepath.Join(dir, clip), "-t", "2", "-f", "null", "-")
		if strings.TrimSpace(out) != "" {
			t.Errorf("ffmpeg -ss %s: %s", ss, out)
		}
		m.StopClean(t)
	})
	t.Run("readers at once", func(t *testing.T) {
		// Two programs on one file (each its own handle and reader) and a
		// third decoding the video, all cold, all at once.
		m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.23", Sources: []string{s.multi.Path}, Watchdog: 5 * time.Minute}, "e2e-data")
		var sumOut, cmpOut, ffOut syncBuffer
		big := filepath.Join(dir, "big.bin")
		procs := []*child{
			startBg(t, &sumOut, "sha256sum", big),
			startBg(t, &cmpOut, "cmp", filepath.Join(d.Multi, "big.bin"), big),
			startBg(t, &ffOut, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", filepath.Join(dir, clip), "-f", "null", "-"),
		}
		for i, p := range procs {
			if !p.wait(2 * time.Minute) {
				t.Fatalf("reader %d still running after two minutes", i)
			}
		}
		b, _ := os.ReadFile(filepath.Join(d.Multi, "big.bin"))
		sum := sha256.Sum256(b)
		if !strings.HasPrefix(sumOut.String(), hex.EncodeToString(sum[:])) || procs[0].exitCode() != 0 {
			t.Errorf("sha256sum: %s", sumOut.String())
		}
		if procs[1].exitCode() != 0 {
			t.Errorf("cmp: exit %d: %s", procs[1].exitCode(), cmpOut.String())
		}
		if procs[2].exitCode() != 0 || strings.TrimSpace(ffOut.String()) != "" {
			t.Errorf("ffmpeg: exit %d: %s", procs[2].exitCode(), ffOut.String())
		}
		m.StopClean(t)
	})
	t.Run("many random readers", func(t *testing.T) {
		// Eight handles seeking around two files at once, cold: each
		// must progress and get the right bytes.
		// (Before 8c2f83a the reads stalled for good here: the torrent
		// loop kept preempting the one capped seeder and downloaded ten
		// times what it completed.)
		m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.24", Sources: []string{s.multi.Path}, Watchdog: 5 * time.Minute}, "e2e-data")
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- randomReads(filepath.Join(d.Multi, "big.bin"), filepath.Join(dir, "big.bin"), 15, uint64(g))
				if g%2 == 0 {
					errs <- randomReads(d.Clip, filepath.Join(dir, clip), 5, uint64(g))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		m.StopClean(t)
	})
}

// randomReads opens got once and preads n random ranges of up to 64 KiB,
// comparing them with want. It is safe to call from any goroutine.
func randomReads(want, got string, n int, seed uint64) error {
	orig, err := os.ReadFile(want)
	if err != nil {
		return err
	}
	f, err := os.Open(got)
	if err != nil {
		return err
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 77))
	buf := make([]byte, 64<<10)
	for range n {
		off := rng.Int64N(int64(len(orig)))
		size := 1 + rng.IntN(len(buf))
		k, err := f.ReadAt(buf[:size], off)
		wantN := min(int64(size), int64(len(orig))-off)
		if int64(k) != wantN || (err != nil && !(err == io.EOF && int64(k) < int64(size))) {
			return fmt.Errorf("%s: pread(%d at %d) = %d, %v; want %d bytes", got, size, off, k, err, wantN)
		}
		if !bytes.Equal(buf[:k], orig[off:off+int64(k)]) {
			return fmt.Errorf("%s: pread(%d at %d): wrong bytes", got, size, off)
		}
	}
	return nil
}

// mountOrphan mounts a torrent nobody seeds (no trackers, no peers).
func mountOrphan(t *testing.T, ip string) (*mountProc, string) {
	d := testData(t)
	orphan := swarmtest.MakeTorrentInfo(t, d.Orphan, nil, pieceLen)
	return mountTorrent(t, mountOpts{IP: ip, Sources: []string{orphan.Path}}, "orphan")
}

// startBlockedCat starts cat on a file nobody seeds and checks that it
// blocks.
func startBlockedCat(t *testing.T, path string) *child {
	t.Helper()
	var out syncBuffer
	cat := startBg(t, &out, "cat", path)
	if cat.wait(time.Second) {
		t.Fatalf("cat of a file nobody seeds returned (exit %d): %s", cat.exitCode(), out.String())
	}
	return cat
}

// TestE2EInterruptBlockedRead interrupts a read that waits on the swarm
// with SIGINT (Ctrl-C): the program must end at once, and the mount must
// go on serving.
func TestE2EInterruptBlockedRead(t *testing.T) {
	m, dir := mountOrphan(t, "127.0.0.31")
	data := filepath.Join(dir, "data.bin")
	if fi, err := os.Stat(data); err != nil || fi.Size() != 2<<20 {
		t.Fatalf("stat without peers: %v, %v", fi, err)
	}
	if du := diskUsage(t, data); du != 0 {
		t.Errorf("du of a file with nothing cached = %d", du)
	}

	cat := startBlockedCat(t, data)
	t0 := time.Now()
	cat.signal(os.Interrupt)
	if !cat.wait(10 * time.Second) {
		t.Fatal("cat still blocked 10 s after SIGINT")
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("cat took %v to end after SIGINT, want < 2 s", el)
	}
	t.Logf("blocked cat ended %v after SIGINT", time.Since(t0).Round(time.Millisecond))

	// Still healthy: listing, an empty file, status, and another blocked
	// reader, this one killed.
	names, err := os.ReadDir(dir)
	if err != nil || len(names) != 2 {
		t.Fatalf("readdir after the interrupt: %v, %v", names, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "empty")); err != nil || len(b) != 0 {
		t.Fatalf("read empty file: %q, %v", b, err)
	}
	if st := mountStatus(t, m.DataDir); len(st) != 1 || st[0].Name != "orphan" {
		t.Fatalf("status after the interrupt: %+v", st)
	}
	cat = startBlockedCat(t, data)
	t0 = time.Now()
	cat.signal(syscall.SIGKILL)
	if !cat.wait(10 * time.Second) {
		t.Fatal("cat still blocked 10 s after SIGKILL")
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("cat took %v to die after SIGKILL, want < 2 s", el)
	}
	m.StopClean(t)
}

// TestE2EUnmountDuringRead stops the mount (SIGINT) while a program waits
// in a read: the mount exits cleanly, the reader gets an error, and
// nothing stays mounted.
func TestE2EUnmountDuringRead(t *testing.T) {
	m, dir := mountOrphan(t, "127.0.0.32")
	cat := startBlockedCat(t, filepath.Join(dir, "data.bin"))
	m.StopClean(t)
	if !cat.wait(30 * time.Second) {
		t.Fatal("the reader still waits after the mount exited")
	}
	if cat.exitCode() == 0 {
		t.Error("cat succeeded reading a file nobody seeds")
	}
}

// TestE2EEarlySignal sends SIGINT at different moments of the mount's
// start: whenever it comes, the process ends and leaves no mount behind.
func TestE2EEarlySignal(t *testing.T) {
	swarmtest.RequireTools(t, "fuse")
	for delay := time.Duration(0); delay <= 150*time.Millisecond; delay += 10 * time.Millisecond {
		m := startMount(t, mountOpts{IP: "127.0.0.35", NoWait: true})
		time.Sleep(delay)
		m.c.signal(os.Interrupt)
		if !m.c.wait(kernelSlack) {
			// SIGQUIT: Go's runtime writes every goroutine's stack to
			// the output, which shows where it hangs.
			m.c.signal(syscall.SIGQUIT)
			m.c.wait(10 * time.Second)
			t.Fatalf("SIGINT %v after start: swarmfs mount still running %v later:\n%s", delay, kernelSlack, m.Output())
		}
		// Before Go's runtime is up the signal kills the process, which
		// is fine as long as nothing was mounted yet.
		if code := m.c.exitCode(); code != 0 && strings.Contains(m.Output(), " mounted at ") {
			t.Errorf("SIGINT %v after start: exit %d (%v) after mounting:\n%s", delay, code, m.c.waitErr, m.Output())
		}
		if isMounted(m.Dir) {
			t.Fatalf("SIGINT %v after start: %s left mounted:\n%s", delay, m.Dir, m.Output())
		}
	}
}

// TestE2EAddRemove adds and removes torrents on a running mount with
// swarmfs add and rm (the control socket), a magnet included, and with file
// operations: cp of a .torrent into the root, mkdir of an info-hash, rmdir.
func TestE2EAddRemove(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 0)
	m := startMount(t, mountOpts{IP: "127.0.0.41"})
	dd := []string{"--data-dir", m.DataDir}
	if ents, err := os.ReadDir(m.Dir); err != nil || len(ents) != 0 {
		t.Fatalf("an empty mount lists %v, %v", ents, err)
	}
	if out, code := swarmfsCmd(t, append([]string{"status"}, dd...)...); code != 0 || !strings.Contains(out, "no torrents") {
		t.Errorf("swarmfs status of an empty mount: exit %d: %s", code, out)
	}
	soloHex := hex.EncodeToString(s.solo.InfoHash[:])
	solo := filepath.Join(m.Dir, "solo.bin", "solo.bin")

	// swarmfs add, twice.
	out, code := swarmfsCmd(t, append(append([]string{"add"}, dd...), s.solo.Path)...)
	if code != 0 || !strings.Contains(out, "added solo.bin ("+soloHex+")") {
		t.Fatalf("swarmfs add: exit %d: %s", code, out)
	}
	waitPath(t, solo, 30*time.Second)
	runProg(t, time.Minute, "cmp", d.Solo, solo)
	out, code = swarmfsCmd(t, append(append([]string{"add"}, dd...), s.solo.Path)...)
	if code == 0 || !strings.Contains(out, "already") {
		t.Errorf("swarmfs add of a torrent already there: exit %d: %s", code, out)
	}
	st := mountStatus(t, m.DataDir)
	if len(st) != 1 || st[0].Name != "solo.bin" || st[0].InfoHash != soloHex || st[0].Size != 1<<20+4321 || st[0].Progress != 1 {
		t.Errorf("status after add and read: %+v", st)
	}

	// swarmfs rm, twice.
	out, code = swarmfsCmd(t, append(append([]string{"rm"}, dd...), "solo.bin")...)
	if code != 0 || !strings.Contains(out, "removed solo.bin") {
		t.Fatalf("swarmfs rm: exit %d: %s", code, out)
	}
	waitGone(t, filepath.Join(m.Dir, "solo.bin"), 30*time.Second)
	if out, code = swarmfsCmd(t, append(append([]string{"rm"}, dd...), "solo.bin")...); code == 0 {
		t.Errorf("swarmfs rm of a torrent not there succeeded: %s", out)
	}

	// cp of a .torrent into the root, then rmdir.
	multi := filepath.Join(m.Dir, "e2e-data")
	runProg(t, 30*time.Second, "cp", s.multi.Path, filepath.Join(m.Dir, "added.torrent"))
	waitPath(t, multi, 30*time.Second)
	for _, rel := range []string{"a/b/c/d.bin", "a/b/c/empty-deep", "unicode-é漢字/ünï.dat"} {
		runProg(t, time.Minute, "cmp", filepath.Join(d.Multi, rel), filepath.Join(multi, rel))
	}
	waitGone(t, filepath.Join(m.Dir, "added.torrent"), 5*time.Second)
	runProg(t, 30*time.Second, "rmdir", multi)
	waitGone(t, multi, 30*time.Second)

	// A magnet through swarmfs add: the metadata comes from the seeder.
	magnet := swarmtest.Magnet(s.solo.InfoHash, "solo.bin", s.tr.HTTP)
	if out, code = swarmfsCmd(t, append(append([]string{"add"}, dd...), magnet)...); code != 0 {
		t.Fatalf("swarmfs add MAGNET: exit %d: %s", code, out)
	}
	waitPath(t, solo, 30*time.Second)
	runProg(t, time.Minute, "cmp", d.Solo, solo)

	// The same magnet as a .magnet file copied in.
	if out, code = swarmfsCmd(t, append(append([]string{"rm"}, dd...), soloHex[:8])...); code != 0 {
		t.Fatalf("swarmfs rm HASH-PREFIX: exit %d: %s", code, out)
	}
	waitGone(t, filepath.Join(m.Dir, "solo.bin"), 30*time.Second)
	magnetFile := filepath.Join(t.TempDir(), "solo.magnet")
	if err := os.WriteFile(magnetFile, []byte(magnet+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runProg(t, 30*time.Second, "cp", magnetFile, m.Dir+"/")
	waitPath(t, solo, 30*time.Second)
	runProg(t, time.Minute, "cmp", d.Solo, solo)
	waitGone(t, filepath.Join(m.Dir, "solo.magnet"), 5*time.Second)

	// mkdir of an info-hash nobody knows: a folder waiting for metadata.
	unknown := strings.Repeat("5a", 20)
	if err := os.Mkdir(filepath.Join(m.Dir, unknown), 0o755); err != nil {
		t.Fatalf("mkdir MNT/<info-hash>: %v", err)
	}
	if ents, err := os.ReadDir(filepath.Join(m.Dir, unknown)); err != nil || len(ents) != 0 {
		t.Errorf("listing a folder waiting for metadata: %v, %v", ents, err)
	}
	st = mountStatus(t, m.DataDir)
	if len(st) != 2 || !slices.ContainsFunc(st, func(ts session.TorrentStatus) bool { return ts.InfoHash == unknown && !ts.HasInfo }) {
		t.Errorf("status after mkdir: %+v", st)
	}
	runProg(t, 30*time.Second, "rmdir", filepath.Join(m.Dir, unknown))
	waitGone(t, filepath.Join(m.Dir, unknown), 30*time.Second)

	// One more that will still wait for its metadata at the restart.
	waiting := strings.Repeat("6b", 20)
	if err := os.Mkdir(filepath.Join(m.Dir, waiting), 0o755); err != nil {
		t.Fatalf("mkdir MNT/<info-hash>: %v", err)
	}

	ents, err := os.ReadDir(m.Dir)
	if err != nil || len(ents) != 2 || ents[0].Name() != waiting || ents[1].Name() != "solo.bin" {
		t.Errorf("root at the end: %v, %v", ents, err)
	}
	m.StopClean(t)

	// The next mount brings back what was there (the magnet's metadata
	// included, and the magnet still waiting for its metadata), and nothing
	// that was removed.
	s.seeder.Remove(s.solo.InfoHash)
	m = startMount(t, mountOpts{IP: "127.0.0.42", DataDir: m.DataDir, Flags: []string{"--read-timeout", "10s"}})
	solo = filepath.Join(m.Dir, "solo.bin", "solo.bin")
	waitPath(t, solo, 30*time.Second)
	runProg(t, time.Minute, "cmp", d.Solo, solo)
	ents, err = os.ReadDir(m.Dir)
	if err != nil || len(ents) != 2 || ents[0].Name() != waiting || ents[1].Name() != "solo.bin" {
		t.Errorf("root after a restart: %v, %v", ents, err)
	}
	st = mountStatus(t, m.DataDir)
	if len(st) != 2 || !slices.ContainsFunc(st, func(ts session.TorrentStatus) bool { return ts.InfoHash == waiting && !ts.HasInfo }) {
		t.Errorf("status after the restart: %+v", st)
	}
	// Removed now, it stays removed.
	runProg(t, 30*time.Second, "rmdir", filepath.Join(m.Dir, waiting))
	waitGone(t, filepath.Join(m.Dir, waiting), 30*time.Second)
	m.StopClean(t)
	m = startMount(t, mountOpts{IP: "127.0.0.43", DataDir: m.DataDir})
	if ents, err = os.ReadDir(m.Dir); err != nil || len(ents) != 1 || ents[0].Name() != "solo.bin" {
		t.Errorf("root after removing the waiting magnet and a restart: %v, %v", ents, err)
	}
	m.StopClean(t)
}

// TestE2ERestartFromCache reads everything, stops the mount and the seeder,
// and mounts again with the same data directory and no torrent on the
// command line: the torrent comes back from the cache and every file reads
// byte-exact with no peer at all.
func TestE2ERestartFromCache(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 0)
	dataDir, mnt := t.TempDir(), t.TempDir()
	m1, dir := mountTorrent(t, mountOpts{IP: "127.0.0.51", DataDir: dataDir, Mountpoint: mnt, Sources: []string{s.multi.Path}}, "e2e-data")
	checkSHA256(t, d.Multi, dir, time.Minute)
	inos := inodes(t, dir)
	m1.StopClean(t)
	s.seeder.Remove(s.multi.InfoHash)

	// A piece missing from the cache would fail (EIO) instead of waiting.
	m2, dir := mountTorrent(t, mountOpts{IP: "127.0.0.52", DataDir: dataDir, Mountpoint: mnt, Flags: []string{"--read-timeout", "10s"}}, "e2e-data")
	checkListing(t, d.Multi, dir)
	if got := inodes(t, dir); !maps.Equal(got, inos) {
		t.Errorf("inode numbers changed across a restart:\n%v\nwas:\n%v", got, inos)
	}
	checkSHA256(t, d.Multi, dir, time.Minute)
	checkPreads(t, d.Multi, dir, 200, 2)
	st := mountStatus(t, m2.DataDir)
	if len(st) != 1 || st[0].Downloaded != 0 || st[0].Progress != 1 {
		t.Errorf("status after reading from the cache alone: %+v", st)
	}
	m2.StopClean(t)
}

// inodes maps every path under dir (and dir itself, ".") to its inode number.
func inodes(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Sys().(*syscall.Stat_t).Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestE2EReadTimeout reads a file nobody seeds with --read-timeout 2s: the
// read fails with EIO instead of hanging, and the mount goes on. The mount
// is then stopped from outside, with fusermount3 -u.
func TestE2EReadTimeout(t *testing.T) {
	d := testData(t)
	orphan := swarmtest.MakeTorrentInfo(t, d.Orphan, nil, pieceLen)
	m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.33", Sources: []string{orphan.Path}, Flags: []string{"--read-timeout", "2s"}}, "orphan")
	t0 := time.Now()
	out, err := runProgErr(t, 30*time.Second, "cat", filepath.Join(dir, "data.bin"))
	el := time.Since(t0)
	if err == nil || !strings.Contains(out, "Input/output error") {
		t.Errorf("cat of a file nobody seeds, read timeout 2 s: %v: %s", err, out)
	}
	if el < 1500*time.Millisecond || el > 10*time.Second {
		t.Errorf("cat failed after %v, want about 2 s", el)
	}
	t.Logf("cat failed after %v: %s", el.Round(time.Millisecond), strings.TrimSpace(out))
	if b, err := os.ReadFile(filepath.Join(dir, "empty")); err != nil || len(b) != 0 {
		t.Errorf("read empty file after a timeout: %q, %v", b, err)
	}
	runProg(t, kernelSlack, "fusermount3", "-u", m.Dir)
	if !m.c.wait(kernelSlack) {
		t.Fatal("swarmfs mount still running after fusermount3 -u")
	}
	if code := m.c.exitCode(); code != 0 {
		t.Errorf("swarmfs mount exited with %d after fusermount3 -u", code)
	}
	m.checkRace(t)
}

// TestE2ECrashRemount kills the mount with SIGKILL after it read part of a
// torrent: the next mount on the same folder clears the dead mount, brings
// the torrent back from the cache and serves every file right.
func TestE2ECrashRemount(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 0)
	dataDir, mnt := t.TempDir(), t.TempDir()
	m1, dir := mountTorrent(t, mountOpts{IP: "127.0.0.61", DataDir: dataDir, Mountpoint: mnt, Sources: []string{s.multi.Path}}, "e2e-data")
	runProg(t, time.Minute, "cmp", filepath.Join(d.Multi, "big.bin"), filepath.Join(dir, "big.bin"))
	m1.Kill9(t)
	// (A stat may still be answered from the kernel's attribute cache.)
	if _, err := os.ReadDir(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("listing a crashed mount: %v, want ENOTCONN", err)
	}
	m2, dir := mountTorrent(t, mountOpts{IP: "127.0.0.62", DataDir: dataDir, Mountpoint: mnt}, "e2e-data")
	checkSHA256(t, d.Multi, dir, time.Minute)
	m2.StopClean(t)
}

// TestE2EBadTorrent gives the mount a malformed, a truncated and a missing
// .torrent next to a good one, then copies a bad one in: each gets a clear
// message, and the good torrent is served throughout.
func TestE2EBadTorrent(t *testing.T) {
	d := testData(t)
	s := startSwarm(t, d, 0)
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.torrent")
	if err := os.WriteFile(bad, []byte("this is not a torrent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(s.solo.Path)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(tmp, "truncated.torrent")
	if err := os.WriteFile(truncated, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.torrent")
	m, dir := mountTorrent(t, mountOpts{IP: "127.0.0.71", Sources: []string{bad, truncated, missing, s.multi.Path}}, "e2e-data")
	out := m.Output()
	t.Logf("mount output:\n%s", out)
	for _, name := range []string{bad, truncated, missing} {
		if !strings.Contains(out, name+": ") {
			t.Errorf("no message naming %s", name)
		}
	}
	if strings.Contains(out, "panic") {
		t.Errorf("the mount panicked")
	}
	runProg(t, time.Minute, "cmp", filepath.Join(d.Multi, "big.bin"), filepath.Join(dir, "big.bin"))

	// Copied in: cp fails (the torrent is refused when the file closes).
	cpOut, err := runProgErr(t, 30*time.Second, "cp", bad, filepath.Join(m.Dir, "junk.torrent"))
	t.Logf("cp of a bad .torrent into the mount: %v: %s", err, cpOut)
	if err == nil {
		t.Error("cp of a bad .torrent into the mount succeeded")
	}
	waitGone(t, filepath.Join(m.Dir, "junk.torrent"), 5*time.Second)
	ents, err := os.ReadDir(m.Dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "e2e-data" {
		t.Errorf("root after the bad torrents: %v, %v", ents, err)
	}
	checkCmp(t, d.Multi, dir, time.Minute)
	m.StopClean(t)
}

// TestTopBoxes checks the MP4 box scanner the media tests rely on.
func TestTopBoxes(t *testing.T) {
	var b bytes.Buffer
	box := func(typ string, body int) {
		var h [8]byte
		h[0], h[1], h[2], h[3] = byte((body+8)>>24), byte((body+8)>>16), byte((body+8)>>8), byte(body+8)
		copy(h[4:], typ)
		b.Write(h[:])
		b.Write(make([]byte, body))
	}
	box("ftyp", 16)
	box("mdat", 1000)
	box("moov", 50)
	p := filepath.Join(t.TempDir(), "x.mp4")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := topBoxes(p)
	if err != nil || fmt.Sprint(got) != "[ftyp mdat moov]" {
		t.Fatalf("topBoxes = %v, %v", got, err)
	}
}
