package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// call is one announce the fake swarm saw.
type call struct {
	url string
	req AnnounceRequest
	at  time.Time
}

// fakeSwarm stands in for Announce: each URL answers by its behaviour, and
// every call is recorded and passed on to calls.
type fakeSwarm struct {
	mu     sync.Mutex
	behave map[string]func(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error)
	calls  chan call
}

func newFakeSwarm() *fakeSwarm {
	return &fakeSwarm{
		behave: make(map[string]func(context.Context, AnnounceRequest) (*AnnounceResponse, error)),
		calls:  make(chan call, 1000),
	}
}

func (s *fakeSwarm) set(url string, fn func(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error)) {
	s.mu.Lock()
	s.behave[url] = fn
	s.mu.Unlock()
}

func (s *fakeSwarm) announce(ctx context.Context, url string, req AnnounceRequest) (*AnnounceResponse, error) {
	s.calls <- call{url, req, time.Now()}
	s.mu.Lock()
	fn := s.behave[url]
	s.mu.Unlock()
	if fn == nil {
		return nil, fmt.Errorf("%s: connection refused", url)
	}
	return fn(ctx, req)
}

// next returns the next call, failing the test if none comes soon.
func (s *fakeSwarm) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no announce within 5 s")
		return call{}
	}
}

// quiet fails the test if a call comes within d.
func (s *fakeSwarm) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-s.calls:
		t.Fatalf("unexpected announce %v to %s", c.req.Event, c.url)
	case <-time.After(d):
	}
}

func ok(interval time.Duration, peers ...string) func(context.Context, AnnounceRequest) (*AnnounceResponse, error) {
	return func(context.Context, AnnounceRequest) (*AnnounceResponse, error) {
		r := &AnnounceResponse{Interval: interval}
		for _, p := range peers {
			r.Peers = append(r.Peers, ap(p))
		}
		return r, nil
	}
}

func fail(context.Context, AnnounceRequest) (*AnnounceResponse, error) {
	return nil, fmt.Errorf("%w: go away", ErrFailure)
}

// startAnnouncer builds an Announcer on the fake swarm with millisecond
// timings and runs it until the test ends. cancel stops it and waits.
func startAnnouncer(t *testing.T, s *fakeSwarm, cfg AnnouncerConfig, tune func(a *Announcer)) (a *Announcer, cancel func()) {
	t.Helper()
	cfg.Logf = t.Logf
	a = NewAnnouncer(cfg)
	a.announce = s.announce
	a.minGap = time.Millisecond
	a.defaultMin = time.Millisecond
	a.backoffBase = 20 * time.Millisecond
	a.backoffMax = 200 * time.Millisecond
	a.attemptTimeout = 2 * time.Second
	a.stopTimeout = 2 * time.Second
	if tune != nil {
		tune(a)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			stop()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(cancel)
	return a, cancel
}

func urls(st []Status) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.URL)
	}
	return out
}

func TestAnnouncerEvents(t *testing.T) {
	s := newFakeSwarm()
	s.set("http://t/a", ok(30*time.Millisecond, "127.0.0.2:1"))
	var left atomic.Int64
	left.Store(100)
	var peerCalls atomic.Int32
	cfg := AnnouncerConfig{
		Tiers:    [][]string{{"http://t/a"}},
		InfoHash: [20]byte{1},
		PeerID:   [20]byte{2},
		Port:     6881,
		Stats:    func() (int64, int64, int64) { return 7, 100 - left.Load(), left.Load() },
		OnPeers: func(p []netip.AddrPort) {
			if len(p) == 1 && p[0] == ap("127.0.0.2:1") {
				peerCalls.Add(1)
			}
		},
	}
	a, cancel := startAnnouncer(t, s, cfg, nil)

	c := s.next(t)
	if c.req.Event != Started || c.req.InfoHash != cfg.InfoHash || c.req.PeerID != cfg.PeerID || c.req.Port != 6881 ||
		c.req.NumWant != -1 || c.req.Left != 100 || c.req.Uploaded != 7 {
		t.Fatalf("first announce %+v", c.req)
	}
	key := c.req.Key
	// Periodic announces carry no event.
	for range 2 {
		if c := s.next(t); c.req.Event != None || c.req.Key != key {
			t.Fatalf("periodic announce %+v", c.req)
		}
	}
	left.Store(0)
	a.Completed()
	a.Completed()
	for {
		c := s.next(t)
		if c.req.Event == Completed {
			if c.req.Left != 0 || c.req.Downloaded != 100 {
				t.Fatalf("completed announce %+v", c.req)
			}
			break
		}
		if c.req.Event != None {
			t.Fatalf("event %v before completed", c.req.Event)
		}
	}
	// Completed is sent once.
	for range 3 {
		if c := s.next(t); c.req.Event != None {
			t.Fatalf("event %v after completed", c.req.Event)
		}
	}
	cancel()
	var last call
	for len(s.calls) > 0 {
		last = <-s.calls
	}
	if last.req.Event != Stopped || last.req.NumWant != 0 || last.req.Key != key {
		t.Fatalf("last announce %+v, want stopped", last.req)
	}
	if peerCalls.Load() < 5 {
		t.Fatalf("OnPeers called %d times", peerCalls.Load())
	}
	st := a.Status()
	if len(st) != 1 || st[0].LastError != "" || st[0].Peers != 1 || st[0].LastAnnounce.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

func TestAnnouncerCompletedBeforeStarted(t *testing.T) {
	s := newFakeSwarm()
	s.set("http://t/a", ok(time.Hour))
	// Completed before Run: started goes first, completed right after.
	_, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t/a"}}}, func(a *Announcer) {
		a.Completed()
	})
	if c := s.next(t); c.req.Event != Started {
		t.Fatalf("first event %v", c.req.Event)
	}
	if c := s.next(t); c.req.Event != Completed {
		t.Fatalf("second event %v", c.req.Event)
	}
	s.quiet(t, 100*time.Millisecond)
	cancel()
	if c := s.next(t); c.req.Event != Stopped {
		t.Fatalf("last event %v", c.req.Event)
	}
}

func TestAnnouncerTierFallbackAndPromotion(t *testing.T) {
	s := newFakeSwarm()
	cfg := AnnouncerConfig{Tiers: [][]string{{"http://a1", "http://a2", ""}, {}, {"udp://b1:1", "http://b2", "http://a1"}}}
	a, cancel := startAnnouncer(t, s, cfg, func(a *Announcer) {
		a.backoffBase = time.Hour // failed trackers stay out of these rounds
		a.backoffMax = time.Hour
		// The shuffled order, as Status reports it.
		order := urls(a.Status())
		if len(order) != 4 || !slices.Contains(order[:2], "http://a1") || !slices.Contains(order[2:], "http://b2") {
			t.Fatalf("tiers %v", order)
		}
		// Everything fails but the last of the second tier.
		s.set(order[3], ok(20*time.Millisecond))
	})
	var got []string
	for range 4 {
		got = append(got, s.next(t).url)
	}
	order := got
	// Next rounds go straight to the promoted URL: the others back off.
	for range 3 {
		if c := s.next(t); c.url != order[3] || c.req.Event != None {
			t.Fatalf("call to %s (%v), want %s", c.url, c.req.Event, order[3])
		}
	}
	// A second round has begun, so the first one's promotion is done.
	st := urls(a.Status())
	if want := []string{order[0], order[1], order[3], order[2]}; !slices.Equal(st, want) {
		t.Fatalf("after the first round the order is %v, want %v (calls %v)", st, want, got)
	}
	cancel()
	for len(s.calls) > 0 {
		if c := <-s.calls; c.req.Event == Stopped && c.url != order[3] {
			t.Fatalf("stopped sent to %s, which never accepted started", c.url)
		}
	}
	for i, x := range a.Status() {
		if (x.URL == order[3]) != (x.LastError == "") {
			t.Fatalf("status %d: %+v", i, x)
		}
	}
}

func TestAnnouncerFirstTierRecovers(t *testing.T) {
	s := newFakeSwarm()
	cfg := AnnouncerConfig{Tiers: [][]string{{"http://a"}, {"http://b"}}}
	var aCalls atomic.Int32
	s.set("http://a", func(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error) {
		if aCalls.Add(1) == 1 {
			return nil, errors.New("down")
		}
		return &AnnounceResponse{Interval: 10 * time.Millisecond}, nil
	})
	s.set("http://b", ok(10*time.Millisecond))
	_, cancel := startAnnouncer(t, s, cfg, func(a *Announcer) {
		a.backoffBase = 50 * time.Millisecond
		a.jitter = func() float64 { return 0 }
	})
	steps := []struct {
		url string
		ev  Event
	}{{"http://a", Started}, {"http://b", Started}}
	for _, want := range steps {
		if c := s.next(t); c.url != want.url || c.req.Event != want.ev {
			t.Fatalf("call %s %v, want %s %v", c.url, c.req.Event, want.url, want.ev)
		}
	}
	// b serves while a backs off, then a is first again and gets its started.
	for {
		c := s.next(t)
		if c.url == "http://b" {
			if c.req.Event != None {
				t.Fatalf("b got %v", c.req.Event)
			}
			continue
		}
		if c.req.Event != Started {
			t.Fatalf("recovered a got %v, want started", c.req.Event)
		}
		break
	}
	if c := s.next(t); c.url != "http://a" || c.req.Event != None {
		t.Fatalf("call %s %v after a recovered", c.url, c.req.Event)
	}
	cancel()
	stopped := map[string]bool{}
	for len(s.calls) > 0 {
		if c := <-s.calls; c.req.Event == Stopped {
			stopped[c.url] = true
		}
	}
	if !stopped["http://a"] || !stopped["http://b"] {
		t.Fatalf("stopped sent to %v, want both", stopped)
	}
}

func TestAnnouncerBackoff(t *testing.T) {
	s := newFakeSwarm()
	s.set("http://t", fail)
	const base, maxWait = 20 * time.Millisecond, 80 * time.Millisecond
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t"}}}, func(a *Announcer) {
		a.backoffBase, a.backoffMax = base, maxWait
	})
	var times []time.Time
	for range 6 {
		c := s.next(t)
		if c.req.Event != Started {
			t.Fatalf("event %v while never started", c.req.Event)
		}
		times = append(times, c.at)
	}
	cancel()
	for i := 1; i < len(times); i++ {
		want := min(base<<(i-1), maxWait) * 3 / 4
		if gap := times[i].Sub(times[i-1]); gap < want {
			t.Errorf("wait %d was %v, want at least %v", i, gap, want)
		}
	}
	st := a.Status()
	if st[0].LastError == "" || !st[0].LastAnnounce.IsZero() || st[0].NextAnnounce.IsZero() {
		t.Fatalf("status %+v", st[0])
	}
	// Never started, so no stopped.
	for len(s.calls) > 0 {
		if c := <-s.calls; c.req.Event == Stopped {
			t.Fatal("stopped sent to a tracker that never accepted started")
		}
	}
}

func TestBackoffSchedule(t *testing.T) {
	a := NewAnnouncer(AnnouncerConfig{})
	for _, j := range []float64{0, 0.5, 0.999} {
		a.jitter = func() float64 { return j }
		for n, want := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
			8 * time.Minute, 16 * time.Minute, 30 * time.Minute, 30 * time.Minute} {
			got := a.backoff(n + 1)
			if got < want*3/4 || got > want*5/4 {
				t.Errorf("jitter %v: backoff(%d) = %v, want %v ±25%%", j, n+1, got, want)
			}
		}
		if got := a.backoff(1000); got < backoffMax*3/4 || got > backoffMax*5/4 {
			t.Errorf("backoff(1000) = %v", got)
		}
	}
}

func TestAnnouncerIntervalFloors(t *testing.T) {
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{"http://t"}}, DefaultInterval: 20 * time.Minute})
	tr := a.tiers[0][0]
	for _, tc := range []struct {
		name                  string
		resp                  AnnounceResponse
		interval, minInterval time.Duration
	}{
		{"tracker's values", AnnounceResponse{Interval: 40 * time.Minute, MinInterval: 10 * time.Minute}, 40 * time.Minute, 10 * time.Minute},
		{"default interval", AnnounceResponse{}, 20 * time.Minute, 5 * time.Minute},
		{"tiny interval", AnnounceResponse{Interval: time.Second}, time.Minute, time.Minute},
		{"min above interval", AnnounceResponse{Interval: 2 * time.Minute, MinInterval: 10 * time.Minute}, 10 * time.Minute, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.succeeded(tr, 0, None, &tc.resp)
			if a.interval != tc.interval || a.minInterval != tc.minInterval {
				t.Fatalf("interval %v, min %v; want %v, %v", a.interval, a.minInterval, tc.interval, tc.minInterval)
			}
			now := a.lastOK
			if due := a.nextRound(now); !due.Equal(now.Add(tc.interval)) {
				t.Fatalf("next round in %v, want %v", due.Sub(now), tc.interval)
			}
			a.AnnounceNow()
			if due := a.nextRound(now); !due.Equal(now.Add(tc.minInterval)) {
				t.Fatalf("after AnnounceNow next round in %v, want %v", due.Sub(now), tc.minInterval)
			}
			a.nowWanted = false
		})
	}
}

func TestAnnouncerAnnounceNow(t *testing.T) {
	s := newFakeSwarm()
	const minInterval = 150 * time.Millisecond
	s.set("http://t", func(context.Context, AnnounceRequest) (*AnnounceResponse, error) {
		return &AnnounceResponse{Interval: time.Hour, MinInterval: minInterval}, nil
	})
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t"}}}, nil)
	first := s.next(t)
	s.quiet(t, 50*time.Millisecond) // the interval is an hour
	a.AnnounceNow()
	a.AnnounceNow()
	c := s.next(t)
	if gap := c.at.Sub(first.at); gap < minInterval {
		t.Fatalf("AnnounceNow announced %v after the last, min interval is %v", gap, minInterval)
	}
	if c.req.Event != None {
		t.Fatalf("event %v", c.req.Event)
	}
	s.quiet(t, 2*minInterval) // one request, one announce
	cancel()
}

func TestAnnouncerTrackerIDEcho(t *testing.T) {
	s := newFakeSwarm()
	var n atomic.Int32
	s.set("http://t", func(context.Context, AnnounceRequest) (*AnnounceResponse, error) {
		r := &AnnounceResponse{Interval: 10 * time.Millisecond}
		if n.Add(1) == 1 {
			r.TrackerID = "tid-1"
		}
		return r, nil
	})
	_, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t"}}}, nil)
	if c := s.next(t); c.req.TrackerID != "" {
		t.Fatalf("first announce sent tracker id %q", c.req.TrackerID)
	}
	for range 3 { // kept when later responses omit it
		if c := s.next(t); c.req.TrackerID != "tid-1" {
			t.Fatalf("tracker id %q, want tid-1", c.req.TrackerID)
		}
	}
	cancel()
	var last call
	for len(s.calls) > 0 {
		last = <-s.calls
	}
	if last.req.Event != Stopped || last.req.TrackerID != "tid-1" {
		t.Fatalf("stopped %+v", last.req)
	}
}

func TestAnnouncerStopIsBounded(t *testing.T) {
	s := newFakeSwarm()
	s.set("http://t", func(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error) {
		if req.Event == Stopped {
			<-ctx.Done() // a tracker that never answers
			return nil, ctx.Err()
		}
		return &AnnounceResponse{Interval: time.Hour}, nil
	})
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t"}}}, func(a *Announcer) {
		a.stopTimeout = 100 * time.Millisecond
	})
	s.next(t)
	start := time.Now()
	cancel()
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Run returned %v after cancel; the stop timeout is 100 ms", d)
	}
	if c := s.next(t); c.req.Event != Stopped {
		t.Fatalf("event %v", c.req.Event)
	}
	if st := a.Status(); st[0].LastError == "" {
		t.Fatalf("status %+v", st[0])
	}
}

func TestAnnouncerCancelDuringAnnounce(t *testing.T) {
	s := newFakeSwarm()
	entered := make(chan struct{})
	s.set("http://t", func(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error) {
		if req.Event == Started {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &AnnounceResponse{}, nil
	})
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t"}}}, nil)
	<-entered
	cancel()
	s.next(t)
	s.quiet(t, 50*time.Millisecond) // never started: nothing to stop
	if st := a.Status(); st[0].LastError != "" {
		t.Fatalf("our own cancellation counted as the tracker's failure: %+v", st[0])
	}
}

func TestAnnouncerNoTrackers(t *testing.T) {
	s := newFakeSwarm()
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{}, {""}}}, nil)
	a.AnnounceNow()
	a.Completed()
	s.quiet(t, 30*time.Millisecond)
	cancel()
	if st := a.Status(); len(st) != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestAnnouncerConcurrentUse(t *testing.T) {
	s := newFakeSwarm()
	s.set("http://t", ok(time.Millisecond, "127.0.0.2:1"))
	go func() { // drain
		for range s.calls {
		}
	}()
	defer close(s.calls)
	a, cancel := startAnnouncer(t, s, AnnouncerConfig{Tiers: [][]string{{"http://t", "http://u"}}}, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				a.AnnounceNow()
				a.Completed()
				_ = a.Status()
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	cancel()
}
