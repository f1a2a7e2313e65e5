package engine

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestReadWhileStoreWrites: a verified piece is readable while the store
// is still writing it. A cache's write takes tens of milliseconds, more
// than a piece from a fast web seed: readers must not wait for it.
func TestReadWhileStoreWrites(t *testing.T) {
	const size, pieceLen = 4 << 20, 256 << 10
	const writeDelay = 3 * time.Second
	root := filepath.Join(t.TempDir(), "data")
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{{Path: "f.bin", Size: size}})
	want, err := os.ReadFile(filepath.Join(root, "f.bin"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	mi, err := metainfo.Create(filepath.Join(root, "f.bin"), metainfo.CreateOptions{PieceLength: pieceLen, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	mi.URLList = []string{srv.URL + "/"}
	store := &slowWrites{p: &storage.Memory{}, delay: writeDelay}
	c := newClient(t, Config{Storage: store})
	_, r := addReader(t, c, mi, TorrentOptions{}, 0, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	buf := make([]byte, 100<<10)
	off := int64(2*pieceLen + 1000) // in the middle of the file
	if _, err := r.ReadAt(ctx, buf, off); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
		t.Fatal("read the wrong bytes")
	}
	if el >= writeDelay/2 {
		t.Fatalf("the read took %v: it waited for the store's write (%v)", el, writeDelay)
	}
	if store.written.Load() != 0 {
		t.Fatalf("%d pieces written before the read returned: the test proves nothing", store.written.Load())
	}
}
