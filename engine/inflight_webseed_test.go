package engine

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestWebSeedOutsideInFlightBudget: a web seed's runs in flight do not
// count against maxOutstandingBytes, which bounds what peers owe (the
// seed's own pipeline bounds its runs). outstandingBytes comes from the
// picker's running sum, which counts every picker peer unless told
// otherwise (Uncount): without registerWebSeed's Uncount, a stalled run
// would take the peers' budget.
func TestWebSeedOutsideInFlightBudget(t *testing.T) {
	const pieceLen = 256 << 10
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 16 << 20}}
	root, mi := wsFixture(t, files, true, pieceLen)
	srv := newWSServer(t, filepath.Dir(root))
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		// Every run stalls until the client gives up on it.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	})
	tor, r := webSeedReader(t, mi, srv.URL+"/data/big.bin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r.ReadAt(ctx, make([]byte, 1), 0) // waits for the stalled seed
	}()
	defer func() { cancel(); <-readDone }()

	type view struct{ seed, budget int }
	look := func() view {
		ch := make(chan view, 1)
		if !tor.post(func() {
			v := view{budget: tor.outstandingBytes()}
			for _, ws := range tor.ws.list {
				v.seed += tor.picker.Outstanding(ws.id)
			}
			ch <- v
		}) {
			t.Fatal("torrent closed")
		}
		return <-ch
	}
	deadline := time.Now().Add(10 * time.Second)
	v := look()
	for v.seed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the web seed was never asked for anything")
		}
		time.Sleep(10 * time.Millisecond)
		v = look()
	}
	if v.budget != 0 {
		t.Errorf("with %d blocks outstanding from the web seed and no peers, outstandingBytes = %d, want 0", v.seed, v.budget)
	}
}
