package tracker

// Announcer tests through the real Announce against the fake trackers.

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestAnnouncerWithFakeTrackers(t *testing.T) {
	dead := newFakeHTTP(t, write(nil))
	dead.srv.Close() // connection refused
	u := newFakeUDP(t)
	u.mu.Lock()
	u.peers = []byte(compactPeers("127.0.0.7:7"))
	u.mu.Unlock()
	h := newFakeHTTP(t, write([]byte("d8:intervali1800e5:peers6:\x7f\x00\x00\x08\x00\x08e")))
	got := make(chan []netip.AddrPort, 10)
	a := NewAnnouncer(AnnouncerConfig{
		Tiers:    [][]string{{dead.url()}, {u.url()}, {h.url()}},
		InfoHash: [20]byte{9},
		Port:     1234,
		OnPeers:  func(p []netip.AddrPort) { got <- p },
		Logf:     t.Logf,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	select {
	case p := <-got:
		if !slices.Equal(p, []netip.AddrPort{ap("127.0.0.7:7")}) {
			t.Fatalf("peers %v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no peers")
	}
	cancel()
	<-done
	u.mu.Lock()
	var events []uint32
	for _, r := range u.announces {
		events = append(events, r.event)
	}
	u.mu.Unlock()
	if !slices.Equal(events, []uint32{2, 3}) {
		t.Fatalf("UDP tracker got events %v, want started, stopped", events)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queries) != 0 {
		t.Fatalf("third tier was asked: %v", h.queries)
	}
	st := a.Status()
	if st[0].LastError == "" || st[1].LastError != "" || st[1].Peers != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestAnnouncerHTTPTrackerID(t *testing.T) {
	h := newFakeHTTP(t, write([]byte("d8:intervali1800e10:tracker id5:t-id!5:peers0:e")))
	a := NewAnnouncer(AnnouncerConfig{Tiers: [][]string{{h.url()}}, Logf: t.Logf})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	waitQueries := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			h.mu.Lock()
			got := len(h.queries)
			h.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d requests, want %d", got, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitQueries(1)
	if q := h.lastQuery(t); q.Get("event") != "started" || q.Has("trackerid") {
		t.Fatalf("first request %v", q)
	}
	a.Completed()
	waitQueries(2)
	if q := h.lastQuery(t); q.Get("event") != "completed" || q.Get("trackerid") != "t-id!" {
		t.Fatalf("second request %v", q)
	}
	cancel()
	<-done
	if q := h.lastQuery(t); q.Get("event") != "stopped" || q.Get("trackerid") != "t-id!" || q.Get("numwant") != "0" {
		t.Fatalf("last request %v", q)
	}
}
