package metainfo

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"go.uber.org/goleak"
)

const python = "/usr/bin/python3"

var (
	ltOnce sync.Once
	ltErr  error
)

// requireLibtorrent skips the test when python3-libtorrent is missing, and
// fails it instead under CI=true, where a silent skip would hide that the
// cross-check never ran.
func requireLibtorrent(t *testing.T) {
	t.Helper()
	ltOnce.Do(func() {
		ltErr = exec.Command(python, "-c", "import libtorrent").Run()
	})
	if ltErr == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s cannot import libtorrent (%v): install python3-libtorrent (make deps)", python, ltErr)
	}
	t.Skipf("%s cannot import libtorrent: %v", python, ltErr)
}

// ltInfo is what testdata/lt_read.py reports for one .torrent.
type ltInfo struct {
	File        string     `json:"file"`
	Error       string     `json:"error"`
	InfoHash    string     `json:"info_hash"`
	InfoHashV2  string     `json:"info_hash_v2"`
	HasV1       bool       `json:"has_v1"`
	HasV2       bool       `json:"has_v2"`
	Name        string     `json:"name"`
	PieceLength int64      `json:"piece_length"`
	NumPieces   int        `json:"num_pieces"`
	TotalSize   int64      `json:"total_size"`
	Private     bool       `json:"private"`
	Comment     string     `json:"comment"`
	Creator     string     `json:"creator"`
	Trackers    [][]string `json:"trackers"`
	WebSeeds    []string   `json:"web_seeds"`
	Files       []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		Offset int64  `json:"offset"`
		Pad    bool   `json:"pad"`
		Root   string `json:"root"`
	} `json:"files"`
}

// ltRead runs lt_read.py in dir on the named files.
func ltRead(t *testing.T, dir string, files ...string) []ltInfo {
	t.Helper()
	script, err := filepath.Abs("testdata/lt_read.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{script}, files...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lt_read.py: %v\n%s", err, stderr.String())
	}
	var infos []ltInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		t.Fatalf("lt_read.py output: %v\n%s", err, out)
	}
	return infos
}

// treeFile is one file of a test source tree; its content is pseudo-random
// from a fixed seed, so the same tree can be rebuilt anywhere.
type treeFile struct {
	path string // slash-separated
	size int
}

// goldenTree is hashed by mktorrent and libtorrent for the golden fixtures:
// an empty file, deep folders, odd unicode names, spaces, sizes off piece
// boundaries.
var goldenTree = []treeFile{
	{"README.txt", 1000},
	{"data/blob.bin", 300_000},
	{"data/empty.dat", 0},
	{"deep/a/b/c/d/e/f/g/leaf.txt", 10},
	{"emoji 🎬 clip.mkv", 70_000},
	{"z.bin", 1},
	{"ünïcödé/日本語ファイル.txt", 5000},
}

func writeTree(t testing.TB, root string, files []treeFile) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, f.size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// piecesOf returns the concatenated piece hashes of data.
func piecesOf(data []byte, pl int) []byte {
	var out []byte
	for off := 0; off < len(data); off += pl {
		sum := sha1.Sum(data[off:min(off+pl, len(data))])
		out = append(out, sum[:]...)
	}
	return out
}

// mustMarshal bencodes v for hand-built test torrents.
func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// d builds a bencode dictionary from alternating keys and values.
func d(kv ...any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// fileEntry builds one "files" entry.
func fileEntry(length int64, path ...string) map[string]any {
	return d("length", length, "path", path)
}

// multiInfo builds a valid multi-file info dictionary for files with the
// given lengths (zero-filled data) and paths.
func multiInfo(t testing.TB, name string, pl int, files ...map[string]any) []byte {
	t.Helper()
	var total int64
	list := make([]any, len(files))
	for i, f := range files {
		total += f["length"].(int64)
		list[i] = f
	}
	return mustMarshal(t, d("name", name, "piece length", int64(pl),
		"pieces", string(piecesOf(make([]byte, total), pl)), "files", list))
}

// checkInfoInvariants asserts what every successfully parsed Info promises.
func checkInfoInvariants(t testing.TB, info *Info) {
	t.Helper()
	if info.Name == "" || SanitizeComponent(info.Name) != info.Name {
		t.Fatalf("name %q is not sanitised", info.Name)
	}
	if len(info.Files) == 0 {
		t.Fatal("no files")
	}
	paths := make(map[string]bool)
	dirs := make(map[string]bool)
	var off int64
	for i, f := range info.Files {
		if len(f.Path) == 0 {
			t.Fatalf("file %d has an empty path", i)
		}
		for _, c := range f.Path {
			if c == "" || SanitizeComponent(c) != c || strings.ContainsAny(c, "/\\\x00") || c == ".." || c == "." || len(c) > MaxComponentBytes {
				t.Fatalf("file %d component %q is not sanitised", i, c)
			}
		}
		p := strings.Join(f.Path, "/")
		if paths[p] {
			t.Fatalf("file %d path %q repeats", i, p)
		}
		paths[p] = true
		for j := 1; j < len(f.Path); j++ {
			dirs[strings.Join(f.Path[:j], "/")] = true
		}
		if f.Offset != off || f.Length < 0 {
			t.Fatalf("file %d offset %d length %d, want offset %d", i, f.Offset, f.Length, off)
		}
		off += f.Length
	}
	for p := range paths {
		if dirs[p] {
			t.Fatalf("path %q is both a file and a folder", p)
		}
	}
	if off != info.TotalLength || off <= 0 {
		t.Fatalf("total %d, files sum to %d", info.TotalLength, off)
	}
	var sum int64
	for i := 0; i < info.NumPieces(); i++ {
		if info.PieceOffset(i) != sum {
			t.Fatalf("piece %d offset %d, want %d", i, info.PieceOffset(i), sum)
		}
		l := info.PieceLen(i)
		if l <= 0 || l > info.PieceLength {
			t.Fatalf("piece %d length %d", i, l)
		}
		sum += l
	}
	if sum != info.TotalLength {
		t.Fatalf("pieces cover %d bytes of %d", sum, info.TotalLength)
	}
}

// rawValue embeds already-bencoded bytes in a value passed to mustMarshal.
func rawValue(b []byte) bencode.RawMessage { return bencode.RawMessage(b) }

// bytesRaw returns the info dictionary's bytes of a .torrent.
func bytesRaw(data []byte) ([]byte, bool, error) { return bencode.Raw(data, "info") }

// TestMain fails the run if a test leaves a goroutine behind (Create's
// hashing workers must all end, also on errors).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
