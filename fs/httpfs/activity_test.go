package httpfs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
)

// TestActivity: the pieces in flight and the open readers reach the JSON
// API placed on the piece map, and the metrics with the hash failures.
func TestActivity(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	info := ft.Info()
	n := info.NumPieces()
	if n > PieceMapCells {
		t.Fatalf("%d pieces: the test wants a cell per piece", n)
	}
	big := -1
	for i, f := range info.Files {
		if f.DisplayPath() == "big.bin" {
			big = i
		}
	}
	bf := info.Files[big]
	pos := int64(1 << 20)
	firstPiece := int((bf.Offset + pos - 1) / info.PieceLength) // the reader's last byte
	lastPiece := int((bf.Offset + pos + 512<<10 - 1) / info.PieceLength)
	// A read that ends on a piece boundary waits on the piece before it.
	boundary := (bf.Offset/info.PieceLength+2)*info.PieceLength - bf.Offset
	ft.setActivity(TorrentStats{HashFailures: 2, Downloading: []int{firstPiece, firstPiece + 1},
		Readers: []ReaderStats{{File: big, Pos: pos, Window: 512 << 10}, {File: 0, Pos: -1}, {File: big, Pos: boundary}}})
	ts := start(t, newFakeHost(ft), Options{})

	_, b := get(t, ts.URL+"/api/torrents")
	var got []TorrentJSON
	if err := json.Unmarshal(b, &got); err != nil || len(got) != 1 {
		t.Fatalf("%v %s", err, b)
	}
	tj := got[0]
	want := []byte(strings.Repeat("0", n))
	want[firstPiece], want[firstPiece+1] = '1', '1'
	if tj.Downloading != string(want) || len(tj.Downloading) != len(tj.PieceMap) {
		t.Errorf("downloading %q, want %q (piece map %q)", tj.Downloading, want, tj.PieceMap)
	}
	if len(tj.Readers) != 3 {
		t.Fatalf("readers %+v", tj.Readers)
	}
	if r := tj.Readers[0]; r.Path != "big.bin" || r.Position != pos || r.Window != 512<<10 || r.Cell != firstPiece || r.WindowEnd != lastPiece {
		t.Errorf("reader %+v, want big.bin at %d, cells %d-%d", r, pos, firstPiece, lastPiece)
	}
	if r := tj.Readers[1]; r.Path != "README.txt" || r.Position != -1 || r.Cell != 0 || r.WindowEnd != 0 {
		t.Errorf("reader before its first read %+v", r)
	}
	if r, want := tj.Readers[2], int((bf.Offset+boundary)/info.PieceLength)-1; r.Cell != want || r.WindowEnd != want {
		t.Errorf("reader at a piece boundary %+v, want cell %d", r, want)
	}
	if tj.HashFailures != 2 {
		t.Errorf("hash failures %d", tj.HashFailures)
	}

	_, b = get(t, ts.URL+"/metrics")
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"swarmfs_torrent_hash_failures_total": 2,
		"swarmfs_torrent_readers": 3, "swarmfs_torrent_pieces_downloading": 2} {
		f := mfs[name]
		if f == nil {
			t.Errorf("no %s", name)
			continue
		}
		m := f.GetMetric()[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

// TestWaitingForMetadata: a magnet's folder, files and playlist, asked
// before its metadata arrives, answer 503 with a Retry-After and say why;
// once it arrives they are served.
func TestWaitingForMetadata(t *testing.T) {
	files := sampleFiles()
	ft := newMagnetTorrent([20]byte{1, 2, 3}, "later")
	ts := start(t, newFakeHost(ft), Options{})
	for _, c := range []struct{ path, accept string }{
		{"/files/later/", ""},
		{"/files/later/", "application/json"},
		{"/files/later/README.txt", ""},
		{"/files/later", ""},
		{"/playlist/later.m3u", ""},
	} {
		resp, b := get(t, ts.URL+c.path, "Accept", c.accept)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!bytes.Contains(b, []byte("waiting for metadata")) {
			t.Errorf("%s (Accept %q): %s, Retry-After %q: %s", c.path, c.accept, resp.Status, resp.Header.Get("Retry-After"), b)
		}
	}
	info, data := makeInfo("later", 256<<10, files)
	ft.setInfo(info, data, true)
	if resp, b := get(t, ts.URL+"/files/later/README.txt"); resp.StatusCode != 200 || string(b) != "hello, swarm\n" {
		t.Errorf("once the metadata is there: %s %q", resp.Status, b)
	}
	if resp, _ := get(t, ts.URL+"/files/"+url.PathEscape("nothing")+"/"); resp.StatusCode != 404 {
		t.Errorf("an unknown torrent: %s", resp.Status)
	}
}
