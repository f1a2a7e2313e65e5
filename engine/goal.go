package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
)

// Seeding goals (TorrentOptions.SeedRatio, SeedTime): a torrent uploads
// until one of them is met, then stops. Once its goal is met and it is
// complete, it retires: it tells its trackers "stopped", leaves the DHT
// and LSD, drops its peers and refuses new ones, since it has nothing left
// to give or take. A torrent that meets its goal before it is complete
// goes on downloading, choking every peer, and retires once complete. A
// torrent whose store evicts (a cache) never retires: a reader may need an
// evicted piece again, so it stays in the swarm, uploading nothing.
// goalState is loop-owned, except done and the published flag.

// errGoalReached closes connections of a torrent that met its seeding goal.
var errGoalReached = errors.New("seeding goal reached")

// goalState tracks a torrent's seeding goal. Loop-owned but for done.
type goalState struct {
	seedSince time.Time     // when the seeding clock started; zero before
	met       bool          // the goal is met: upload nothing more
	retired   bool          // met and complete: no trackers, no peers
	done      chan struct{} // closed when met (GoalReached); made with the torrent
}

// Seeding states, as Stats.SeedState reports them.
const (
	SeedStateDownloading = "downloading" // not complete, no goal met
	SeedStateSeeding     = "seeding"     // complete (or wanting no more), uploading
	SeedStateGoalReached = "goal reached"
)

// hasGoal reports whether the torrent has a seeding goal.
func (t *Torrent) hasGoal() bool { return t.opts.SeedRatio > 0 || t.opts.SeedTime > 0 }

// GoalReached is closed once the torrent's seeding goal (SeedRatio or
// SeedTime) is met; never for a torrent without one.
func (t *Torrent) GoalReached() <-chan struct{} { return t.goal.done }

// ratio is uploaded bytes over what we downloaded, or over what we hold
// when that is more (a seed that downloaded nothing counts its content).
func (t *Torrent) ratio() float64 {
	den := max(t.pub.downloaded.Load(), t.pub.bytesHave.Load())
	if den == 0 {
		return 0
	}
	return float64(t.pub.uploaded.Load()) / float64(den)
}

// goalTick starts the seeding clock and checks the goal; every second.
func (t *Torrent) goalTick(now time.Time) {
	if !t.hasGoal() || t.picker == nil {
		return
	}
	if t.goal.seedSince.IsZero() && (t.isComplete || !t.opts.DownloadAll) {
		// Complete, or a mount that only fetches what is read: from here
		// on it is seeding.
		t.goal.seedSince = now
	}
	if !t.goal.met {
		r := t.ratio()
		switch {
		case t.opts.SeedRatio > 0 && r >= t.opts.SeedRatio:
			t.goalMet(fmt.Sprintf("ratio %.2f of %.2f", r, t.opts.SeedRatio))
		case t.opts.SeedTime > 0 && !t.goal.seedSince.IsZero() && now.Sub(t.goal.seedSince) >= t.opts.SeedTime:
			t.goalMet(fmt.Sprintf("seeded for %v", t.opts.SeedTime))
		}
	}
	if _, evicts := t.store.(storage.Evicter); t.goal.met && t.isComplete && !t.goal.retired && !evicts {
		t.retire()
	}
}

// goalMet stops uploading: every peer is choked from now on.
func (t *Torrent) goalMet(why string) {
	t.goal.met = true
	t.client.logf("%s: seeding goal reached (%s): uploaded %d bytes; no more uploads", t.name(), why, t.pub.uploaded.Load())
	now := time.Now()
	for c := range t.conns {
		t.setChoke(c, true, now)
	}
	close(t.goal.done)
}

// retire ends a complete torrent's presence in the swarm once its goal is
// met: trackers hear "stopped", the DHT and LSD stop, peers go.
func (t *Torrent) retire() {
	t.goal.retired = true
	t.annStop()
	t.dhtStop()
	if l := t.client.lsd; l != nil {
		l.Remove(t.infoHash)
	}
	for c := range t.conns {
		c.close(errGoalReached)
		t.removeConn(c)
	}
}

// goalRefuses reports why a connection may not be adopted: none once the
// torrent has retired.
func (t *Torrent) goalRefuses() error {
	if t.goal.retired {
		return errGoalReached
	}
	return nil
}

// seedState is what Stats.SeedState reports. Loop only.
func (t *Torrent) seedState() string {
	switch {
	case t.goal.met:
		return SeedStateGoalReached
	case t.isComplete || !t.goal.seedSince.IsZero():
		return SeedStateSeeding
	}
	return SeedStateDownloading
}

// goalString describes the torrent's goal for Stats ("" for none).
func (t *Torrent) goalString() string {
	var s string
	if t.opts.SeedRatio > 0 {
		s = fmt.Sprintf("ratio %g", t.opts.SeedRatio)
	}
	if t.opts.SeedTime > 0 {
		if s != "" {
			s += " or "
		}
		s += "time " + t.opts.SeedTime.String()
	}
	return s
}
