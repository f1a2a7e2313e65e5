package webseed

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Seed. Zero fields take the defaults written beside them.
type Config struct {
	// Client makes the requests; share one from NewClient between all
	// seeds. Nil: the seed makes its own with NewClient(ClientConfig{}) and
	// Close closes its idle connections.
	Client *http.Client
	// MaxParallel bounds the requests one Fetch has in flight when its run
	// spans several files (default 4). A run inside one file is always one
	// request.
	MaxParallel int
	// ProgressTimeout is how long a request may go without a byte, from the
	// request to its headers and between reads of its body (default 20 s).
	ProgressTimeout time.Duration
	// CursorIdle is how long the body of a server that ignores Range is
	// kept open after a run, for the next run in that file to continue
	// from (default 30 s; see cursor.go).
	CursorIdle time.Duration
	// MinBackoff and MaxBackoff bound the exponential back-off after
	// consecutive failures: MinBackoff after the first, doubling up to
	// MaxBackoff (defaults 1 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a server's Retry-After can impose
	// (default 1 h).
	MaxRetryAfter time.Duration
	// MaxStrikes is how many strikes (pieces that failed their hash check,
	// reported by BadPiece, and Bad responses) drop the seed for good
	// (default 3).
	MaxStrikes int
	// UserAgent is sent with every request (default "swarmfs").
	UserAgent string
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

func (c *Config) withDefaults() Config {
	d := *c
	setDefault(&d.MaxParallel, 4)
	setDefault(&d.ProgressTimeout, 20*time.Second)
	setDefault(&d.CursorIdle, 30*time.Second)
	setDefault(&d.MinBackoff, time.Second)
	setDefault(&d.MaxBackoff, 5*time.Minute)
	setDefault(&d.MaxRetryAfter, time.Hour)
	setDefault(&d.MaxStrikes, 3)
	if d.UserAgent == "" {
		d.UserAgent = "swarmfs"
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// State is a seed's standing, as the status line shows it.
type State int

const (
	// Active seeds may be sent requests.
	Active State = iota
	// BackingOff seeds failed recently and wait until Stats.RetryAt.
	BackingOff
	// Dropped seeds are done: too many strikes, or no file left.
	Dropped
)

func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case BackingOff:
		return "backing off"
	case Dropped:
		return "dropped"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Stats is a snapshot of a seed, for the picker and the status line.
type Stats struct {
	// URL is the seed's URL without query or user info.
	URL   string
	State State
	// RetryAt is when a backing-off seed may be tried again.
	RetryAt time.Time
	// Rate is the moving average of the body transfer rate, in bytes/s, of
	// responses of at least 16 KiB; 0 until one is measured. It is per
	// request: a Fetch with parallel requests gets more.
	Rate float64
	// TTFB is the moving average of the time from sending a request to its
	// response's headers; 0 until measured.
	TTFB time.Duration
	// Bytes counts the payload bytes received (before hash checks), as
	// they arrive: those of a response cut short count too, and those a
	// server that ignores Range sends before the range asked for.
	Bytes int64
	// Requests and Failures count HTTP requests and failed fetches.
	Requests, Failures int64
	// ConsecutiveFailures drives the back-off; a success resets it.
	ConsecutiveFailures int
	// Strikes counts bad pieces and Bad responses; MaxStrikes drops the seed.
	Strikes int
	// DisabledFiles counts the files this seed no longer serves (gone on
	// the server, or with names no URL can carry).
	DisabledFiles int
	// LastError is the last failure's text, "" when none.
	LastError string
	// Answered: a request for a range got a usable answer (206, or 200
	// and the whole file), so NoRanges is known.
	Answered bool
	// NoRanges: the server answered a request for a range with the whole
	// file (it ignores Range). Its files are read from their start, each
	// at most once while a reader goes through it in order (cursor.go); a
	// seek into a file costs the bytes before it.
	NoRanges bool
	// RangesDoubtful: the server answered Preconnect's HEAD without
	// "Accept-Ranges: bytes" (as servers that ignore Range do; most that
	// honour it say so). Until Answered tells, a caller may treat the
	// seed as one that ignores Range.
	RangesDoubtful bool
}

// ETA estimates how long fetching n bytes from the seed would take: one
// time to first byte plus n at the measured rate. ok is false until the
// seed has been measured.
func (st Stats) ETA(n int64) (d time.Duration, ok bool) {
	if st.Rate <= 0 {
		return 0, false
	}
	return st.TTFB + time.Duration(float64(n)/st.Rate*float64(time.Second)), true
}

// Seed is one url-list URL of one torrent: it fetches runs of whole pieces
// (Fetch) and keeps the standing the engine needs to choose it (Ready, Has,
// Stats, BadPiece). It is safe for concurrent use; several Fetch calls may
// run at once.
type Seed struct {
	// Read-only after New.
	layout    *Layout
	url       seedURL
	shown     string // redacted URL
	cfg       Config
	ownClient bool

	// mu guards the fields below. It is a leaf lock: never held across
	// I/O or a call out of the package.
	mu          sync.Mutex
	failures    int // consecutive
	retryAt     time.Time
	strikes     int
	dropped     bool
	disabled    map[int]bool // files this seed no longer serves
	servable    int          // non-pad, non-empty files not disabled
	rate        ewma
	ttfb        ewma
	requests    int64
	failedTotal int64
	lastErr     string
	answered    bool    // a range request got a usable answer (206 or 200)
	noRanges    bool    // the server answered a range with the whole file
	doubtful    bool    // Preconnect's HEAD did not say Accept-Ranges: bytes
	parked      *stream // a whole-file body kept for the next run (cursor.go)
	closed      bool
	// inflight counts the requests under way (get calls).
	inflight atomic.Int32
	// bytes counts the payload read from bodies as it arrives, cut-short
	// responses' included (outside mu: added per read).
	bytes atomic.Int64
}

// New returns a seed for the url-list entry rawURL of the torrent laid out
// by l. It fails when the URL is not http(s) or cannot address the
// torrent's files.
func New(rawURL string, l *Layout, cfg Config) (*Seed, error) {
	su, err := parseSeedURL(rawURL, l)
	if err != nil {
		return nil, err
	}
	s := &Seed{layout: l, url: su, shown: redact(su.base), cfg: cfg.withDefaults()}
	if s.cfg.Client == nil {
		s.cfg.Client = NewClient(ClientConfig{})
		s.ownClient = true
	}
	for i, f := range l.info.Files {
		if f.Pad || f.Length == 0 {
			continue
		}
		if su.dir && l.unaddressable[i] {
			if s.disabled == nil {
				s.disabled = make(map[int]bool)
			}
			s.disabled[i] = true
			continue
		}
		s.servable++
	}
	if s.servable == 0 {
		s.dropped = true
	}
	return s, nil
}

// URL returns the seed's URL without query or user info.
func (s *Seed) URL() string { return s.shown }

// Close closes the body the seed keeps open for its next run, if any (see
// cursor.go), and its own client's idle connections. A shared
// Config.Client is left alone: its owner closes it.
func (s *Seed) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.CloseCursor()
	if s.ownClient {
		s.cfg.Client.CloseIdleConnections()
	}
}

// Ready reports whether the seed may be sent a request at now: not dropped
// and not backing off.
func (s *Seed) Ready(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.dropped && !now.Before(s.retryAt)
}

// Has reports whether the seed can serve piece: every file the piece
// touches is either padding or still enabled. It says nothing about
// back-off (see Ready).
func (s *Seed) Has(piece int) bool {
	info := s.layout.info
	if piece < 0 || piece >= info.NumPieces() {
		return false
	}
	start := info.PieceOffset(piece)
	segs := s.layout.segments(start, start+info.PieceLen(piece))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return false
	}
	for _, sg := range segs {
		if !sg.pad && s.disabled[sg.file] {
			return false
		}
	}
	return true
}

// BadPiece records that a piece from this seed failed its hash check. It
// returns true when that drops the seed (MaxStrikes strikes).
func (s *Seed) BadPiece() (dropped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strikeLocked("piece failed its hash check")
	return s.dropped
}

// Stats returns a snapshot of the seed.
func (s *Seed) Stats() Stats { return s.StatsAt(s.cfg.Now()) }

// StatsAt returns a snapshot of the seed with its State as of now, so a
// caller that has just asked Ready(now) describes the same standing.
func (s *Seed) StatsAt(now time.Time) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		URL:                 s.shown,
		RetryAt:             s.retryAt,
		Rate:                s.rate.value,
		TTFB:                time.Duration(s.ttfb.value),
		Bytes:               s.bytes.Load(),
		Requests:            s.requests,
		Failures:            s.failedTotal,
		ConsecutiveFailures: s.failures,
		Strikes:             s.strikes,
		DisabledFiles:       len(s.disabled),
		LastError:           s.lastErr,
		Answered:            s.answered,
		NoRanges:            s.noRanges,
		RangesDoubtful:      s.doubtful,
	}
	switch {
	case s.dropped:
		st.State = Dropped
	case now.Before(s.retryAt):
		st.State = BackingOff
	}
	return st
}

func (s *Seed) strikeLocked(why string) {
	s.strikes++
	if s.strikes >= s.cfg.MaxStrikes {
		s.dropped = true
		s.lastErr = fmt.Sprintf("dropped after %d strikes: %s", s.strikes, why)
	}
}

// backoffLocked returns the wait after the current run of failures.
func (s *Seed) backoffLocked() time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < s.failures && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

// record updates the standing after a Fetch's outcome (err nil: success).
// Errors that are not the server's doing (Kind 0) change nothing. A
// RetryAfter error whose server gave no delay gets the back-off written
// into it.
func (s *Seed) record(err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.failures = 0
		s.retryAt = time.Time{}
		return
	}
	e, ok := err.(*Error)
	if !ok || e.Kind == 0 {
		return
	}
	s.failedTotal++
	if !s.dropped { // a drop's reason stays
		s.lastErr = e.Error()
	}
	switch e.Kind {
	case FileGone:
		if e.File >= 0 && !s.disabled[e.File] {
			if s.disabled == nil {
				s.disabled = make(map[int]bool)
			}
			s.disabled[e.File] = true
			s.servable--
			if s.servable <= 0 {
				s.dropped = true
				s.lastErr = "dropped: no file left: " + e.Error()
			}
		}
		return
	case RetryAfter:
		s.failures++
		d := e.RetryAfter
		if d < 0 {
			d = s.backoffLocked()
		}
		d = min(d, s.cfg.MaxRetryAfter)
		e.RetryAfter = d
		s.retryAt = now.Add(d)
	case Bad:
		s.failures++
		s.retryAt = now.Add(s.backoffLocked())
		s.strikeLocked(e.Error())
	default: // Transient
		s.failures++
		s.retryAt = now.Add(s.backoffLocked())
	}
}

// sample records one successful response: n body bytes read in body time,
// after ttfb.
func (s *Seed) sample(n int64, ttfb, body time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttfb.add(float64(ttfb))
	if n >= minRateSample && body > 0 {
		s.rate.add(float64(n) / body.Seconds())
	}
}

// sampleTTFB records a time to first byte alone: that of a fetch cut
// short before its first byte, a lower bound worth knowing.
func (s *Seed) sampleTTFB(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttfb.add(float64(d))
}

// minRateSample is the smallest body whose transfer time says something
// about the rate; smaller ones measure latency.
const minRateSample = 16 << 10

// ewma is a moving average that takes its first sample as is.
type ewma struct {
	value float64
	set   bool
}

// ewmaWeight is a new sample's weight: a few requests move the average,
// one outlier does not.
const ewmaWeight = 0.25

func (e *ewma) add(x float64) {
	if !e.set {
		e.value, e.set = x, true
		return
	}
	e.value += ewmaWeight * (x - e.value)
}
