package swarmtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestTransmission: a transmission-daemon seeds to libtorrent and leeches
// from it (libtorrent dials: transmission never dials loopback peers), and
// leaves no process behind.
func TestTransmission(t *testing.T) {
	RequireTools(t, "libtorrent", "transmission-daemon")
	saveDir := t.TempDir()
	dataDir := filepath.Join(saveDir, "data")
	WriteFiles(t, dataDir, InteropFiles(3<<20)) // StandardFiles has a nul.txt
	torrent, ih := MakeTorrent(t, dataDir, nil, 32<<10)
	runNoLeftovers(t, "seeds", func(t *testing.T) {
		tr := StartTransmission(t, TROptions{IP: "127.0.0.2"})
		id := tr.AddTorrent(t, torrent, saveDir)
		tr.WaitSeeding(t, id, 20*time.Second)
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		got := t.TempDir()
		lt.AddTorrent(torrent, got, false)
		lt.ConnectPeer(ih, tr.Addr())
		lt.WaitComplete(t, ih, 40*time.Second) // transmission unchokes at its 10 s rechoke
		VerifyTree(t, dataDir, filepath.Join(got, "data"))
		if st := tr.Status(t, id); st.UploadedEver == 0 {
			t.Errorf("transmission reports no upload: %s", st)
		}
	})
	runNoLeftovers(t, "leeches", func(t *testing.T) {
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		lt.AddTorrent(torrent, saveDir, true)
		lt.WaitSeeding(t, ih, 20*time.Second)
		tr := StartTransmission(t, TROptions{IP: "127.0.0.2"})
		got := t.TempDir()
		id := tr.AddTorrent(t, torrent, got)
		tr.WaitAccepting(t, id, 20*time.Second)
		lt.ConnectPeer(ih, tr.Addr())
		tr.WaitComplete(t, id, 30*time.Second)
		// transmission creates no empty files.
		if n := CompareSHA256(t, dataDir, filepath.Join(got, "data"), true); n != len(InteropFiles(0))-1 {
			t.Errorf("%d files checked", n)
		}
		// (A finished transmission drops its seeds: no peer to list now.)
		if st := tr.Status(t, id); st.DownloadedEver < TotalSize(InteropFiles(3<<20)) {
			t.Errorf("transmission reports %d bytes downloaded: %s", st.DownloadedEver, st)
		}
	})
}

// TestAria2: aria2c seeds to libtorrent and leeches from it (libtorrent
// dials: aria2 cannot be told of a peer), and leaves no process behind.
func TestAria2(t *testing.T) {
	RequireTools(t, "libtorrent", "aria2c")
	saveDir, dataDir := seedData(t)
	torrent, ih := MakeTorrent(t, dataDir, nil, 32<<10)
	runNoLeftovers(t, "seeds", func(t *testing.T) {
		a := StartAria2(t, Aria2Options{IP: "127.0.0.2"}, torrent, saveDir, true)
		a.WaitSeeding(t, 20*time.Second)
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		got := t.TempDir()
		lt.AddTorrent(torrent, got, false)
		lt.ConnectPeer(ih, a.Addr())
		lt.WaitComplete(t, ih, 30*time.Second)
		VerifyTree(t, dataDir, filepath.Join(got, "data"))
	})
	runNoLeftovers(t, "leeches", func(t *testing.T) {
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		lt.AddTorrent(torrent, saveDir, true)
		lt.WaitSeeding(t, ih, 20*time.Second)
		got := t.TempDir()
		a := StartAria2(t, Aria2Options{IP: "127.0.0.2"}, torrent, got, false)
		a.WaitListening(t, 20*time.Second)
		lt.ConnectPeer(ih, a.Addr())
		a.WaitComplete(t, 30*time.Second)
		VerifyTree(t, dataDir, filepath.Join(got, "data"))
	})
}

// TestRtorrent: rtorrent seeds to libtorrent and leeches from it
// (libtorrent dials: rtorrent cannot be told of a peer), and leaves no
// process behind.
func TestRtorrent(t *testing.T) {
	RequireTools(t, "libtorrent", "rtorrent")
	saveDir, dataDir := seedData(t)
	torrent, ih := MakeTorrent(t, dataDir, nil, 32<<10)
	runNoLeftovers(t, "seeds", func(t *testing.T) {
		r := StartRtorrent(t, RtorrentOptions{IP: "127.0.0.2"}, torrent, saveDir)
		r.WaitSeeding(t, 20*time.Second)
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		got := t.TempDir()
		lt.AddTorrent(torrent, got, false)
		lt.ConnectPeer(ih, r.Addr())
		lt.WaitComplete(t, ih, 30*time.Second)
		VerifyTree(t, dataDir, filepath.Join(got, "data"))
		if st := r.Status(t); st.UpTotal < TotalSize(StandardFiles()) {
			t.Errorf("rtorrent reports %d bytes uploaded: %+v", st.UpTotal, st)
		}
	})
	runNoLeftovers(t, "leeches", func(t *testing.T) {
		lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.3"})
		lt.AddTorrent(torrent, saveDir, true)
		lt.WaitSeeding(t, ih, 20*time.Second)
		got := t.TempDir()
		r := StartRtorrent(t, RtorrentOptions{IP: "127.0.0.2"}, torrent, got)
		if st := r.Status(t); st.Complete || st.CompletedBytes != 0 {
			t.Fatalf("rtorrent has data before any peer: %+v", st)
		}
		lt.ConnectPeer(ih, r.Addr())
		r.WaitComplete(t, 30*time.Second)
		VerifyTree(t, dataDir, filepath.Join(got, "data"))
	})
}

// plainHandshake sends a plaintext BitTorrent handshake for ih to addr and
// reports whether the peer answered with one.
func plainHandshake(addr string, ih [20]byte) (bool, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(hs, ih[:]...)
	hs = append(hs, "-XX0000-swarmtest123"...)
	if _, err := nc.Write(hs); err != nil {
		return false, nil
	}
	// One that wants MSE may wait for the rest of a key exchange rather
	// than hang up: give up after a while (a loaded machine is slow).
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 48)
	if _, err := io.ReadFull(nc, got); err != nil {
		return false, nil
	}
	return bytes.Equal(got[:20], hs[:20]) && bytes.Equal(got[28:48], ih[:]), nil
}

// TestEncryptionSettings: in its default setting each client answers a
// plaintext handshake; with EncryptionRequired, none does.
func TestEncryptionSettings(t *testing.T) {
	RequireTools(t, "libtorrent", "transmission-daemon", "aria2c", "rtorrent")
	saveDir := t.TempDir()
	dataDir := filepath.Join(saveDir, "data")
	WriteFiles(t, dataDir, InteropFiles(1<<20))
	torrent, ih := MakeTorrent(t, dataDir, nil, 32<<10)
	for _, enc := range []Encryption{EncryptionDefault, EncryptionRequired} {
		want := enc == EncryptionDefault
		runNoLeftovers(t, fmt.Sprintf("encryption %d", enc), func(t *testing.T) {
			lt := StartLibtorrent(t, LTOptions{IP: "127.0.0.2", Encryption: enc})
			lt.AddTorrent(torrent, saveDir, true)
			lt.WaitSeeding(t, ih, 20*time.Second)
			tr := StartTransmission(t, TROptions{IP: "127.0.0.3", Encryption: enc})
			tr.WaitSeeding(t, tr.AddTorrent(t, torrent, saveDir), 20*time.Second)
			a := StartAria2(t, Aria2Options{IP: "127.0.0.4", Encryption: enc}, torrent, saveDir, true)
			a.WaitSeeding(t, 20*time.Second)
			r := StartRtorrent(t, RtorrentOptions{IP: "127.0.0.5", Encryption: enc}, torrent, saveDir)
			r.WaitSeeding(t, 20*time.Second)
			var wg sync.WaitGroup
			for name, addr := range map[string]string{"libtorrent": lt.Addr(), "transmission": tr.Addr(), "aria2": a.Addr(), "rtorrent": r.Addr()} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := plainHandshake(addr, ih)
					if err != nil {
						t.Errorf("%s: %v", name, err)
					} else if got != want {
						t.Errorf("%s, encryption %d: answered a plaintext handshake: %v, want %v", name, enc, got, want)
					}
				}()
			}
			wg.Wait()
		})
	}
}
