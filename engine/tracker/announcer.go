package tracker

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Announcer timing defaults. Tests shorten the per-Announcer copies.
const (
	defaultInterval    = 30 * time.Minute
	defaultMinInterval = 5 * time.Minute // AnnounceNow's limit when the tracker sets none
	minGap             = time.Minute     // no tracker can make us announce more often
	backoffBase        = 15 * time.Second
	backoffMax         = 30 * time.Minute
	attemptTimeout     = 60 * time.Second // one tracker's share of a round
	stopTimeout        = 5 * time.Second
)

// AnnouncerConfig configures an Announcer. Tiers and InfoHash are required;
// the rest have defaults.
type AnnouncerConfig struct {
	// Tiers are the torrent's trackers in BEP 12 tiers. Empty URLs, empty
	// tiers and repeated URLs are dropped.
	Tiers            [][]string
	InfoHash, PeerID [20]byte
	Port             uint16
	// Stats reports our transfer totals; it is called before each announce.
	// Nil reports zeros, which trackers take for a seeder.
	Stats func() (uploaded, downloaded, left int64)
	// OnPeers receives each successful response's peers, when there are any.
	// It is called from Run's goroutine with no lock held and must not block
	// for long: the next announce waits for it.
	OnPeers func(peers []netip.AddrPort)
	// Logf, if not nil, receives failures and tracker warnings.
	Logf func(format string, args ...any)
	// NumWant is how many peers to ask for; 0 lets the tracker decide.
	NumWant int
	// DefaultInterval is the time between announces when a tracker names
	// none; 0 means 30 minutes. A tracker's own interval always wins, and no
	// interval is shorter than the tracker's min interval or one minute.
	DefaultInterval time.Duration
	// LocalIP, if set, is the address announces leave from (see
	// AnnounceRequest.LocalIP).
	LocalIP netip.Addr
	// IPv6, if set, is told to HTTP trackers (see AnnounceRequest.IPv6).
	IPv6 netip.Addr
}

// Announcer keeps one torrent known to its trackers: it sends started, then
// periodic announces, completed once when asked, and stopped when Run ends.
// It follows BEP 12: tiers are tried in order, each tier's URLs in an order
// shuffled once, and the URL that answers moves to the front of its tier.
// A failing tracker is retried with jittered exponential back-off.
//
// Run must be called once; the other methods are safe for concurrent use,
// before, during and after Run.
type Announcer struct {
	// Read-only after construction (tests adjust the timings before Run).
	cfg            AnnouncerConfig
	key            uint32
	announce       func(ctx context.Context, url string, req AnnounceRequest) (*AnnounceResponse, error)
	wake           chan struct{} // capacity 1: a pending nudge for Run
	minGap         time.Duration
	defaultMin     time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	attemptTimeout time.Duration
	stopTimeout    time.Duration
	jitter         func() float64 // uniform in [0, 1)

	mu            sync.Mutex // guards the following; a leaf lock, never held across I/O or callbacks
	tiers         [][]*trackerState
	completed     bool      // Completed was called
	completedSent bool      // a tracker accepted the completed event
	nowWanted     bool      // AnnounceNow was called since the last success
	lastOK        time.Time // last successful announce, to any tracker
	interval      time.Duration
	minInterval   time.Duration
	roundFailed   bool // the last round reached no tracker
}

// trackerState is one URL's standing; guarded by Announcer.mu.
type trackerState struct {
	url          string
	started      bool   // accepted our started event, so it is owed a stopped
	trackerID    string // echoed back to it
	lastAnnounce time.Time
	lastErr      string
	peers        int
	seeders      int
	leechers     int
	failures     int       // consecutive
	retryAt      time.Time // while failing, not tried before this
	next         time.Time // for Status
}

// Status is a snapshot of one tracker's standing.
type Status struct {
	URL          string
	LastAnnounce time.Time // last successful announce
	LastError    string    // the last attempt's error, "" after a success
	Peers        int       // peers in the last response
	Seeders      int
	Leechers     int
	NextAnnounce time.Time // zero if not planned for this tracker
}

// NewAnnouncer returns an Announcer for cfg. Nothing is sent before Run.
func NewAnnouncer(cfg AnnouncerConfig) *Announcer {
	if cfg.DefaultInterval <= 0 {
		cfg.DefaultInterval = defaultInterval
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	a := &Announcer{
		cfg:            cfg,
		key:            rand.Uint32(),
		announce:       Announce,
		wake:           make(chan struct{}, 1),
		minGap:         minGap,
		defaultMin:     defaultMinInterval,
		backoffBase:    backoffBase,
		backoffMax:     backoffMax,
		attemptTimeout: attemptTimeout,
		stopTimeout:    stopTimeout,
		jitter:         rand.Float64,
	}
	seen := make(map[string]bool)
	for _, tier := range cfg.Tiers {
		var ts []*trackerState
		for _, u := range tier {
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			ts = append(ts, &trackerState{url: u})
		}
		if len(ts) == 0 {
			continue
		}
		rand.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		a.tiers = append(a.tiers, ts)
	}
	return a
}

// Completed asks for the completed event to be sent soon. Later calls do
// nothing: the event is sent once.
func (a *Announcer) Completed() {
	a.mu.Lock()
	a.completed = true
	a.mu.Unlock()
	a.nudge()
}

// AnnounceNow asks for an announce as soon as the tracker's min interval
// allows, for when the torrent needs more peers.
func (a *Announcer) AnnounceNow() {
	a.mu.Lock()
	a.nowWanted = true
	a.mu.Unlock()
	a.nudge()
}

func (a *Announcer) nudge() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Status returns every tracker's standing, tier by tier in the order they
// would be tried.
func (a *Announcer) Status() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Status
	for _, tier := range a.tiers {
		for _, t := range tier {
			out = append(out, Status{
				URL:          t.url,
				LastAnnounce: t.lastAnnounce,
				LastError:    t.lastErr,
				Peers:        t.peers,
				Seeders:      t.seeders,
				Leechers:     t.leechers,
				NextAnnounce: t.next,
			})
		}
	}
	return out
}

// Run announces until ctx is done, then sends stopped to every tracker that
// accepted started (waiting at most a few seconds) and returns.
func (a *Announcer) Run(ctx context.Context) {
	a.mu.Lock()
	empty := len(a.tiers) == 0
	a.mu.Unlock()
	if empty {
		<-ctx.Done()
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if wait := time.Until(a.nextRound(time.Now())); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				a.stop(ctx)
				return
			case <-a.wake:
				continue // recompute: the nudge may or may not move the round
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			a.stop(ctx)
			return
		}
		a.round(ctx)
	}
}

// nextRound returns when the next round is due.
func (a *Announcer) nextRound(now time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The earliest moment some tracker may be tried.
	var earliest time.Time
	first := true
	for _, tier := range a.tiers {
		for _, t := range tier {
			if first || t.retryAt.Before(earliest) {
				earliest, first = t.retryAt, false
			}
		}
	}
	if earliest.Before(now) {
		earliest = now
	}
	if a.lastOK.IsZero() || a.roundFailed {
		return earliest
	}
	due := a.lastOK.Add(a.interval)
	if a.completed && !a.completedSent {
		due = now
	}
	if a.nowWanted {
		if soon := a.lastOK.Add(a.minInterval); soon.Before(due) {
			due = soon
		}
	}
	if due.Before(earliest) {
		due = earliest
	}
	return due
}

// round walks the tiers until one tracker answers, skipping those in
// back-off.
func (a *Announcer) round(ctx context.Context) {
	a.mu.Lock()
	tiers := make([][]*trackerState, len(a.tiers))
	for i, tier := range a.tiers {
		tiers[i] = append([]*trackerState(nil), tier...)
	}
	a.mu.Unlock()
	for ti, tier := range tiers {
		for _, t := range tier {
			if ctx.Err() != nil {
				return
			}
			req, ok := a.prepare(t)
			if !ok {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, a.attemptTimeout)
			resp, err := a.announce(actx, t.url, req)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return // our own shutdown, not the tracker's fault
				}
				a.failed(t, err)
				continue
			}
			a.succeeded(t, ti, req.Event, resp)
			if resp.Warning != "" {
				a.cfg.Logf("tracker %s: warning: %s", redact(t.url), resp.Warning)
			}
			if len(resp.Peers) > 0 && a.cfg.OnPeers != nil {
				a.cfg.OnPeers(resp.Peers)
			}
			return
		}
	}
	a.mu.Lock()
	a.roundFailed = true
	a.mu.Unlock()
}

// prepare builds t's next request; ok is false while t is backing off.
func (a *Announcer) prepare(t *trackerState) (req AnnounceRequest, ok bool) {
	a.mu.Lock()
	if time.Now().Before(t.retryAt) {
		a.mu.Unlock()
		return req, false
	}
	ev := None
	switch {
	case !t.started:
		ev = Started
	case a.completed && !a.completedSent:
		ev = Completed
	}
	numWant := a.cfg.NumWant
	if numWant <= 0 {
		numWant = -1
	}
	req = AnnounceRequest{
		InfoHash:  a.cfg.InfoHash,
		PeerID:    a.cfg.PeerID,
		Port:      a.cfg.Port,
		Event:     ev,
		NumWant:   numWant,
		Key:       a.key,
		TrackerID: t.trackerID,
		LocalIP:   a.cfg.LocalIP,
		IPv6:      a.cfg.IPv6,
	}
	a.mu.Unlock()
	a.fillStats(&req)
	return req, true
}

func (a *Announcer) fillStats(req *AnnounceRequest) {
	if a.cfg.Stats != nil {
		req.Uploaded, req.Downloaded, req.Left = a.cfg.Stats()
	}
}

func (a *Announcer) succeeded(t *trackerState, tier int, ev Event, resp *AnnounceResponse) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	t.failures, t.retryAt, t.lastErr = 0, time.Time{}, ""
	t.lastAnnounce = now
	t.peers, t.seeders, t.leechers = len(resp.Peers), resp.Seeders, resp.Leechers
	if resp.TrackerID != "" {
		t.trackerID = resp.TrackerID
	}
	switch ev {
	case Started:
		t.started = true
	case Completed:
		a.completedSent = true
	}
	interval := resp.Interval
	if interval <= 0 {
		interval = a.cfg.DefaultInterval
	}
	minInterval := resp.MinInterval
	if minInterval <= 0 {
		minInterval = min(interval, a.defaultMin)
	}
	minInterval = max(minInterval, a.minGap)
	interval = max(interval, minInterval)
	a.lastOK, a.interval, a.minInterval = now, interval, minInterval
	a.roundFailed, a.nowWanted = false, false
	t.next = now.Add(interval)
	// BEP 12: the URL that answered goes to the front of its tier.
	ts := a.tiers[tier]
	for i, x := range ts {
		if x == t {
			copy(ts[1:i+1], ts[:i])
			ts[0] = t
			break
		}
	}
}

func (a *Announcer) failed(t *trackerState, err error) {
	now := time.Now()
	a.mu.Lock()
	t.failures++
	t.lastErr = err.Error()
	t.retryAt = now.Add(a.backoff(t.failures))
	t.next = t.retryAt
	n := t.failures
	a.mu.Unlock()
	a.cfg.Logf("tracker: announce failed (%d in a row): %v", n, err)
}

// backoff returns the wait after the n-th consecutive failure (n >= 1):
// backoffBase doubling up to backoffMax, then jittered by ±25% so that many
// torrents on one tracker spread out.
func (a *Announcer) backoff(n int) time.Duration {
	d := a.backoffMax
	if n-1 < 32 {
		if x := a.backoffBase << (n - 1); x > 0 && x < d {
			d = x
		}
	}
	return d*3/4 + time.Duration(a.jitter()*float64(d/2))
}

// stop sends stopped to every tracker that accepted started, in parallel,
// all within stopTimeout.
func (a *Announcer) stop(ctx context.Context) {
	type job struct {
		t   *trackerState
		req AnnounceRequest
	}
	var jobs []job
	a.mu.Lock()
	for _, tier := range a.tiers {
		for _, t := range tier {
			if !t.started {
				continue
			}
			t.started = false
			jobs = append(jobs, job{t, AnnounceRequest{
				InfoHash:  a.cfg.InfoHash,
				PeerID:    a.cfg.PeerID,
				Port:      a.cfg.Port,
				Event:     Stopped,
				NumWant:   0,
				Key:       a.key,
				TrackerID: t.trackerID,
				LocalIP:   a.cfg.LocalIP,
				IPv6:      a.cfg.IPv6,
			}})
		}
	}
	a.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	var stats AnnounceRequest
	a.fillStats(&stats)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.stopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, j := range jobs {
		j.req.Uploaded, j.req.Downloaded, j.req.Left = stats.Uploaded, stats.Downloaded, stats.Left
		wg.Go(func() {
			_, err := a.announce(sctx, j.t.url, j.req)
			a.mu.Lock()
			if err != nil {
				j.t.lastErr = err.Error()
			} else {
				j.t.lastAnnounce, j.t.lastErr = time.Now(), ""
			}
			j.t.next = time.Time{}
			a.mu.Unlock()
			if err != nil {
				a.cfg.Logf("tracker: stopped event failed: %v", err)
			}
		})
	}
	wg.Wait()
}
