package engine

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// The interop matrix: swarmfs against the clients every distribution ships,
// in both directions, each transfer checked by the SHA-256 of every file
// (an empty one, and names with spaces and non-ASCII letters among them),
// with libtorrent in swarmfs's place, in the same run, for scale. Whoever
// seeds connects to the leecher: transmission never dials a loopback peer,
// and neither aria2 nor rtorrent can be told of one.
//
// transmission decides its unchokes and its own interest every 10 s from
// its start: a transfer to or from it starts up to 10 s late, for swarmfs
// and for libtorrent in its place alike. Its daemons start first, so that
// their first 10 s pass while the other clients' cells run. Each cell
// reports the time from the connection's request to the last verified
// piece, and the transfer's rate from its first byte on.

// matrixEncryptions are the settings of the other side the matrix runs in:
// each client's default, and each requiring MSE/PE with RC4 (a `swarmfs
// mount` reading from such a seeder is cmd/swarmfs's TestE2EEncryptedSeeder).
var matrixEncryptions = []swarmtest.Encryption{swarmtest.EncryptionDefault, swarmtest.EncryptionRequired}

// matrixClients are the other clients of the matrix, transmission last.
// WebTorrent has no MSE/PE: it runs in the default setting only.
var matrixClients = []string{"libtorrent", "aria2", "rtorrent", "webtorrent", "transmission"}

// matrixFixture is the matrix's data: a 24 MiB torrent made by libtorrent.
type matrixFixture struct {
	dir, root, torrent string
	mi                 *metainfo.MetaInfo
}

func newMatrixFixture(t *testing.T) matrixFixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, swarmtest.InteropFiles(24<<20))
	torrent, _ := swarmtest.MakeTorrent(t, root, nil, 256<<10)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	return matrixFixture{dir: dir, root: root, torrent: torrent, mi: mi}
}

// matrixCell is one transfer's outcome.
type matrixCell struct {
	from, to    string
	enc         swarmtest.Encryption
	took, first time.Duration // to the last piece; to the first byte
	bytes       int64
}

func (c matrixCell) String() string {
	mbps := float64(c.bytes) / 1e6 / (c.took - c.first).Seconds()
	return fmt.Sprintf("| %-12s | %-12s | %d | %6.2f s | %5.2f s | %6.1f MB/s |", c.from, c.to, c.enc, c.took.Seconds(), c.first.Seconds(), mbps)
}

// progress reports a leecher's payload received so far and whether it has
// every piece.
type progress func() (got int64, done bool)

// measure polls a leecher from start until it is done (the test fails
// after 90 s): the time to the end, and to its first byte.
func measure(t *testing.T, start time.Time, p progress) (took, first time.Duration) {
	t.Helper()
	r := measureAll(t, start, p)
	return r[0][0], r[0][1]
}

// measureAll is measure for several leechers at once: for each, the time
// to the end and to the first byte.
func measureAll(t *testing.T, start time.Time, ps ...progress) [][2]time.Duration {
	t.Helper()
	out := make([][2]time.Duration, len(ps))
	deadline := start.Add(90 * time.Second)
	for left := len(ps); left > 0; {
		for i, p := range ps {
			if out[i][0] != 0 {
				continue
			}
			got, done := p()
			if got > 0 && out[i][1] == 0 {
				out[i][1] = time.Since(start)
			}
			if done {
				out[i][0] = time.Since(start)
				out[i][1] = min(out[i][1], out[i][0])
				if out[i][1] == 0 {
					out[i][1] = out[i][0]
				}
				left--
			}
		}
		if left > 0 && time.Now().After(deadline) {
			t.Fatalf("%d leechers not done after 90 s", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// matrixPeers holds the transmission daemons, started ahead of their
// cells: one seeding, and one per leeching cell.
type matrixPeers struct {
	trSeed  *swarmtest.Transmission
	trLeech []*swarmtest.Transmission
}

// realSeed starts client seeding f on ip (transmission: the daemon seeding
// already) and returns its address.
func (mp *matrixPeers) realSeed(t *testing.T, client, ip string, f matrixFixture, enc swarmtest.Encryption) string {
	t.Helper()
	switch client {
	case "libtorrent":
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip, Encryption: enc})
		lt.AddTorrent(f.torrent, f.dir, true)
		lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
		return lt.Addr()
	case "transmission":
		return mp.trSeed.Addr()
	case "aria2":
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip, Encryption: enc}, f.torrent, f.dir, true)
		a.WaitSeeding(t, 30*time.Second)
		return a.Addr()
	case "rtorrent":
		r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip, Encryption: enc}, f.torrent, f.dir)
		r.WaitSeeding(t, 30*time.Second)
		return r.Addr()
	case "webtorrent":
		w := swarmtest.StartWebTorrent(t, swarmtest.WebTorrentOptions{IP: ip}, f.torrent, f.dir)
		w.WaitDone(t, 30*time.Second)
		return w.Addr()
	}
	t.Fatalf("unknown client %q", client)
	return ""
}

// realLeech starts client downloading f into a new folder on ip
// (transmission: the next daemon started ahead), ready for a seeder to
// connect.
func (mp *matrixPeers) realLeech(t *testing.T, client, ip string, f matrixFixture, enc swarmtest.Encryption) (addr, dir string, p progress) {
	t.Helper()
	dir = t.TempDir()
	switch client {
	case "libtorrent":
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip, Encryption: enc})
		lt.AddTorrent(f.torrent, dir, false)
		return lt.Addr(), dir, func() (int64, bool) {
			st := lt.Status(f.mi.InfoHash)
			return st.TotalDownload, st.IsFinished
		}
	case "transmission":
		tr := mp.trLeech[0]
		mp.trLeech = mp.trLeech[1:]
		id := tr.AddTorrent(t, f.torrent, dir)
		tr.WaitAccepting(t, id, 30*time.Second)
		return tr.Addr(), dir, func() (int64, bool) {
			st := tr.Status(t, id)
			return st.DownloadedEver, st.PercentDone >= 1 && st.LeftUntilDone == 0
		}
	case "aria2":
		a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip, Encryption: enc}, f.torrent, dir, false)
		a.WaitListening(t, 30*time.Second)
		return a.Addr(), dir, func() (int64, bool) {
			st := a.Status(t)
			return st.CompletedLength, st.Complete()
		}
	case "rtorrent":
		r := swarmtest.StartRtorrent(t, swarmtest.RtorrentOptions{IP: ip, Encryption: enc}, f.torrent, dir)
		return r.Addr(), dir, func() (int64, bool) {
			st := r.Status(t)
			return st.DownTotal, st.Complete && !st.Hashing
		}
	case "webtorrent":
		w := swarmtest.StartWebTorrent(t, swarmtest.WebTorrentOptions{IP: ip}, f.torrent, dir)
		return w.Addr(), dir, func() (int64, bool) {
			st := w.Status(t)
			return st.Downloaded, st.Done
		}
	}
	t.Fatalf("unknown client %q", client)
	return "", "", nil
}

// checkCopy compares every file's SHA-256; only transmission and WebTorrent
// may leave out the empty file (makesNoEmptyFile).
func checkCopy(t *testing.T, f matrixFixture, dir, leecher string) {
	t.Helper()
	want := len(swarmtest.InteropFiles(0))
	emptyOK := makesNoEmptyFile(leecher)
	if emptyOK {
		want--
	}
	if n := swarmtest.CompareSHA256(t, f.root, filepath.Join(dir, "data"), emptyOK); n != want {
		t.Errorf("%s: %d files checked, want %d", leecher, n, want)
	}
}

// matrixClient starts a swarmfs client on ip with its data in dir, given
// the other side's address to dial.
func matrixClient(t *testing.T, f matrixFixture, ip, dir, addr string) *Torrent {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{ListenAddr: ip + ":0", Storage: storage.File{Dir: dir}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{ap}})
	if err != nil {
		t.Fatal(err)
	}
	return tor
}

// seedSideBySide seeds f from swarmfs (on ourIP) and from libtorrent (on
// ltIP) to two transmission leechers at once.
func seedSideBySide(t *testing.T, mp *matrixPeers, f matrixFixture, enc swarmtest.Encryption, trIP1, ourIP, trIP2, ltIP string) []matrixCell {
	t.Helper()
	addr1, dir1, p1 := mp.realLeech(t, "transmission", trIP1, f, enc)
	addr2, dir2, p2 := mp.realLeech(t, "transmission", trIP2, f, enc)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ltIP})
	lt.AddTorrent(f.torrent, f.dir, true)
	lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
	start := time.Now()
	tor := matrixClient(t, f, ourIP, f.dir, addr1)
	lt.ConnectPeer(f.mi.InfoHash, addr2)
	r := measureAll(t, start, p1, p2)
	checkCopy(t, f, dir1, "transmission")
	checkCopy(t, f, dir2, "transmission")
	size := f.mi.Info.TotalLength
	if up := tor.Stats().Uploaded; up < size {
		t.Errorf("swarmfs uploaded %d of %d bytes", up, size)
	}
	return []matrixCell{
		{"swarmfs", "transmission", enc, r[0][0], r[0][1], size},
		{"(libtorrent)", "transmission", enc, r[1][0], r[1][1], size},
	}
}

// TestInteropMatrix runs the matrix and logs its table (a minute or so,
// most of it transmission's rechokes).
func TestInteropMatrix(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "transmission-daemon", "aria2c", "rtorrent", "webtorrent")
	// Mostly waiting on the other clients' timers (transmission's 10 s
	// rechoke, rtorrent's ut_pex): the interop tests that do run side by
	// side, after the package's other tests.
	t.Parallel()
	f := newMatrixFixture(t)
	size := f.mi.Info.TotalLength
	ip := func(n int) string { return fmt.Sprintf("127.0.0.%d", n) }
	var cells []matrixCell
	for e, enc := range matrixEncryptions {
		mp := &matrixPeers{trSeed: swarmtest.StartTransmission(t, swarmtest.TROptions{IP: ip(200 + 10*e), Encryption: enc})}
		mp.trSeed.AddTorrent(t, f.torrent, f.dir)
		for i := range 2 {
			mp.trLeech = append(mp.trLeech, swarmtest.StartTransmission(t, swarmtest.TROptions{IP: ip(201 + 10*e + i), Encryption: enc}))
		}
		for i, other := range matrixClients {
			if other == "webtorrent" && enc != swarmtest.EncryptionDefault {
				continue
			}
			base := 100 + 50*e + 10*i
			t.Run(fmt.Sprintf("%s seeds, enc %d", other, enc), func(t *testing.T) {
				if other == "transmission" {
					mp.trSeed.WaitSeeding(t, 1, 30*time.Second)
				}
				addr := mp.realSeed(t, other, ip(base), f, enc)
				dir := t.TempDir()
				start := time.Now()
				tor := matrixClient(t, f, ip(base+1), dir, addr)
				took, first := measure(t, start, func() (int64, bool) {
					select {
					case <-tor.Complete():
						return tor.Stats().Downloaded, true
					default:
						return tor.Stats().Downloaded, false
					}
				})
				cells = append(cells, matrixCell{other, "swarmfs", enc, took, first, size})
				checkCopy(t, f, dir, "swarmfs")

				// libtorrent in swarmfs's place.
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip(base + 2)})
				dir = t.TempDir()
				lt.AddTorrent(f.torrent, dir, false)
				start = time.Now()
				lt.ConnectPeer(f.mi.InfoHash, addr)
				took, first = measure(t, start, func() (int64, bool) {
					st := lt.Status(f.mi.InfoHash)
					return st.TotalDownload, st.IsFinished
				})
				cells = append(cells, matrixCell{other, "(libtorrent)", enc, took, first, size})
				checkCopy(t, f, dir, "libtorrent")
			})
			t.Run(fmt.Sprintf("swarmfs seeds to %s, enc %d", other, enc), func(t *testing.T) {
				if other == "transmission" {
					// Side by side: both wait for transmission's interest,
					// which costs more than the transfer, whose rate is
					// transmission's.
					cells = append(cells, seedSideBySide(t, mp, f, enc, ip(base+3), ip(base+4), ip(base+5), ip(base+6))...)
					return
				}
				addr, dir, p := mp.realLeech(t, other, ip(base+3), f, enc)
				start := time.Now()
				tor := matrixClient(t, f, ip(base+4), f.dir, addr)
				took, first := measure(t, start, p)
				cells = append(cells, matrixCell{"swarmfs", other, enc, took, first, size})
				checkCopy(t, f, dir, other)
				if up := tor.Stats().Uploaded; up < size {
					t.Errorf("swarmfs uploaded %d of %d bytes", up, size)
				}

				// libtorrent in swarmfs's place.
				addr, dir, p = mp.realLeech(t, other, ip(base+5), f, enc)
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip(base + 6)})
				lt.AddTorrent(f.torrent, f.dir, true)
				lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
				start = time.Now()
				lt.ConnectPeer(f.mi.InfoHash, addr)
				took, first = measure(t, start, p)
				cells = append(cells, matrixCell{"(libtorrent)", other, enc, took, first, size})
				checkCopy(t, f, dir, other)
			})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "interop matrix: %.1f MiB in %d files, 256 KiB pieces; (libtorrent) is libtorrent in swarmfs's place; "+
		"time to the last piece, to the first byte, and MB/s from the first byte\n", float64(size)/(1<<20), len(f.mi.Info.Files))
	b.WriteString("| seeder | leecher | enc | time | first byte | rate |\n|---|---|---|---|---|---|\n")
	for _, c := range cells {
		fmt.Fprintln(&b, c)
	}
	t.Log(b.String())
}
