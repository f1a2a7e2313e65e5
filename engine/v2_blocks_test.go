package engine

import (
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// hashPeer is a fake v2 peer that has no piece and either rejects every
// hash request or (silent) never answers one. connected is closed once a
// peer has shaken hands with it, asked once it got a hash request.
type hashPeer struct {
	*fakePeer
	connected, asked chan struct{}
}

func startHashPeer(t *testing.T, ip string, mi *metainfo.MetaInfo, silent bool) *hashPeer {
	t.Helper()
	hp := &hashPeer{connected: make(chan struct{}), asked: make(chan struct{})}
	var connOnce, askOnce sync.Once
	hp.fakePeer = listenFake(t, ip, func(nc net.Conn) {
		if _, err := peer.ReadHandshake(nc); err != nil {
			return
		}
		var rsv peer.Reserved
		rsv.SetFast()
		rsv.SetV2()
		if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
			return
		}
		out := peer.AppendMessage(nil, &peer.Message{Type: peer.HaveNone})
		if _, err := nc.Write(out); err != nil {
			return
		}
		connOnce.Do(func() { close(hp.connected) })
		dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
		var m peer.Message
		for {
			if err := dec.Decode(&m); err != nil {
				return
			}
			if m.Type != peer.HashRequest {
				continue
			}
			askOnce.Do(func() { close(hp.asked) })
			if silent {
				continue
			}
			m.Type = peer.HashReject
			if _, err := nc.Write(peer.AppendMessage(out[:0], &m)); err != nil {
				return
			}
		}
	})
	return hp
}

// waitChan fails the test unless ch is closed within d.
func waitChan(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("not within %v: %s", d, what)
	}
}

// TestV2BlockCheckRejectedMovesOn: the block hashes of a failed piece are
// asked first of a peer that did not send any of its blocks; when that
// peer rejects the request, it goes to another peer at once (not after
// the 10 s a silent peer gets), so the liar is named within seconds of
// the failure.
func TestV2BlockCheckRejectedMovesOn(t *testing.T) {
	f := newFixtureFormat(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 2 << 20}}, metainfo.FormatV2)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 1 << 20})
	rej := startHashPeer(t, "127.0.0.6", f.mi, false)
	logs := newLogLines(t)
	_, tor, dir := leecher(t, f, Config{Logf: logs.logf}, rej.addr())
	waitChan(t, rej.connected, 30*time.Second, "the leecher connects to the rejecting peer")
	// Now the sources: the rejecter is connected before any piece fails.
	l := startBlockLiar(t, "127.0.0.5", f.mi)
	tor.AddPeers([]netip.AddrPort{l.addr(), sc.Addr()})
	if _, ok := logs.wait(60*time.Second, "failed its hash check"); !ok {
		t.Fatal("no piece failed")
	}
	if _, ok := logs.wait(layerTimeout/2, "Merkle proof names the senders", l.addr().Addr().String()); !ok {
		t.Errorf("the liar %v was not named within %v of the first failure", l.addr(), layerTimeout/2)
	}
	waitComplete(t, tor, 90*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestV2LayerRequestTimesOut: a piece-layer request sent to a peer that
// never answers goes to another peer after layerTimeout, and the torrent
// (added from a .torrent without piece layers) completes from it.
func TestV2LayerRequestTimesOut(t *testing.T) {
	f := newFixtureFormat(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 600 << 10}}, metainfo.FormatV2)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	info, err := metainfo.ParseInfo(f.mi.InfoBytes)
	if err != nil {
		t.Fatal(err)
	}
	bare := *f.mi
	bare.Info = info // as a .torrent without "piece layers"
	silent := startHashPeer(t, "127.0.0.6", f.mi, true)
	logs := newLogLines(t)
	c := newClient(t, Config{Logf: logs.logf, Storage: storage.File{Dir: t.TempDir()}})
	tor, err := c.AddTorrent(&bare, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{silent.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	waitChan(t, silent.asked, 30*time.Second, "the layer is asked of the only peer, which never answers")
	start := time.Now()
	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	if _, ok := logs.wait(layerTimeout+20*time.Second, "piece layer of", "a.bin", "received"); !ok {
		t.Fatal("the piece layer was never asked of the seeder")
	}
	if d := time.Since(start); d < layerTimeout/2 {
		t.Errorf("the layer came after %v: the silent peer was not given its %v", d, layerTimeout)
	}
	waitComplete(t, tor, 60*time.Second)
}
