package httpfs

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// fakeHost is a Host over in-memory torrents.
type fakeHost struct {
	mu       sync.Mutex
	torrents []*fakeTorrent
	// files maps the bytes of a ".torrent" to the torrent they add; any
	// other bytes are a bad torrent.
	files map[string]*fakeTorrent
	// magnets maps a magnet URI to the torrent it adds; unknown ones add a
	// bare torrent without metadata.
	magnets map[string]*fakeTorrent
	added   []string // what AddTorrentFile and AddMagnet were given
	removed []metainfo.Hash
}

var _ Host = (*fakeHost)(nil)

func newFakeHost(ts ...*fakeTorrent) *fakeHost {
	return &fakeHost{
		torrents: ts,
		files:    map[string]*fakeTorrent{},
		magnets:  map[string]*fakeTorrent{},
	}
}

func (h *fakeHost) Torrents() []Torrent {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Torrent, len(h.torrents))
	for i, t := range h.torrents {
		out[i] = t
	}
	return out
}

func (h *fakeHost) findLocked(ih metainfo.Hash) int {
	for i, t := range h.torrents {
		if t.ih == ih {
			return i
		}
	}
	return -1
}

func (h *fakeHost) addLocked(t *fakeTorrent) (Torrent, error) {
	if h.findLocked(t.ih) >= 0 {
		return nil, fmt.Errorf("fake: torrent %s: %w", t.ih, os.ErrExist)
	}
	h.torrents = append(h.torrents, t)
	return t, nil
}

func (h *fakeHost) Add(data []byte) (Torrent, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.added = append(h.added, fmt.Sprintf("%d bytes", len(data)))
	if t := h.files[string(data)]; t != nil {
		return h.addLocked(t)
	}
	uri := string(data)
	if t := h.magnets[uri]; t != nil {
		return h.addLocked(t)
	}
	const prefix = "magnet:?xt=urn:btih:"
	if !strings.HasPrefix(uri, prefix) || len(uri) < len(prefix)+40 {
		return nil, fmt.Errorf("fake: %w: %q", metainfo.ErrInvalid, uri)
	}
	b, err := hex.DecodeString(uri[len(prefix) : len(prefix)+40])
	if err != nil {
		return nil, fmt.Errorf("fake: %w: %v", metainfo.ErrInvalidMagnet, err)
	}
	return h.addLocked(newMagnetTorrent(metainfo.Hash(b), ""))
}

func (h *fakeHost) Cache() CacheStats {
	return CacheStats{Size: 3 << 20, Capacity: 10 << 20, Disk: 4 << 20}
}

func (h *fakeHost) Remove(ih metainfo.Hash) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := h.findLocked(ih)
	if i < 0 {
		return fmt.Errorf("fake: %s: %w", ih, os.ErrNotExist)
	}
	h.torrents = append(h.torrents[:i], h.torrents[i+1:]...)
	h.removed = append(h.removed, ih)
	return nil
}

func (h *fakeHost) removedHashes() []metainfo.Hash {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]metainfo.Hash(nil), h.removed...)
}

func (h *fakeHost) addedInputs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.added...)
}

// fakeFile describes a file of a fake torrent.
type fakeFile struct {
	path string // "/"-separated, relative to the torrent's folder
	data []byte
	pad  bool
}

// fakeTorrent is a Torrent whose data is in memory and whose pieces become
// available when the test says so. A read of a missing piece blocks until the
// piece arrives or the read's context is done.
type fakeTorrent struct {
	ih    metainfo.Hash
	dn    string // name until the metadata is known
	mtime time.Time

	// Read-only once info is set.
	data     []byte
	pieceLen int64

	mu      sync.Mutex // guards the following
	info    *metainfo.Info
	have    []bool
	changed chan struct{} // closed (and replaced) when have changes
	peers   int
	// activity is what Stats reports of hash failures, pieces in
	// flight and readers.
	activity TorrentStats

	ready     chan struct{}
	readyOnce sync.Once

	// Observations.
	opened    atomic.Int32 // readers made
	closed    atomic.Int32 // readers closed
	media     atomic.Int32 // readers made with media set
	waiting   atomic.Int32 // ReadAt calls blocked right now
	cancelled atomic.Int32 // ReadAt calls that ended with ctx done
	reads     atomic.Int64 // ReadAt calls
	readBytes atomic.Int64 // bytes asked by ReadAt calls
	// closedMidRead counts readers closed while one of their ReadAt
	// calls was still running (a broken contract).
	closedMidRead atomic.Int32
}

var (
	_ Torrent = (*fakeTorrent)(nil)
)

// fakeTime is the creation date of every fake torrent.
var fakeTime = time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)

// newFakeTorrent makes a torrent of files with every piece available.
func newFakeTorrent(name string, pieceLen int64, files ...fakeFile) *fakeTorrent {
	t := newMagnetTorrent(metainfo.Hash(sha1.Sum([]byte("fake torrent "+name))), name)
	info, data := makeInfo(name, pieceLen, files)
	t.setInfo(info, data, true)
	return t
}

// newMagnetTorrent makes a torrent without metadata, as added by magnet.
func newMagnetTorrent(ih metainfo.Hash, dn string) *fakeTorrent {
	return &fakeTorrent{
		ih:      ih,
		dn:      dn,
		mtime:   fakeTime,
		changed: make(chan struct{}),
		ready:   make(chan struct{}),
		peers:   3,
	}
}

func makeInfo(name string, pieceLen int64, files []fakeFile) (*metainfo.Info, []byte) {
	info := &metainfo.Info{Name: name, PieceLength: pieceLen, MetaVersion: 1}
	var data []byte
	for _, f := range files {
		info.Files = append(info.Files, metainfo.File{
			Path:   strings.Split(f.path, "/"),
			Length: int64(len(f.data)),
			Offset: int64(len(data)),
			Pad:    f.pad,
		})
		data = append(data, f.data...)
	}
	info.TotalLength = int64(len(data))
	n := (info.TotalLength + pieceLen - 1) / pieceLen
	info.Pieces = make([]byte, 20*n)
	info.SingleFile = len(files) == 1 && files[0].path == name
	return info, data
}

// setInfo gives the torrent its metadata (a magnet's arrives late).
func (t *fakeTorrent) setInfo(info *metainfo.Info, data []byte, have bool) {
	t.mu.Lock()
	t.info = info
	t.data = data
	t.pieceLen = info.PieceLength
	t.have = make([]bool, info.NumPieces())
	for i := range t.have {
		t.have[i] = have
	}
	t.mu.Unlock()
	t.readyOnce.Do(func() { close(t.ready) })
}

// setHave makes pieces [from, to) available or not.
func (t *fakeTorrent) setHave(from, to int, have bool) {
	t.mu.Lock()
	for i := from; i < to && i < len(t.have); i++ {
		t.have[i] = have
	}
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// setActivity sets what Stats reports of hash failures, pieces in flight
// and readers.
func (t *fakeTorrent) setActivity(a TorrentStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.activity = a
}

func (t *fakeTorrent) InfoHash() metainfo.Hash { return t.ih }

func (t *fakeTorrent) Name() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.info != nil {
		return t.info.Name
	}
	if t.dn != "" {
		return t.dn
	}
	return t.ih.String()
}

func (t *fakeTorrent) Info() *metainfo.Info {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info
}

func (t *fakeTorrent) Time() time.Time { return t.mtime }

func (t *fakeTorrent) NewReader(file int, media bool) (Reader, error) {
	t.opened.Add(1)
	if media {
		t.media.Add(1)
	}
	f := t.Info().Files[file]
	return &fakeReader{t: t, start: f.Offset, length: f.Length}, nil
}

func (t *fakeTorrent) HavePiece(i int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return i >= 0 && i < len(t.have) && t.have[i]
}

// open counts the readers made and not yet closed.
func (t *fakeTorrent) open() int { return int(t.opened.Load() - t.closed.Load()) }

func (t *fakeTorrent) Stats() TorrentStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, h := range t.have {
		if h {
			n++
		}
	}
	st := TorrentStats{Peers: t.peers, Pieces: len(t.have), PiecesHave: n, Downloaded: 1234, Uploaded: 56, Wasted: 7,
		HashFailures: t.activity.HashFailures, Downloading: t.activity.Downloading, Readers: t.activity.Readers}
	if t.info != nil {
		st.Size = t.info.TotalLength
		st.Completed = min(int64(n)*t.pieceLen, st.Size)
	}
	return st
}

func (t *fakeTorrent) FileCachedBytes(file int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.info.Files[file]
	var sum int64
	for off := f.Offset; off < f.Offset+f.Length; {
		p := off / t.pieceLen
		end := min((p+1)*t.pieceLen, f.Offset+f.Length)
		if t.have[p] {
			sum += end - off
		}
		off = end
	}
	return sum
}

// haveLocked tells whether the torrent bytes [start, end) are available.
func (t *fakeTorrent) haveLocked(start, end int64) bool {
	if end <= start {
		return true
	}
	for p := start / t.pieceLen; p <= (end-1)/t.pieceLen; p++ {
		if !t.have[p] {
			return false
		}
	}
	return true
}

// fakeReader reads one file of a fakeTorrent. It checks for the data before
// it waits, so a read of available data never calls ctx.Done.
type fakeReader struct {
	t      *fakeTorrent
	start  int64 // of the file in the torrent
	length int64
	closed atomic.Bool
	active atomic.Int32 // ReadAt calls running
}

func (r *fakeReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	t := r.t
	t.reads.Add(1)
	t.readBytes.Add(int64(len(p)))
	r.active.Add(1)
	defer r.active.Add(-1)
	if r.closed.Load() {
		return 0, fmt.Errorf("fake: read after close")
	}
	if off >= r.length {
		return 0, io.EOF
	}
	n := int64(len(p))
	eof := false
	if off+n >= r.length {
		n, eof = r.length-off, true
	}
	start, end := r.start+off, r.start+off+n
	for {
		t.mu.Lock()
		ok := t.haveLocked(start, end)
		changed := t.changed
		t.mu.Unlock()
		if ok {
			copy(p, t.data[start:end])
			if eof {
				return int(n), io.EOF
			}
			return int(n), nil
		}
		t.waiting.Add(1)
		select {
		case <-ctx.Done():
			t.waiting.Add(-1)
			t.cancelled.Add(1)
			return 0, ctx.Err()
		case <-changed:
			t.waiting.Add(-1)
		}
	}
}

func (r *fakeReader) Close() error {
	if r.closed.Swap(true) {
		return fmt.Errorf("fake: reader closed twice")
	}
	if r.active.Load() > 0 {
		r.t.closedMidRead.Add(1)
	}
	r.t.closed.Add(1)
	return nil
}

// randomBytes returns n bytes from a seeded generator.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// sampleFiles is the tree most tests mount: nested folders, an empty file,
// NUL bytes, odd names, pad files, a media file, files across pieces.
func sampleFiles() []fakeFile {
	return []fakeFile{
		{path: "README.txt", data: []byte("hello, swarm\n")},
		{path: "empty.bin", data: nil},
		{path: ".pad/1", data: make([]byte, 1000), pad: true},
		{path: "nul.bin", data: []byte("a\x00b\x00\x00c\x00")},
		{path: "deep/a/b/c/d/leaf.txt", data: randomBytes(1, 5000)},
		{path: "odd names/ spaces  and\ttab.txt", data: []byte("tab")},
		{path: "odd names/ünïcødé ✓.txt", data: []byte("unicode")},
		{path: "odd names/-dash", data: []byte("dash")},
		{path: "odd names/quote'\"$`.txt", data: []byte("quote")},
		{path: "odd names/new\nline", data: []byte("newline")},
		{path: "odd names/#%&*?", data: []byte("symbols")},
		{path: ".pad/2", data: make([]byte, 3000), pad: true},
		{path: "video/clip.mp4", data: randomBytes(2, 3<<20+17)},
		{path: "big.bin", data: randomBytes(3, 5<<20+123)},
		{path: ".pad/3", data: make([]byte, 77), pad: true},
	}
}

// fileData returns the content of every non-pad file by its path.
func fileData(files []fakeFile) map[string][]byte {
	m := map[string][]byte{}
	for _, f := range files {
		if !f.pad {
			m[f.path] = f.data
		}
	}
	return m
}
