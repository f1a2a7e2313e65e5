package webseed

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

const python = "/usr/bin/python3"

// requireLibtorrent skips the test when python3-libtorrent is missing, and
// fails it instead under CI=true, where a silent skip would hide that the
// cross-check never ran.
func requireLibtorrent(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import libtorrent").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s cannot import libtorrent (%v): install python3-libtorrent (make deps)", python, err)
	}
	t.Skipf("%s cannot import libtorrent: %v", python, err)
}

// TestLibtorrentAgrees checks our BEP 19 URLs against libtorrent's: a server
// that serves each file only at the path the torrent's raw names give (odd
// characters included) lets libtorrent download the whole torrent from it,
// libtorrent asks for exactly the paths we ask for, and we fetch every piece
// from the same server.
func TestLibtorrentAgrees(t *testing.T) {
	requireLibtorrent(t)
	tt := makeTorrent(t, "Ünï web seed 100%", 16<<10, false,
		tfile{path: []string{"dir with space", "a#b?c%d.txt"}, size: 20_000},
		tfile{path: []string{"50% off", "x+y&z;=@,$.bin"}, size: 1},
		tfile{path: []string{"empty"}, size: 0},
		tfile{path: []string{"ñ", "日本語 ファイル.dat"}, size: 30_001},
		tfile{path: []string{"plain.bin"}, size: 40_000},
	)
	files := make(map[string][]byte)
	for k, v := range tt.files {
		files["/ws"+k] = v
	}
	var mu sync.Mutex // guards asked
	asked := make(map[string]bool)
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		asked[r.URL.Path] = true
		mu.Unlock()
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return true
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		return true
	})

	dir := t.TempDir()
	torrentPath := filepath.Join(dir, "t.torrent")
	meta, err := bencode.Marshal(map[string]any{
		"info":     bencode.RawMessage(tt.infoBytes),
		"url-list": srv.URL + "/ws/",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(torrentPath, meta, 0o644); err != nil {
		t.Fatal(err)
	}
	save := filepath.Join(dir, "save")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/lt_webseed.py", torrentPath, save, "30").Output()
	if err != nil {
		t.Fatalf("lt_webseed.py: %v\n%s", err, out)
	}
	var res struct {
		Done     bool     `json:"done"`
		Progress float64  `json:"progress"`
		Errors   []string `json:"errors"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("lt_webseed.py said %q: %v", out, err)
	}
	mu.Lock()
	ltAsked := slices.Sorted(func(yield func(string) bool) {
		for p := range asked {
			if !yield(p) {
				return
			}
		}
	})
	clear(asked)
	mu.Unlock()
	if !res.Done {
		t.Fatalf("libtorrent did not complete (progress %.2f, errors %q); it asked for %q", res.Progress, res.Errors, ltAsked)
	}
	for i, f := range tt.info.Files {
		got, err := os.ReadFile(filepath.Join(append([]string{save, tt.info.Name}, f.Path...)...))
		if err != nil || !bytes.Equal(got, tt.files["/"+tt.info.Name+"/"+strings.Join(f.Path, "/")]) {
			t.Errorf("libtorrent's copy of file %d differs: %v", i, err)
		}
	}

	s := newSeed(t, srv.URL+"/ws/", tt.layout(t), Config{})
	checkAll(t, s, tt)
	mu.Lock()
	ours := slices.Sorted(func(yield func(string) bool) {
		for p := range asked {
			if !yield(p) {
				return
			}
		}
	})
	mu.Unlock()
	if !slices.Equal(ltAsked, ours) {
		t.Errorf("paths asked for\nlibtorrent %q\nswarmfs    %q", ltAsked, ours)
	}
}
