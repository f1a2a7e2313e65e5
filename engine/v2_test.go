package engine

import (
	"bytes"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// newFixtureFormat is newFixture for a v1, v2 or hybrid torrent.
func newFixtureFormat(t *testing.T, pieceLength int64, files []swarmtest.FileSpec, format metainfo.Format) fixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, files)
	mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: pieceLength, NoDate: true, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, root: root, mi: mi}
}

// v2Magnet is the magnet of f with every info-hash it has: urn:btmh alone
// for a v2-only torrent, with urn:btih for a hybrid (unless btmhOnly).
func v2Magnet(f fixture, btmhOnly bool) string {
	m := &metainfo.Magnet{InfoHash: f.mi.InfoHash, InfoHashV2: f.mi.InfoHashV2}
	if btmhOnly {
		m.InfoHash = f.mi.InfoHashV2.Truncate()
	}
	return m.String()
}

// TestV2SwarmfsToSwarmfs: a v2-only and a hybrid torrent (an empty file,
// files smaller than a piece, a file of a hundred pieces) go from a
// swarmfs seeder to a swarmfs leecher byte-exact, added from the .torrent
// and from a magnet: for the v2-only magnet the info is checked against
// the SHA-256 info-hash and the piece layers are fetched from the seeder
// with hash requests before any piece can be checked. A hybrid's btmh-only
// magnet names it by its v2 hash truncated: the seeder, which names it by
// its v1 hash, takes such connections too.
func TestV2SwarmfsToSwarmfs(t *testing.T) {
	for _, format := range []metainfo.Format{metainfo.FormatV2, metainfo.FormatHybrid} {
		for _, how := range []string{"torrent", "magnet", "btmh-magnet"} {
			if how == "btmh-magnet" && format == metainfo.FormatV2 {
				continue // the same as "magnet"
			}
			t.Run(format.String()+"/"+how, func(t *testing.T) {
				f := newFixtureFormat(t, 32<<10, swarmtest.StandardFiles(), format)
				sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
				var (
					tor *Torrent
					dir string
				)
				if how == "torrent" {
					_, tor, dir = leecher(t, f, Config{}, sc.Addr())
				} else {
					logs := newLogLines(t)
					_, tor, dir = magnetLeecher(t, v2Magnet(f, how == "btmh-magnet"), Config{Logf: logs.logf}, sc.Addr())
					waitInfo(t, tor, 30*time.Second)
					checkInfo(t, tor, f.mi)
					if format == metainfo.FormatV2 {
						if _, ok := logs.wait(30*time.Second, "piece layer of", "big.bin", "received"); !ok {
							t.Error("no piece layer fetched for big.bin")
						}
					}
				}
				if want := f.mi.InfoHash; tor.InfoHash() != want && how != "btmh-magnet" {
					t.Fatalf("torrent named %s, want %s", tor.InfoHash(), want)
				}
				waitComplete(t, tor, 60*time.Second)
				swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
			})
		}
	}
}

// TestV2MagnetWrongInfo: a peer that serves the info dictionary of another
// torrent under a btmh magnet's truncated hash is not believed: the info
// is checked against the full SHA-256.
func TestV2MagnetWrongInfo(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: 100 << 10}}
	f := newFixtureFormat(t, 32<<10, files, metainfo.FormatV2)
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	// Same first 20 bytes, another SHA-256: no dictionary can match it.
	wrong := f.mi.InfoHashV2
	wrong[31] ^= 1
	uri := (&metainfo.Magnet{InfoHash: f.mi.InfoHash, InfoHashV2: wrong}).String()
	logs := newLogLines(t)
	_, tor, _ := magnetLeecher(t, uri, Config{Logf: logs.logf}, sc.Addr())
	if _, ok := logs.wait(30*time.Second, "metadata failed its hash check"); !ok {
		t.Fatal("the info dictionary was not refused")
	}
	select {
	case <-tor.InfoReady():
		t.Fatal("info adopted although its SHA-256 is not the magnet's")
	default:
	}
}

// startBlockLiar runs a peer of a v2 torrent that claims every piece and
// answers only requests for the second block of a piece, with junk; it
// rejects every other request (fast extension), so each piece it touches
// has other senders too and no piece ever comes from it alone.
func startBlockLiar(t *testing.T, ip string, mi *metainfo.MetaInfo) *fakePeer {
	t.Helper()
	return listenFake(t, ip, func(nc net.Conn) {
		if _, err := peer.ReadHandshake(nc); err != nil {
			return
		}
		var rsv peer.Reserved
		rsv.SetFast()
		rsv.SetV2()
		if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
			return
		}
		out := peer.AppendMessage(nil, &peer.Message{Type: peer.HaveAll})
		out = peer.AppendMessage(out, &peer.Message{Type: peer.Unchoke})
		if _, err := nc.Write(out); err != nil {
			return
		}
		dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
		var m peer.Message
		for {
			if err := dec.Decode(&m); err != nil {
				return
			}
			if m.Type != peer.Request {
				continue
			}
			if m.Begin != peer.BlockSize {
				out = peer.AppendMessage(out[:0], &peer.Message{Type: peer.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
			} else {
				out = peer.AppendMessage(out[:0], &peer.Message{Type: peer.Piece, Index: m.Index, Begin: m.Begin, Block: bytes.Repeat([]byte{0xAB}, int(m.Length))})
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
}

// TestV2BadBlockIdentified: in a v2 torrent, a peer that sends one bad
// block of pieces whose other blocks come from an honest seeder is named
// by the blocks' Merkle proof (asked of the seeder, which answers from its
// data) and banned at the first such piece, while the seeder, which
// contributed to every failed piece, is not; the download completes
// byte-exact.
//
// In a hybrid the pieces are checked with SHA-1, and the blame works the
// same through the v2 hashes, asked of the seeder over the connection
// upgraded to v2 at the handshake.
func TestV2BadBlockIdentified(t *testing.T) {
	for _, format := range []metainfo.Format{metainfo.FormatV2, metainfo.FormatHybrid} {
		t.Run(format.String(), func(t *testing.T) {
			f := newFixtureFormat(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 2 << 20}, {Path: "b.bin", Size: 100 << 10}}, format)
			sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 4 << 20})
			l := startBlockLiar(t, "127.0.0.5", f.mi)
			logs := newLogLines(t)
			_, tor, dir := leecher(t, f, Config{Logf: logs.logf}, l.addr(), sc.Addr())
			waitComplete(t, tor, 90*time.Second)
			swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
			// Smart ban may beat the proof to the ban when the piece
			// verifies first; the proof names the liar all the same.
			if _, ok := logs.wait(10*time.Second, "Merkle proof names the senders", l.addr().Addr().String()); !ok {
				t.Errorf("the liar %v was not named by a Merkle proof (banned: %v)", l.addr(), tor.Banned())
			}
			if !slices.Contains(tor.Banned(), l.addr().Addr()) {
				t.Errorf("the liar %v was not banned (banned: %v)", l.addr(), tor.Banned())
			}
			for _, a := range tor.Banned() {
				if a == sc.Addr().Addr() {
					t.Errorf("the honest seeder %v was banned", a)
				}
			}
		})
	}
}
