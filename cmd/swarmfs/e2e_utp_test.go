package main

// End-to-end tests of uTP (BEP 29, issue 11): the binary against real
// clients that speak uTP and not TCP, so every byte crosses our uTP
// socket (dialled or accepted), with and without MSE.

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// utpFixture is a file of size bytes in its own folder, and its torrent.
func utpFixture(t *testing.T, name string, size int64) (swarmtest.FileSpec, string, swarmtest.TorrentInfo) {
	t.Helper()
	root := t.TempDir()
	spec := swarmtest.FileSpec{Path: name, Size: size}
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{spec})
	ti := swarmtest.MakeTorrentInfo(t, filepath.Join(root, spec.Path), nil, 256<<10)
	return spec, root, ti
}

// checkFile fails t unless path holds exactly spec's bytes.
func checkFile(t *testing.T, path string, spec swarmtest.FileSpec, log string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v\n%s", path, err, log)
	}
	if !bytes.Equal(got, spec.Bytes()) {
		t.Fatalf("%s: %d bytes, not the seeder's %d (or different bytes)\n%s", path, len(got), spec.Len(), log)
	}
}

// TestE2EMountUTPOnlySeeder: `swarmfs mount` (both transports, the
// default) reads a file byte-exact from a libtorrent seeder that speaks
// uTP only: the TCP dial is refused and the engine falls back to uTP. The
// log says the connection is uTP, `swarmfs status` counts it as uTP and
// libtorrent's peer list shows it as uTP.
func TestE2EMountUTPOnlySeeder(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "fuse")
	spec, root, ti := utpFixture(t, "utp.bin", 3<<20+12345)
	// Capped, so that the connection lasts (two seeds hang up on each
	// other) while the test looks at it.
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.11.1", UTPOnly: true, UploadRate: 1 << 20})
	lt.AddTorrent(ti.Path, root, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)

	m := startMount(t, mountOpts{IP: "127.0.11.2", Sources: []string{ti.Path},
		Flags: []string{"-v", "--no-trackers", "--read-timeout", "30s", "--peer", lt.Addr()}})
	path := filepath.Join(m.Dir, spec.Path, spec.Path) // a torrent is a folder, even of one file
	waitPath(t, path, time.Minute)
	type result struct {
		b   []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		b, err := os.ReadFile(path)
		read <- result{b, err}
	}()
	sawStatus, sawLT := false, false
	var res result
	var status string
poll:
	for {
		select {
		case res = <-read:
			break poll
		case <-time.After(200 * time.Millisecond):
		}
		if !sawStatus {
			out, code := swarmfsCmd(t, "status", "--data-dir", m.DataDir)
			sawStatus = code == 0 && strings.Contains(out, "0 tcp, 1 utp")
			status = out
		}
		sawLT = sawLT || len(lt.Status(ti.InfoHash).UTPPeers) > 0
	}
	if res.err != nil {
		t.Fatalf("read through the mount: %v\n%s", res.err, m.Output())
	}
	if !bytes.Equal(res.b, spec.Bytes()) {
		t.Fatalf("read %d bytes through the mount, not the seeder's %d", len(res.b), spec.Len())
	}
	if out := m.Output(); !strings.Contains(out, lt.Addr()+": connected (outgoing, utp,") {
		t.Errorf("the log does not say the connection to %s is uTP:\n%s", lt.Addr(), out)
	}
	if !sawLT {
		t.Errorf("libtorrent's peer list never showed a uTP connection")
	}
	if !sawStatus {
		t.Errorf("swarmfs status never counted one uTP peer and no TCP one during the read; last:\n%s", status)
	}
	m.StopClean(t)
}

// TestE2EGetUTPEncrypted: `swarmfs get --no-tcp --encryption require`
// downloads byte-exact from a libtorrent seeder that speaks uTP only and
// requires encryption: MSE (RC4) over uTP.
func TestE2EGetUTPEncrypted(t *testing.T) {
	getOverUTP(t, "utp-rc4.bin", 2<<20+777, "127.0.11.3", "127.0.11.4",
		swarmtest.LTOptions{Encryption: swarmtest.EncryptionRequired}, "require", "rc4")
}

// TestE2EGetUTPPlain: `swarmfs get --no-tcp` (plain handshake allowed)
// from a uTP-only libtorrent seeder.
func TestE2EGetUTPPlain(t *testing.T) {
	getOverUTP(t, "utp-get.bin", 2<<20+4321, "127.0.11.5", "127.0.11.6",
		swarmtest.LTOptions{EncPolicy: "disabled"}, "off", "plain")
}

// getOverUTP runs `swarmfs get --no-tcp --encryption encryption` on
// getIP from a uTP-only libtorrent seeder on seedIP (opts), checks the
// file byte-exact and that the log names the connection as uTP with
// method ("rc4" or "plain").
func getOverUTP(t *testing.T, name string, size int64, seedIP, getIP string, opts swarmtest.LTOptions, encryption, method string) {
	t.Helper()
	swarmtest.RequireTools(t, "libtorrent")
	spec, root, ti := utpFixture(t, name, size)
	opts.IP, opts.UTPOnly = seedIP, true
	lt := swarmtest.StartLibtorrent(t, opts)
	lt.AddTorrent(ti.Path, root, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)

	dir := t.TempDir()
	out, code, _ := runWatched(t, 2*time.Minute, "get", "-v", "--listen", getIP+":0", "--no-dht", "--no-lsd", "--no-trackers",
		"--no-tcp", "--encryption", encryption, "--peer", lt.Addr(), ti.Path, dir)
	if code != 0 {
		t.Fatalf("swarmfs get exited %d:\n%s", code, out)
	}
	checkFile(t, filepath.Join(dir, spec.Path), spec, out)
	if !strings.Contains(out, lt.Addr()+": connected (outgoing, utp, "+method) {
		t.Errorf("the log does not say the connection to %s is uTP and %s:\n%s", lt.Addr(), method, out)
	}
}

var completedLine = regexp.MustCompile(`completed .*`)

var seedOnRE = regexp.MustCompile(`seeding .* on (127\.[0-9.]+:[0-9]+)`)

// startSeedAt runs `swarmfs seed` of torrent from dir on ip with extra
// flags (stopped at cleanup) and returns its address and output.
func startSeedAt(t *testing.T, ip, torrent, dir string, flags ...string) (string, *syncBuffer) {
	t.Helper()
	out := new(syncBuffer)
	args := append([]string{"seed", "-v", "--listen", ip + ":0", "--no-dht", "--no-lsd", "--no-trackers"}, flags...)
	c := startBg(t, out, swarmfsBin(t), append(args, torrent, dir)...)
	deadline := time.Now().Add(time.Minute)
	for {
		if m := seedOnRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], out
		}
		if !c.running() || time.Now().After(deadline) {
			t.Fatalf("swarmfs seed did not start:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2ESeedUTPLeecher: a uTP-only libtorrent leecher, told our address,
// downloads byte-exact from `swarmfs seed --no-tcp` (it dials our uTP
// socket; with MSE, libtorrent's default), and its peer list shows the
// connection as uTP.
func TestE2ESeedUTPLeecher(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	spec, root, ti := utpFixture(t, "utp-seed.bin", 3<<20+999)
	addr, out := startSeedAt(t, "127.0.11.7", ti.Path, root, "--no-tcp")
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.11.8", UTPOnly: true})
	dir := t.TempDir()
	lt.AddTorrent(ti.Path, dir, false)
	lt.ConnectPeer(ti.InfoHash, addr)
	sawUTP := false
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := lt.Status(ti.InfoHash)
		sawUTP = sawUTP || len(st.UTPPeers) > 0
		if st.IsFinished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent has not finished after 90 s: %+v\n%s", st, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkFile(t, filepath.Join(dir, spec.Path), spec, out.String())
	if !sawUTP {
		t.Error("libtorrent's peer list never showed a uTP connection")
	}
	if !strings.Contains(out.String(), "connected (incoming, utp,") {
		t.Errorf("the seeder's log shows no incoming uTP connection:\n%s", out.String())
	}
}

// TestE2EGetUTPTransmission: `swarmfs get --no-tcp` downloads byte-exact
// from transmission-daemon with uTP on (an independent implementation:
// libutp), and transmission's peer list flags the connection as uTP
// ("T"). transmission never dials loopback peers, so we dial it.
func TestE2EGetUTPTransmission(t *testing.T) {
	swarmtest.RequireTools(t, "transmission-daemon")
	spec, root, ti := utpFixture(t, "utp-tr.bin", 2<<20+55)
	tr := swarmtest.StartTransmission(t, swarmtest.TROptions{IP: "127.0.11.9", UTP: true})
	id := tr.AddTorrent(t, ti.Path, root)
	tr.WaitSeeding(t, id, time.Minute)

	dir := t.TempDir()
	var buf syncBuffer
	c := startBg(t, &buf, swarmfsBin(t), "get", "-v", "--listen", "127.0.11.10:0", "--no-dht", "--no-lsd", "--no-trackers",
		"--no-tcp", "--peer", tr.Addr(), ti.Path, dir)
	// transmission's view of the connection, while it lasts.
	flag := ""
	deadline := time.Now().Add(2 * time.Minute)
	for !c.wait(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("swarmfs get still running after 2 min:\n%s", buf.String())
		}
		for _, p := range tr.Status(t, id).Peers {
			if flag == "" && strings.Contains(p.FlagStr, "T") {
				flag = p.FlagStr
			}
		}
	}
	out, code := buf.String(), c.exitCode()
	if code != 0 {
		t.Fatalf("swarmfs get exited %d:\n%s", code, out)
	}
	checkFile(t, filepath.Join(dir, spec.Path), spec, out)
	if !strings.Contains(out, tr.Addr()+": connected (outgoing, utp,") {
		t.Errorf("the log does not say the connection to %s is uTP:\n%s", tr.Addr(), out)
	}
	if flag == "" {
		t.Errorf("transmission's peer list never flagged a uTP connection (T)")
	}
}

// TestE2EGetUTPLossy: `swarmfs get --no-tcp` from a uTP-only libtorrent
// seeder over an emulated slow, lossy path (20 ms each way, 1% loss each
// way: a UDP relay, as this kernel has no netem) is byte-exact.
func TestE2EGetUTPLossy(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	spec, root, ti := utpFixture(t, "utp-lossy.bin", 1<<20+3333)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.11.11", UTPOnly: true})
	lt.AddTorrent(ti.Path, root, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)
	link := func(seed uint64) utptest.Link {
		return utptest.Link{Delay: 20 * time.Millisecond, Loss: 0.01, Seed: seed}
	}
	r, err := utptest.NewRelay("127.0.11.12:0", lt.Addr(), link(1), link(2))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	dir := t.TempDir()
	out, code, _ := runWatched(t, 2*time.Minute, "get", "-v", "--listen", "127.0.11.13:0", "--no-dht", "--no-lsd", "--no-trackers",
		"--no-tcp", "--peer", r.Addr(), ti.Path, dir)
	if code != 0 {
		t.Fatalf("swarmfs get exited %d:\n%s", code, out)
	}
	checkFile(t, filepath.Join(dir, spec.Path), spec, out)
	up, down := r.Stats()
	t.Logf("relay up %+v, down %+v; %s", up, down, completedLine.FindString(out))
	if down.Dropped == 0 {
		t.Errorf("the relay dropped nothing towards swarmfs: the path was not lossy (%+v)", down)
	}
}
