package engine

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// MSE/PE against real clients that require encryption (issue 10): they
// drop a plain handshake without a word, so each of these transfers
// fails on a client that does not speak MSE.

// cryptoFixture is the interop data (an empty file, names with spaces
// and non-ASCII letters) in a torrent made by libtorrent.
type cryptoFixture struct {
	dir, root, torrent string
	mi                 *metainfo.MetaInfo
}

func newCryptoFixture(t *testing.T, big int64) cryptoFixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, swarmtest.InteropFiles(big))
	torrent, _ := swarmtest.MakeTorrent(t, root, nil, 256<<10)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	return cryptoFixture{dir: dir, root: root, torrent: torrent, mi: mi}
}

// checkTree compares every file's SHA-256 with the fixture's.
func (f cryptoFixture) checkTree(t *testing.T, dir string) {
	t.Helper()
	want := len(swarmtest.InteropFiles(0))
	if n := swarmtest.CompareSHA256(t, f.root, filepath.Join(dir, "data"), false); n != want {
		t.Errorf("%d files checked, want %d", n, want)
	}
}

// magnet is the fixture's magnet link (info-hash only), as text for the
// other clients and parsed for ours.
func (f cryptoFixture) magnet(t *testing.T) (string, *metainfo.Magnet) {
	t.Helper()
	link := swarmtest.Magnet(f.mi.InfoHash, "")
	m, err := metainfo.ParseMagnet(link)
	if err != nil {
		t.Fatal(err)
	}
	return link, m
}

// fetchMagnet has c fetch the torrent from a magnet alone into a new
// folder: the info dictionary within infoTimeout, then every file, checked.
func (f cryptoFixture) fetchMagnet(t *testing.T, c *Client, m *metainfo.Magnet, infoTimeout time.Duration) *Torrent {
	t.Helper()
	dir := t.TempDir()
	tor, err := c.AddMagnet(m, TorrentOptions{DownloadAll: true, Storage: storage.File{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitInfo(t, tor, infoTimeout)
	waitComplete(t, tor, 60*time.Second)
	f.checkTree(t, dir)
	return tor
}

// makesNoEmptyFile reports whether client leaves a torrent's empty files
// out of its copies: transmission and WebTorrent create a file only when
// they write to it.
func makesNoEmptyFile(client string) bool { return client == "transmission" || client == "webtorrent" }

// checkTreeWithoutEmpty is checkTree for a copy made by a client that
// never creates an empty file (makesNoEmptyFile).
func (f cryptoFixture) checkTreeWithoutEmpty(t *testing.T, dir, client string) {
	t.Helper()
	want := len(swarmtest.InteropFiles(0)) - 1
	if n := swarmtest.CompareSHA256(t, f.root, filepath.Join(dir, "data"), true); n != want {
		t.Errorf("%s: %d files checked, want %d", client, n, want)
	}
}

// cryptoClient starts a swarmfs client on ip under pol with its data in
// dir, dialling addr; its log lines go to logs.
func cryptoClient(t *testing.T, f cryptoFixture, ip, dir, addr string, pol mse.Policy, logs *logLines) *Torrent {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{ListenAddr: ip + ":0", Storage: storage.File{Dir: dir}, Encryption: pol, Logf: logs.logf})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{ap}})
	if err != nil {
		t.Fatal(err)
	}
	return tor
}

// TestInteropCryptoDownload: swarmfs (default policy, prefer) downloads
// from a libtorrent and from an aria2 seeder that require encryption,
// over RC4.
func TestInteropCryptoDownload(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "aria2c")
	f := newCryptoFixture(t, 6<<20)
	for i, client := range []string{"libtorrent", "aria2"} {
		t.Run(client, func(t *testing.T) {
			ip := func(n int) string { return fmt.Sprintf("127.0.3.%d", 10*i+n) }
			var addr string
			switch client {
			case "libtorrent":
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip(1), Encryption: swarmtest.EncryptionRequired})
				lt.AddTorrent(f.torrent, f.dir, true)
				lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
				addr = lt.Addr()
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(1), Encryption: swarmtest.EncryptionRequired}, f.torrent, f.dir, true)
				a.WaitSeeding(t, 30*time.Second)
				addr = a.Addr()
			}
			logs := newLogLines(t)
			dir := t.TempDir()
			tor := cryptoClient(t, f, ip(2), dir, addr, mse.Prefer, logs)
			waitComplete(t, tor, 60*time.Second)
			f.checkTree(t, dir)
			if _, ok := logs.find(addr + ": connected (outgoing, tcp, rc4"); !ok {
				t.Errorf("no log line says the connection to %s was RC4-encrypted", addr)
			}
		})
	}
}

// TestInteropCryptoUpload: a libtorrent and an aria2 leecher that require
// encryption download from a swarmfs seeder (prefer), which dials them
// (aria2 cannot be told of a peer).
func TestInteropCryptoUpload(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "aria2c")
	f := newCryptoFixture(t, 6<<20)
	for i, client := range []string{"libtorrent", "aria2"} {
		t.Run(client, func(t *testing.T) {
			ip := func(n int) string { return fmt.Sprintf("127.0.4.%d", 10*i+n) }
			dir := t.TempDir()
			var addr string
			var done func() bool
			switch client {
			case "libtorrent":
				lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: ip(1), Encryption: swarmtest.EncryptionRequired})
				lt.AddTorrent(f.torrent, dir, false)
				addr = lt.Addr()
				done = func() bool { return lt.Status(f.mi.InfoHash).IsFinished }
			case "aria2":
				a := swarmtest.StartAria2(t, swarmtest.Aria2Options{IP: ip(1), Encryption: swarmtest.EncryptionRequired}, f.torrent, dir, false)
				a.WaitListening(t, 30*time.Second)
				addr = a.Addr()
				done = func() bool {
					st := a.Status(t)
					return st.Status == "complete" || st.TotalLength > 0 && st.CompletedLength == st.TotalLength
				}
			}
			logs := newLogLines(t)
			tor := cryptoClient(t, f, ip(2), f.dir, addr, mse.Prefer, logs)
			waitDone(t, client, 60*time.Second, tor, done)
			f.checkTree(t, dir)
			if _, ok := logs.find(addr + ": connected (outgoing, tcp, rc4"); !ok {
				t.Errorf("no log line says the connection to %s was RC4-encrypted", addr)
			}
		})
	}
}

// TestInteropCryptoPolicies: under require, a plain peer (libtorrent with
// encryption disabled) gets nothing from us, and the log says why; under
// off, we cannot talk to a peer that requires encryption, and the log
// says so.
func TestInteropCryptoPolicies(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	f := newCryptoFixture(t, 1<<20)
	t.Run("require refuses plain", func(t *testing.T) {
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.5.1", EncPolicy: "disabled"})
		dir := t.TempDir()
		lt.AddTorrent(f.torrent, dir, false)
		logs := newLogLines(t)
		// We dial it (MSE only) and it dials us (plain only).
		tor := cryptoClient(t, f, "127.0.5.2", f.dir, lt.Addr(), mse.Require, logs)
		lt.ConnectPeer(f.mi.InfoHash, tor.client.Addr().String())
		if _, ok := logs.wait(20*time.Second, "incoming handshake failed", "plain handshake refused (encryption required)"); !ok {
			t.Error("no log line says a plain handshake was refused")
		}
		if _, ok := logs.wait(20*time.Second, lt.Addr()+": connect failed: tcp mse handshake:"); !ok {
			t.Error("no log line says our MSE handshake to a plain-only peer failed")
		}
		if _, ok := logs.find("connected ("); ok {
			t.Error("a connection was made under require with a plain-only peer")
		}
		if st := lt.Status(f.mi.InfoHash); st.TotalDownload != 0 {
			t.Errorf("the plain peer downloaded %d bytes", st.TotalDownload)
		}
	})
	t.Run("prefer falls back to plain", func(t *testing.T) {
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.5.5", EncPolicy: "disabled"})
		lt.AddTorrent(f.torrent, f.dir, true)
		lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
		logs := newLogLines(t)
		dir := t.TempDir()
		tor := cryptoClient(t, f, "127.0.5.6", dir, lt.Addr(), mse.Prefer, logs)
		waitComplete(t, tor, 30*time.Second)
		f.checkTree(t, dir)
		if _, ok := logs.find(lt.Addr()+": mse handshake failed", "retrying with plain"); !ok {
			t.Error("no log line says MSE was refused and plain tried")
		}
		if _, ok := logs.find(lt.Addr() + ": connected (outgoing, tcp, plain"); !ok {
			t.Error("no log line says the connection is plain")
		}
	})
	t.Run("off cannot reach require", func(t *testing.T) {
		lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.5.3", Encryption: swarmtest.EncryptionRequired})
		lt.AddTorrent(f.torrent, f.dir, true)
		lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
		logs := newLogLines(t)
		tor := cryptoClient(t, f, "127.0.5.4", t.TempDir(), lt.Addr(), mse.Off, logs)
		line, ok := logs.wait(20*time.Second, lt.Addr()+": connect failed: tcp plain handshake:")
		if !ok {
			t.Fatal("no log line says the plain handshake with an encryption-requiring peer failed")
		}
		if strings.Contains(line, "mse") {
			t.Errorf("MSE tried under off: %s", line)
		}
		if got := tor.Stats().Downloaded; got != 0 {
			t.Errorf("downloaded %d bytes under off from a peer that requires encryption", got)
		}
	})
}
