package main

// The fleet driver (issue 18): N hosts fetch one dataset from one origin
// through a swarm of capped links (fleet_net_test.go), and every host's
// bytes are checked. TestFleet runs it small, for make test;
// BenchmarkFleet (bench_fleet_test.go, run by scripts/fleet.sh) runs it at
// size and writes docs/fleet.md. It drives the swarmfs binary only.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// fleetConfig is one fleet run.
type fleetConfig struct {
	Hosts int
	// Rate is every link's cap, bits per second, each way.
	Rate int64
	// LSD finds peers by local service discovery alone (no tracker);
	// otherwise through opentracker alone (no LSD). Never the DHT.
	LSD bool
	// Mount has each host mount the torrent and read every file at once
	// (one reader per file, SHA-256 checked as it reads) instead of
	// "swarmfs get".
	Mount bool
	// Extra flags for every host's swarmfs command, and for the origin's
	// "swarmfs seed" (e.g. --super-seed).
	HostFlags, OriginFlags []string
	// Timeout bounds the hosts' part of the run.
	Timeout time.Duration
}

// fleetData is a dataset on disk with its torrent.
type fleetData struct {
	Dir     string // the folder holding the torrent's top folder
	Name    string // the torrent's name (its top folder)
	Torrent string // .torrent path
	Files   []swarmtest.FileSpec
	Size    int64
	sums    map[string][32]byte // Path -> SHA-256
}

// fleetFiles is a deterministic dataset of about total bytes: three large
// files (60%), sixteen medium ones (20%) and small ones of mixed sizes
// (the rest, an empty one among them), in a few folders.
func fleetFiles(total int64) []swarmtest.FileSpec {
	var fs []swarmtest.FileSpec
	for i := range 3 {
		fs = append(fs, swarmtest.FileSpec{Path: fmt.Sprintf("large/shard-%d.bin", i), Size: total / 5})
	}
	for i := range 16 {
		fs = append(fs, swarmtest.FileSpec{Path: fmt.Sprintf("medium/part-%02d.bin", i), Size: total/80 + int64(i)*7})
	}
	left := total - swarmtest.TotalSize(fs)
	sizes := []int64{0, 1, 4099, 65537, 262147, 1<<20 + 3, 16385, 777}
	for i := 0; left > 0; i++ {
		s := min(sizes[i%len(sizes)], left)
		fs = append(fs, swarmtest.FileSpec{Path: fmt.Sprintf("small/%d/f%04d.dat", i%7, i), Size: s})
		left -= s
	}
	return fs
}

// makeFleetData writes the dataset under dir and makes its torrent
// (256 KiB pieces: enough pieces for the hosts to trade) announcing to
// announce.
func makeFleetData(tb testing.TB, dir string, total int64, announce string) *fleetData {
	tb.Helper()
	d := &fleetData{Dir: dir, Name: "dataset", Files: fleetFiles(total), sums: map[string][32]byte{}}
	swarmtest.WriteFiles(tb, filepath.Join(dir, d.Name), d.Files)
	for _, f := range d.Files {
		d.Size += f.Len()
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Len())); err != nil {
			tb.Fatal(err)
		}
		d.sums[f.Path] = [32]byte(h.Sum(nil))
	}
	d.Torrent = filepath.Join(dir, "dataset.torrent")
	out, code := swarmfsCmd(tb, "create", "-t", announce, "--piece-length", "256KiB", "-o", d.Torrent, filepath.Join(dir, d.Name))
	if code != 0 {
		tb.Fatalf("swarmfs create: %s", out)
	}
	return d
}

// fleetResult is what a run measured.
type fleetResult struct {
	Hosts int
	// Done is each host's completion time since the hosts started, sorted.
	Done []time.Duration
	// OriginUp is what the origin sent on its link while the hosts ran
	// (IP and TCP headers included); OriginSelf is what "swarmfs seed"
	// says it uploaded, as a multiple of the dataset (0 if it did not say).
	OriginUp   int64
	OriginSelf float64
	// Samples are taken every fleetSample: time, origin bytes sent, hosts
	// done.
	Samples []fleetSample
	// CPU is the CPU time of the swarmfs processes (origin and hosts),
	// Wall the hosts' part of the run.
	CPU, Wall time.Duration
	// MachineBusy is the share of the machine's cores busy (anyone's work)
	// while the hosts ran, 0 to 1.
	MachineBusy float64
}

type fleetSample struct {
	At       time.Duration
	OriginUp int64
	Done     int
}

// fleetProc is one swarmfs process of the fleet.
type fleetProc struct {
	name string
	c    *child
	out  *syncBuffer
	mnt  string // a mount's mountpoint, "" for get and seed
}

func (p *fleetProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100
}

// startFleetProc starts the swarmfs binary in m's namespace; cleanup
// unmounts its mount (if any) and kills it.
func startFleetProc(tb testing.TB, m fleetMachine, name, mnt string, args ...string) *fleetProc {
	tb.Helper()
	p := &fleetProc{name: name, out: &syncBuffer{}, mnt: mnt}
	cmd := nsCommand(m, swarmfsBin(tb), args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	c, err := startChild(cmd)
	if err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p.c = c
	if mnt != "" {
		recordMount(mnt)
	}
	tb.Cleanup(func() {
		if p.c.running() {
			p.c.signal(syscall.SIGTERM)
			if !p.c.wait(10 * time.Second) {
				p.c.signal(syscall.SIGKILL)
				p.c.wait(kernelSlack)
			}
		}
		if p.mnt != "" && isMounted(p.mnt) {
			_ = exec.Command("fusermount3", "-u", "-z", p.mnt).Run()
		}
		if tb.Failed() {
			tb.Logf("%s output (tail):\n%s", p.name, tail(p.out.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitOutput waits until the process printed want, failing if it exits
// or timeout passes first.
func (p *fleetProc) waitOutput(tb testing.TB, want string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), want) {
		if !p.c.running() || time.Now().After(deadline) {
			tb.Fatalf("%s did not print %q:\n%s", p.name, want, tail(p.out.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runFleet builds the network, starts the tracker (unless LSD) and the
// origin, then the hosts all at once, and waits until every host has
// every byte, checked.
func runFleet(tb testing.TB, cfg fleetConfig, data *fleetData, work string) fleetResult {
	tb.Helper()
	lan := newFleetNet(tb, cfg.Rate)
	tracker := lan.add(tb, 0)
	origin := lan.add(tb, 1)
	hosts := make([]fleetMachine, cfg.Hosts)
	for i := range hosts {
		hosts[i] = lan.add(tb, 2+i)
	}
	common := []string{"--no-dht", "--encryption", "off"}
	if cfg.LSD {
		common = append(common, "--no-trackers")
	} else {
		common = append(common, "--no-lsd")
		startOpentracker(tb, tracker, data.Torrent)
	}
	op := startFleetProc(tb, origin, "origin", "", slices.Concat([]string{"seed"}, common, cfg.OriginFlags,
		[]string{"--listen", origin.IP + ":6881", data.Torrent, data.Dir})...)
	op.waitOutput(tb, "seeding ", 5*time.Minute)
	up0, err := txBytes(origin)
	if err != nil {
		tb.Fatal(err)
	}

	var mu sync.Mutex // guards done and failed
	done := make([]time.Duration, cfg.Hosts)
	var failed []string
	busy0, total0 := cpuTimes()
	start := time.Now()
	procs := make([]*fleetProc, cfg.Hosts)
	// The readers of the mounts end by themselves, or when their mount goes
	// away: they are waited for after the hosts' cleanups (registered
	// later, so run earlier) stopped the mounts.
	var readers sync.WaitGroup
	tb.Cleanup(readers.Wait)
	for i, h := range hosts {
		name := fmt.Sprintf("host %d (%s)", i, h.IP)
		dir := filepath.Join(work, fmt.Sprintf("host-%d", i))
		args := slices.Concat(common, cfg.HostFlags, []string{"--listen", h.IP + ":6881"})
		if !cfg.Mount {
			procs[i] = startFleetProc(tb, h, name, "", slices.Concat([]string{"get", "--seed"}, args, []string{data.Torrent, dir})...)
			continue
		}
		mnt := filepath.Join(dir, "mnt")
		for _, d := range []string{mnt, filepath.Join(dir, "data")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		procs[i] = startFleetProc(tb, h, name, mnt, slices.Concat([]string{"mount"}, args,
			[]string{"--data-dir", filepath.Join(dir, "data"), mnt, data.Torrent})...)
		readers.Add(1)
		go func() {
			defer readers.Done()
			err := readFleetMount(filepath.Join(mnt, data.Name), data, cfg.Timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
				return
			}
			done[i] = time.Since(start)
		}()
	}

	res := fleetResult{Hosts: cfg.Hosts}
	deadline := start.Add(cfg.Timeout)
	for {
		n := 0
		mu.Lock()
		for i, p := range procs {
			if done[i] == 0 && !cfg.Mount && strings.Contains(p.out.String(), "\ncompleted ") {
				done[i] = time.Since(start)
			}
			if done[i] != 0 {
				n++
			} else if !p.c.running() {
				failed = append(failed, p.name+" exited")
			}
		}
		f := slices.Clone(failed)
		mu.Unlock()
		if len(f) > 0 {
			tb.Fatalf("fleet: %s", strings.Join(f, "; "))
		}
		up, err := txBytes(origin)
		if err != nil {
			tb.Fatal(err)
		}
		res.Samples = append(res.Samples, fleetSample{At: time.Since(start), OriginUp: up - up0, Done: n})
		if n == cfg.Hosts {
			res.OriginUp = up - up0
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("fleet: %d of %d hosts done after %v", n, cfg.Hosts, cfg.Timeout)
		}
		time.Sleep(fleetSampleEvery)
	}
	res.Wall = time.Since(start)
	if busy1, total1 := cpuTimes(); total1 > total0 {
		res.MachineBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	res.CPU = op.cpu()
	for _, p := range procs {
		res.CPU += p.cpu()
	}
	// "swarmfs seed" says what it uploaded when it stops.
	op.c.signal(syscall.SIGTERM)
	if op.c.wait(30 * time.Second) {
		if m := originSelfRE.FindStringSubmatch(op.out.String()); m != nil {
			res.OriginSelf, _ = strconv.ParseFloat(m[1], 64)
		}
	}
	res.Done = slices.Clone(done)
	slices.Sort(res.Done)
	if !cfg.Mount {
		// The mounts checked every byte as they read; the downloads are
		// checked now, after the clock stopped.
		for i := range hosts {
			checkFleetTree(tb, data, filepath.Join(work, fmt.Sprintf("host-%d", i), data.Name))
		}
	}
	return res
}

var originSelfRE = regexp.MustCompile(`uploaded .*, ([0-9.]+)x the content`)

// fleetSampleEvery is how often the driver looks at the hosts and the
// origin's counter.
const fleetSampleEvery = 250 * time.Millisecond

// checkFleetTree checks every file of data under root by SHA-256.
func checkFleetTree(tb testing.TB, data *fleetData, root string) {
	tb.Helper()
	for _, f := range data.Files {
		sum, err := sha256File(filepath.Join(root, f.Path))
		if err != nil {
			tb.Fatalf("fleet: %v", err)
		}
		if sum != data.sums[f.Path] {
			tb.Fatalf("fleet: %s: SHA-256 differs from the origin's", filepath.Join(root, f.Path))
		}
	}
}

func sha256File(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, fmt.Errorf("read %s: %w", path, err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// readFleetMount waits for the torrent's folder in the mount, then reads
// every file at once, one reader each, as a job that needs the whole
// dataset would, and checks each file's SHA-256.
func readFleetMount(root string, data *fleetData, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(filepath.Join(root, data.Files[0].Path)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", root)
		}
		time.Sleep(50 * time.Millisecond)
	}
	errs := make(chan error, len(data.Files))
	for _, f := range data.Files {
		go func() {
			sum, err := sha256File(filepath.Join(root, f.Path))
			if err == nil && sum != data.sums[f.Path] {
				err = fmt.Errorf("%s: SHA-256 differs from the origin's", f.Path)
			}
			errs <- err
		}()
	}
	var first error
	for range data.Files {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// startOpentracker runs Debian's opentracker in m's namespace on port
// 6969, serving only the torrent's info-hash (its whitelist). It refuses
// to run as root: nsenter switches to nobody after entering the namespace.
func startOpentracker(tb testing.TB, m fleetMachine, torrent string) {
	tb.Helper()
	requireProgs(tb, "opentracker")
	mi, err := metainfo.Load(torrent)
	if err != nil {
		tb.Fatal(err)
	}
	hash := mi.InfoHash.String()
	// nobody must read the whitelist: not in the test's temporary
	// folder, whose parent only root may enter (nor under a TMPDIR that
	// only root may enter: scripts/fleet.sh opens its own).
	wlDir, err := os.MkdirTemp("", "swarmfs-fleet-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(wlDir) })
	wl := filepath.Join(wlDir, "whitelist")
	if err = os.Chmod(wlDir, 0o755); err == nil {
		err = os.WriteFile(wl, []byte(hash+"\n"), 0o644)
	}
	if err != nil {
		tb.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+m.NS, "-S", "65534", "-G", "65534", "--",
		"opentracker", "-i", m.IP, "-p", "6969", "-P", "6969", "-w", wl)
	cmd.Stdout, cmd.Stderr = out, out
	c, err := startChild(cmd)
	if err != nil {
		tb.Fatalf("start opentracker: %v", err)
	}
	tb.Cleanup(func() {
		// Switching to nobody cleared the parent-death signal: the
		// namespace's teardown is the backstop, this the normal way.
		c.signal(syscall.SIGKILL)
		c.wait(kernelSlack)
	})
	// Ready once it answers an announce for the hash (it reads its
	// whitelist in a thread, after it starts listening). The announce says
	// "stopped": it records no one.
	var q strings.Builder
	for _, b := range mi.InfoHash {
		fmt.Fprintf(&q, "%%%02x", b)
	}
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/6969 && printf 'GET /announce?info_hash=%s&peer_id=-FLEETPROBE-00000000&port=1&uploaded=0&downloaded=0&left=0&event=stopped HTTP/1.0\r\n\r\n' >&3 && cat <&3`,
		m.IP, strings.ReplaceAll(q.String(), "%", "%%"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _ := nsCommand(m, "bash", "-c", script).CombinedOutput()
		if bytes.Contains(resp, []byte("8:interval")) && !bytes.Contains(resp, []byte("failure")) || !c.running() {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("opentracker did not serve the torrent: %q\n%s", resp, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !c.running() {
		tb.Fatalf("opentracker exited:\n%s", out.String())
	}
}

// TestFleet runs small fleets in network namespaces: three hosts fetch a
// few MiB from one origin over 20 Mbit/s links, found through opentracker,
// with "swarmfs get"; then two hosts mount the torrent, found by LSD alone,
// and read every file at once; then three mount hosts read every file from
// an origin that super-seeds (they stalled once the readers wanted pieces
// it had offered nobody). Every host's bytes must match. It needs
// root, ip netns and opentracker (it fails under CI=true without them).
func TestFleet(t *testing.T) {
	requireProgs(t, "fusermount3")
	for _, tc := range []struct {
		name string
		cfg  fleetConfig
		size int64 // 3 MiB when 0
	}{
		{"get-tracker", fleetConfig{Hosts: 3}, 0},
		{"mount-lsd", fleetConfig{Hosts: 2, Mount: true, LSD: true, HostFlags: []string{"--download", "all"}}, 0},
		// Enough pieces that most are under no reader at first.
		{"mount-super", fleetConfig{Hosts: 4, Mount: true, HostFlags: []string{"--download", "all"}, OriginFlags: []string{"--super-seed"}}, 12 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			cfg := tc.cfg
			cfg.Rate, cfg.Timeout = 20e6, 2*time.Minute
			if tc.size == 0 {
				tc.size = 3 << 20
			}
			data := makeFleetData(t, work, tc.size, "http://"+fleetIP(0)+":6969/announce")
			res := runFleet(t, cfg, data, work)
			if len(res.Done) != cfg.Hosts || res.Done[0] <= 0 {
				t.Fatalf("done times %v, want %d", res.Done, cfg.Hosts)
			}
			t.Logf("fleet of %d: done %v, origin sent %.2fx the dataset", res.Hosts, res.Done, float64(res.OriginUp)/float64(data.Size))
		})
	}
}

// cpuTimes is the machine's busy and total CPU time so far (the first line
// of /proc/stat, in ticks): busy is all but idle and iowait.
func cpuTimes() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}
