package webseed

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRetryAfter checks 503 and 429: the delay from Retry-After (seconds or
// an HTTP date, capped), or the back-off when there is none, and that the
// seed is not Ready until it has passed.
func TestRetryAfter(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		kind       Kind
		wait       time.Duration
	}{
		{"503, seconds", 503, "7", RetryAfter, 7 * time.Second},
		{"503, date", 503, clk.Now().Add(30 * time.Second).Format(http.TimeFormat), RetryAfter, 30 * time.Second},
		{"503, date past", 503, clk.Now().Add(-time.Hour).Format(http.TimeFormat), RetryAfter, 0},
		{"503, capped", 503, "99999999999999999999", RetryAfter, time.Hour},
		{"503, none", 503, "", Transient, time.Second},
		{"503, junk", 503, "soon", Transient, time.Second},
		{"429, seconds", 429, "2", RetryAfter, 2 * time.Second},
		{"429, none", 429, "", RetryAfter, time.Second},
		{"500", 500, "60", Transient, time.Second},
	}
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 3000})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tt)
			srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				return true
			})
			s := newSeed(t, srv.URL+"/", tt.layout(t), Config{Now: clk.Now})
			_, _, err := fetch(t, s, 0, 1)
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Kind != tc.kind || e.Status != tc.status {
				t.Fatalf("error %v, want kind %v, status %d", err, tc.kind, tc.status)
			}
			if tc.kind == RetryAfter && e.RetryAfter != tc.wait {
				t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tc.wait)
			}
			now := clk.Now()
			if tc.wait > 0 && s.Ready(now.Add(tc.wait-time.Millisecond)) {
				t.Errorf("ready before %v", tc.wait)
			}
			if !s.Ready(now.Add(tc.wait)) {
				t.Errorf("not ready after %v", tc.wait)
			}
			if st := s.Stats(); st.RetryAt != now.Add(tc.wait) || (tc.wait > 0) != (st.State == BackingOff) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestBackoff checks the exponential back-off of consecutive failures, its
// cap, and that a success ends it.
func TestBackoff(t *testing.T) {
	clk := newClock()
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 3000})
	srv := newServer(t, tt)
	var mu sync.Mutex
	failing := true
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusBadGateway)
		}
		return failing
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{Now: clk.Now, MinBackoff: time.Second, MaxBackoff: 5 * time.Second})
	for i, want := range []time.Duration{1, 2, 4, 5, 5} {
		if _, _, err := fetch(t, s, 0, 1); KindOf(err) != Transient {
			t.Fatalf("failure %d: %v", i, err)
		}
		st := s.Stats()
		if got := st.RetryAt.Sub(clk.Now()); got != want*time.Second || st.ConsecutiveFailures != i+1 {
			t.Errorf("failure %d: back-off %v (%d failures), want %v", i+1, got, st.ConsecutiveFailures, want*time.Second)
		}
		// StatsAt describes the standing Ready gives at the same instant,
		// whatever the clock says by then.
		before, end := clk.Now().Add(want*time.Second-time.Nanosecond), st.RetryAt
		if s.Ready(before) || s.StatsAt(before).State != BackingOff || !s.Ready(end) || s.StatsAt(end).State != Active {
			t.Errorf("failure %d: StatsAt disagrees with Ready around the back-off's end", i+1)
		}
		clk.advance(want * time.Second)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if _, _, err := fetch(t, s, 0, 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ConsecutiveFailures != 0 || !st.RetryAt.IsZero() || st.State != Active || st.Failures != 5 {
		t.Errorf("after a success: %+v", st)
	}
}

// TestFileGone checks that 404, 410, 403 and 416 disable that file only,
// that later runs touching it fail without a request, and that a seed with
// no file left is dropped.
func TestFileGone(t *testing.T) {
	tt := makeTorrent(t, "t", 100, false, // piece i is file i
		tfile{path: []string{"a"}, size: 100},
		tfile{path: []string{"b"}, size: 100},
		tfile{path: []string{"c"}, size: 100},
		tfile{path: []string{"d"}, size: 100},
		tfile{path: []string{"e"}, size: 100},
	)
	srv := newServer(t, tt)
	var mu sync.Mutex // guards gone
	gone := map[string]int{"/t/a": 404, "/t/b": 410, "/t/c": 403, "/t/d": 416}
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		code, ok := gone[r.URL.Path]
		mu.Unlock()
		if ok {
			w.WriteHeader(code)
			return true
		}
		return false
	})
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{})
	for p := range 4 {
		_, _, err := fetch(t, s, p, 1)
		if e, ok := errors.AsType[*Error](err); !ok || e.Kind != FileGone || e.File != p {
			t.Fatalf("piece %d: %v, want FileGone of file %d", p, err, p)
		}
		if s.Has(p) {
			t.Errorf("Has(%d) after its file went", p)
		}
	}
	if !s.Has(4) || !s.Ready(time.Now()) {
		t.Fatal("the last file is not served any more")
	}
	n := len(srv.reqs())
	if _, _, err := fetch(t, s, 3, 2); !errors.Is(err, ErrFileDisabled) {
		t.Errorf("run touching a disabled file: %v", err)
	}
	if len(srv.reqs()) != n {
		t.Error("a request was made for a disabled file")
	}
	if got, _, err := fetch(t, s, 4, 1); err != nil || string(got) != string(tt.pieces(4, 1)) {
		t.Errorf("the file still there: %v", err)
	}
	if st := s.Stats(); st.DisabledFiles != 4 || st.State != Active || st.ConsecutiveFailures != 0 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	gone["/t/e"] = 404
	mu.Unlock()
	if _, _, err := fetch(t, s, 4, 1); KindOf(err) != FileGone {
		t.Fatal(err)
	}
	if st := s.Stats(); st.State != Dropped || !strings.Contains(st.LastError, "no file left") {
		t.Errorf("no file left: %+v", st)
	}
	if _, _, err := fetch(t, s, 4, 1); err != ErrDropped {
		t.Errorf("fetch from a dropped seed: %v", err)
	}
}

// TestStrikes checks that MaxStrikes bad pieces or Bad responses, in any
// mix, drop the seed for good.
func TestStrikes(t *testing.T) {
	tt := makeTorrent(t, "f", 1000, true, tfile{size: 3000})
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusTeapot) // an unexpected status is Bad
		return true
	})
	clk := newClock()
	s := newSeed(t, srv.URL+"/", tt.layout(t), Config{Now: clk.Now})
	if first, second := s.BadPiece(), s.BadPiece(); first || second {
		t.Fatal("dropped after 2 strikes")
	}
	if !s.Ready(clk.Now()) {
		t.Fatal("bad pieces alone made the seed back off")
	}
	_, _, err := fetch(t, s, 0, 1)
	if KindOf(err) != Bad {
		t.Fatalf("418: %v", err)
	}
	st := s.Stats()
	if st.State != Dropped || st.Strikes != 3 || s.Ready(clk.Now().Add(time.Hour)) || s.Has(0) {
		t.Errorf("after 3 strikes: %+v", st)
	}
	if _, _, err := fetch(t, s, 0, 1); err != ErrDropped {
		t.Errorf("fetch from a dropped seed: %v", err)
	}

	s2 := newSeed(t, srv.URL+"/", tt.layout(t), Config{MaxStrikes: 2})
	if s2.BadPiece() || !s2.BadPiece() {
		t.Error("MaxStrikes 2: not dropped at the second bad piece")
	}
}

func TestStatsETA(t *testing.T) {
	if _, ok := (Stats{}).ETA(100); ok {
		t.Error("ETA without a measurement")
	}
	st := Stats{Rate: 1 << 20, TTFB: 10 * time.Millisecond}
	if d, ok := st.ETA(1 << 20); !ok || d != time.Second+10*time.Millisecond {
		t.Errorf("ETA(1 MiB) at 1 MiB/s = %v", d)
	}
	for _, s := range []State{Active, BackingOff, Dropped, State(9)} {
		if s.String() == "" {
			t.Errorf("State %d has no name", s)
		}
	}
}
