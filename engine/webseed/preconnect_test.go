package webseed

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPreconnect checks that Preconnect opens the connection the next
// fetch uses, over HTTP and HTTPS, with a HEAD of the first file the seed
// serves (not an empty one).
func TestPreconnect(t *testing.T) {
	tt := makeTorrent(t, "pre", 4096, false,
		tfile{path: []string{"empty"}},
		tfile{path: []string{"b.bin"}, size: 3000},
		tfile{path: []string{"c.bin"}, size: 9000})
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			var srv *server
			cfg := Config{}
			if tls {
				srv = newTLSServer(t, tt)
				tlsConf := srv.Client().Transport.(*http.Transport).TLSClientConfig
				cfg.Client = NewClient(ClientConfig{TLSConfig: tlsConf})
				t.Cleanup(cfg.Client.CloseIdleConnections)
			} else {
				srv = newServer(t, tt)
			}
			var mu sync.Mutex
			var methods []string
			srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				methods = append(methods, r.Method)
				mu.Unlock()
				return false
			})
			s := newSeed(t, srv.URL+"/", tt.layout(t), cfg)
			if err := s.Preconnect(context.Background()); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			conns, reqs := srv.conns, append([]string(nil), srv.requests...)
			srv.mu.Unlock()
			mu.Lock()
			first := ""
			if len(methods) > 0 {
				first = methods[0]
			}
			mu.Unlock()
			if conns != 1 || len(reqs) != 1 || reqs[0] != "/pre/b.bin" || first != http.MethodHead {
				t.Fatalf("after Preconnect: %d connections, requests %q (%q), want one HEAD of /pre/b.bin", conns, reqs, first)
			}
			if st := s.Stats(); st.Requests != 0 || st.Bytes != 0 {
				t.Errorf("Preconnect counted in the stats: %+v", st)
			}
			// The last piece lies in c.bin alone: one request.
			if _, _, err := fetch(t, s, 2, 1); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			conns = srv.conns
			srv.mu.Unlock()
			if conns != 1 {
				t.Errorf("%d connections after Preconnect and a fetch, want the one Preconnect opened", conns)
			}
			checkAll(t, s, tt)
		})
	}
}

// TestPreconnectNotCounted checks that a failed or refused Preconnect does
// not count against the seed, and that its error carries no query string.
func TestPreconnectNotCounted(t *testing.T) {
	tt := makeTorrent(t, "one", 4096, true, tfile{path: []string{"one"}, size: 5000})
	srv := newServer(t, tt)
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	s := newSeed(t, srv.URL+"/one", tt.layout(t), Config{})
	if err := s.Preconnect(context.Background()); err != nil {
		t.Fatalf("a refused HEAD: %v, want nil (the connection is open)", err)
	}
	if !s.Ready(time.Now()) || s.Stats().ConsecutiveFailures != 0 {
		t.Fatalf("a refused HEAD counted against the seed: %+v", s.Stats())
	}
	checkAll(t, s, tt)

	srv.Close()
	gone := newSeed(t, srv.URL+"/one?token=secret", tt.layout(t), Config{})
	err := gone.Preconnect(context.Background())
	if err == nil {
		t.Fatal("Preconnect to a closed server: no error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the query: %v", err)
	}
	if st := gone.Stats(); !gone.Ready(time.Now()) || st.Failures != 0 {
		t.Errorf("an unreachable server at Preconnect counted against the seed: %+v", st)
	}
}

// TestPreconnectRangesDoubtful: a HEAD answered without "Accept-Ranges:
// bytes" marks the seed's ranges doubtful, one that says so does not, and
// neither counts as an answer to a range request.
func TestPreconnectRangesDoubtful(t *testing.T) {
	tt := makeTorrent(t, "one", 4096, true, tfile{path: []string{"one"}, size: 5000})
	for _, tc := range []struct {
		header   string // Accept-Ranges; "-" for none
		doubtful bool
	}{{"-", true}, {"none", true}, {"bytes", false}, {"Bytes", false}, {"foo, bytes", false}} {
		srv := newServer(t, tt)
		srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodHead {
				return false
			}
			if tc.header != "-" {
				w.Header().Set("Accept-Ranges", tc.header)
			}
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(http.StatusOK)
			return true
		})
		s := newSeed(t, srv.URL+"/one", tt.layout(t), Config{})
		if err := s.Preconnect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.RangesDoubtful != tc.doubtful || st.Answered || st.NoRanges {
			t.Errorf("Accept-Ranges %q: %+v, want RangesDoubtful %v and nothing answered", tc.header, st, tc.doubtful)
		}
	}
}
