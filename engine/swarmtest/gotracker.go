package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// GoTracker is an HTTP tracker in the test's own process, for what
// Debian's opentracker cannot do: it is IPv4-only, and GoTracker serves
// IPv6 peers (BEP 7). It listens on 127.0.0.1 and [::1] on one port and
// answers every info-hash (no whitelist) with the compact "peers" (IPv4)
// and "peers6" (IPv6) of everyone else who announced it. A peer is
// recorded at the address its announce came from and, when the announce
// says "ipv6=", at that address too. Methods are safe for concurrent use.
type GoTracker struct {
	// HTTP4 and HTTP6 are the announce URLs on each address:
	// "http://127.0.0.1:PORT/announce" and "http://[::1]:PORT/announce".
	HTTP4, HTTP6 string

	srv *http.Server
	wg  sync.WaitGroup // the two Serve goroutines

	mu     sync.Mutex                               // guards peers and params
	peers  map[[20]byte]map[string][]netip.AddrPort // info-hash -> peer id -> addresses
	params map[[20]byte][]string                    // info-hash -> raw queries, in order
}

// StartGoTracker starts a GoTracker, stopped in tb.Cleanup.
func StartGoTracker(tb testing.TB) *GoTracker {
	tb.Helper()
	t := &GoTracker{
		peers:  make(map[[20]byte]map[string][]netip.AddrPort),
		params: make(map[[20]byte][]string),
	}
	var l4, l6 net.Listener
	var err error
	for range 20 {
		l4, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("swarmtest.StartGoTracker: %v", err)
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err = net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err == nil {
			break
		}
		l4.Close()
		l4 = nil
	}
	if l4 == nil {
		tb.Fatalf("swarmtest.StartGoTracker: no port free on 127.0.0.1 and ::1: %v", err)
	}
	port := l4.Addr().(*net.TCPAddr).Port
	t.HTTP4 = fmt.Sprintf("http://127.0.0.1:%d/announce", port)
	t.HTTP6 = fmt.Sprintf("http://[::1]:%d/announce", port)
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", t.announce)
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	for _, l := range []net.Listener{l4, l6} {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if err := t.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				tb.Errorf("swarmtest.GoTracker: %v", err)
			}
		}()
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t.srv.Shutdown(ctx)
		t.srv.Close()
		t.wg.Wait()
	})
	return t
}

// announce records the peer and answers with the others.
func (t *GoTracker) announce(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(reason string) {
		b, _ := bencode.Marshal(map[string]any{"failure reason": reason})
		w.Write(b)
	}
	ihs, id := q.Get("info_hash"), q.Get("peer_id")
	if len(ihs) != 20 || len(id) != 20 {
		fail("info_hash and peer_id must be 20 bytes")
		return
	}
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		fail("bad port")
		return
	}
	from, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		fail("bad remote address")
		return
	}
	addrs := []netip.AddrPort{netip.AddrPortFrom(from.Addr().Unmap(), uint16(port))}
	if v6 := q.Get("ipv6"); v6 != "" {
		// BEP 7: an address, or an address and a port.
		if ap, err := netip.ParseAddrPort(v6); err == nil && ap.Addr().Is6() {
			addrs = append(addrs, ap)
		} else if a, err := netip.ParseAddr(v6); err == nil && a.Is6() && !a.Is4In6() {
			addrs = append(addrs, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	var ih [20]byte
	copy(ih[:], ihs)

	var p4, p6 []byte
	t.mu.Lock()
	t.params[ih] = append(t.params[ih], r.URL.RawQuery)
	swarm := t.peers[ih]
	if swarm == nil {
		swarm = make(map[string][]netip.AddrPort)
		t.peers[ih] = swarm
	}
	if q.Get("event") == "stopped" {
		delete(swarm, id)
	} else {
		swarm[id] = addrs
	}
	for pid, as := range swarm {
		if pid == id {
			continue
		}
		for _, a := range as {
			b, _ := a.Addr().MarshalBinary()
			if a.Addr().Is4() {
				p4 = append(p4, b...)
				p4 = append(p4, byte(a.Port()>>8), byte(a.Port()))
			} else {
				p6 = append(p6, b...)
				p6 = append(p6, byte(a.Port()>>8), byte(a.Port()))
			}
		}
	}
	t.mu.Unlock()
	b, err := bencode.Marshal(map[string]any{
		"interval":     60,
		"min interval": 5,
		"peers":        string(p4),
		"peers6":       string(p6),
	})
	if err != nil {
		fail(err.Error())
		return
	}
	w.Write(b)
}

// Peers lists the addresses the tracker hands out for ih, sorted.
func (t *GoTracker) Peers(ih [20]byte) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, as := range t.peers[ih] {
		for _, a := range as {
			out = append(out, a.String())
		}
	}
	sort.Strings(out)
	return out
}

// Queries returns the raw query strings of every announce for ih, in the
// order they arrived.
func (t *GoTracker) Queries(ih [20]byte) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.params[ih]...)
}
