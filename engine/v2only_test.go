package engine

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestV2OnlyRefused: until pieces are checked with SHA-256 trees, a v2-only
// torrent or btmh-only magnet is refused with ErrV2Only when added (it
// would otherwise fail every piece and penalise every peer), while a
// hybrid is added through its v1 half.
func TestV2OnlyRefused(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "data")
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "a.bin", Size: 100 << 10}, {Path: "b.bin", Size: 40 << 10}})
	c := newClient(t, Config{NoTrackers: true})
	for _, tc := range []struct {
		name   string
		format metainfo.Format
		want   error
	}{
		{"v2", metainfo.FormatV2, ErrV2Only},
		{"hybrid", metainfo.FormatHybrid, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi, err := metainfo.Create(root, metainfo.CreateOptions{PieceLength: 32 << 10, NoDate: true, Format: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.AddTorrent(mi, TorrentOptions{}); !errors.Is(err, tc.want) {
				t.Fatalf("AddTorrent: %v, want %v", err, tc.want)
			}
		})
	}
	m, err := metainfo.ParseMagnet("magnet:?xt=urn:btmh:1220" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddMagnet(m, TorrentOptions{}); !errors.Is(err, ErrV2Only) {
		t.Fatalf("AddMagnet of a btmh-only magnet: %v, want ErrV2Only", err)
	}
}
