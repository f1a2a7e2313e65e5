package session

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/tracker"
)

// TestAPI drives the control API as "swarmfs add/rm/status/cache" do: the
// answers' shapes, the status codes of each kind of error, and the change
// callback after each add or removal.
func TestAPI(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	s := newTestSession(t, e, st, nil)
	var changes atomic.Int32
	srv := httptest.NewServer(s.Handler(func() { changes.Add(1) }))
	defer srv.Close()
	do := func(method, path string, body []byte) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}

	if code, body := do("GET", "/status", nil); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("status of nothing: %d %q, want 200 []", code, body)
	}
	b, mi := makeTorrent(t, "api.bin")
	if code, body := do("POST", "/add", b); code != 200 || !strings.Contains(body, `"name":"api.bin"`) || !strings.Contains(body, mi.InfoHash.String()) {
		t.Errorf("add: %d %s", code, body)
	}
	e.handle(mi.InfoHash).stats.Store(&engine.Stats{TotalLength: 100, BytesCompleted: 25, Peers: 2, Requests: engine.RequestCounters{DupLate: 3}})
	st.setPieces(mi.InfoHash, 2)
	code, body := do("GET", "/status", nil)
	var ts []TorrentStatus
	if err := json.Unmarshal([]byte(body), &ts); code != 200 || err != nil || len(ts) != 1 {
		t.Fatalf("status: %d %v %s", code, err, body)
	}
	if got := ts[0]; got.Name != "api.bin" || got.Progress != 0.25 || got.Peers != 2 || got.CachedBytes != 2<<10 || got.Requests.DupLate != 3 || !got.HasInfo {
		t.Errorf("status: %+v", got)
	}
	if !strings.Contains(body, `"requests":{"dup_late":3,"dup_endgame":0,"withdrawn":0,"timed_out":0}`) {
		t.Errorf("status JSON changed shape: %s", body)
	}

	// Seeding and the swarm: goal, state, the trackers' counts and each
	// tracker's last result.
	e.handle(mi.InfoHash).stats.Store(&engine.Stats{
		TotalLength: 100, Uploaded: 150, Ratio: 1.5, SeedGoal: "ratio 2", SeedState: engine.SeedStateSeeding,
		Swarm:     &engine.SwarmCounts{Seeders: 0, Leechers: 4, Completed: 9, Tracker: "udp://t:1/announce"},
		NoSeeders: true,
		Trackers:  []engine.TrackerStatus{{URL: "udp://t:1/announce", Peers: 3, Leechers: 4, Scrape: &tracker.ScrapeResult{Leechers: 4, Completed: 9}}, {URL: "http://dead/announce", Error: "refused"}},
	})
	_, body = do("GET", "/status", nil)
	for _, want := range []string{`"uploaded":150`, `"ratio":1.5`, `"seed_goal":"ratio 2"`, `"seed_state":"seeding"`, `"no_seeders":true`,
		`"swarm":{"seeders":0,"leechers":4,"completed":9`, `"url":"udp://t:1/announce"`, `"scrape":{"seeders":0,"leechers":4,"completed":9}`, `"error":"refused"`} {
		if !strings.Contains(body, want) {
			t.Errorf("status JSON lacks %s: %s", want, body)
		}
	}

	// A torrent only in the cache, named after its record.
	_, other := makeTorrent(t, "cached-only.bin")
	ob, _ := other.Marshal()
	st.PutMeta(other.InfoHash, ob)
	st.setPieces(other.InfoHash, 1)
	var cs CacheStatus
	if code, body := do("GET", "/cache", nil); code != 200 || json.Unmarshal([]byte(body), &cs) != nil || len(cs.Torrents) != 2 ||
		cs.Torrents[0].Name != "api.bin" || cs.Torrents[1].Name != "cached-only.bin" || cs.Size != 3<<10 {
		t.Errorf("cache: %d %s", code, body)
	}

	tests := []struct {
		name, method, path string
		body               []byte
		code               int
	}{
		{"add again", "POST", "/add", b, http.StatusConflict},
		{"add junk", "POST", "/add", []byte("junk"), http.StatusBadRequest},
		{"add bad magnet", "POST", "/add", []byte("magnet:?xt=nope"), http.StatusBadRequest},
		{"add too big", "POST", "/add", make([]byte, metainfo.MaxTorrentSize+1), http.StatusRequestEntityTooLarge},
		{"rm unknown", "POST", "/rm?id=nothing", nil, http.StatusNotFound},
		{"drop unknown", "POST", "/cache/drop?id=nothing", nil, http.StatusNotFound},
		{"status by POST", "POST", "/status", nil, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := do(tc.method, tc.path, tc.body); code != tc.code {
				t.Errorf("%d %s, want %d", code, body, tc.code)
			}
		})
	}

	if code, body := do("POST", "/cache/drop?id=cached-only.bin", nil); code != 200 || !strings.Contains(body, other.InfoHash.String()) {
		t.Errorf("drop of a cached torrent: %d %s", code, body)
	}
	if _, ok := st.record(other.InfoHash); ok {
		t.Error("the dropped torrent's record is still there")
	}
	mag := "magnet:?xt=urn:btih:" + strings.Repeat("77", 20)
	if code, body := do("POST", "/add", []byte(mag)); code != 200 {
		t.Errorf("add magnet: %d %s", code, body)
	}
	if code, body := do("POST", "/rm?id="+mi.InfoHash.String()[:8], nil); code != 200 || !strings.Contains(body, `"name":"api.bin"`) {
		t.Errorf("rm by prefix: %d %s", code, body)
	}
	if code, body := do("POST", "/cache/drop?id=777777", nil); code != 200 {
		t.Errorf("drop of a running magnet: %d %s", code, body)
	}
	if len(s.Torrents()) != 0 {
		t.Errorf("torrents left: %v", s.Torrents())
	}
	// add, add magnet, rm, drop of a running one, drop of a cached one.
	if n := changes.Load(); n != 5 {
		t.Errorf("changed called %d times, want 5", n)
	}
}
