package metainfo

import (
	"crypto/sha1"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

// TestGoldenV2Data rebuilds the source of libtorrent's v2 and hybrid
// fixtures and checks every file's pieces root and piece layer against
// what we compute from the data, and every piece against both its v2 and
// (for hybrids) its v1 hash.
func TestGoldenV2Data(t *testing.T) {
	src := t.TempDir()
	writeTree(t, filepath.Join(src, "multi"), goldenTree)
	writeTree(t, filepath.Join(src, "single"), goldenSingle)
	fixtures := map[string]string{
		"libtorrent-v2.torrent":            "multi",
		"libtorrent-hybrid.torrent":        "multi",
		"libtorrent-hybrid-64k.torrent":    "multi",
		"libtorrent-v2-single.torrent":     "single",
		"libtorrent-hybrid-single.torrent": "single",
	}
	for fixture, dir := range fixtures {
		t.Run(fixture, func(t *testing.T) {
			m, err := Load(filepath.Join(goldenDir, fixture))
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info
			if !info.HasV2() || !info.HasPieceLayers() {
				t.Fatalf("v2 %v, piece layers %v", info.HasV2(), info.HasPieceLayers())
			}
			var all []byte
			layers := 0
			for _, f := range info.Files {
				if f.Pad {
					all = append(all, make([]byte, f.Length)...)
					continue
				}
				data, err := os.ReadFile(filepath.Join(append([]string{src, dir}, f.Path...)...))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, data...)
				h, err := merkle.NewHasher(info.PieceLength)
				if err != nil {
					t.Fatal(err)
				}
				h.Write(data)
				root, layer := h.Sum()
				if root != f.V2.PiecesRoot {
					t.Errorf("%s: pieces root differs from the data's", f.DisplayPath())
				}
				if string(merkle.Join(layer)) != string(f.V2.Layer) {
					t.Errorf("%s: piece layer differs from the data's", f.DisplayPath())
				}
				if layer != nil {
					layers++
				}
			}
			if layers == 0 && dir == "multi" {
				t.Error("no file with a piece layer: the fixture tests too little")
			}
			if int64(len(all)) != info.TotalLength {
				t.Fatalf("%d bytes of data, total length %d", len(all), info.TotalLength)
			}
			for i := range info.NumPieces() {
				piece := pieceData(info, all, i)
				if err := info.VerifyPieceV2(i, piece); err != nil {
					t.Errorf("piece %d: %v", i, err)
				}
				if info.HasV1() && sha1.Sum(piece) != info.PieceHash(i) {
					t.Errorf("piece %d: SHA-1 differs", i)
				}
			}
		})
	}
}
