package engine

import (
	"testing"
	"time"
)

func TestUploadSlots(t *testing.T) {
	for _, tc := range []struct {
		slots int
		rate  int64
		want  int
	}{
		{0, 0, 4},         // unlimited
		{0, 10 << 20, 4},  // a limit that feeds 4
		{0, 100 << 10, 2}, // 100 KiB/s: 2 slots of 50
		{0, 130 << 10, 3}, // 3 of 43
		{0, 10 << 10, 2},  // never fewer than 2
		{6, 10 << 10, 6},  // set by hand
		{1, 0, 1},         // set by hand
		{0, 160 << 10, 4}, // exactly 4 of 40
		{0, 1 << 30, 4},   // more than enough
		{0, 119 << 10, 2}, // 2.97: rounds down
		{0, 120 << 10, 3}, // 3 of 40
		{0, 159 << 10, 3}, // 3.97
		{0, 80 << 10, 2},  // 2 of 40
		{0, 79 << 10, 2},  // the floor
		{0, 1, 2},         // absurdly low
		{0, 40 << 10, 2},  // one slot's worth
		{0, 200 << 10, 4}, // capped at the default
		{0, 4 << 20, 4},   // typical home uplink
		{0, 150 << 10, 3}, // 3.75
		{0, 161 << 10, 4}, // just above
	} {
		cfg := Config{UploadSlots: tc.slots, UploadRate: tc.rate}
		if got := uploadSlots(&cfg); got != tc.want {
			t.Errorf("UploadSlots %d, UploadRate %d: %d slots, want %d", tc.slots, tc.rate, got, tc.want)
		}
	}
}

func TestSnubbing(t *testing.T) {
	now := time.Now()
	tor := &Torrent{}
	c := &conn{}
	c.choke.amInterested = true
	c.choke.peerUnchokedAt = now.Add(-2 * snubTime)
	if !tor.snubbing(c, now) {
		t.Error("unchoked us two minutes ago, sent nothing: not snubbing")
	}
	c.flow.lastPiece = now.Add(-time.Second)
	if tor.snubbing(c, now) {
		t.Error("sent a block a second ago: snubbing")
	}
	c.flow.lastPiece = now.Add(-2 * snubTime)
	c.choke.peerChoking = true
	if tor.snubbing(c, now) {
		t.Error("choking us: counted as snubbing (it owes us nothing)")
	}
	c.choke.peerChoking = false
	c.choke.amInterested = false
	if tor.snubbing(c, now) {
		t.Error("not interesting to us: counted as snubbing")
	}
}

// TestRankSeedingRoundRobin: while seeding, a peer that has had its turn
// (taken seedQuota and held the slot seedTurn) goes behind every peer
// that waits, the longest-waiting first; those still within their turn
// keep their places.
func TestRankSeedingRoundRobin(t *testing.T) {
	now := time.Now()
	tor := &Torrent{}
	mk := func(name string, choked bool, unchokedAgo time.Duration, taken int64) *conn {
		c := &conn{}
		c.choke.amChoking = choked
		if unchokedAgo > 0 {
			c.choke.unchokedAt = now.Add(-unchokedAgo)
		}
		c.uploaded.Store(taken)
		return c
	}
	greedy := mk("greedy", false, 2*seedTurn, seedQuota+1)   // had its turn
	fresh := mk("fresh", false, time.Second, seedQuota+1)    // took a lot, but only just unchoked
	small := mk("small", false, 2*seedTurn, 1<<20)           // long, but took little
	waitedLong := mk("waitedLong", true, 10*time.Minute, 0)  // choked, last unchoked long ago
	waitedShort := mk("waitedShort", true, 1*time.Minute, 0) // choked, unchoked a minute ago
	never := mk("never", true, 0, 0)                         // never unchoked
	names := map[*conn]string{greedy: "greedy", fresh: "fresh", small: "small", waitedLong: "waitedLong", waitedShort: "waitedShort", never: "never"}
	cs := []*conn{greedy, waitedShort, fresh, never, small, waitedLong}
	tor.rankSeeding(cs, now)
	var got []string
	for _, c := range cs {
		got = append(got, names[c])
	}
	want := []string{"small", "fresh", "never", "waitedLong", "waitedShort", "greedy"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}
