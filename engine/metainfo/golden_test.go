package metainfo

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/golden with mktorrent and python3-libtorrent")

const goldenDir = "testdata/golden"

// goldenSingle is the source of the single-file fixtures.
var goldenSingle = []treeFile{{"movie.mp4", 123_457}}

// evilInfo is a hand-made info dictionary whose names try every trick the
// sanitiser must defeat. evilWant is what each file must become.
func evilInfo(t testing.TB) []byte {
	t.Helper()
	utf := fileEntry(3, "latin1\xe9.txt")
	utf["path.utf-8"] = []string{"latin1é.txt"}
	return multiInfo(t, "../evil", 1<<14,
		fileEntry(5, "..", "..", "etc", "passwd"),
		fileEntry(1, "/abs", "x"),
		fileEntry(2, "", ".", "dot"),
		fileEntry(3, "nul\x00name.txt"),
		fileEntry(0, "back\\slash"),
		fileEntry(4, "dup.txt"),
		fileEntry(5, "dup.txt"),
		fileEntry(6, "a"),
		fileEntry(7, "a", "b"),
		fileEntry(8, strings.Repeat("x", 300)+".mkv"),
		fileEntry(9, "ctl\nline"),
		fileEntry(10, "bad\xffname"),
		utf,
		fileEntry(11, ".", ""),
	)
}

var evilWant = []string{
	"_/_/etc/passwd",
	"_abs/x",
	"dot",
	"nul_name.txt",
	"back_slash",
	"dup.txt",
	"dup.1.txt",
	"a.1",
	"a/b",
	strings.Repeat("x", 251) + ".mkv",
	"ctl_line",
	"bad\uFFFDname",
	"latin1é.txt",
	"_.1", // "_" is a folder already (file 0)
}

func TestGolden(t *testing.T) {
	if *update {
		regenerateGolden(t)
	}
	want := readExpected(t)
	if len(want) < 9 {
		t.Fatalf("expected.json lists %d fixtures; regenerate with -update", len(want))
	}
	for _, lt := range want {
		t.Run(lt.File, func(t *testing.T) {
			m, err := Load(filepath.Join(goldenDir, lt.File))
			if lt.Error != "" {
				if err == nil {
					t.Fatalf("libtorrent rejects it (%s) but Parse accepts it", lt.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			compareWithLibtorrent(t, m, lt)
		})
	}
}

// compareWithLibtorrent checks that we read a torrent as libtorrent does.
func compareWithLibtorrent(t *testing.T, m *MetaInfo, lt ltInfo) {
	t.Helper()
	info := m.Info
	if info.HasV1() != lt.HasV1 || info.HasV2() != lt.HasV2 {
		t.Errorf("v1 %v v2 %v, libtorrent %v %v", info.HasV1(), info.HasV2(), lt.HasV1, lt.HasV2)
	}
	if got := info.InfoHashV1.String(); lt.HasV1 && got != lt.InfoHash {
		t.Errorf("info-hash %s, libtorrent %s", got, lt.InfoHash)
	}
	if got := m.InfoHashV2.String(); lt.HasV2 && got != lt.InfoHashV2 {
		t.Errorf("v2 info-hash %s, libtorrent %s", got, lt.InfoHashV2)
	}
	if m.InfoHash != info.InfoHash() || info.InfoHashV2 != m.InfoHashV2 {
		t.Errorf("MetaInfo and Info disagree on the hashes")
	}
	// libtorrent pads the last file of a v2-only torrent to a piece
	// boundary; we leave the last piece short, as BEP 52 has it. Drop that
	// pad as libtorrent's remove_tail_padding does: the empty files after
	// it move back to the end of the data.
	if !lt.HasV1 {
		for k := len(lt.Files) - 1; k >= 0; k-- {
			if f := lt.Files[k]; f.Size == 0 {
				continue
			} else if f.Pad {
				lt.TotalSize -= f.Size
				lt.Files = slices.Delete(slices.Clone(lt.Files), k, k+1)
				for j := k; j < len(lt.Files); j++ {
					lt.Files[j].Offset = lt.TotalSize
				}
			}
			break
		}
	}
	checkInfoInvariants(t, info)
	if info.PieceLength != lt.PieceLength || info.NumPieces() != lt.NumPieces || info.TotalLength != lt.TotalSize {
		t.Errorf("pieces %d x %d, total %d; libtorrent %d x %d, total %d",
			info.NumPieces(), info.PieceLength, info.TotalLength, lt.NumPieces, lt.PieceLength, lt.TotalSize)
	}
	if info.Private != lt.Private || m.Comment != lt.Comment || m.CreatedBy != lt.Creator {
		t.Errorf("private %v comment %q creator %q; libtorrent %v %q %q",
			info.Private, m.Comment, m.CreatedBy, lt.Private, lt.Comment, lt.Creator)
	}
	// libtorrent shuffles the URLs within a tier (BEP 12), so compare each
	// tier as a set.
	if got := m.Trackers(); !slices.EqualFunc(sortedTiers(got), sortedTiers(lt.Trackers), slices.Equal) {
		t.Errorf("trackers %q, libtorrent %q", got, lt.Trackers)
	}
	if !slices.Equal(m.URLList, lt.WebSeeds) {
		t.Errorf("web seeds %q, libtorrent %q", m.URLList, lt.WebSeeds)
	}
	if len(info.Files) != len(lt.Files) {
		t.Fatalf("%d files, libtorrent %d", len(info.Files), len(lt.Files))
	}
	for i, f := range info.Files {
		lf := lt.Files[i]
		if f.Length != lf.Size || f.Offset != lf.Offset || f.Pad != lf.Pad {
			t.Errorf("file %d: length %d offset %d pad %v; libtorrent %d %d %v", i, f.Length, f.Offset, f.Pad, lf.Size, lf.Offset, lf.Pad)
		}
		var root string
		if f.V2 != nil && f.V2.PiecesRoot != ([32]byte{}) {
			root = hex.EncodeToString(f.V2.PiecesRoot[:])
		}
		if root != lf.Root {
			t.Errorf("file %d: pieces root %q, libtorrent %q", i, root, lf.Root)
		}
		want := lf.Path
		if !info.SingleFile {
			want = strings.TrimPrefix(want, lt.Name+"/")
		}
		// Names here are all safe, so ours must equal libtorrent's; pad
		// files share paths and are renamed, so they are left out.
		if !f.Pad && lt.File != "evil.torrent" && f.DisplayPath() != want {
			t.Errorf("file %d: path %q, libtorrent %q", i, f.DisplayPath(), want)
		}
	}
}

func sortedTiers(tiers [][]string) [][]string {
	out := make([][]string, len(tiers))
	for i, t := range tiers {
		out[i] = slices.Sorted(slices.Values(t))
	}
	return out
}

func readExpected(t *testing.T) []ltInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, "expected.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run TestGolden -update)", err)
	}
	var infos []ltInfo
	if err := json.Unmarshal(b, &infos); err != nil {
		t.Fatal(err)
	}
	return infos
}

func findExpected(t *testing.T, file string) ltInfo {
	t.Helper()
	for _, lt := range readExpected(t) {
		if lt.File == file {
			return lt
		}
	}
	t.Fatalf("%s missing from expected.json", file)
	return ltInfo{}
}

// TestGoldenLive re-reads the committed fixtures with the installed
// libtorrent, so expected.json cannot drift from what libtorrent says.
func TestGoldenLive(t *testing.T) {
	requireLibtorrent(t)
	want := readExpected(t)
	var names []string
	for _, lt := range want {
		names = append(names, lt.File)
	}
	got := ltRead(t, goldenDir, names...)
	for i := range want {
		if got[i].InfoHash != want[i].InfoHash || got[i].InfoHashV2 != want[i].InfoHashV2 || got[i].Error != want[i].Error || got[i].NumPieces != want[i].NumPieces {
			t.Errorf("%s: libtorrent now reads %+v, expected.json has %+v", want[i].File, got[i], want[i])
		}
	}
}

// TestEvilGolden checks the sanitised names of the hand-made hostile
// torrent, which libtorrent also reads (its info-hash is in expected.json).
func TestEvilGolden(t *testing.T) {
	m, err := Load(filepath.Join(goldenDir, "evil.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Name != ".._evil" {
		t.Errorf("name %q", m.Info.Name)
	}
	var got []string
	for _, f := range m.Info.Files {
		got = append(got, f.DisplayPath())
	}
	if !slices.Equal(got, evilWant) {
		t.Errorf("paths\n got %q\nwant %q", got, evilWant)
	}
}

// TestCreateMatchesMktorrent hashes the fixtures' source again with Create:
// with the same options the info dictionary, hence the info-hash, must be
// identical to mktorrent's.
func TestCreateMatchesMktorrent(t *testing.T) {
	src := t.TempDir()
	writeTree(t, filepath.Join(src, "multi"), goldenTree)
	writeTree(t, filepath.Join(src, "single"), goldenSingle)
	tests := []struct {
		fixture string
		root    string
		opts    CreateOptions
	}{
		{"mktorrent-multi.torrent", "multi", CreateOptions{PieceLength: 1 << 16, Private: true}},
		{"mktorrent-single.torrent", "single/movie.mp4", CreateOptions{PieceLength: 1 << 15}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			m, err := Create(filepath.Join(src, tc.root), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := findExpected(t, tc.fixture)
			if m.InfoHash.String() != want.InfoHash {
				t.Fatalf("Create info-hash %s, mktorrent %s", m.InfoHash, want.InfoHash)
			}
		})
	}
}

// regenerateGolden rebuilds every fixture from goldenTree. It needs
// mktorrent and python3-libtorrent.
func regenerateGolden(t *testing.T) {
	requireLibtorrent(t)
	src := t.TempDir()
	multi, single := filepath.Join(src, "multi"), filepath.Join(src, "single", "movie.mp4")
	writeTree(t, multi, goldenTree)
	writeTree(t, filepath.Join(src, "single"), goldenSingle)
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := func(name string) string {
		p, err := filepath.Abs(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(name string, args ...string) {
		t.Helper()
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, b)
		}
	}
	run("/usr/bin/mktorrent", "-d", "-l", "15", "-a", "http://tracker.example/announce",
		"-o", out("mktorrent-single.torrent"), single)
	run("/usr/bin/mktorrent", "-d", "-l", "16", "-p",
		"-a", "http://t1.example/announce,http://t1b.example/announce",
		"-a", "udp://t2.example:6969/announce",
		"-w", "http://seed.example/files/,http://seed2.example/",
		"-c", "golden fixture", "-o", out("mktorrent-multi.torrent"), multi)

	trackers := [][]string{{"http://t1.example/announce", "udp://t1b.example:1337/announce"}, {"http://t2.example/announce"}}
	lt := func(file, src, mode string, pieceSize int, extra map[string]any) {
		spec := map[string]any{"src": src, "out": out(file), "mode": mode, "piece_size": pieceSize}
		for k, v := range extra {
			spec[k] = v
		}
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		run(python, "testdata/lt_make.py", string(b))
	}
	lt("libtorrent-v1.torrent", multi, "v1", 1<<15, map[string]any{
		"trackers": trackers, "web_seeds": []string{"http://seed.example/"}, "comment": "v1 fixture"})
	lt("libtorrent-hybrid.torrent", multi, "hybrid", 1<<14, map[string]any{"trackers": trackers})
	lt("libtorrent-v2.torrent", multi, "v2", 1<<14, nil)
	lt("libtorrent-single.torrent", single, "v1", 1<<14, map[string]any{"private": true})
	lt("libtorrent-v2-single.torrent", single, "v2", 1<<15, nil)
	lt("libtorrent-hybrid-single.torrent", single, "hybrid", 1<<15, map[string]any{"trackers": trackers[:1]})
	lt("libtorrent-hybrid-64k.torrent", multi, "hybrid", 1<<16, nil)

	evil := mustMarshal(t, d("announce", "http://tracker.example/announce", "info", rawValue(evilInfo(t))))
	if err := os.WriteFile(out("evil.torrent"), evil, 0o644); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".torrent") {
			names = append(names, e.Name())
		}
	}
	b, err := json.MarshalIndent(ltRead(t, goldenDir, names...), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goldenDir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
