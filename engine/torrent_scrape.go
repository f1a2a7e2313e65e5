package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/tracker"
)

// Scrapes: what each tracker counts in the swarm (seeders, leechers,
// completed), asked without announcing, at start and then at the
// tracker's announce interval. A torrent that waits for pieces while the
// trackers count no seeder says so (Stats.NoSeeders) instead of waiting
// silently.

const (
	// scrapeTimeout bounds one scrape.
	scrapeTimeout = 30 * time.Second
	// scrapeMinInterval and scrapeMaxInterval bound the wait between rounds,
	// whatever the trackers' intervals say.
	scrapeMinInterval = time.Minute
	scrapeMaxInterval = 30 * time.Minute
	// scrapeFirstDelay leaves the first announce a head start: trackers
	// then count us too.
	scrapeFirstDelay = 2 * time.Second
)

// SwarmCounts is what a tracker counts in a torrent's swarm.
type SwarmCounts struct {
	Seeders   int       `json:"seeders"`
	Leechers  int       `json:"leechers"`
	Completed int       `json:"completed"`
	Tracker   string    `json:"tracker"` // the tracker that counted them
	At        time.Time `json:"at"`
}

// scrapeCell holds the latest scrape of each tracker. mu guards byURL; a
// leaf, never held across I/O.
type scrapeCell struct {
	mu    sync.Mutex
	byURL map[string]scrapeEntry
}

type scrapeEntry struct {
	res tracker.ScrapeResult
	err string // "" after a success
	at  time.Time
}

func (s *scrapeCell) set(url string, e scrapeEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byURL == nil {
		s.byURL = make(map[string]scrapeEntry)
	}
	s.byURL[url] = e
}

func (s *scrapeCell) get(url string) (scrapeEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byURL[url]
	return e, ok
}

// best is the count of the tracker that sees the most of the swarm; ok
// false before any scrape succeeded.
func (s *scrapeCell) best() (SwarmCounts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out SwarmCounts
	found := false
	for u, e := range s.byURL {
		if e.err != "" {
			continue
		}
		if !found || e.res.Seeders+e.res.Leechers > out.Seeders+out.Leechers ||
			e.res.Seeders+e.res.Leechers == out.Seeders+out.Leechers && u < out.Tracker {
			out = SwarmCounts{Seeders: e.res.Seeders, Leechers: e.res.Leechers, Completed: e.res.Completed, Tracker: u, At: e.at}
			found = true
		}
	}
	return out, found
}

// scrapeLoop scrapes every tracker of the torrent, one at a time, until
// the torrent stops announcing. One of the torrent's goroutines (t.wg).
func (t *Torrent) scrapeLoop() {
	defer t.wg.Done()
	ctx := t.annCtx
	noScrape := map[string]bool{} // trackers without a scrape URL
	timer := time.NewTimer(scrapeFirstDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		interval := scrapeMaxInterval
		for _, st := range t.announcer.Status() {
			if noScrape[st.URL] {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
			res, err := tracker.Scrape(sctx, st.URL, t.infoHash, t.client.Addr().Addr())
			cancel()
			if ctx.Err() != nil {
				return
			}
			e := scrapeEntry{res: res, at: time.Now()}
			if err != nil {
				e.err = err.Error()
				if errors.Is(err, tracker.ErrNoScrape) || errors.Is(err, tracker.ErrUnsupportedScheme) {
					noScrape[st.URL] = true
				}
			}
			t.scrape.set(st.URL, e)
			if d := st.NextAnnounce.Sub(st.LastAnnounce); !st.LastAnnounce.IsZero() && d > 0 {
				interval = min(interval, d)
			}
		}
		timer.Reset(max(interval, scrapeMinInterval))
	}
}

// swarmCounts is the best scrape, for Stats; nil before any.
func (t *Torrent) swarmCounts() *SwarmCounts {
	if sc, ok := t.scrape.best(); ok {
		return &sc
	}
	return nil
}

// noSeeders reports a torrent that waits for pieces while its trackers
// count no seeder and no connected peer is one. Loop only.
func (t *Torrent) noSeeders(sc *SwarmCounts) bool {
	if sc == nil || sc.Seeders > 0 || t.isComplete || t.picker == nil {
		return false
	}
	for c := range t.conns {
		if t.peerIsSeed(c) {
			return false
		}
	}
	return true
}

// TrackerStatus is one tracker's last announce and scrape.
type TrackerStatus struct {
	URL          string    `json:"url"`
	LastAnnounce time.Time `json:"last_announce,omitzero"` // last successful announce
	NextAnnounce time.Time `json:"next_announce,omitzero"`
	Error        string    `json:"error,omitempty"` // the last announce's error, "" after a success
	Peers        int       `json:"peers"`           // in the last announce's answer
	Seeders      int       `json:"seeders"`
	Leechers     int       `json:"leechers"`
	// Scrape is the last successful scrape's counts, ScrapeError the last
	// scrape's error.
	Scrape      *tracker.ScrapeResult `json:"scrape,omitempty"`
	ScrapeError string                `json:"scrape_error,omitempty"`
}

// trackers lists every tracker's standing, tier by tier; nil without
// trackers.
func (t *Torrent) trackers() []TrackerStatus {
	if t.announcer == nil {
		return nil
	}
	var out []TrackerStatus
	for _, st := range t.announcer.Status() {
		ts := TrackerStatus{
			URL: st.URL, LastAnnounce: st.LastAnnounce, NextAnnounce: st.NextAnnounce, Error: st.LastError,
			Peers: st.Peers, Seeders: st.Seeders, Leechers: st.Leechers,
		}
		if e, ok := t.scrape.get(st.URL); ok {
			ts.ScrapeError = e.err
			if e.err == "" {
				r := e.res
				ts.Scrape = &r
			}
		}
		out = append(out, ts)
	}
	return out
}
