package webseed

import (
	"bytes"
	"context"
	"crypto/sha1"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tfile is one file of a test torrent. Raw path components are used as is
// in the info dictionary.
type tfile struct {
	path []string
	size int
	attr string
}

// torrent is a test torrent: its info, info bytes and content.
type torrent struct {
	info      *metainfo.Info
	infoBytes []byte
	data      []byte            // the concatenated content
	files     map[string][]byte // by URL path below the server root, decoded
}

// makeTorrent builds a torrent named name with the given files (one file and
// single set: a single-file torrent) and random content; pad files hold
// zeros.
func makeTorrent(t testing.TB, name string, pieceLen int, single bool, files ...tfile) *torrent {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(files)), uint64(pieceLen)))
	tt := &torrent{files: make(map[string][]byte)}
	var list []map[string]any
	for _, f := range files {
		b := make([]byte, f.size)
		if !strings.Contains(f.attr, "p") {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		tt.data = append(tt.data, b...)
		key := "/" + name
		if !single {
			key += "/" + strings.Join(f.path, "/")
		}
		tt.files[key] = b
		e := map[string]any{"length": f.size, "path": f.path}
		if f.attr != "" {
			e["attr"] = f.attr
		}
		list = append(list, e)
	}
	var pieces []byte
	for off := 0; off < len(tt.data); off += pieceLen {
		sum := sha1.Sum(tt.data[off:min(off+pieceLen, len(tt.data))])
		pieces = append(pieces, sum[:]...)
	}
	d := map[string]any{"name": name, "piece length": pieceLen, "pieces": string(pieces)}
	if single {
		d["length"] = files[0].size
	} else {
		d["files"] = list
	}
	var err error
	if tt.infoBytes, err = bencode.Marshal(d); err != nil {
		t.Fatal(err)
	}
	if tt.info, err = metainfo.ParseInfo(tt.infoBytes); err != nil {
		t.Fatal(err)
	}
	return tt
}

func (tt *torrent) layout(t testing.TB) *Layout {
	t.Helper()
	l, err := NewLayout(tt.info, tt.infoBytes)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// piece returns the expected bytes of pieces [first, first+count).
func (tt *torrent) pieces(first, count int) []byte {
	i := tt.info
	lo := i.PieceOffset(first)
	hi := i.PieceOffset(first+count-1) + i.PieceLen(first+count-1)
	return tt.data[lo:hi]
}

// server is a test web seed on 127.0.0.1: it serves the torrent's files with
// http.ServeContent (correct Range support) unless a hook answers first, and
// records every request.
type server struct {
	*httptest.Server
	tt *torrent

	mu       sync.Mutex // guards the fields below
	hook     func(w http.ResponseWriter, r *http.Request) bool
	requests []string // RequestURI of each request
	ranges   []string // its Range header
	inflight int
	maxIn    int
	conns    int // connections accepted
}

func (s *server) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
	}
}

func newServer(t testing.TB, tt *torrent) *server {
	s := &server{tt: tt}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ConnState = s.connState
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTLSServer(t testing.TB, tt *torrent) *server {
	s := &server{tt: tt}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Handshakes from a client without the test CA fail on purpose.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = s.connState
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *server) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.RequestURI)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.inflight++
	s.maxIn = max(s.maxIn, s.inflight)
	hook := s.hook
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if hook != nil && hook(w, r) {
		return
	}
	b, ok := s.tt.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (s *server) reqs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *server) maxInflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

// newSeed makes a seed with its own client (closed at cleanup) and quick
// timeouts.
func newSeed(t testing.TB, url string, l *Layout, cfg Config) *Seed {
	t.Helper()
	if cfg.ProgressTimeout == 0 {
		cfg.ProgressTimeout = 5 * time.Second
	}
	s, err := New(url, l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fetch fetches a run and returns its bytes and the pieces handed out.
func fetch(t testing.TB, s *Seed, first, count int) ([]byte, []int, error) {
	t.Helper()
	info := s.layout.info
	n := info.PieceOffset(first+count-1) + info.PieceLen(first+count-1) - info.PieceOffset(first)
	buf := bytes.Repeat([]byte{0xAA}, int(n)) // every byte must be written
	var got []int
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Fetch(ctx, first, count, buf, func(i int, data []byte) error {
		if want := info.PieceLen(i); int64(len(data)) != want {
			t.Errorf("piece %d: %d bytes, want %d", i, len(data), want)
		}
		got = append(got, i)
		return nil
	})
	return buf, got, err
}
