package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/fs/httpfs"
)

// jsonKeys lists the top-level keys v's type can marshal to, from its
// struct tags (omitempty fields included, which a marshalled zero value
// would leave out).
func jsonKeys(t *testing.T, v any) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for f := range rt.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
			case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case name == "":
				keys[f.Name] = true
			default:
				keys[name] = true
			}
		}
	}
	walk(reflect.TypeOf(v))
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
