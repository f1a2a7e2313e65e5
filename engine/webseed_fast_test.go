package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestWebSeedHashesAsItArrives: a v1 torrent's pieces from a web seed are
// hashed while their bytes arrive, not queued for the hashing pool after
// the transfer: with every hashing slot held, a read from a web seed still
// completes (before, it waited for a slot).
func TestWebSeedHashesAsItArrives(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 3<<20 + 4321}}
	root, mi := wsFixture(t, files, true, 256<<10)
	srv := newWSServer(t, filepath.Dir(root))
	c, tor := webSeedClient(t, mi, Config{}, srv.URL+"/data/big.bin")
	for range cap(c.hashSem) {
		c.hashSem <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(c.hashSem) {
			<-c.hashSem
		}
	})
	readAll(t, tor, root, true, 10*time.Second)
}
