package metainfo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oddTree has an empty file, deep folders, odd unicode names and sizes that
// straddle piece boundaries.
var oddTree = []treeFile{
	{"b/empty", 0},
	{"a.txt", 20_000},
	{"deep/1/2/3/4/5/6/7/8/9/10/11/12/bottom.bin", 33_000},
	{"ünï cødé/名前 🎬.mkv", 50_001},
	{"a/inner", 1},
	{".hidden", 7},
	{"z-empty", 0},
}

// concatTree returns the torrent data of a tree: its files in path order.
func concatTree(t *testing.T, root string, m *MetaInfo) []byte {
	t.Helper()
	var all []byte
	for _, f := range m.Info.Files {
		b, err := os.ReadFile(filepath.Join(append([]string{root}, f.Path...)...))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestCreateFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "My Torrent")
	writeTree(t, root, oddTree)
	before := time.Now().Add(-time.Second)
	m, err := Create(root, CreateOptions{
		PieceLength: 16 << 10,
		Trackers:    [][]string{{" http://t1/ann ", ""}, {}, {"udp://t2:1", "udp://t2:1"}},
		WebSeeds:    []string{"http://ws/", ""},
		Comment:     "made in a test",
		Private:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info
	checkInfoInvariants(t, info)
	wantPaths := []string{".hidden", "a/inner", "a.txt", "b/empty", "deep/1/2/3/4/5/6/7/8/9/10/11/12/bottom.bin", "z-empty", "ünï cødé/名前 🎬.mkv"}
	var got []string
	for _, f := range info.Files {
		got = append(got, f.DisplayPath())
	}
	if !slices.Equal(got, wantPaths) {
		t.Fatalf("files %q\nwant %q", got, wantPaths)
	}
	if info.Name != "My Torrent" || info.SingleFile || !info.Private || info.PieceLength != 16<<10 {
		t.Fatalf("info %+v", info)
	}
	data := concatTree(t, root, m)
	if !bytes.Equal(info.Pieces, piecesOf(data, 16<<10)) {
		t.Fatal("piece hashes do not match the data")
	}
	if m.Announce != "http://t1/ann" || !slices.EqualFunc(m.AnnounceList, [][]string{{"http://t1/ann"}, {"udp://t2:1"}}, slices.Equal) {
		t.Fatalf("announce %q list %q", m.Announce, m.AnnounceList)
	}
	if !slices.Equal(m.URLList, []string{"http://ws/"}) || m.Comment != "made in a test" || m.CreatedBy != "swarmfs" {
		t.Fatalf("%+v", m)
	}
	if m.CreationDate.Before(before) || m.CreationDate.After(time.Now()) {
		t.Fatalf("creation date %v", m.CreationDate)
	}

	// Create -> Marshal -> Parse keeps everything.
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.InfoHash != m.InfoHash || !bytes.Equal(back.InfoBytes, m.InfoBytes) || back.Announce != m.Announce ||
		!slices.EqualFunc(back.Trackers(), m.Trackers(), slices.Equal) || !slices.Equal(back.URLList, m.URLList) ||
		back.Comment != m.Comment || back.CreatedBy != m.CreatedBy || !back.CreationDate.Equal(m.CreationDate) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, m)
	}
	if !slices.EqualFunc(back.Info.Files, info.Files, func(a, b File) bool {
		return slices.Equal(a.Path, b.Path) && a.Length == b.Length && a.Offset == b.Offset
	}) {
		t.Fatal("files differ after round trip")
	}
}

func TestCreateSingleFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []treeFile{{"clip.mp4", 100_000}})
	m, err := Create(filepath.Join(dir, "clip.mp4"), CreateOptions{NoDate: true, CreatedBy: "tester", Name: "renamed.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Info.SingleFile || m.Info.Name != "renamed.mp4" || len(m.Info.Files) != 1 || m.Info.Files[0].DisplayPath() != "renamed.mp4" {
		t.Fatalf("%+v", m.Info)
	}
	if !m.CreationDate.IsZero() || m.CreatedBy != "tester" || m.Announce != "" || m.AnnounceList != nil {
		t.Fatalf("%+v", m)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "clip.mp4"))
	if !bytes.Equal(m.Info.Pieces, piecesOf(data, int(m.Info.PieceLength))) {
		t.Fatal("piece hashes do not match")
	}
	// One tracker: announce only, no announce-list.
	m, err = Create(filepath.Join(dir, "clip.mp4"), CreateOptions{Trackers: [][]string{{"http://only"}}})
	if err != nil || m.Announce != "http://only" || m.AnnounceList != nil {
		t.Fatalf("%v %+v", err, m)
	}
}

// TestCreateLarge crosses many read chunks and piece boundaries, so the
// concurrent hashing must put every piece hash in its place.
func TestCreateLarge(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []treeFile{{"one", 3<<20 + 123}, {"two", 0}, {"three", 5<<20 + 7}, {"four", 16 << 10}})
	for _, pl := range []int64{16 << 10, 1 << 20, 8 << 20} {
		m, err := Create(root, CreateOptions{PieceLength: pl, NoDate: true})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Info.Pieces, piecesOf(concatTree(t, root, m), int(pl))) {
			t.Fatalf("piece length %d: hashes do not match", pl)
		}
	}
}

func TestCreateDeterministic(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, oddTree)
	var prev []byte
	for range 2 {
		m, err := Create(root, CreateOptions{NoDate: true, Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && !bytes.Equal(prev, b) {
			t.Fatal("two runs with NoDate differ")
		}
		prev = b
	}
}

func TestDefaultPieceLength(t *testing.T) {
	tests := []struct {
		total, want int64
	}{
		{1, 16 << 10},
		{2000 * 16 << 10, 16 << 10},
		{2000*16<<10 + 1, 32 << 10},
		{700 << 20, 512 << 10},
		{4 << 30, 4 << 20},
		{1 << 40, 16 << 20},
	}
	for _, tc := range tests {
		got := DefaultPieceLength(tc.total)
		if got != tc.want {
			t.Errorf("DefaultPieceLength(%d) = %d, want %d", tc.total, got, tc.want)
		}
		n := (tc.total + got - 1) / got
		if got > 16<<10 && got < 16<<20 && (n <= 1000 || n > 2000) {
			t.Errorf("DefaultPieceLength(%d) gives %d pieces", tc.total, n)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	empties := filepath.Join(dir, "empties")
	writeTree(t, empties, []treeFile{{"a", 0}, {"b/c", 0}})
	emptyDir := filepath.Join(dir, "nothing")
	os.MkdirAll(filepath.Join(emptyDir, "sub"), 0o755)
	good := filepath.Join(dir, "good")
	writeTree(t, good, []treeFile{{"f", 10}})
	emptyFile := filepath.Join(dir, "zero.bin")
	os.WriteFile(emptyFile, nil, 0o644)
	fifoDir := filepath.Join(dir, "fifo")
	os.MkdirAll(fifoDir, 0o755)
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, root string
		opts       CreateOptions
		want       string
	}{
		{"missing", filepath.Join(dir, "absent"), CreateOptions{}, "no such file"},
		{"only empty files", empties, CreateOptions{}, "holds no data"},
		{"empty single file", emptyFile, CreateOptions{}, "holds no data"},
		{"no files", emptyDir, CreateOptions{}, "holds no files"},
		{"fifo", fifoDir, CreateOptions{}, "not a regular file"},
		{"piece length not power of two", good, CreateOptions{PieceLength: 20000}, "piece length 20000"},
		{"piece length too small", good, CreateOptions{PieceLength: 8192}, "piece length 8192"},
		{"piece length too big", good, CreateOptions{PieceLength: 1 << 30}, "piece length"},
		{"bad name", good, CreateOptions{Name: ".."}, "cannot name"},
		{"slash name", good, CreateOptions{Name: "a/b"}, "cannot name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Create(tc.root, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCreateCancel(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, []treeFile{{"f", 100_000}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CreateContext(ctx, root, CreateOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCreateSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeTree(t, root, []treeFile{{"real.txt", 100}, {"sub/x", 10}})
	writeTree(t, dir, []treeFile{{"outside.txt", 5}})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(dir, "outside.txt"), filepath.Join(root, "link-file")))
	must(os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "link-dir")))
	must(os.Symlink(root, filepath.Join(root, "sub", "loop")))
	must(os.Symlink(filepath.Join(dir, "missing"), filepath.Join(root, "dangling")))

	paths := func(m *MetaInfo) []string {
		var out []string
		for _, f := range m.Info.Files {
			out = append(out, f.DisplayPath())
		}
		return out
	}
	m, err := Create(root, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(m); !slices.Equal(got, []string{"real.txt", "sub/x"}) {
		t.Fatalf("default policy: %q", got)
	}

	if _, err := Create(root, CreateOptions{FollowSymlinks: true}); err == nil || !strings.Contains(err.Error(), "dangling") {
		t.Fatalf("dangling link with FollowSymlinks: %v", err)
	}
	must(os.Remove(filepath.Join(root, "dangling")))
	m, err = Create(root, CreateOptions{FollowSymlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(m); !slices.Equal(got, []string{"link-file", "real.txt", "sub/x"}) || m.Info.Files[0].Length != 5 {
		t.Fatalf("FollowSymlinks: %q", got)
	}

	// The root itself may be a link.
	must(os.Symlink(root, filepath.Join(dir, "rootlink")))
	m, err = Create(filepath.Join(dir, "rootlink"), CreateOptions{})
	if err != nil || m.Info.Name != "rootlink" || len(m.Info.Files) != 2 {
		t.Fatalf("root link: %v %+v", err, m)
	}
}

// TestLibtorrentAcceptsCreate hands torrents made by Create to libtorrent,
// which must accept them and compute the same info-hash, files and trackers.
func TestLibtorrentAcceptsCreate(t *testing.T) {
	requireLibtorrent(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "odd tree")
	writeTree(t, root, oddTree)
	writeTree(t, dir, []treeFile{{"single.bin", 70_000}})
	out := t.TempDir()
	cases := []struct {
		file string
		root string
		opts CreateOptions
	}{
		{"multi.torrent", root, CreateOptions{
			PieceLength: 16 << 10,
			Trackers:    [][]string{{"http://t1.example/announce", "http://t1b.example/announce"}, {"udp://t2.example:1/announce"}},
			WebSeeds:    []string{"http://ws.example/a/", "http://ws2.example/"},
			Comment:     "swarmfs test", Private: true,
		}},
		{"auto.torrent", root, CreateOptions{}},
		{"single.torrent", filepath.Join(dir, "single.bin"), CreateOptions{Trackers: [][]string{{"http://t.example/"}}}},
	}
	var names []string
	made := map[string]*MetaInfo{}
	for _, c := range cases {
		m, err := Create(c.root, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, c.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// What libtorrent sees is what Parse reads back.
		back, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		made[c.file] = back
		names = append(names, c.file)
	}
	for _, lt := range ltRead(t, out, names...) {
		t.Run(lt.File, func(t *testing.T) {
			if lt.Error != "" {
				t.Fatalf("libtorrent rejects our torrent: %s", lt.Error)
			}
			compareWithLibtorrent(t, made[lt.File], lt)
		})
	}
}

// TestHashPiecesSizeChange simulates files that change between listing and
// hashing: each must fail with an error naming the file, and leave no
// goroutine or open file behind.
func TestHashPiecesSizeChange(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []treeFile{{"a", 50_000}, {"b", 10}})
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	tests := []struct {
		name  string
		files []srcFile
		want  string
	}{
		{"shrank", []srcFile{{osPath: a, length: 60_000}, {osPath: b, length: 10}}, "shrank"},
		{"grew middle", []srcFile{{osPath: a, length: 40_000}, {osPath: b, length: 10}}, "changed size"},
		{"grew last", []srcFile{{osPath: a, length: 50_000}, {osPath: b, length: 5}}, "changed size"},
		{"vanished", []srcFile{{osPath: a, length: 50_000}, {osPath: filepath.Join(dir, "gone"), length: 3}}, "gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var total int64
			for _, f := range tc.files {
				total += f.length
			}
			_, _, err := hashPieces(context.Background(), tc.files, total, 16<<10, true, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
