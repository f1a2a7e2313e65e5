package session

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// TestStatusInfoHashV2: the status of a hybrid and of a v2-only torrent
// carries the full v2 info-hash beside the 20-byte name (the v1 hash, or
// the v2 one truncated); a v1 torrent's has none.
func TestStatusInfoHashV2(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	s := newTestSession(t, e, st, nil)
	want := map[string]*metainfo.MetaInfo{}
	for _, format := range []metainfo.Format{metainfo.FormatV1, metainfo.FormatV2, metainfo.FormatHybrid} {
		p := filepath.Join(t.TempDir(), format.String()+".bin")
		if err := os.WriteFile(p, []byte("the content of "+format.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		mi, err := metainfo.Create(p, metainfo.CreateOptions{NoDate: true, Format: format})
		if err != nil {
			t.Fatal(err)
		}
		b, err := mi.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(b); err != nil {
			t.Fatal(err)
		}
		want[mi.Info.Name] = mi
	}
	for _, ts := range s.Status() {
		mi := want[ts.Name]
		if mi == nil {
			t.Fatalf("status of an unknown torrent %q", ts.Name)
		}
		v2 := ""
		if mi.Info.HasV2() {
			v2 = mi.InfoHashV2.String()
		}
		if ts.InfoHash != mi.InfoHash.String() || ts.InfoHashV2 != v2 {
			t.Errorf("%s: info-hashes %q %q, want %q %q", ts.Name, ts.InfoHash, ts.InfoHashV2, mi.InfoHash, v2)
		}
	}
}
