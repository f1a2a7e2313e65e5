package main

// BenchmarkE2E: the filesystem figures of issues 5 and 16, swarmfs against
// btfs and anacrolix torrentfs, end to end, in one run. See
// docs/benchmarks.md for what each figure means and scripts/bench_fs.sh for
// how it is run (in a network namespace with only loopback, since btfs's
// libtorrent and torrentfs would otherwise look for DHT routers, UPnP
// gateways and LSD peers on the real network).

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// Knobs, from the environment.
const (
	// envBenchMB is the size of the big file in MiB (default 256).
	envBenchMB = "SWARMFS_BENCH_FS_MB"
	// envBenchReps is how many times each cheap figure is measured
	// (default 3); the table shows medians.
	envBenchReps = "SWARMFS_BENCH_FS_REPS"
	// envBenchData keeps the generated data (file, video, torrents) in this
	// folder across runs instead of a temporary one.
	envBenchData = "SWARMFS_BENCH_DATA"
	// envBenchDoc names a Markdown file whose table between benchMarkBegin
	// and benchMarkEnd is replaced with this run's.
	envBenchDoc = "SWARMFS_BENCH_DOC"
	// envBenchOnly limits the run to these figures (comma-separated keys
	// of benchFigures, e.g. "cold"), and envBenchSwarms to these swarms
	// ("fast", "slow"): for working on one figure. A limited run writes
	// no document.
	envBenchOnly   = "SWARMFS_BENCH_FS_ONLY"
	envBenchSwarms = "SWARMFS_BENCH_FS_SWARMS"
	// envTorrentfs is the anacrolix torrentfs binary (default: bin/bench/
	// torrentfs of this repository, where make bench installs it, then
	// PATH).
	envTorrentfs = "SWARMFS_TORRENTFS"
)

// benchWants reports whether the run measures figure key (in swarm, when
// not empty), following envBenchOnly and envBenchSwarms.
func benchWants(key, swarm string) bool {
	in := func(env, v string) bool {
		list := os.Getenv(env)
		return list == "" || v == "" || slices.Contains(strings.Split(list, ","), v)
	}
	return in(envBenchOnly, key) && in(envBenchSwarms, swarm)
}

func benchLimited() bool { return os.Getenv(envBenchOnly) != "" || os.Getenv(envBenchSwarms) != "" }

const (
	benchMarkBegin = "<!-- BEGIN BenchmarkE2E -->"
	benchMarkEnd   = "<!-- END BenchmarkE2E -->"
	// benchSeeders, each on its own address (127.0.0.2, ...).
	benchSeeders = 4
	// benchSlowRate is each seeder's upload cap in the slow swarms.
	benchSlowRate = 2_000_000
	// benchLatency is the delay each way between a filesystem and each
	// seeder in the "slow+latency" swarm (a swarmtest.DelayRelay in front
	// of each seeder): where request pipelining and round trips decide.
	benchLatency = 30 * time.Millisecond
	// benchPiece is the piece length of the benchmark torrent.
	benchPiece = 1 << 20
	// benchSettle is how long a fresh mount is left to find its peers
	// before a timed read, so that the figure is the read, not the
	// tracker round trip and the handshakes (both filesystems get it).
	benchSettle = time.Second
	// benchVideoSecs is the length of the test video; seek-and-play
	// starts in its middle and decodes benchPlaySecs.
	benchVideoSecs = 60
	benchPlaySecs  = 5
)

// benchSwarms are the swarms, in table order: unlimited seeders, capped
// ones, and capped ones behind benchLatency each way.
var benchSwarms = []string{"fast", "slow", "slow+latency"}

// benchFS is a filesystem under test.
type benchFS struct {
	name string
	// mount starts it on mnt with torrent; it returns at once (the
	// caller times the listing).
	mount func(b *testing.B, mnt, torrent string) benchMount
}

// benchMount is one running mount of a benchFS.
type benchMount interface {
	Pid() int
	// Stop unmounts and ends the process, failing b if it cannot.
	Stop(b testing.TB)
}

// swarmfsMount adapts mountProc.
type swarmfsMount struct{ *mountProc }

func (m swarmfsMount) Stop(tb testing.TB) { m.StopClean(tb) }

// describe returns what m tells of its torrents (swarmfs status), if
// anything.
func describe(b *testing.B, m benchMount) string {
	sm, ok := m.(swarmfsMount)
	if !ok {
		return ""
	}
	out, _ := swarmfsCmd(b, "status", "--json", "--data-dir", sm.DataDir)
	return strings.Join(strings.Fields(out), " ")
}

// procMount is a filesystem process of another project (btfs -f,
// torrentfs) serving one mount point. Like mountProc, it is unmounted and
// killed at cleanup whatever happens, and a watchdog detaches a wedged
// mount.
type procMount struct {
	name     string
	c        *child
	mnt      string
	out      *syncBuffer
	watchdog *time.Timer
	// stop asks the process to unmount and end (fusermount -u for btfs,
	// SIGTERM for torrentfs).
	stop func() error
}

func (m *procMount) Pid() int { return m.c.cmd.Process.Pid }

func (m *procMount) abort() {
	m.c.signal(syscall.SIGKILL)
	m.c.wait(kernelSlack)
	if isMounted(m.mnt) {
		_ = exec.Command("fusermount", "-u", "-z", m.mnt).Run()
	}
}

// procGrace is how long another project's filesystem gets to exit after
// being asked: btfs sometimes hangs after the unmount; it is not what we
// measure, so it gets less patience than our own mount.
const procGrace = 30 * time.Second

func (m *procMount) Stop(tb testing.TB) {
	tb.Helper()
	m.watchdog.Stop()
	if err := m.stop(); err != nil {
		tb.Logf("%s: stop: %v", m.name, err)
	}
	if !m.c.wait(procGrace) {
		tb.Logf("%s did not exit %v after being stopped: killing it", m.name, procGrace)
		m.abort()
	}
	if isMounted(m.mnt) {
		tb.Logf("%s: %s still mounted after its process ended: detaching it", m.name, m.mnt)
		_ = exec.Command("fusermount", "-u", "-z", m.mnt).Run()
	}
}

// startProcMount starts cmd, serving mnt, as a procMount.
func startProcMount(b *testing.B, name, mnt string, cmd *exec.Cmd, stop func(*procMount) error) *procMount {
	b.Helper()
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := startChild(cmd)
	if err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	recordMount(mnt)
	m := &procMount{name: name, c: c, mnt: mnt, out: out}
	m.stop = func() error { return stop(m) }
	m.watchdog = time.AfterFunc(10*time.Minute, m.abort)
	b.Cleanup(func() {
		m.watchdog.Stop()
		if c.running() {
			m.abort()
		}
		if isMounted(mnt) {
			_ = exec.Command("fusermount", "-u", "-z", mnt).Run()
		}
		if b.Failed() {
			b.Logf("%s output:\n%s", name, out.String())
		}
	})
	return m
}

func startBtfs(b *testing.B, mnt, torrent string) benchMount {
	b.Helper()
	// -f: stay in the foreground, so this is the filesystem's process.
	cmd := exec.Command("btfs", "-f", "--data-directory="+b.TempDir(), torrent, mnt)
	return startProcMount(b, "btfs", mnt, cmd, func(m *procMount) error {
		if out, err := exec.Command("fusermount", "-u", m.mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("fusermount -u: %w: %s", err, out)
		}
		return nil
	})
}

// torrentfsBin finds anacrolix torrentfs (envTorrentfs), or says why not.
func torrentfsBin() (string, error) {
	if p := os.Getenv(envTorrentfs); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envTorrentfs, p, err)
		}
		return p, nil
	}
	// The test runs in cmd/swarmfs; make bench installs into bin/bench.
	if p, err := filepath.Abs(filepath.Join("..", "..", "bin", "bench", "torrentfs")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("torrentfs"); err == nil {
		return p, nil
	}
	return "", errors.New("torrentfs not found in bin/bench or on PATH (make bench installs it; or set " + envTorrentfs + ")")
}

// startTorrentfs returns a benchFS.mount for anacrolix torrentfs at bin. It
// watches a folder of .torrent files and mounts each as MNT/<name>/, which
// is where the others put this torrent too (its top folder is "bench").
// Its default mmap storage fails on a torrent that holds an empty file;
// the classic file storage does not.
func startTorrentfs(bin string) func(b *testing.B, mnt, torrent string) benchMount {
	return func(b *testing.B, mnt, torrent string) benchMount {
		b.Helper()
		meta := b.TempDir()
		t, err := os.ReadFile(torrent)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(meta, "bench.torrent"), t, 0o644); err != nil {
			b.Fatal(err)
		}
		// Its flags take their values after "=" only. It listens on all
		// addresses (given an IPv4 one, it fails to listen on IPv6 too).
		cmd := exec.Command(bin, "-metainfoDir="+meta, "-downloadDir="+b.TempDir(), "-mountDir="+mnt)
		cmd.Env = append(os.Environ(), "TORRENT_STORAGE_DEFAULT_FILE_IO=classic")
		return startProcMount(b, "torrentfs", mnt, cmd, func(m *procMount) error {
			// On SIGTERM it closes its client and unmounts itself.
			m.c.signal(syscall.SIGTERM)
			return nil
		})
	}
}

// benchData is the benchmark's torrent: ROOT/bench/{big.bin,video.mp4}.
type benchData struct {
	root    string             // save folder
	big     swarmtest.FileSpec // bench/big.bin
	video   string             // bench/video.mp4, moov at the end
	torrent swarmtest.TorrentInfo
}

func makeBenchData(b *testing.B, sizeMB int) benchData {
	b.Helper()
	root := os.Getenv(envBenchData)
	if root == "" {
		root = b.TempDir()
	}
	d := benchData{
		root:  root,
		big:   swarmtest.FileSpec{Path: "bench/big.bin", Size: int64(sizeMB) << 20, Seed: 42},
		video: filepath.Join(root, "bench", "video.mp4"),
	}
	bigPath := filepath.Join(root, filepath.FromSlash(d.big.Path))
	if fi, err := os.Stat(bigPath); err != nil || fi.Size() != d.big.Size {
		swarmtest.WriteFiles(b, root, []swarmtest.FileSpec{d.big})
	}
	if _, err := os.Stat(d.video); err != nil {
		makeVideo(b, d.video, benchVideoSecs, "1280x720", "3M")
	}
	return d
}

// samples collects measurements per (figure, swarm, filesystem).
type samples map[string][]float64

func sampleKey(figure, swarm, fs string) string { return figure + "|" + swarm + "|" + fs }

func (s samples) add(figure, swarm, fs string, v float64) {
	k := sampleKey(figure, swarm, fs)
	s[k] = append(s[k], v)
}

func (s samples) median(figure, swarm, fs string) (float64, int) {
	v := slices.Clone(s[sampleKey(figure, swarm, fs)])
	if len(v) == 0 {
		return math.NaN(), 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], len(v)
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, len(v)
}

func (s samples) max(figure, swarm, fs string) float64 {
	v := s[sampleKey(figure, swarm, fs)]
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}

// Figures, in table order, with their unit and how to print them.
type figure struct {
	key, label, unit string
	// max: show the largest sample instead of the median.
	max bool
}

var benchFigures = []figure{
	{key: "listing", label: "mount → listing", unit: "ms"},
	{key: "ttfb50now", label: "first byte at 50%, opened as soon as listed", unit: "ms"},
	{key: "ttfb0", label: "first byte at 0%", unit: "ms"},
	{key: "ttfb50", label: "first byte at 50%", unit: "ms"},
	{key: "ttfb90", label: "first byte at 90%", unit: "ms"},
	{key: "ffprobe", label: "ffprobe, MP4 indexed at its end", unit: "s"},
	{key: "ffprobenow", label: "ffprobe, opened as soon as listed", unit: "s"},
	{key: "seekplay", label: "seek to the middle and play 5 s", unit: "s"},
	{key: "cold", label: "cold sequential read", unit: "MB/s"},
	{key: "cached", label: "cached re-read (second read)", unit: "MB/s"},
	{key: "coldcpu", label: "CPU time of the filesystem process, cold read", unit: "s"},
	{key: "rss", label: "peak RSS of the filesystem process", unit: "MiB", max: true},
	{key: "rsssmall", label: "peak RSS, cold read through a 64 MiB cache", unit: "MiB", max: true},
	{key: "warm", label: "first byte at 50% after a remount, tracker down (from the mount's start)", unit: "ms"},
}

// BenchmarkE2E measures swarmfs, anacrolix torrentfs and btfs mounting one
// torrent (a big file and an MP4 whose index is at its end, 1 MiB pieces)
// from four local libtorrent seeders behind opentracker, first unlimited
// ("fast"), then capped at 2 MB/s each ("slow"), then capped and reached
// through relays that add 30 ms each way ("slow+latency"), with a fresh
// mount and a cold cache for every timed figure, the filesystems taking
// turns in an order reversed every other run. It prints a Markdown table
// and, with SWARMFS_BENCH_DOC, writes it into that file.
//
// btfs and torrentfs run only when the benchmark runs in a network
// namespace that has nothing but loopback (scripts/bench_fs.sh does that):
// with their defaults, they would otherwise contact DHT routers on the
// internet.
func BenchmarkE2E(b *testing.B) {
	// "make bench" first runs every package's micro-benchmarks with
	// -bench . and the default -benchtime; this one takes minutes and
	// belongs to scripts/bench_fs.sh, which asks for one iteration.
	if bt := flag.Lookup("test.benchtime"); bt == nil || !strings.HasSuffix(bt.Value.String(), "x") {
		b.Skip("end to end, minutes long: run with -benchtime 1x (scripts/bench_fs.sh)")
	}
	swarmtest.RequireTools(b, "libtorrent", "opentracker", "fuse", "ffprobe", "ffmpeg")
	sizeMB, reps := 256, 3
	if s := os.Getenv(envBenchMB); s != "" {
		fmt.Sscan(s, &sizeMB)
	}
	if s := os.Getenv(envBenchReps); s != "" {
		fmt.Sscan(s, &reps)
	}
	swarmfsBin(b) // built (or found) before anything is timed
	swarmfsWith := func(cacheSize string) func(b *testing.B, mnt, torrent string) benchMount {
		return func(b *testing.B, mnt, torrent string) benchMount {
			return swarmfsMount{startMount(b, benchMountOpts(mnt, torrent, cacheSize))}
		}
	}
	fss := []benchFS{{name: "swarmfs", mount: swarmfsWith("4GiB")}}
	// The same, with a cache much smaller than the file: memory must not
	// grow with what streams through.
	smallCache := benchFS{name: "swarmfs", mount: swarmfsWith("64MiB")}
	var notes []string
	if ifs := netInterfaces(); len(ifs) == 1 && ifs[0] == "lo" {
		bin, err := torrentfsBin()
		switch {
		case err == nil:
			fss = append(fss, benchFS{name: "torrentfs", mount: startTorrentfs(bin)})
		case os.Getenv("CI") == "true":
			b.Fatalf("anacrolix torrentfs: %v", err)
		default:
			notes = append(notes, fmt.Sprintf("torrentfs skipped: %v", err))
			b.Logf("%s", notes[len(notes)-1])
		}
		swarmtest.RequireTools(b, "btfs")
		fss = append(fss, benchFS{name: "btfs", mount: startBtfs})
	} else {
		notes = append(notes, fmt.Sprintf("btfs and torrentfs skipped: the network namespace has %v, not only lo (run scripts/bench_fs.sh)", ifs))
		b.Logf("%s", notes[len(notes)-1])
	}

	// The swarm: a tracker and four seeders, which every mount finds
	// through the tracker.
	d := makeBenchData(b, sizeMB)
	// The info-hash does not depend on the trackers: learn it first, to
	// start the tracker with it on its whitelist.
	ih := swarmtest.MakeTorrentInfo(b, filepath.Join(d.root, "bench"), nil, benchPiece).InfoHash
	tr := startTracker(b, ih)
	d.torrent = swarmtest.MakeTorrentInfo(b, filepath.Join(d.root, "bench"), [][]string{{tr.HTTP}}, benchPiece)
	// The seeders check the data before the first figure (no SeedMode):
	// in seed mode libtorrent hashes each piece when it is first asked
	// for, on the cores the filesystems share, so whichever filesystem
	// read a piece first paid for that (the first fast cold read of a
	// run: 0.8 CPU s more of the seeders' for 256 MiB, about a fifth of
	// the machine's time), and a real swarm's seeders cost nothing here.
	var seeders []*swarmtest.LT
	for i := range benchSeeders {
		s := swarmtest.StartLibtorrent(b, swarmtest.LTOptions{IP: fmt.Sprintf("127.0.0.%d", 2+i)})
		s.AddTorrent(d.torrent.Path, d.root, true)
		seeders = append(seeders, s)
	}
	for _, s := range seeders {
		s.WaitSeeding(b, d.torrent.InfoHash, 2*time.Minute)
	}
	// The latency swarm: the same seeders, each behind a relay on an
	// address of its own that delays both directions, handed out by a
	// tracker that knows only the relays (the same info, so the same
	// info-hash, in a .torrent that names that tracker).
	latTorrent := ""
	if benchWants("", "slow+latency") {
		var relays []string
		for i, s := range seeders {
			r := swarmtest.StartDelayRelay(b, fmt.Sprintf("127.0.0.%d:0", 12+i), s.Addr(), benchLatency)
			relays = append(relays, r.Addr())
		}
		st := swarmtest.StartStaticTracker(b, relays...)
		lat := swarmtest.MakeTorrentInfo(b, filepath.Join(d.root, "bench"), [][]string{{st.URL}}, benchPiece)
		if lat.InfoHash != d.torrent.InfoHash {
			b.Fatalf("the latency swarm's torrent has info-hash %x, want %x", lat.InfoHash, d.torrent.InfoHash)
		}
		latTorrent = lat.Path
	}
	// The warm remount's torrent: the same info, so the same info-hash
	// and the same cache entry, naming a tracker nobody answers on.
	deadTorrent := ""
	if benchWants("warm", "") {
		dead := swarmtest.MakeTorrentInfo(b, filepath.Join(d.root, "bench"), [][]string{{"http://127.0.0.1:9/announce"}}, benchPiece)
		if dead.InfoHash != d.torrent.InfoHash {
			b.Fatalf("the dead tracker's torrent has info-hash %x, want %x", dead.InfoHash, d.torrent.InfoHash)
		}
		deadTorrent = dead.Path
	}
	videoRel := filepath.Join("bench", "video.mp4")
	bigRel := filepath.FromSlash(d.big.Path)
	ownStart := firstOwnPiece(b, d.torrent.Path, d.big.Path)
	vidDur := probeDuration(b, d.video)

	res := samples{}
	for b.Loop() {
		// The same operations on the original files, for scale.
		for range reps {
			if !benchWants("local", "") {
				break
			}
			res.add("ffprobe", "local", "local", timeIt(b, func() { ffprobeOK(b, d.video, vidDur) }).Seconds())
			res.add("seekplay", "local", "local", timeIt(b, func() { seekPlay(b, d.video, vidDur) }).Seconds())
			res.add("cached", "local", "local", seqRead(b, filepath.Join(d.root, bigRel), d.big))
		}
		for _, swarm := range benchSwarms {
			if !benchWants("", swarm) {
				continue
			}
			rate := 0
			if swarm != "fast" {
				rate = benchSlowRate
			}
			for _, s := range seeders {
				s.SetRates(rate, 0)
			}
			coldReps := reps
			if swarm != "fast" {
				coldReps = 1 // 256 MiB at 8 MB/s: half a minute each
			}
			d := d
			if swarm == "slow+latency" {
				d.torrent.Path = latTorrent
			}
			for rep := range reps {
				order := slices.Clone(fss)
				if rep%2 == 1 {
					slices.Reverse(order)
				}
				for _, fs := range order {
					// One mount per timed figure, each with a cold cache.
					if benchWants("ttfb50now", swarm) {
						withMount(b, fs, d, swarm, res, 0, func(mnt string, m benchMount) {
							off := d.big.Size / 2 &^ 4095
							res.add("ttfb50now", swarm, fs.name, float64(firstByte(b, filepath.Join(mnt, bigRel), off, d.big).Microseconds())/1000)
						})
					}
					for _, f := range []struct {
						key  string
						frac float64
					}{{"ttfb0", 0}, {"ttfb50", 0.5}, {"ttfb90", 0.9}} {
						if !benchWants(f.key, swarm) {
							continue
						}
						withMount(b, fs, d, swarm, res, benchSettle, func(mnt string, m benchMount) {
							off := int64(float64(d.big.Size)*f.frac) &^ 4095
							if f.frac == 0 {
								off = ownStart
							}
							res.add(f.key, swarm, fs.name, float64(firstByte(b, filepath.Join(mnt, bigRel), off, d.big).Microseconds())/1000)
						})
					}
					if benchWants("ffprobe", swarm) {
						withMount(b, fs, d, swarm, res, benchSettle, func(mnt string, m benchMount) {
							res.add("ffprobe", swarm, fs.name, timeIt(b, func() { ffprobeOK(b, filepath.Join(mnt, videoRel), vidDur) }).Seconds())
						})
					}
					if benchWants("ffprobenow", swarm) {
						withMount(b, fs, d, swarm, res, 0, func(mnt string, m benchMount) {
							res.add("ffprobenow", swarm, fs.name, timeIt(b, func() { ffprobeOK(b, filepath.Join(mnt, videoRel), vidDur) }).Seconds())
						})
					}
					if benchWants("seekplay", swarm) {
						withMount(b, fs, d, swarm, res, benchSettle, func(mnt string, m benchMount) {
							res.add("seekplay", swarm, fs.name, timeIt(b, func() { seekPlay(b, filepath.Join(mnt, videoRel), vidDur) }).Seconds())
						})
					}
					if rep < coldReps && benchWants("cold", swarm) {
						withMount(b, fs, d, swarm, res, benchSettle, func(mnt string, m benchMount) {
							p := filepath.Join(mnt, bigRel)
							// CPU seconds of the filesystem, the seeders and
							// the reader (this process) during the cold read.
							seedCPU := func() (s float64) {
								for _, sd := range seeders {
									s += procCPU(sd.Pid())
								}
								return s
							}
							flt0, _ := procStat(m.Pid())
							cpu0, seed0, self0 := procCPU(m.Pid()), seedCPU(), procCPU(os.Getpid())
							cold := seqRead(b, p, d.big)
							cpu, seed, self := procCPU(m.Pid())-cpu0, seedCPU()-seed0, procCPU(os.Getpid())-self0
							flt, _ := procStat(m.Pid())
							res.add("cold", swarm, fs.name, cold)
							res.add("coldcpu", swarm, fs.name, cpu)
							res.add("cached", swarm, fs.name, seqRead(b, p, d.big))
							b.Logf("%s %s swarm: cold read %.1f MB/s, %.2f CPU s (seeders %.2f, reader %.2f), %d page faults %s", fs.name, swarm, cold, cpu, seed, self, flt-flt0, describe(b, m))
						})
					}
					if fs.name == "swarmfs" && benchWants("warm", swarm) {
						res.add("warm", swarm, fs.name, warmRemount(b, d, deadTorrent, ownStart))
					}
					if fs.name == "swarmfs" && swarm == "fast" && rep == 0 && benchWants("rsssmall", swarm) {
						small := samples{}
						withMount(b, smallCache, d, swarm, small, benchSettle, func(mnt string, m benchMount) {
							cpu0 := procCPU(m.Pid())
							rate := seqRead(b, filepath.Join(mnt, bigRel), d.big)
							b.Logf("swarmfs %s swarm, 64 MiB cache: cold read %.1f MB/s, %.2f CPU s", swarm, rate, procCPU(m.Pid())-cpu0)
						})
						for _, v := range small[sampleKey("rss", swarm, fs.name)] {
							res.add("rsssmall", swarm, fs.name, v)
						}
					}
				}
			}
		}
	}

	names := make([]string, len(fss))
	for i, fs := range fss {
		names[i] = fs.name
	}
	table := benchTable(res, names, sizeMB, reps)
	goal := float64(benchPiece) / float64(benchSeeders*benchSlowRate) * 2
	notes = append(notes, fmt.Sprintf("Goal for first byte in the slow swarm: within 2× one piece's transfer at the swarm's rate, 2 × 1 MiB / (%d × %.0f MB/s) = %.0f ms.",
		benchSeeders, benchSlowRate/1e6, goal*1000))
	out := table + "\n" + strings.Join(notes, "\n\n") + "\n"
	fmt.Printf("\n%s\n", out)
	for _, fs := range names {
		for _, sw := range benchSwarms {
			if v, n := res.median("ttfb50", sw, fs); n > 0 {
				b.ReportMetric(v, fs+"-"+sw+"-ttfb50-ms")
			}
		}
		if v, n := res.median("cached", "fast", fs); n > 0 {
			b.ReportMetric(v, fs+"-cached-MB/s")
		}
	}
	if p := os.Getenv(envBenchDoc); p != "" && !benchLimited() {
		if err := replaceBetween(p, benchMarkBegin, benchMarkEnd, out); err != nil {
			b.Errorf("writing %s: %v", p, err)
		}
	}
}

// withMount mounts the torrent on a fresh folder with a fresh cache, times
// the listing, lets the mount find its peers for settle, runs f, records
// the peak RSS and unmounts.
func withMount(b *testing.B, fs benchFS, d benchData, swarm string, res samples, settle time.Duration, f func(mnt string, m benchMount)) {
	b.Helper()
	mnt := b.TempDir()
	file := filepath.Join(mnt, filepath.FromSlash(d.big.Path))
	t0 := time.Now()
	m := fs.mount(b, mnt, d.torrent.Path)
	waitListed(b, fs.name, m, file, t0)
	res.add("listing", swarm, fs.name, float64(time.Since(t0).Microseconds())/1000)
	time.Sleep(settle)
	f(mnt, m)
	if kb, err := vmHWM(m.Pid()); err == nil {
		res.add("rss", swarm, fs.name, float64(kb)/1024)
	} else {
		b.Logf("%s: peak RSS: %v", fs.name, err)
	}
	m.Stop(b)
}

// benchMountOpts are the bench's swarmfs mounts: torrent on mnt, peers on
// 127.0.0.20, a cache of cacheSize in a fresh data directory, timed by the
// caller from the process's start.
func benchMountOpts(mnt, torrent, cacheSize string) mountOpts {
	return mountOpts{
		IP: "127.0.0.20", Mountpoint: mnt, Sources: []string{torrent},
		CacheSize: cacheSize, Watchdog: 10 * time.Minute, NoWait: true,
	}
}

// waitListed waits until file, in a mount started at t0, can be found.
func waitListed(b *testing.B, name string, m benchMount, file string, t0 time.Time) {
	b.Helper()
	for {
		if _, err := os.Stat(file); err == nil {
			return
		}
		if time.Since(t0) > time.Minute {
			b.Fatalf("%s: %s not listed after a minute", name, file)
		}
		if pm, ok := m.(*procMount); ok && !pm.c.running() {
			b.Fatalf("%s exited before listing %s", name, file)
		}
		time.Sleep(time.Millisecond)
	}
}

// warmRemount is issue 16's warm restart: swarmfs mounts d's torrent with
// a data directory of its own, finds its peers through the tracker, reads
// the first byte at 0% and unmounts; then it mounts the same data
// directory again with deadTorrent (the same info-hash, a tracker that
// never answers; no DHT or LSD here either), so the only peers it can know
// are the ones the first mount kept in the cache. It returns the time from
// starting the second mount to a first byte at 50% of the big file, a
// piece the first mount never read, in milliseconds.
func warmRemount(b *testing.B, d benchData, deadTorrent string, ownStart int64) float64 {
	b.Helper()
	dataDir := b.TempDir()
	mount := func(torrent string) (*mountProc, string) {
		mnt := b.TempDir()
		o := benchMountOpts(mnt, torrent, "4GiB")
		o.DataDir = dataDir
		return startMount(b, o), filepath.Join(mnt, filepath.FromSlash(d.big.Path))
	}
	t0 := time.Now()
	m, file := mount(d.torrent.Path)
	waitListed(b, "swarmfs", swarmfsMount{m}, file, t0)
	time.Sleep(benchSettle)
	firstByte(b, file, ownStart, d.big)
	m.StopClean(b)

	t0 = time.Now()
	m, file = mount(deadTorrent)
	waitListed(b, "swarmfs", swarmfsMount{m}, file, t0)
	firstByte(b, file, d.big.Size/2&^4095, d.big)
	took := time.Since(t0)
	m.StopClean(b)
	return float64(took.Microseconds()) / 1000
}

func timeIt(_ *testing.B, f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}

// firstByte opens path and reads 16 KiB at off, returning the time from the
// open to the data, which it checks.
// firstOwnPiece returns where, in file rel of the torrent at path, its
// first piece of its own starts: "first byte at 0%" reads there. The
// file's first bytes may share a piece with the end of the file before it
// (here the video's, which swarmfs fetches before any read: the media
// index prefetch), and the figure is about fetching a piece.
func firstOwnPiece(b *testing.B, torrent, rel string) int64 {
	b.Helper()
	mi, err := metainfo.Load(torrent)
	if err != nil {
		b.Fatal(err)
	}
	pl := mi.Info.PieceLength
	for _, f := range mi.Info.Files {
		if f.DisplayPath() == strings.TrimPrefix(rel, mi.Info.Name+"/") {
			return (pl - f.Offset%pl) % pl
		}
	}
	b.Fatalf("%s: no file %s", torrent, rel)
	return 0
}

func firstByte(b *testing.B, path string, off int64, spec swarmtest.FileSpec) time.Duration {
	b.Helper()
	buf := make([]byte, 16<<10)
	t0 := time.Now()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	n, err := f.ReadAt(buf, off)
	el := time.Since(t0)
	if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
		b.Fatalf("%s: pread at %d: %v", path, off, err)
	}
	want := make([]byte, n)
	spec.ReadAt(want, off)
	if !bytes.Equal(buf[:n], want) {
		b.Fatalf("%s: wrong data at %d", path, off)
	}
	return el
}

// readThrough reads r to its end in reads of len(buf), as cp and curl read
// (128 KiB and up), and returns the bytes read. Not io.CopyBuffer into
// io.Discard: that takes io.Discard's ReadFrom, which reads 8 KiB at a
// time whatever buffer it is given (and an *os.File's WriteTo, 32 KiB),
// so the bench's own reads would cost more CPU than the filesystem's or
// the server's work on the two cores they share.
func readThrough(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// seqRead reads path from start to end with 1 MiB reads and returns MB/s.
// It checks a few MiB along the way against spec (all of it would cost
// more CPU than the read).
func seqRead(b *testing.B, path string, spec swarmtest.FileSpec) float64 {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	want := make([]byte, 1<<20)
	var total int64
	t0 := time.Now()
	for i := 0; ; i++ {
		n, err := io.ReadFull(f, buf)
		if n > 0 && i%32 == 0 {
			spec.ReadAt(want[:n], total)
			if !bytes.Equal(buf[:n], want[:n]) {
				b.Fatalf("%s: wrong data in the MiB at %d", path, total)
			}
		}
		total += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			b.Fatalf("%s: read at %d: %v", path, total, err)
		}
	}
	el := time.Since(t0)
	if total != spec.Len() {
		b.Fatalf("%s: read %d bytes, want %d", path, total, spec.Len())
	}
	return float64(total) / 1e6 / el.Seconds()
}

func ffprobeOK(b *testing.B, path string, want float64) {
	b.Helper()
	if got := probeDuration(b, path); math.Abs(got-want) > 0.05 {
		b.Fatalf("ffprobe %s: duration %v, want %v", path, got, want)
	}
}

// seekPlay seeks to the middle of the video and decodes benchPlaySecs.
func seekPlay(b *testing.B, path string, dur float64) {
	b.Helper()
	out := runProg(b, 5*time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-xerror",
		"-ss", strconv.FormatFloat(dur/2, 'f', 2, 64), "-i", path, "-t", strconv.Itoa(benchPlaySecs), "-f", "null", "-")
	if strings.TrimSpace(out) != "" {
		b.Fatalf("ffmpeg seek and play %s: %s", path, out)
	}
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}

// procCPU returns the user and system CPU seconds pid has used so far, 0
// if it cannot tell.
func procCPU(pid int) float64 {
	_, ticks := procStat(pid)
	return float64(ticks) / 100
}

// procStat returns pid's minor page faults and its user and system CPU
// time in clock ticks (100 a second on Linux) so far, zeros if it cannot
// tell.
func procStat(pid int) (minflt, ticks int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The fields after the command name, which ends at the last ')':
	// minflt, utime and stime are the 10th, 14th and 15th of the line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	minflt, _ = strconv.ParseInt(f[7], 10, 64)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return minflt, ut + st
}

// netInterfaces lists the interfaces of this process's network namespace.
func netInterfaces() []string {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(line, ":"); ok {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

// benchTable formats the medians as Markdown.
func benchTable(res samples, fss []string, sizeMB, reps int) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Measured %s on %d cores (%s); %d MiB file and a %d s 1280×720 MP4 in one torrent, 1 MiB pieces; %d libtorrent seeders, slow = each capped at %.0f MB/s, slow+latency = the same behind %d ms each way; medians of %d runs (the slow cold reads: 1 run), each on a fresh mount with an empty cache.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), kernelRelease(), sizeMB, benchVideoSecs, benchSeeders, benchSlowRate/1e6, benchLatency.Milliseconds(), reps)
	w.WriteString("| figure |")
	for _, sw := range benchSwarms {
		for _, fs := range fss {
			fmt.Fprintf(&w, " %s, %s |", fs, sw)
		}
	}
	w.WriteString(" local file |\n|---|")
	for range len(benchSwarms) * len(fss) {
		w.WriteString("---:|")
	}
	w.WriteString("---:|\n")
	for _, f := range benchFigures {
		fmt.Fprintf(&w, "| %s (%s) |", f.label, f.unit)
		for _, sw := range benchSwarms {
			for _, fs := range fss {
				v, _ := res.median(f.key, sw, fs)
				if f.max {
					v = res.max(f.key, sw, fs)
				}
				fmt.Fprintf(&w, " %s |", fmtFigure(v, f.unit))
			}
		}
		v, _ := res.median(f.key, "local", "local")
		fmt.Fprintf(&w, " %s |\n", fmtFigure(v, f.unit))
	}
	return w.String()
}

func fmtFigure(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case unit == "s":
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

// replaceBetween replaces what lies between the begin and end markers of
// the file at path with text (appending both markers if absent).
func replaceBetween(path, begin, end, text string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	block := begin + "\n" + text + end
	if i < 0 || j < i {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	} else {
		s = s[:i] + block + s[j+len(end):]
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
