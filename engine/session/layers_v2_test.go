package session

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// v2WithoutLayers makes a v2-only torrent of one file of many pieces and
// returns it with its piece layers and as a magnet's info arrives, without.
func v2WithoutLayers(t *testing.T) (full, bare *metainfo.MetaInfo) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(p, bytes.Repeat([]byte("layers "), 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	full, err := metainfo.Create(p, metainfo.CreateOptions{NoDate: true, Format: metainfo.FormatV2, PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	info, err := metainfo.ParseInfo(full.InfoBytes)
	if err != nil {
		t.Fatal(err)
	}
	if info.HasPieceLayers() || !full.Info.HasPieceLayers() {
		t.Fatal("the fixture needs a file of several pieces")
	}
	b := *full
	b.Info = info
	return full, &b
}

// waitRecord waits until the store's record of ih satisfies ok.
func waitRecord(t *testing.T, st *fakeStore, ih metainfo.Hash, ok func(*metainfo.MetaInfo) bool) *metainfo.MetaInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if rec, found := st.record(ih); found {
			if mi, err := metainfo.Parse([]byte(rec)); err == nil && ok(mi) {
				return mi
			}
		}
		if time.Now().After(deadline) {
			rec, _ := st.record(ih)
			t.Fatalf("record of %s: %.60q", ih, rec)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMagnetLayersRecorded: a v2 magnet's record, written when its info
// arrives (without piece layers), is written again once the engine has
// fetched the layers, so that after a restart its pieces can be checked
// without asking peers; a restore then carries them to the engine.
func TestMagnetLayersRecorded(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	s := newTestSession(t, e, st, nil)
	full, bare := v2WithoutLayers(t)
	m := &metainfo.Magnet{InfoHash: full.InfoHash, InfoHashV2: full.InfoHashV2}
	if _, err := s.AddMagnet(m.String()); err != nil {
		t.Fatal(err)
	}
	h := e.handle(full.InfoHash)
	h.setInfo(bare)
	waitRecord(t, st, full.InfoHash, func(mi *metainfo.MetaInfo) bool { return mi.Info != nil })
	h.setLayers(full)
	rec := waitRecord(t, st, full.InfoHash, func(mi *metainfo.MetaInfo) bool { return mi.Info.HasPieceLayers() })
	if rec.InfoHashV2 != full.InfoHashV2 {
		t.Fatalf("recorded %s, want %s", rec.InfoHashV2, full.InfoHashV2)
	}
	s.Close()

	e2 := newFakeEngine()
	s2 := newTestSession(t, e2, st, nil)
	if n := s2.Restore(); n != 1 {
		t.Fatalf("Restore = %d, want 1", n)
	}
	if mi := e2.handle(full.InfoHash).MetaInfo(); mi == nil || !mi.Info.HasPieceLayers() {
		t.Fatal("the restored torrent has no piece layers")
	}
}

// TestRestoreHybridByV2Name: a hybrid first added by its btmh magnet is
// recorded, and cached, under its truncated v2 hash; a restore adds it
// under that name, where its cached pieces are, not under its v1 hash.
func TestRestoreHybridByV2Name(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(p, bytes.Repeat([]byte("hybrid "), 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Create(p, metainfo.CreateOptions{NoDate: true, Format: metainfo.FormatHybrid, PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	v2name := mi.Info.InfoHashV2.Truncate()
	rec, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st := newFakeStore()
	if err := st.PutMeta(cache.InfoHash(v2name), rec); err != nil {
		t.Fatal(err)
	}
	e := newFakeEngine()
	s := newTestSession(t, e, st, nil)
	if n := s.Restore(); n != 1 {
		t.Fatalf("Restore = %d, want 1", n)
	}
	if e.handle(v2name) == nil {
		t.Fatalf("the hybrid was restored as %v, want under its v2 name %s (v1: %s)", e.calls(), v2name, mi.InfoHash)
	}
	if _, err := s.Find(v2name.String()); err != nil {
		t.Fatalf("the session does not know the restored hybrid by its v2 name: %v", err)
	}
}
