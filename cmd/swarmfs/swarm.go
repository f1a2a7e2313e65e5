package main

import (
	"fmt"

	"github.com/swarmfs/swarmfs/engine"
)

// formatSwarm says what the trackers count in a torrent's swarm, for the
// status table and the user.swarmfs.swarm attribute; "" while unknown.
func formatSwarm(sc *engine.SwarmCounts, noSeeders bool) string {
	if sc == nil {
		return ""
	}
	s := fmt.Sprintf("seeders %d leechers %d completed %d", sc.Seeders, sc.Leechers, sc.Completed)
	if noSeeders {
		s += " (no seeders)"
	}
	return s
}

func swarmString(s engine.Stats) string { return formatSwarm(s.Swarm, s.NoSeeders) }
