package engine

import (
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestIncomingUTPRemembered: a peer that reached us over uTP is kept as a
// candidate at the address it came from (its uTP socket, which is its
// listening port), marked as speaking uTP, so that a reconnect dials it
// over uTP first.
func TestIncomingUTPRemembered(t *testing.T) {
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	_, stor := seeder(t, f, Config{ListenAddr: "127.0.12.1:0"})
	lc, ltor, _ := leecher(t, f, Config{ListenAddr: "127.0.12.2:0", NoTCP: true}, stor.client.Addr())
	waitComplete(t, ltor, 30*time.Second)

	type seen struct {
		found, utp, utpFirst bool
	}
	look := func() seen {
		ch := make(chan seen, 1)
		if !stor.post(func() {
			var s seen
			if cand := stor.candidates[lc.Addr()]; cand != nil {
				s.found, s.utp = true, cand.utp
				s.utpFirst = stor.client.transportPlan(cand.utp)[0] == overUTP
			}
			ch <- s
		}) {
			t.Fatal("torrent closed")
		}
		return <-ch
	}
	s := look()
	if !s.found {
		t.Fatalf("the seeder keeps no candidate at the leecher's uTP address %s: %v", lc.Addr(), knownPeers(t, stor))
	}
	if !s.utp || !s.utpFirst {
		t.Errorf("the leecher's candidate: uTP %v, dialled over uTP first %v; want both", s.utp, s.utpFirst)
	}
}
