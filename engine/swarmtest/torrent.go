package swarmtest

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ltpeerScript drives libtorrent; see ltpeerCmd.
//
//go:embed ltpeer.py
var ltpeerScript string

// ltpeerCmd returns `/usr/bin/python3 /dev/fd/3 MODE CONFIG` with the script
// on fd 3: an unlinked temporary file, so nothing is left on disk and ps
// shows a short command line. The caller closes script after Start.
func ltpeerCmd(mode string, cfg []byte) (cmd *exec.Cmd, script *os.File, err error) {
	f, err := os.CreateTemp("", "swarmtest-ltpeer-*.py")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name()) // the open file stays readable through /dev/fd/3
	if _, err := f.WriteString(ltpeerScript); err != nil {
		f.Close()
		return nil, nil, err
	}
	cmd = exec.Command(Python, "/dev/fd/3", mode, string(cfg))
	cmd.ExtraFiles = []*os.File{f}
	return cmd, f, nil
}

// TorrentInfo describes a torrent made by MakeTorrentInfo.
type TorrentInfo struct {
	Path string // the .torrent file
	// InfoHash names the torrent to peers, trackers and the DHT (and
	// to LT's methods): the v1 info-hash (SHA-1 of the bencoded info
	// dictionary), or for a v2-only torrent the v2 one truncated.
	InfoHash [20]byte
	// InfoHashV2 is the v2 info-hash (SHA-256) of a v2 or hybrid torrent,
	// zero for a v1 one.
	InfoHashV2  [32]byte
	PieceLength int
	NumPieces   int
	TotalSize   int64
	NumFiles    int // including empty files
}

// MakeTorrent creates a v1 .torrent for dataPath (a file: single-file
// torrent; a folder: multi-file torrent named after it) with libtorrent's
// create_torrent, independent of swarmfs's own metainfo code. trackers are
// tiers of announce URLs (nil for none). pieceLength 0 lets libtorrent
// choose; otherwise it must be a power of two of at least 16 KiB. The
// .torrent goes into a folder of tb.TempDir().
//
// A peer that downloads or seeds it is given the folder that contains
// dataPath as its save folder.
func MakeTorrent(tb testing.TB, dataPath string, trackers [][]string, pieceLength int) (torrentPath string, infoHash [20]byte) {
	tb.Helper()
	ti := MakeTorrentInfo(tb, dataPath, trackers, pieceLength)
	return ti.Path, ti.InfoHash
}

// MakeTorrentInfo is MakeTorrent returning the torrent's shape as well.
func MakeTorrentInfo(tb testing.TB, dataPath string, trackers [][]string, pieceLength int) TorrentInfo {
	tb.Helper()
	return MakeTorrentFormat(tb, dataPath, trackers, pieceLength, "v1")
}

// MakeTorrentFormat is MakeTorrentInfo for a torrent of the given format:
// "v1", "v2" (BEP 52 only) or "hybrid" (both, with pad files: what
// libtorrent 2.0 makes by default). Other formats fail the test.
func MakeTorrentFormat(tb testing.TB, dataPath string, trackers [][]string, pieceLength int, format string) TorrentInfo {
	tb.Helper()
	if format != "v1" && format != "v2" && format != "hybrid" {
		tb.Fatalf("swarmtest.MakeTorrentFormat: unknown format %q", format)
	}
	RequireTools(tb, "libtorrent")
	abs, err := filepath.Abs(dataPath)
	if err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: %v", err)
	}
	out := filepath.Join(tb.TempDir(), filepath.Base(abs)+".torrent")
	cfg, err := json.Marshal(map[string]any{
		"data":         abs,
		"out":          out,
		"trackers":     trackers,
		"piece_length": pieceLength,
		"format":       format,
	})
	if err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: %v", err)
	}
	cmd, script, err := ltpeerCmd("make", cfg)
	if err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: %v", err)
	}
	cmd.Stderr = new(strings.Builder)
	stdout, err := cmd.Output()
	script.Close()
	if err != nil {
		tb.Fatalf("swarmtest.MakeTorrent(%s): %v\n%s", dataPath, err, cmd.Stderr)
	}
	var res struct {
		InfoHash    string `json:"info_hash"`
		InfoHashV2  string `json:"info_hash_v2"`
		PieceLength int    `json:"piece_length"`
		NumPieces   int    `json:"num_pieces"`
		TotalSize   int64  `json:"total_size"`
		NumFiles    int    `json:"num_files"`
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: bad answer %q: %v", stdout, err)
	}
	ih, err := parseInfoHash(res.InfoHash)
	if err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: %v", err)
	}
	var ih2 [32]byte
	if res.InfoHashV2 != "" {
		b, err := hex.DecodeString(res.InfoHashV2)
		if err != nil || len(b) != 32 {
			tb.Fatalf("swarmtest.MakeTorrent: bad v2 info-hash %q", res.InfoHashV2)
		}
		ih2 = [32]byte(b)
	}
	if _, err := os.Stat(out); err != nil {
		tb.Fatalf("swarmtest.MakeTorrent: %v", err)
	}
	return TorrentInfo{
		Path:        out,
		InfoHash:    ih,
		InfoHashV2:  ih2,
		PieceLength: res.PieceLength,
		NumPieces:   res.NumPieces,
		TotalSize:   res.TotalSize,
		NumFiles:    res.NumFiles,
	}
}

func parseInfoHash(s string) ([20]byte, error) {
	var ih [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		return ih, fmt.Errorf("bad info-hash %q", s)
	}
	copy(ih[:], b)
	return ih, nil
}

// MagnetV2 returns a magnet URI naming a torrent by its v2 info-hash
// (urn:btmh, SHA2-256 multihash), with ih as urn:btih too unless it is
// zero, and optional trackers.
func MagnetV2(ih [20]byte, ih2 [32]byte, trackers ...string) string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btmh:1220")
	b.WriteString(hex.EncodeToString(ih2[:]))
	if ih != ([20]byte{}) {
		b.WriteString("&xt=urn:btih:")
		b.WriteString(hex.EncodeToString(ih[:]))
	}
	for _, tr := range trackers {
		b.WriteString("&tr=")
		b.WriteString(url.QueryEscape(tr))
	}
	return b.String()
}

// Magnet returns a magnet URI for ih with an optional display name and
// trackers (tr=).
func Magnet(ih [20]byte, name string, trackers ...string) string {
	var b strings.Builder
	b.WriteString("magnet:?xt=urn:btih:")
	b.WriteString(hex.EncodeToString(ih[:]))
	if name != "" {
		b.WriteString("&dn=")
		b.WriteString(url.QueryEscape(name))
	}
	for _, tr := range trackers {
		b.WriteString("&tr=")
		b.WriteString(url.QueryEscape(tr))
	}
	return b.String()
}
