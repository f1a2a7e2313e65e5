package main

import (
	"encoding/json"
	"testing"

	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/fs/httpfs"
)

// jsonKeys lists the top-level keys v marshals to.
func jsonKeys(t *testing.T, v any) map[string]bool {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for k := range m {
		keys[k] = true
	}
	return keys
}

// TestAPIShowsStatus: GET /api/torrents shows at least what "swarmfs status
// --json" shows of each torrent, under the same names.
func TestAPIShowsStatus(t *testing.T) {
	api := jsonKeys(t, httpfs.TorrentJSON{})
	for k := range jsonKeys(t, session.TorrentStatus{}) {
		if !api[k] {
			t.Errorf("status --json has %q, /api/torrents does not", k)
		}
	}
	for k := range jsonKeys(t, session.TorrentStatus{}.Requests) {
		if !jsonKeys(t, httpfs.RequestCounters{})[k] {
			t.Errorf("status --json has requests.%q, /api/torrents does not", k)
		}
	}
}
