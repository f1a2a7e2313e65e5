package engine

import (
	"cmp"
	"slices"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/webseed"
)

// Statistics: the snapshot the loop refreshes every second, and the one
// callers read (Torrent.Stats), which adds the published counters.

// Stats is a snapshot of a torrent's progress, refreshed every second.
// Until a magnet's metadata arrives only the name, hash and peer counts are
// filled in.
type Stats struct {
	Name           string
	InfoHash       metainfo.Hash
	HasInfo        bool // the info dictionary is known
	Pieces         int
	PiecesHave     int
	TotalLength    int64
	BytesCompleted int64
	Downloaded     int64
	Wasted         int64 // received payload not used (duplicates, late blocks)
	Requests       RequestCounters
	Uploaded       int64
	DownloadRate   float64 // bytes/s
	UploadRate     float64
	Peers          int
	Seeds          int
	EncryptedPeers int // of Peers, those on an MSE/PE (RC4) encrypted connection
	PlainPeers     int // of Peers, those in plaintext
	TCPPeers       int // of Peers, those over TCP
	UTPPeers       int // of Peers, those over uTP (BEP 29)
	KnownPeers     int
	Complete       bool
	// SuperSeeding: the torrent hands out its pieces one at a time
	// (TorrentOptions.SuperSeed, BEP 16).
	SuperSeeding bool
	// Ratio is Uploaded over Downloaded, or over BytesCompleted when more.
	Ratio float64
	// SeedGoal describes the seeding goal ("" for none), SeedState where
	// the torrent stands: SeedStateDownloading, SeedStateSeeding or
	// SeedStateGoalReached.
	SeedGoal, SeedState string
	// Swarm is what the tracker that sees most of the swarm counts in it
	// (scraped at its announce interval); nil before any scrape answered.
	Swarm *SwarmCounts
	// NoSeeders: the torrent is incomplete, its trackers count no seeder
	// and no connected peer is one, so missing pieces may never come.
	NoSeeders bool
	// Trackers is each tracker's last announce and scrape, tier by tier.
	Trackers []TrackerStatus
	// StoreError says why the store refuses pieces ("" while it takes
	// them): a full disk, or a cache full of pieces readers hold. Reads of
	// a piece refused for lack of space fail with ErrNoSpace (ENOSPC).
	StoreError string
	// Refused counts the store's refusals of pieces since the start; a
	// refused piece waits for space or a back-off before it is tried
	// again.
	Refused int64
	// BackgroundPaused: DownloadAll stopped fetching what no reader asks
	// for, because the cache is full (it evicted one of this torrent's
	// pieces, or refused one). Readers are still served.
	BackgroundPaused bool
	// HashFailures counts the pieces that failed their hash check since
	// the start (their senders are penalised, repeat offenders banned).
	HashFailures int64
	// Downloading lists the pieces being fetched (a block requested or
	// received, not yet verified), ascending, as of the snapshot.
	Downloading []int
	// Readers are the open readers (a FUSE handle, an HTTP request), by
	// file and position, as of the snapshot.
	Readers []ReaderStats
	// WebSeeds are the url-list sources (BEP 19), unless Config.NoWebSeeds.
	// Their rates are as of the snapshot; the rest is read when Stats is
	// called.
	WebSeeds []WebSeedStats
	webSeeds []*webseed.Seed // behind WebSeeds, for Torrent.Stats
	// Waiting says why a read has been waiting a while when no source has
	// its piece ("waiting for piece 3: no source has it ..."); "" otherwise.
	Waiting string
}

// ReaderStats is where an open Reader is and how far ahead of it pieces
// are being fetched, for status displays.
type ReaderStats struct {
	File int // index in the info's Files
	// Pos is the file offset just past the reader's last sequential
	// read; -1 before its first read.
	Pos int64
	// Window is the readahead from Pos, in bytes.
	Window int64
}

// RequestCounters count the picker's decisions that cost bandwidth: blocks
// asked of a second peer (late urgent blocks, endgame), requests withdrawn
// (cancelled) and requests that timed out. It mirrors picker.Counters so
// that callers printing Stats need not import the picker.
type RequestCounters struct {
	DupLate    int `json:"dup_late"`
	DupEndgame int `json:"dup_endgame"`
	Withdrawn  int `json:"withdrawn"`
	TimedOut   int `json:"timed_out"`
}

// Stats returns the latest snapshot.
func (t *Torrent) Stats() Stats {
	s := t.stats.load()
	s.PiecesHave = int(t.pub.numHave.Load())
	s.BytesCompleted = t.pub.bytesHave.Load()
	s.Downloaded = t.pub.downloaded.Load()
	s.Wasted = t.pub.wasted.Load()
	s.Uploaded = t.pub.uploaded.Load()
	s.Ratio = t.ratio()
	s.Trackers = t.trackers()
	if err := t.storeErr.current(); err != nil {
		s.StoreError = err.Error()
	}
	s.Refused = t.refusals.Load()
	s.BackgroundPaused = t.bgPaused.Load()
	s.HashFailures = t.pub.hashFailed.Load()
	// A web seed's bytes, state and errors as they are now, not as of the
	// last tick: a status right after a read shows what it received. A
	// copy, since the snapshot's slice is shared.
	if len(s.webSeeds) > 0 {
		live := make([]WebSeedStats, len(s.WebSeeds))
		for i, sd := range s.webSeeds {
			live[i] = webSeedStat(sd.Stats(), s.WebSeeds[i].Rate)
		}
		s.WebSeeds = live
	}
	return s
}

func (t *Torrent) refreshStats(now time.Time) {
	s := Stats{
		Name:       t.name(),
		InfoHash:   t.infoHash,
		Peers:      len(t.conns),
		KnownPeers: len(t.candidates),
		Complete:   t.isComplete,

		SuperSeeding: t.super.active,
		SeedGoal:     t.goalString(),
		SeedState:    t.seedState(),
		Swarm:        t.swarmCounts(),
	}
	if s.NoSeeders = t.noSeeders(s.Swarm); s.NoSeeders && !t.seedless {
		t.client.logf("%s: no seeders: the trackers count %d leechers and no seeder; missing pieces wait for one", t.name(), s.Swarm.Leechers)
	}
	t.seedless = s.NoSeeders
	if t.picker != nil {
		s.HasInfo = true
		s.Pieces = t.info.NumPieces()
		s.TotalLength = t.info.TotalLength
		s.Requests = RequestCounters(t.picker.Counters())
		s.Downloading, s.Readers = t.activity()
		s.DownloadRate = t.webSeedRate()
		s.WebSeeds, s.webSeeds = t.webSeedStats()
		s.Waiting = t.waits.msg
	}
	for c := range t.conns {
		s.DownloadRate += c.flow.down.value
		s.UploadRate += c.flow.up.value
		if t.peerIsSeed(c) {
			s.Seeds++
		}
		if c.encrypted {
			s.EncryptedPeers++
		} else {
			s.PlainPeers++
		}
		if transportOf(c.nc) == overUTP {
			s.UTPPeers++
		} else {
			s.TCPPeers++
		}
	}
	t.stats.store(s)
}

func (t *Torrent) downRate() float64 {
	var r float64
	for c := range t.conns {
		r += c.flow.down.value
	}
	return r + t.webSeedRate()
}

// activity lists the pieces in flight and the readers' positions, for
// Stats. Loop only. Snapshots are never modified once stored.
func (t *Torrent) activity() ([]int, []ReaderStats) {
	down := t.picker.InFlight(nil)
	slices.Sort(down)
	var rs []ReaderStats
	for r, id := range t.readers {
		v, ok := t.picker.ReaderView(id)
		if !ok {
			continue
		}
		st := ReaderStats{File: r.file, Pos: -1, Window: v.Window}
		if v.Pos >= 0 {
			st.Pos = min(max(v.Pos-r.start, 0), r.end-r.start)
		}
		rs = append(rs, st)
	}
	slices.SortFunc(rs, func(a, b ReaderStats) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Pos, b.Pos), cmp.Compare(a.Window, b.Window))
	})
	return down, rs
}
