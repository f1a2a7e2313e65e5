package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// fakeEngine runs no torrents: it records what it was asked. A test can
// make RemoveTorrent wait (stopGate) as a tracker that does not answer
// would.
type fakeEngine struct {
	stopGate chan struct{} // if not nil, RemoveTorrent waits until release
	once     sync.Once
	// newReader and fileDone, if set, are given to each torrent started
	// (fakeHandle's).
	newReader func(file int, media bool) (Reader, error)
	fileDone  func(file int) int64

	mu      sync.Mutex // guards the fields below
	running map[metainfo.Hash]*fakeHandle
	log     []string // "add HASH", "magnet HASH", "remove HASH" in call order
}

var _ Engine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{running: map[metainfo.Hash]*fakeHandle{}}
}

func (e *fakeEngine) start(h *fakeHandle, what string) (Handle, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, what+" "+h.ih.String())
	if _, ok := e.running[h.ih]; ok {
		return nil, fmt.Errorf("fake engine: %s is running twice", h.ih)
	}
	e.running[h.ih] = h
	h.newReader, h.fileDone = e.newReader, e.fileDone
	return h, nil
}

func (e *fakeEngine) AddTorrent(mi *metainfo.MetaInfo, name metainfo.Hash) (Handle, error) {
	ih := mi.InfoHash
	if !name.IsZero() {
		ih = name
	}
	h := &fakeHandle{ih: ih, infoReady: make(chan struct{}), layersReady: make(chan struct{})}
	h.mi.Store(mi)
	close(h.infoReady)
	if !mi.Info.HasV2() || mi.Info.HasPieceLayers() {
		close(h.layersReady)
	}
	return e.start(h, "add")
}

func (e *fakeEngine) AddMagnet(m *metainfo.Magnet) (Handle, error) {
	h := &fakeHandle{ih: m.InfoHash, dn: m.DisplayName, infoReady: make(chan struct{}), layersReady: make(chan struct{})}
	return e.start(h, "magnet")
}

func (e *fakeEngine) RemoveTorrent(ih metainfo.Hash) error {
	if e.stopGate != nil {
		<-e.stopGate
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, "remove "+ih.String())
	if _, ok := e.running[ih]; !ok {
		return fmt.Errorf("fake engine: no torrent %s", ih)
	}
	delete(e.running, ih)
	return nil
}

// release lets RemoveTorrent go on; safe to call more than once.
func (e *fakeEngine) release() {
	e.once.Do(func() {
		if e.stopGate != nil {
			close(e.stopGate)
		}
	})
}

func (e *fakeEngine) handle(ih metainfo.Hash) *fakeHandle {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running[ih]
}

func (e *fakeEngine) calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// fakeHandle is a torrent of fakeEngine; a magnet's metadata "arrives"
// with setInfo.
type fakeHandle struct {
	ih        metainfo.Hash
	dn        string
	mi        atomic.Pointer[metainfo.MetaInfo]
	infoReady chan struct{}
	stats     atomic.Pointer[engine.Stats]

	layersReady chan struct{} // closed by setLayers, or at once with the info when it has its layers

	// newReader, if set, serves NewReader; fileDone, FileBytesCompleted
	// (fakeEngine's, when it starts the torrent).
	newReader func(file int, media bool) (Reader, error)
	fileDone  func(file int) int64
}

func (h *fakeHandle) setInfo(mi *metainfo.MetaInfo) {
	h.mi.Store(mi)
	close(h.infoReady)
	if !mi.Info.HasV2() || mi.Info.HasPieceLayers() {
		close(h.layersReady)
	}
}

// setLayers is the piece layers of a v2 torrent fetched from peers: mi is
// the metainfo with them.
func (h *fakeHandle) setLayers(mi *metainfo.MetaInfo) {
	h.mi.Store(mi)
	close(h.layersReady)
}

func (h *fakeHandle) InfoHash() metainfo.Hash { return h.ih }
func (h *fakeHandle) Name() string {
	if mi := h.mi.Load(); mi != nil {
		return mi.Info.Name
	}
	if h.dn != "" {
		return h.dn
	}
	return h.ih.String()
}
func (h *fakeHandle) MetaInfo() *metainfo.MetaInfo { return h.mi.Load() }
func (h *fakeHandle) InfoReady() <-chan struct{}   { return h.infoReady }
func (h *fakeHandle) LayersReady() <-chan struct{} { return h.layersReady }
func (h *fakeHandle) Stats() engine.Stats {
	if s := h.stats.Load(); s != nil {
		return *s
	}
	return engine.Stats{}
}
func (h *fakeHandle) FileBytesCompleted(file int) int64 {
	if h.fileDone != nil {
		return h.fileDone(file)
	}
	return 0
}
func (h *fakeHandle) NewReader(file int, media bool) (Reader, error) {
	if h.newReader != nil {
		return h.newReader(file, media)
	}
	return nil, errors.New("fake engine: no reader")
}

// fakeStore is an in-memory cache of records and piece counts. A test can
// make PutMeta wait (putGate) to hold a write in flight.
type fakeStore struct {
	putGate chan struct{} // if not nil, PutMeta waits until it is closed
	putting chan struct{} // if not nil, PutMeta sends on it before waiting

	mu     sync.Mutex // guards the fields below
	meta   map[cache.InfoHash][]byte
	pieces map[cache.InfoHash]int // piece count; each piece is 1 KiB
	log    []string               // "put HASH", "drop HASH" in call order
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{meta: map[cache.InfoHash][]byte{}, pieces: map[cache.InfoHash]int{}}
}

func (s *fakeStore) PutMeta(ih cache.InfoHash, meta []byte) error {
	if s.putting != nil {
		s.putting <- struct{}{}
	}
	if s.putGate != nil {
		<-s.putGate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[ih] = slices.Clone(meta)
	s.log = append(s.log, "put "+metainfo.Hash(ih).String())
	return nil
}

func (s *fakeStore) Meta(ih cache.InfoHash) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.meta[ih]
	if !ok {
		return nil, fmt.Errorf("%w: no record of %x", cache.ErrNotFound, ih)
	}
	return slices.Clone(b), nil
}

func (s *fakeStore) Torrents() []cache.InfoHash {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cache.InfoHash
	for ih := range s.meta {
		out = append(out, ih)
	}
	for ih := range s.pieces {
		if _, ok := s.meta[ih]; !ok {
			out = append(out, ih)
		}
	}
	slices.SortFunc(out, func(a, b cache.InfoHash) int { return slices.Compare(a[:], b[:]) })
	return out
}

func (s *fakeStore) DropTorrent(ih cache.InfoHash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.meta, ih)
	delete(s.pieces, ih)
	s.log = append(s.log, "drop "+metainfo.Hash(ih).String())
	return nil
}

func (s *fakeStore) Usage() []cache.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cache.Usage
	for ih, n := range s.pieces {
		out = append(out, cache.Usage{InfoHash: ih, Pieces: n, Bytes: int64(n) << 10})
	}
	return out
}

func (s *fakeStore) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, p := range s.pieces {
		n += int64(p) << 10
	}
	return n
}
func (s *fakeStore) Capacity() int64  { return 1 << 30 }
func (s *fakeStore) DiskUsage() int64 { return s.Size() }

func (s *fakeStore) setPieces(ih metainfo.Hash, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pieces[ih] = n
}

func (s *fakeStore) record(ih metainfo.Hash) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.meta[ih]
	return string(b), ok
}

func (s *fakeStore) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// makeTorrent creates a small torrent named name and returns its bytes
// and metainfo.
func makeTorrent(t *testing.T, name string) ([]byte, *metainfo.MetaInfo) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("the content of "+name), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Create(p, metainfo.CreateOptions{NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, mi
}

// newTestSession returns a session over a fake engine and store, closed
// at the end of the test.
func newTestSession(t *testing.T, e *fakeEngine, st *fakeStore, onInfo func(*Torrent)) *Session {
	t.Helper()
	s, err := New(Config{Engine: e, Store: st, Logf: t.Logf, OnInfo: onInfo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.release() // a test that failed early must not hang Close
		s.Close()
	})
	return s
}

// ctxDone is a context for tests that wait on the session.
func ctxDone(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
