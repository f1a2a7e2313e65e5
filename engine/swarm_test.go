package engine

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

func TestSwarmfsToSwarmfs(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	sc, _ := seeder(t, f, Config{})
	_, tor, dir := leecher(t, f, Config{}, sc.Addr())
	waitComplete(t, tor, 60*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestSwarmOfSwarmfs runs one seeder and several leechers that also trade
// among themselves: every leecher completes byte-exact and some upload.
func TestSwarmOfSwarmfs(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 6 << 20}, {Path: "empty"}, {Path: "x/y/small", Size: 1000}}
	f := newFixture(t, 64<<10, files)
	// A slow seeder makes the leechers fetch from each other.
	sc, _ := seeder(t, f, Config{UploadRate: 2 << 20})
	const n = 3
	var (
		clients []*Client
		tors    []*Torrent
		dirs    []string
	)
	for i := 0; i < n; i++ {
		c, tor, dir := leecher(t, f, Config{ListenAddr: netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}).String() + ":0"}, sc.Addr())
		clients, tors, dirs = append(clients, c), append(tors, tor), append(dirs, dir)
	}
	for i, tor := range tors {
		for j, c := range clients {
			if i != j {
				tor.AddPeers([]netip.AddrPort{c.Addr()})
			}
		}
	}
	var uploaded int64
	for i, tor := range tors {
		waitComplete(t, tor, 90*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(dirs[i], "data"))
		uploaded += tor.Stats().Uploaded
	}
	if uploaded == 0 {
		t.Errorf("leechers uploaded nothing to each other")
	}
}
