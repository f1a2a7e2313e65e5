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

func do(t *testing.T, method, u, ctype string, body []byte, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.String()
}

func TestAPI(t *testing.T) {
	files := sampleFiles()
	ft := newFakeTorrent("sample", 256<<10, files...)
	ft.setHave(0, 3, false)
	host := newFakeHost(ft)
	ts := start(t, host, Options{})

	resp, b := get(t, ts.URL+"/api/torrents")
	var got []TorrentJSON
	if err := json.Unmarshal(b, &got); err != nil || len(got) != 1 {
		t.Fatalf("%s: %v %s", resp.Status, err, b)
	}
	tj := got[0]
	if tj.Folder != "sample" || tj.InfoHash != ft.ih.String() || !tj.HasInfo || tj.Peers != 3 ||
		tj.Playlist != "/playlist/sample.m3u" || len(tj.Files) != 12 || !strings.HasPrefix(tj.PieceMap, "000999") {
		t.Errorf("torrent: %+v", tj)
	}
	for _, f := range tj.Files {
		if f.Path == "README.txt" && (f.Completed != 0 || f.URL != "/files/sample/README.txt") {
			t.Errorf("README.txt: %+v (its piece is missing)", f)
		}
		if f.Path == "big.bin" && f.Completed != f.Size {
			t.Errorf("big.bin: %+v", f)
		}
	}

	magnet := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20)
	body, _ := json.Marshal(map[string]string{"magnet": magnet})
	// Cross-site and untyped requests are refused, and change nothing.
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "application/json", body, "Origin", "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %s", resp.Status)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "application/json", body, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %s", resp.Status)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "text/plain", []byte(magnet)); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST: %s", resp.Status)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "application/x-bittorrent", make([]byte, MaxBodyBytes+1)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge POST: %s", resp.Status)
	}
	if n := len(host.addedInputs()); n != 0 {
		t.Fatalf("refused requests added %d torrents", n)
	}
	u, _ := url.Parse(ts.URL)
	resp, s := do(t, "POST", ts.URL+"/api/torrents", "application/json", body, "Origin", "http://"+u.Host)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(s, strings.Repeat("ab", 20)) {
		t.Errorf("POST magnet: %s %s", resp.Status, s)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "application/json", body); resp.StatusCode != http.StatusConflict {
		t.Errorf("POST again: %s", resp.Status)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/torrents", "application/x-bittorrent", []byte("not a torrent")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST garbage: %s", resp.Status)
	}
	if resp, _ := do(t, "DELETE", ts.URL+"/api/torrents/"+ft.ih.String(), "", nil, "Origin", "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin DELETE: %s", resp.Status)
	}
	if resp, _ := do(t, "DELETE", ts.URL+"/api/torrents/"+ft.ih.String(), "", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %s", resp.Status)
	}
	if rm := host.removedHashes(); len(rm) != 1 || rm[0] != ft.ih {
		t.Errorf("removed %v", rm)
	}
	if resp, _ := do(t, "DELETE", ts.URL+"/api/torrents/"+ft.ih.String(), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE again: %s", resp.Status)
	}
	if resp, _ := do(t, "DELETE", ts.URL+"/api/torrents/zz", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("DELETE bad hash: %s", resp.Status)
	}
}

func TestPlaylist(t *testing.T) {
	ft := newFakeTorrent("Season 1", 64<<10,
		fakeFile{path: "e10.mkv", data: []byte("10")},
		fakeFile{path: "notes.txt", data: []byte("x")},
		fakeFile{path: "e02.mkv", data: []byte("2")},
		fakeFile{path: "extra/e01 ✓.mp4", data: []byte("1")},
	)
	ts := start(t, newFakeHost(ft), Options{})
	resp, b := get(t, ts.URL+"/playlist/Season%201.m3u")
	host := strings.TrimPrefix(ts.URL, "http://")
	want := "#EXTM3U\n#EXTINF:-1,e02.mkv\nhttp://" + host + "/files/Season%201/e02.mkv\n#EXTINF:-1,e10.mkv\nhttp://" + host +
		"/files/Season%201/e10.mkv\n#EXTINF:-1,extra/e01 ✓.mp4\nhttp://" + host + "/files/Season%201/extra/e01%20%E2%9C%93.mp4\n"
	if resp.StatusCode != 200 || string(b) != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "audio/x-mpegurl") {
		t.Errorf("%s %q\nwant %q", resp.Status, b, want)
	}
	if resp, _ := get(t, ts.URL+"/playlist/nothing.m3u"); resp.StatusCode != 404 {
		t.Errorf("missing playlist: %s", resp.Status)
	}
}

func TestAuth(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	ts := start(t, newFakeHost(ft), Options{Auth: "alice:s3cret", Token: "tok"})
	u := fileURLOf(ts, "sample", "README.txt")
	for _, c := range []struct {
		name string
		hdr  []string
		code int
	}{
		{"none", nil, 401},
		{"wrong password", []string{"Authorization", "Basic " + b64("alice:nope")}, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"basic", []string{"Authorization", "Basic " + b64("alice:s3cret")}, 200},
		{"bearer", []string{"Authorization", "Bearer tok"}, 200},
		{"token as password", []string{"Authorization", "Basic " + b64("x:tok")}, 200},
	} {
		for _, path := range []string{u, ts.URL + "/api/torrents", ts.URL + "/metrics", ts.URL + "/"} {
			if resp, _ := get(t, path, c.hdr...); resp.StatusCode != c.code {
				t.Errorf("%s %s: %s, want %d", c.name, path, resp.Status, c.code)
			}
		}
	}
}

func b64(s string) string {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	u, p, _ := strings.Cut(s, ":")
	r.SetBasicAuth(u, p)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr string
		auth bool
		ok   bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.3.4.5:0", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"[::]:8080", false, false},
		{"192.168.1.2:8080", false, false},
		{"example.com:80", false, false},
		{"0.0.0.0:8080", true, true},
		{"nonsense", true, false},
	} {
		err := CheckListen(c.addr, c.auth)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok %v", c.addr, c.auth, err, c.ok)
		}
	}
}

func TestMetrics(t *testing.T) {
	ft := newFakeTorrent("sample", 256<<10, sampleFiles()...)
	m := NewMetrics()
	done := m.StartRead("fuse")
	done()
	ts := start(t, newFakeHost(ft), Options{Metrics: m})
	get(t, fileURLOf(ts, "sample", "big.bin"))
	_, b := get(t, ts.URL+"/metrics")
	var p expfmt.TextParser
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, b)
	}
	val := func(name string) float64 {
		f := mfs[name]
		if f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("no %s", name)
			return -1
		}
		mm := f.GetMetric()[0]
		switch {
		case mm.GetCounter() != nil:
			return mm.GetCounter().GetValue()
		case mm.GetGauge() != nil:
			return mm.GetGauge().GetValue()
		}
		return -1
	}
	if v := val("swarmfs_torrent_downloaded_bytes_total"); v != 1234 {
		t.Errorf("downloaded %v", v)
	}
	if v := val("swarmfs_torrent_peers"); v != 3 {
		t.Errorf("peers %v", v)
	}
	if v := val("swarmfs_cache_capacity_bytes"); v != 10<<20 {
		t.Errorf("capacity %v", v)
	}
	val("swarmfs_torrent_wasted_bytes_total")
	val("swarmfs_torrent_banned_peers")
	val("swarmfs_reads_in_flight")
	counts := map[string]uint64{}
	for _, mm := range mfs["swarmfs_read_duration_seconds"].GetMetric() {
		counts[mm.GetLabel()[0].GetValue()] = mm.GetHistogram().GetSampleCount()
	}
	if counts["fuse"] != 1 || counts["http"] < 6 {
		t.Errorf("read counts %v, want 1 fuse and the http reads of big.bin (6 chunks)", counts)
	}
}
