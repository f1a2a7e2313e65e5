package engine

import (
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// uTP against libtorrent speaking uTP only (issue 11): its TCP port
// refuses connections, so a transfer needs our uTP socket, dialled or
// accepted; the handshake on it is MSE as on TCP.

// TestInteropUTPDownload: swarmfs downloads byte-exact from a uTP-only
// libtorrent seeder (it dials TCP first, is refused, and falls back to uTP).
func TestInteropUTPDownload(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	f := newCryptoFixture(t, 4<<20)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.8.1", UTPOnly: true})
	lt.AddTorrent(f.torrent, f.dir, true)
	lt.WaitSeeding(t, f.mi.InfoHash, 30*time.Second)
	logs := newLogLines(t)
	dir := t.TempDir()
	tor := cryptoClient(t, f, "127.0.8.2", dir, lt.Addr(), mse.Prefer, logs)
	waitComplete(t, tor, 60*time.Second)
	f.checkTree(t, dir)
	if _, ok := logs.find(lt.Addr() + ": connected (outgoing, utp,"); !ok {
		t.Errorf("no log line says the connection to %s is uTP", lt.Addr())
	}
}

// TestInteropUTPUpload: a uTP-only libtorrent leecher downloads
// byte-exact from a swarmfs seeder, and its peer list shows the
// connection as uTP.
func TestInteropUTPUpload(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent")
	f := newCryptoFixture(t, 4<<20)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.8.3", UTPOnly: true})
	dir := t.TempDir()
	lt.AddTorrent(f.torrent, dir, false)
	logs := newLogLines(t)
	tor := cryptoClient(t, f, "127.0.8.4", f.dir, lt.Addr(), mse.Prefer, logs)
	sawUTP := false
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := lt.Status(f.mi.InfoHash)
		sawUTP = sawUTP || len(st.UTPPeers) > 0
		if st.IsFinished {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("libtorrent has not finished after 60 s (swarmfs uploaded %d bytes)", tor.Stats().Uploaded)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.checkTree(t, dir)
	if !sawUTP {
		t.Error("libtorrent's peer list never showed a uTP connection")
	}
}
