package metainfo

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, f := range []Format{FormatV1, FormatV2, FormatHybrid} {
		back, err := ParseFormat(f.String())
		if err != nil || back != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f, back, err)
		}
	}
	if _, err := ParseFormat("v3"); err == nil {
		t.Error("ParseFormat(v3) accepted")
	}
	var f Format
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Var(&f, "format", "")
	if err := fs.Parse([]string{"-format", "hybrid"}); err != nil || f != FormatHybrid {
		t.Errorf("flag: %v, %v", f, err)
	}
	if Format(9).String() != "Format(9)" {
		t.Error(Format(9).String())
	}
	dir := t.TempDir()
	writeTree(t, dir, []treeFile{{"f", 10}})
	if _, err := Create(dir, CreateOptions{Format: 7}); err == nil {
		t.Error("Create with an unknown format")
	}
}

// TestCreateMatchesLibtorrentFixtures makes v2 and hybrid torrents of the
// golden fixtures' source: they must have the info-hashes libtorrent gave
// its own (the info dictionary is all that counts).
func TestCreateMatchesLibtorrentFixtures(t *testing.T) {
	src := t.TempDir()
	writeTree(t, filepath.Join(src, "multi"), goldenTree)
	writeTree(t, filepath.Join(src, "single"), goldenSingle)
	tests := []struct {
		fixture string
		root    string
		opts    CreateOptions
	}{
		{"libtorrent-hybrid.torrent", "multi", CreateOptions{PieceLength: 16 << 10, Format: FormatHybrid}},
		{"libtorrent-hybrid-64k.torrent", "multi", CreateOptions{PieceLength: 64 << 10, Format: FormatHybrid}},
		{"libtorrent-v2.torrent", "multi", CreateOptions{PieceLength: 16 << 10, Format: FormatV2}},
		{"libtorrent-v2-single.torrent", "single/movie.mp4", CreateOptions{PieceLength: 32 << 10, Format: FormatV2}},
		{"libtorrent-hybrid-single.torrent", "single/movie.mp4", CreateOptions{PieceLength: 32 << 10, Format: FormatHybrid}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := Create(filepath.Join(src, tc.root), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := findExpected(t, tc.fixture)
			if got := m.Info.InfoHashV1.String(); want.HasV1 && got != want.InfoHash {
				t.Errorf("v1 info-hash %s, libtorrent %s", got, want.InfoHash)
			}
			if got := m.InfoHashV2.String(); got != want.InfoHashV2 {
				t.Errorf("v2 info-hash %s, libtorrent %s", got, want.InfoHashV2)
			}
			lt, err := Load(filepath.Join(goldenDir, tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.InfoBytes, lt.InfoBytes) {
				t.Errorf("info dictionaries differ:\n ours %q\n lt   %q", clip(m.InfoBytes), clip(lt.InfoBytes))
			}
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil || !back.Info.HasPieceLayers() {
				t.Fatalf("our torrent read back: %v", err)
			}
		})
	}
}

func clip(b []byte) []byte { return b[:min(len(b), 300)] }

// TestCreateV2Pieces makes v2 and hybrid torrents of odd trees and checks
// every piece against its v2 (and v1) hash, from the files on disk.
func TestCreateV2Pieces(t *testing.T) {
	root := filepath.Join(t.TempDir(), "odd")
	writeTree(t, root, oddTree)
	big := filepath.Join(t.TempDir(), "big")
	writeTree(t, big, []treeFile{{"a", 3<<20 + 5}, {"b", 0}, {"c", 64 << 10}, {"d", 1}})
	for _, tc := range []struct {
		root string
		pl   int64
	}{{root, 16 << 10}, {root, 32 << 10}, {big, 64 << 10}, {big, 1 << 20}} {
		for _, format := range []Format{FormatV2, FormatHybrid} {
			m, err := Create(tc.root, CreateOptions{PieceLength: tc.pl, Format: format, NoDate: true})
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info
			checkInfoInvariants(t, info)
			if info.HasV1() != (format == FormatHybrid) || !info.HasV2() || !info.HasPieceLayers() {
				t.Fatalf("%s: v1 %v v2 %v layers %v", format, info.HasV1(), info.HasV2(), info.HasPieceLayers())
			}
			var data []byte
			for _, f := range info.Files {
				if f.Pad {
					data = append(data, make([]byte, f.Length)...)
					continue
				}
				b, err := os.ReadFile(filepath.Join(append([]string{tc.root}, f.Path...)...))
				if err != nil {
					t.Fatal(err)
				}
				data = append(data, b...)
			}
			for i := range info.NumPieces() {
				piece := pieceData(info, data, i)
				if err := info.VerifyPieceV2(i, piece); err != nil {
					t.Fatalf("%s, %d: piece %d: %v", format, tc.pl, i, err)
				}
				if info.HasV1() && sha1.Sum(piece) != info.PieceHash(i) {
					t.Fatalf("%s, %d: piece %d: SHA-1", format, tc.pl, i)
				}
			}
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil || back.InfoHash != m.InfoHash || back.InfoHashV2 != m.InfoHashV2 || !back.Info.HasPieceLayers() {
				t.Fatalf("round trip: %v", err)
			}
			if format == FormatV2 && m.InfoHash != m.InfoHashV2.Truncate() {
				t.Fatal("a v2 torrent is named by its truncated v2 hash")
			}
		}
	}
}

// TestCreateMatchesLibtorrent makes the same torrents with Create and with
// libtorrent's create_torrent, which must agree on both info-hashes; and
// libtorrent must read ours as we do.
func TestCreateMatchesLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	src := t.TempDir()
	trees := map[string][]treeFile{
		"odd":     oddTree,
		"one":     {{"only.bin", 20000}},
		"aligned": {{"a", 32 << 10}, {"b", 64 << 10}},
		"empties": {{"a", 5}, {"b", 0}, {"c/d", 0}},
		"many":    {{"x/1", 1}, {"x/2", 16<<10 + 1}, {"x/3", 100_000}, {"y", 300_000}, {"z", 7}},
	}
	for name, tree := range trees {
		writeTree(t, filepath.Join(src, name), tree)
	}
	writeTree(t, src, []treeFile{{"single.bin", 100_000}})
	out := t.TempDir()
	type made struct {
		file   string
		ours   *MetaInfo
		ltFile string
	}
	var all []made
	var names, specs []string
	for _, root := range []string{"odd", "one", "aligned", "empties", "many", "single.bin"} {
		for _, format := range []Format{FormatV2, FormatHybrid} {
			for _, pl := range []int64{16 << 10, 64 << 10} {
				base := fmt.Sprintf("%s-%s-%dk", root, format, pl>>10)
				m, err := Create(filepath.Join(src, root), CreateOptions{PieceLength: pl, Format: format, NoDate: true})
				if err != nil {
					t.Fatal(err)
				}
				b, err := m.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(out, base+".ours.torrent"), b, 0o644); err != nil {
					t.Fatal(err)
				}
				spec, _ := json.Marshal(map[string]any{"src": filepath.Join(src, root), "out": filepath.Join(out, base+".lt.torrent"),
					"mode": format.String(), "piece_size": pl})
				specs = append(specs, string(spec))
				all = append(all, made{base + ".ours.torrent", m, base + ".lt.torrent"})
				names = append(names, base+".ours.torrent", base+".lt.torrent")
			}
		}
	}
	ltMake(t, specs...)
	got := ltRead(t, out, names...)
	for i, mk := range all {
		ours, theirs := got[2*i], got[2*i+1]
		t.Run(mk.file, func(t *testing.T) {
			if ours.Error != "" || theirs.Error != "" {
				t.Fatalf("libtorrent: ours %q, its own %q", ours.Error, theirs.Error)
			}
			if ours.InfoHash != theirs.InfoHash || ours.InfoHashV2 != theirs.InfoHashV2 {
				t.Errorf("info-hashes %s %s, libtorrent's torrent %s %s", ours.InfoHash, ours.InfoHashV2, theirs.InfoHash, theirs.InfoHashV2)
			}
			compareWithLibtorrent(t, mk.ours, ours)
			// And libtorrent's torrent reads as ours does.
			lt, err := Load(filepath.Join(out, mk.ltFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(lt.InfoBytes, mk.ours.InfoBytes) || !slices.EqualFunc(lt.Info.Files, mk.ours.Info.Files, func(a, b File) bool {
				return slices.Equal(a.Path, b.Path) && a.Length == b.Length && a.Offset == b.Offset && a.Pad == b.Pad &&
					(a.V2 == nil) == (b.V2 == nil) && (a.V2 == nil || a.V2.PiecesRoot == b.V2.PiecesRoot && bytes.Equal(a.V2.Layer, b.V2.Layer))
			}) {
				t.Error("libtorrent's torrent reads differently from ours")
			}
		})
	}
}

// ltMake runs lt_make.py with JSON specs, one torrent each.
func ltMake(t *testing.T, specs ...string) {
	t.Helper()
	script, err := filepath.Abs("testdata/lt_make.py")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(python, append([]string{script}, specs...)...).CombinedOutput(); err != nil {
		t.Fatalf("lt_make.py %q: %v\n%s", specs, err, b)
	}
}
