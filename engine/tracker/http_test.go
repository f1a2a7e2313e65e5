package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/compact"
)

// fakeHTTP is an HTTP tracker on 127.0.0.1 that answers with whatever its
// handler writes and remembers each request's query.
type fakeHTTP struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []string // raw query strings
	handler func(w http.ResponseWriter, r *http.Request)
}

func newFakeHTTP(t *testing.T, handler func(w http.ResponseWriter, r *http.Request)) *fakeHTTP {
	t.Helper()
	f := &fakeHTTP{handler: handler}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		f.handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTP) url() string { return f.srv.URL + "/announce" }

func (f *fakeHTTP) lastQuery(t *testing.T) url.Values {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		t.Fatal("tracker got no request")
	}
	v, err := url.ParseQuery(f.queries[len(f.queries)-1])
	if err != nil {
		t.Fatalf("bad query %q: %v", f.queries[len(f.queries)-1], err)
	}
	return v
}

// body bencodes v for a handler.
func body(t *testing.T, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(b []byte) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { w.Write(b) }
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func compactPeers(ps ...string) string {
	var b []byte
	for _, p := range ps {
		b = compact.AppendPeer(b, ap(p))
	}
	return string(b)
}

func testRequest() AnnounceRequest {
	var req AnnounceRequest
	copy(req.InfoHash[:], "\x00\x01 +&=%?\xff\xfeinfohash-xyz")
	copy(req.PeerID[:], "-SW0001-abcdefghijkl")
	req.Port = 6881
	req.Uploaded, req.Downloaded, req.Left = 1, 2, 3
	req.NumWant = -1
	req.Key = 0xDEADBEEF
	return req
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHTTPRequestParameters(t *testing.T) {
	f := newFakeHTTP(t, write([]byte("d8:intervali1800e5:peers0:e")))
	req := testRequest()
	req.Event = Started
	req.NumWant = 50
	req.TrackerID = "id&1"
	if _, err := Announce(ctxT(t), f.srv.URL+"/announce?passkey=s3cr%2Ft&x=1#frag", req); err != nil {
		t.Fatal(err)
	}
	q := f.lastQuery(t)
	want := map[string]string{
		"passkey":    "s3cr/t",
		"x":          "1",
		"info_hash":  string(req.InfoHash[:]),
		"peer_id":    string(req.PeerID[:]),
		"port":       "6881",
		"uploaded":   "1",
		"downloaded": "2",
		"left":       "3",
		"compact":    "1",
		"event":      "started",
		"numwant":    "50",
		"key":        "DEADBEEF",
		"trackerid":  "id&1",
	}
	for k, v := range want {
		if got := q[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(q) != len(want) {
		t.Errorf("query has %d keys, want %d: %v", len(q), len(want), q)
	}
	// info_hash is byte-by-byte percent-encoding, no '+' for space.
	f.mu.Lock()
	raw := f.queries[len(f.queries)-1]
	f.mu.Unlock()
	if !strings.Contains(raw, "info_hash=%00%01%20%2B%26%3D%25%3F%FF%FEinfohash-x&") {
		t.Errorf("raw query %q", raw)
	}

	// No event and the default numwant leave those parameters out.
	req = testRequest()
	if _, err := Announce(ctxT(t), f.url(), req); err != nil {
		t.Fatal(err)
	}
	q = f.lastQuery(t)
	for _, k := range []string{"event", "numwant", "trackerid"} {
		if q.Has(k) {
			t.Errorf("%s sent: %q", k, q[k])
		}
	}
}

func TestHTTPAnnounceURL(t *testing.T) {
	req := AnnounceRequest{NumWant: -1}
	for _, tc := range []struct{ name, in, prefix string }{
		{"plain", "http://t/a", "http://t/a?info_hash="},
		{"query", "http://t/a?pk=1", "http://t/a?pk=1&info_hash="},
		{"trailing ?", "http://t/a?", "http://t/a?info_hash="},
		{"trailing &", "http://t/a?pk=1&", "http://t/a?pk=1&info_hash="},
		{"fragment", "http://t/a?pk=1#x", "http://t/a?pk=1&info_hash="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := httpAnnounceURL(tc.in, req); !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("got %q, want prefix %q", got, tc.prefix)
			}
		})
	}
}

func TestHTTPResponses(t *testing.T) {
	v6 := compact.AppendPeer(nil, ap("[2001:db8::1]:6881"))
	// An IPv4-mapped entry is unmapped, and then is a duplicate.
	v6 = append(v6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 9, 0, 9)
	for _, tc := range []struct {
		name    string
		body    any
		want    AnnounceResponse
		wantErr string
	}{
		{
			name: "compact",
			body: map[string]any{
				"interval": 1800, "min interval": 60, "complete": 5, "incomplete": 7,
				"peers": compactPeers("127.0.0.2:6881", "127.0.0.3:6882", "127.0.0.2:6881"),
			},
			want: AnnounceResponse{Interval: 30 * time.Minute, MinInterval: time.Minute, Seeders: 5, Leechers: 7,
				Peers: []netip.AddrPort{ap("127.0.0.2:6881"), ap("127.0.0.3:6882")}},
		},
		{
			name: "dict peers",
			body: map[string]any{
				"interval": 900,
				"peers": []any{
					map[string]any{"ip": "127.0.0.4", "port": 1, "peer id": "xxxxxxxxxxxxxxxxxxxx"},
					map[string]any{"ip": "::1", "port": 2},
					map[string]any{"ip": "tracker.example", "port": 3}, // names are not resolved
					map[string]any{"ip": "127.0.0.5", "port": 70000},   // bad port
					map[string]any{"ip": "127.0.0.6"},                  // no port
					map[string]any{"ip": 5, "port": 5},                 // bad type
				},
			},
			want: AnnounceResponse{Interval: 15 * time.Minute, Peers: []netip.AddrPort{ap("127.0.0.4:1"), ap("[::1]:2")}},
		},
		{
			name: "peers6",
			body: map[string]any{"interval": 60, "peers": compactPeers("127.0.0.9:9"), "peers6": string(v6)},
			want: AnnounceResponse{Interval: time.Minute, Peers: []netip.AddrPort{ap("127.0.0.9:9"), ap("[2001:db8::1]:6881")}},
		},
		{
			name: "tracker id and warning",
			body: map[string]any{"interval": 60, "tracker id": "abc", "warning message": "be\x07 nice\n", "peers": ""},
			want: AnnounceResponse{Interval: time.Minute, TrackerID: "abc", Warning: "be  nice"},
		},
		{
			name: "odd field types are ignored",
			body: map[string]any{"interval": "soon", "complete": []any{}, "tracker id": 5, "peers": ""},
			want: AnnounceResponse{},
		},
		{
			name: "huge and negative intervals",
			body: map[string]any{"interval": int64(1) << 62, "min interval": -5, "complete": -1, "incomplete": int64(1) << 40},
			want: AnnounceResponse{Interval: MaxInterval, Leechers: 1<<31 - 1},
		},
		{
			name:    "failure",
			body:    map[string]any{"failure reason": "unregistered torrent", "interval": 60},
			wantErr: "unregistered torrent",
		},
		{
			name:    "bad compact length",
			body:    map[string]any{"peers": "12345"},
			wantErr: "bad peers",
		},
		{
			name:    "bad peers6 length",
			body:    map[string]any{"peers6": "123456"},
			wantErr: "bad peers6",
		},
		{
			name:    "peers of a wrong type",
			body:    map[string]any{"peers": 5},
			wantErr: "bad peers",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHTTP(t, write(body(t, tc.body)))
			got, err := Announce(ctxT(t), f.url(), testRequest())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.HasPrefix(tc.name, "failure") && !errors.Is(err, ErrFailure) {
					t.Fatalf("err = %v, want ErrFailure", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Peers == nil {
				got.Peers = []netip.AddrPort{}
			}
			if tc.want.Peers == nil {
				tc.want.Peers = []netip.AddrPort{}
			}
			if !slices.Equal(got.Peers, tc.want.Peers) {
				t.Errorf("peers = %v, want %v", got.Peers, tc.want.Peers)
			}
			got.Peers, tc.want.Peers = nil, nil
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestHTTPPeerBound(t *testing.T) {
	var peers []byte
	for i := range MaxPeers + 500 {
		peers = compact.AppendPeer(peers, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1))
	}
	var peers6 []byte
	for i := range 10 {
		peers6 = compact.AppendPeer(peers6, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 15: byte(i)}), 1))
	}
	r, err := parseHTTPResponse(body(t, map[string]any{"peers": string(peers), "peers6": string(peers6)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Peers) != MaxPeers {
		t.Fatalf("%d peers, want %d", len(r.Peers), MaxPeers)
	}
}

func TestHTTPErrors(t *testing.T) {
	big := make([]byte, MaxResponseSize+10)
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		wantErr string
		failure bool
	}{
		{"status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusNotFound) }, "404", false},
		{"status with failure reason", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("d14:failure reason6:bannede"))
		}, "403 Forbidden: tracker: failure: banned", true},
		{"oversized", write(big), "larger than", false},
		{"oversized valid prefix", write(append([]byte("d5:peers4194400:"), big...)), "larger than", false},
		{"empty", write(nil), "not a bencoded dictionary", false},
		{"html", write([]byte("<html>hello</html>")), "not a bencoded dictionary", false},
		{"truncated", write([]byte("d8:intervali18")), "bad response", false},
		{"trailing garbage", write([]byte("d8:intervali1800eeXYZ")), "bad response", false},
		{"lying length", write([]byte("d5:peers999999999:abce")), "bad response", false},
		{"list", write([]byte("li1ee")), "not a bencoded dictionary", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHTTP(t, tc.handler)
			_, err := Announce(ctxT(t), f.url()+"?passkey=SECRET", testRequest())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrFailure) != tc.failure {
				t.Fatalf("errors.Is(err, ErrFailure) = %v, want %v", !tc.failure, tc.failure)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error shows the passkey: %v", err)
			}
		})
	}
}

func TestHTTPTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	f := newFakeHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Announce(ctx, f.url()+"?passkey=SECRET", testRequest())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error shows the passkey: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestUnsupportedScheme(t *testing.T) {
	for _, u := range []string{"wss://t/announce", "ftp://t", "t:80", "://bad"} {
		_, err := Announce(ctxT(t), u, testRequest())
		if err == nil {
			t.Errorf("%q: no error", u)
		}
		if u == "wss://t/announce" && !errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("%q: err = %v", u, err)
		}
	}
}
