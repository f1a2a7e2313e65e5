package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
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
// for a v2-only torrent, with urn:btih for a hybrid.
func v2Magnet(f fixture) string {
	return (&metainfo.Magnet{InfoHash: f.mi.InfoHash, InfoHashV2: f.mi.InfoHashV2}).String()
}

// TestV2SwarmfsToSwarmfs: a v2-only and a hybrid torrent (an empty file,
// files smaller than a piece, a file of a hundred pieces) go from a
// swarmfs seeder to a swarmfs leecher byte-exact, added from the .torrent
// and from a magnet: for the v2-only magnet the info is checked against
// the SHA-256 info-hash and the piece layers are fetched from the seeder
// with hash requests before any piece can be checked.
func TestV2SwarmfsToSwarmfs(t *testing.T) {
	for _, format := range []metainfo.Format{metainfo.FormatV2, metainfo.FormatHybrid} {
		for _, how := range []string{"torrent", "magnet"} {
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
					_, tor, dir = magnetLeecher(t, v2Magnet(f), Config{Logf: logs.logf}, sc.Addr())
					waitInfo(t, tor, 30*time.Second)
					checkInfo(t, tor, f.mi)
					if format == metainfo.FormatV2 {
						if _, ok := logs.wait(30*time.Second, "piece layer of", "big.bin", "received"); !ok {
							t.Error("no piece layer fetched for big.bin")
						}
					}
				}
				if tor.InfoHash() != f.mi.InfoHash {
					t.Fatalf("torrent named %s, want %s", tor.InfoHash(), f.mi.InfoHash)
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
