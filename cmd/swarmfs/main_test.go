package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no args", nil, 2, "usage"},
		{"unknown", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"create without path", []string{"create"}, 2, "create needs exactly one PATH"},
		{"create missing path", []string{"create", "/nonexistent/x"}, 1, "/nonexistent/x"},
		{"create bad piece length", []string{"create", "-piece-length", "lots", "."}, 2, "-piece-length"},
		{"create bad format", []string{"create", "--format", "v3", "."}, 1, "-format"}, // a flag value: exit 1, like every flag.Parse error
		{"seed one arg", []string{"seed", "x.torrent"}, 2, "seed needs TORRENT and PATH"},
		{"seed missing torrent", []string{"seed", "/nonexistent.torrent", "."}, 1, "nonexistent.torrent"},
		{"get bad peer", []string{"get", "--peer", "nope", "x.torrent", "d"}, 1, ""},
		{"version extra", []string{"version", "x"}, 2, "no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}
}

func TestBadTorrentFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod4:name1:xee"), 0o644)
	code, _, stderr := runCmd("seed", bad, dir)
	if code != 1 || !strings.Contains(stderr, "bad.torrent") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "stuff")
	os.MkdirAll(filepath.Join(data, "sub"), 0o755)
	os.WriteFile(filepath.Join(data, "a.txt"), bytes.Repeat([]byte("a"), 100000), 0o644)
	os.WriteFile(filepath.Join(data, "sub", "empty"), nil, 0o644)
	out := filepath.Join(dir, "stuff.torrent")
	code, stdout, stderr := runCmd("create", "-t", "http://127.0.0.1:1/announce,udp://127.0.0.1:2", "-t", "http://127.0.0.1:3/announce", "-piece-length", "16KiB", "-o", out, data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mi, err := metainfo.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, mi.InfoHash.String()) {
		t.Errorf("output lacks the info-hash: %s", stdout)
	}
	if mi.Info.PieceLength != 16<<10 || len(mi.Info.Files) != 2 {
		t.Errorf("piece length %d, %d files", mi.Info.PieceLength, len(mi.Info.Files))
	}
	tiers := mi.Trackers()
	if len(tiers) != 2 || len(tiers[0]) != 2 {
		t.Errorf("tiers %v", tiers)
	}
}

// TestCreateFormat: create --format makes v1 (the default), v2 and hybrid
// torrents, prints every info-hash they have, and for v2 and hybrid
// libtorrent computes the same info-hashes for the same files and piece
// length.
func TestCreateFormat(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "stuff")
	swarmtest.WriteFiles(t, data, []swarmtest.FileSpec{{Path: "a.bin", Size: 100000}, {Path: "sub/empty"}, {Path: "sub/small", Size: 100}})
	for _, format := range []string{"", "v1", "v2", "hybrid"} {
		t.Run("format="+format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "stuff.torrent")
			args := []string{"create", "-piece-length", "16KiB", "-o", out}
			if format != "" {
				args = append(args, "--format", format)
			}
			code, stdout, stderr := runCmd(append(args, data)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			mi, err := metainfo.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			want := format
			if want == "" {
				want = "v1" // the default
			}
			if mi.Info.HasV1() != (want != "v2") || mi.Info.HasV2() != (want != "v1") {
				t.Fatalf("%s: v1 %v, v2 %v", want, mi.Info.HasV1(), mi.Info.HasV2())
			}
			if mi.Info.HasV1() && !strings.Contains(stdout, mi.Info.InfoHashV1.String()) ||
				mi.Info.HasV2() && !strings.Contains(stdout, mi.Info.InfoHashV2.String()) {
				t.Errorf("output lacks an info-hash: %s", stdout)
			}
			if want == "v1" {
				return // libtorrent's v1 info differs in ways of no consequence
			}
			lt := swarmtest.MakeTorrentFormat(t, data, nil, 16<<10, want)
			if lt.InfoHash != [20]byte(mi.InfoHash) || lt.InfoHashV2 != [32]byte(mi.InfoHashV2) {
				t.Errorf("info-hashes %s %s, libtorrent's %x %x", mi.InfoHash, mi.InfoHashV2, lt.InfoHash, lt.InfoHashV2)
			}
		})
	}
}

func TestDataDirFor(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "multi", "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "single.bin"), []byte("x"), 0o644)
	multi := &metainfo.Info{Name: "multi", Files: []metainfo.File{{Path: []string{"x", "a"}}, {Path: []string{"b"}}}}
	single := &metainfo.Info{Name: "single.bin", SingleFile: true, Files: []metainfo.File{{Path: []string{"single.bin"}}}}
	tests := []struct {
		name string
		info *metainfo.Info
		path string
		want string
	}{
		{"multi, parent given", multi, dir, dir},
		{"multi, folder given", multi, filepath.Join(dir, "multi"), dir},
		{"single, file given", single, filepath.Join(dir, "single.bin"), dir},
		{"single, parent given", single, dir, dir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dataDirFor(tc.info, tc.path)
			if err != nil || got != tc.want {
				t.Fatalf("dataDirFor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := dataDirFor(multi, filepath.Join(dir, "single.bin")); err == nil {
		t.Error("a file accepted as the data of a multi-file torrent")
	}
}
