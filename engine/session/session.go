package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// ErrClosed is returned by operations on a closed Session.
var ErrClosed = errors.New("session: closed")

// Config configures a Session. Engine and Store are required.
type Config struct {
	// Engine runs the torrents (NewEngine adapts an *engine.Client).
	Engine Engine
	// Store keeps each torrent's record and its pieces (a *cache.Cache).
	Store Store
	// Logf receives one line per notable event (a torrent added or
	// removed, a record that could not be written). Nil discards them.
	Logf func(format string, args ...any)
	// OnInfo, if not nil, is called after a magnet's metadata arrived and
	// was recorded, so front-ends can show the torrent's files. It runs
	// on a session goroutine, with no lock held.
	OnInfo func(*Torrent)
	// IndexFile, if not nil, picks the files (by path within the
	// torrent, as metainfo.File.DisplayPath gives it) whose head and tail
	// are fetched shortly after a torrent's info is known, before any
	// program reads them: media files, whose containers keep their
	// indexes there (indexes.go). IndexBudget bounds the bytes of pieces
	// this asks for per torrent; 0 turns it off.
	IndexFile   func(path string) bool
	IndexBudget int64
}

// Session owns the running torrents and their records in the cache. It is
// safe for concurrent use.
type Session struct {
	// read-only after construction
	eng    Engine
	store  Store
	logf   func(string, ...any)
	onInfo func(*Torrent)
	// indexFile and indexBudget: Config's IndexFile and IndexBudget.
	indexFile   func(string) bool
	indexBudget int64
	ctx         context.Context // ends at Close; bounds the session's waits
	cancel      context.CancelFunc
	wg          sync.WaitGroup // awaitInfo and drop goroutines

	// mu guards the fields below. It is never held across a call into the
	// engine or the store, nor across a callback.
	mu       sync.Mutex
	closed   bool
	torrents map[metainfo.Hash]*Torrent
	adding   map[metainfo.Hash]bool          // adds in progress (not yet in torrents)
	drops    map[metainfo.Hash]chan struct{} // removals in progress; closed when done
}

// New returns a session with no torrents; call Restore to bring back those
// the cache remembers.
func New(cfg Config) (*Session, error) {
	if cfg.Engine == nil || cfg.Store == nil {
		return nil, errors.New("session: Config needs an Engine and a Store")
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		eng: cfg.Engine, store: cfg.Store, logf: logf, onInfo: cfg.OnInfo,
		indexFile: cfg.IndexFile, indexBudget: cfg.IndexBudget,
		ctx: ctx, cancel: cancel,
		torrents: map[metainfo.Hash]*Torrent{},
		adding:   map[metainfo.Hash]bool{},
		drops:    map[metainfo.Hash]chan struct{}{},
	}
	s.mu.Lock()
	s.goLocked(s.keepPeersLoop)
	s.mu.Unlock()
	return s, nil
}

// Close ends the session's goroutines: metadata waiters stop, removals in
// progress finish; then it keeps each torrent's best peers in the store
// for the next start. The torrents keep running: close the engine after.
func (s *Session) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.keepPeers() // the engine still runs: its best peers, for next time
	return nil
}

// goLocked runs f on a goroutine Close waits for; false once closed.
// s.mu must be held.
func (s *Session) goLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// Add adds a torrent given as .torrent bytes, a magnet URI, or an info-hash
// (40 hex digits or 32 base32 characters), and records it. Errors wrap
// metainfo.ErrInvalid, ErrInvalidMagnet or ErrUnsupported for bad input and
// os.ErrExist for a torrent already there.
func (s *Session) Add(data []byte) (*Torrent, error) {
	text := strings.TrimSpace(string(data))
	if len(text) >= len("magnet:") && strings.EqualFold(text[:len("magnet:")], "magnet:") {
		return s.AddMagnet(text)
	}
	if len(text) == 40 || len(text) == 32 {
		if ih, err := metainfo.ParseHash(text); err == nil {
			return s.AddMagnet("magnet:?xt=urn:btih:" + ih.String())
		}
	}
	return s.AddTorrentFile(data)
}

// AddTorrentFile adds a torrent from its .torrent bytes and records them.
func (s *Session) AddTorrentFile(data []byte) (*Torrent, error) {
	mi, err := metainfo.Parse(data)
	if err != nil {
		return nil, err
	}
	t, err := s.add(mi.InfoHash, mi.Info.Name, func() (Handle, error) { return s.eng.AddTorrent(mi, metainfo.Hash{}) })
	if err != nil {
		return nil, err
	}
	s.remember(t, data)
	s.logf("added %s (%s)", mi.Info.Name, mi.InfoHash)
	s.goKeepLayers(t, mi)
	return t, nil
}

// goKeepLayers runs keepLayers for a torrent added with its metainfo.
func (s *Session) goKeepLayers(t *Torrent, mi *metainfo.MetaInfo) {
	if mi.Info == nil || !mi.Info.HasV2() || mi.Info.HasPieceLayers() {
		return // nothing to wait for: no goroutine
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goLocked(func() { s.keepLayers(t, mi) })
}

// AddMagnet adds a torrent by magnet URI. The link is recorded at once, so
// a restart before the metadata came asks the swarm again, and the
// metainfo in its place once it arrives.
func (s *Session) AddMagnet(uri string) (*Torrent, error) {
	uri = strings.TrimSpace(uri)
	m, err := metainfo.ParseMagnet(uri)
	if err != nil {
		return nil, err
	}
	t, err := s.add(m.InfoHash, "", func() (Handle, error) { return s.eng.AddMagnet(m) })
	if err != nil {
		return nil, err
	}
	s.remember(t, []byte(uri))
	s.logf("added magnet %s (%s)", t.Name(), m.InfoHash)
	s.awaitInfo(t)
	return t, nil
}

// add starts a torrent in the engine and puts it in the map, unless one
// with the same hash is there or being added; a removal of that hash still
// in progress is waited for first.
func (s *Session) add(ih metainfo.Hash, name string, start func() (Handle, error)) (*Torrent, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.torrents[ih]; ok || s.adding[ih] {
		s.mu.Unlock()
		if name == "" {
			return nil, fmt.Errorf("torrent %s is already added: %w", ih, os.ErrExist)
		}
		return nil, fmt.Errorf("torrent %s (%s) is already added: %w", name, ih, os.ErrExist)
	}
	s.adding[ih] = true
	pending := s.drops[ih]
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.adding, ih)
		s.mu.Unlock()
	}()
	if pending != nil {
		select {
		case <-pending:
		case <-s.ctx.Done():
			return nil, ErrClosed
		}
	}
	h, err := start()
	if err != nil {
		return nil, err
	}
	t := newTorrent(h, time.Now())
	s.mu.Lock()
	s.torrents[ih] = t
	s.prefetchIndexesLocked(t)
	s.mu.Unlock()
	s.warmStart(t)
	return t, nil
}

// awaitInfo records t's metainfo once it arrives, unless t is removed (or
// the session closes) first.
func (s *Session) awaitInfo(t *Torrent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.goLocked(func() {
		if !until(s, t, t.InfoReady()) {
			return
		}
		mi := t.h.MetaInfo()
		if mi == nil {
			return
		}
		b, err := mi.Marshal()
		if err != nil {
			s.logf("recording %s: %v", mi.Info.Name, err)
			return
		}
		if !s.remember(t, b) {
			return
		}
		if s.onInfo != nil {
			s.onInfo(t)
		}
		s.keepLayers(t, mi)
	})
}

// until waits for ch to be ready, and reports false if t leaves session s
// or s closes first.
func until[T any](s *Session, t *Torrent, ch <-chan T) bool {
	select {
	case <-ch:
		return true
	case <-t.gone:
	case <-s.ctx.Done():
	}
	return false
}

// keepLayers records t's metainfo again once the engine has fetched the
// piece layers its recorded one (rec) lacks (a v2 magnet's, or a v2
// .torrent's that left them out): after a restart its pieces are checked
// at once, without asking peers, who may not answer hash requests. Parse
// checks each layer against its file's pieces root when the record is
// read back. Called on a goroutine Close waits for.
func (s *Session) keepLayers(t *Torrent, rec *metainfo.MetaInfo) {
	if rec == nil || rec.Info == nil || !rec.Info.HasV2() || rec.Info.HasPieceLayers() {
		return
	}
	select {
	case <-t.h.LayersReady():
	case <-t.gone:
		return
	case <-s.ctx.Done():
		return
	}
	mi := t.h.MetaInfo()
	if mi == nil || mi == rec || !mi.Info.HasPieceLayers() {
		return
	}
	b, err := mi.Marshal()
	if err != nil {
		s.logf("recording the piece layers of %s: %v", mi.Info.Name, err)
		return
	}
	if s.remember(t, b) {
		s.logf("recorded the piece layers of %s", mi.Info.Name)
	}
}

// remember records meta (.torrent bytes or a magnet link) as what the
// cache keeps of t, unless t has left the session: a removal always wins.
// It reports whether t was still there.
func (s *Session) remember(t *Torrent, meta []byte) bool {
	s.mu.Lock()
	if s.torrents[t.ih] != t {
		s.mu.Unlock()
		return false
	}
	t.writes.Add(1)
	s.mu.Unlock()
	defer t.writes.Done()
	if err := s.store.PutMeta(t.ih, meta); err != nil {
		s.logf("recording %s (%s): %v", t.Name(), t.ih, err)
	}
	return true
}

// Remove takes the torrent out of the session at once and forgets it,
// cached pieces included; stopping it in the engine (trackers are told,
// which may take seconds) and dropping its pieces finish in the background.
// An error wrapping os.ErrNotExist means no such torrent.
func (s *Session) Remove(ih metainfo.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	t, ok := s.torrents[ih]
	if !ok {
		return fmt.Errorf("no torrent %s: %w", ih, os.ErrNotExist)
	}
	delete(s.torrents, ih)
	close(t.gone)
	done := make(chan struct{})
	s.drops[ih] = done
	s.goLocked(func() { s.drop(t, done) })
	return nil
}

// drop stops t in the engine and forgets it in the cache, then closes done.
func (s *Session) drop(t *Torrent, done chan struct{}) {
	name := t.Name()
	if err := s.eng.RemoveTorrent(t.ih); err != nil {
		s.logf("stopping %s (%s): %v", name, t.ih, err)
	}
	t.writes.Wait()
	if err := s.store.DropTorrent(t.ih); err != nil {
		s.logf("dropping %s (%s) from the cache: %v", name, t.ih, err)
	}
	s.logf("removed %s (%s)", name, t.ih)
	s.mu.Lock()
	delete(s.drops, t.ih)
	s.mu.Unlock()
	close(done)
}

// Torrents lists the session's torrents by name.
func (s *Session) Torrents() []*Torrent {
	s.mu.Lock()
	out := make([]*Torrent, 0, len(s.torrents))
	for _, t := range s.torrents {
		out = append(out, t)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Name(), out[j].Name()
		if a != b {
			return a < b
		}
		return bytes.Compare(out[i].ih[:], out[j].ih[:]) < 0
	})
	return out
}

// Torrent returns the torrent with info-hash ih.
func (s *Session) Torrent(ih metainfo.Hash) (*Torrent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.torrents[ih]
	return t, ok
}

// Find resolves a torrent by exact name, info-hash, or a unique prefix of
// at least 6 hex digits of it. Errors wrap os.ErrNotExist.
func (s *Session) Find(id string) (*Torrent, error) {
	var matches []*Torrent
	lower := strings.ToLower(id)
	for _, t := range s.Torrents() {
		hex := t.ih.String()
		if t.Name() == id || hex == lower {
			return t, nil
		}
		if len(id) >= 6 && strings.HasPrefix(hex, lower) {
			matches = append(matches, t)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, fmt.Errorf("no torrent named %q: %w", id, os.ErrNotExist)
	default:
		return nil, fmt.Errorf("%q matches %d torrents; give more of the info-hash: %w", id, len(matches), os.ErrNotExist)
	}
}

// Restore adds every torrent the cache has a record of: its metainfo, or
// for a magnet whose metadata never came, its link. A record that cannot
// be restored is logged and skipped. It returns how many were added.
func (s *Session) Restore() int {
	n := 0
	for _, ih := range s.store.Torrents() {
		b, err := s.store.Meta(ih)
		if err != nil {
			if !errors.Is(err, cache.ErrNotFound) {
				s.logf("restoring %x: %v", ih, err)
			}
			continue
		}
		if bytes.HasPrefix(b, []byte("magnet:")) {
			m, err := metainfo.ParseMagnet(string(b))
			if err != nil {
				s.logf("restoring %x: %v", ih, err)
				continue
			}
			t, err := s.add(m.InfoHash, "", func() (Handle, error) { return s.eng.AddMagnet(m) })
			if err != nil {
				s.logf("restoring magnet %s: %v", m.InfoHash, err)
				continue
			}
			s.awaitInfo(t)
			n++
			continue
		}
		mi, err := metainfo.Parse(b)
		if err != nil {
			s.logf("restoring %x: %v", ih, err)
			continue
		}
		// A hybrid first added by its btmh magnet is recorded (and
		// cached) under its truncated v2 hash: it comes back under that
		// name, or its cached pieces would not be found.
		name := mi.InfoHash
		if ih != name && mi.Info.HasV1() && mi.Info.HasV2() && ih == mi.Info.InfoHashV2.Truncate() {
			name = ih
		}
		t, err := s.add(name, mi.Info.Name, func() (Handle, error) { return s.eng.AddTorrent(mi, name) })
		if err != nil {
			s.logf("restoring %s: %v", mi.Info.Name, err)
			continue
		}
		s.goKeepLayers(t, mi)
		n++
	}
	return n
}
