package cache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Piece data lives in files of our own, one per torrent and slot size, under
// the data directory's "pieces" folder: piece i of a file with slot shift s
// is at offset i<<s, written with pwrite and read with pread. Evicting a
// piece punches a hole over its slot (fallocate), which gives its blocks back
// to the file system at once. Badger keeps only the small records (size,
// checksum, recency, slot shift). See "Piece files" in the package doc.

// piecesDir is the folder, under the data directory, of the piece files.
const piecesDir = "pieces"

// minShift is the smallest slot: one 4 KiB block, so every slot starts on a
// block boundary and a punched slot frees whole blocks. maxShift bounds the
// largest (MaxPiece).
const (
	minShift = 12
	maxShift = 30
)

// shiftFor returns the smallest slot shift that holds n bytes.
func shiftFor(n int64) uint8 {
	s := uint8(minShift)
	for int64(1)<<s < n {
		s++
	}
	return s
}

// dataFileName names a torrent's piece file of one slot size:
// "<info-hash in hex>-<shift>".
func dataFileName(ih InfoHash, shift uint8) string {
	return hex.EncodeToString(ih[:]) + "-" + strconv.Itoa(int(shift))
}

// parseDataFileName is dataFileName's inverse.
func parseDataFileName(name string) (ih InfoHash, shift uint8, ok bool) {
	hexIH, s, found := strings.Cut(name, "-")
	if !found || len(hexIH) != 40 {
		return ih, 0, false
	}
	if _, err := hex.Decode(ih[:], []byte(hexIH)); err != nil || hex.EncodeToString(ih[:]) != hexIH {
		return ih, 0, false // not hex, or not the lower case dataFileName writes
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < minShift || n > maxShift || strconv.Itoa(n) != s {
		return ih, 0, false
	}
	return ih, uint8(n), true
}

// dataFile is one open piece file. refs counts the entries placed in it
// (writing, present or evicting), under Cache.mu; the descriptor is closed
// when the last one goes, and the file itself stays (empty files are removed
// by DropTorrent and Open).
type dataFile struct {
	path  string
	shift uint8
	refs  int // guarded by Cache.mu

	f      atomic.Pointer[os.File] // set once opened
	mu     sync.Mutex              // serializes opening and closing
	closed bool                    // guarded by mu
}

// file returns the descriptor, opening (and if need be creating) the file on
// first use. A failed open is tried again by the next call.
func (d *dataFile) file() (*os.File, error) {
	if f := d.f.Load(); f != nil {
		return f, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.f.Load(); f != nil {
		return f, nil
	}
	if d.closed {
		return nil, os.ErrClosed
	}
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// The pieces folder was removed under us: make it again.
		if err = os.MkdirAll(filepath.Dir(d.path), 0o700); err == nil {
			f, err = os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o600)
		}
	}
	if err != nil {
		return nil, err
	}
	d.f.Store(f)
	return f, nil
}

// close closes the descriptor if it was opened. Only once no entry refers to
// the file (refs is 0 and it left its torrent's map), or at Close.
func (d *dataFile) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if f := d.f.Swap(nil); f != nil {
		f.Close()
	}
}

// fileLocked returns the torrent's piece file of a slot shift, counting one
// more reference to it.
func (c *Cache) fileLocked(t *torrent, shift uint8) *dataFile {
	d := t.files[shift]
	if d == nil {
		if t.files == nil {
			t.files = make(map[uint8]*dataFile)
		}
		d = &dataFile{path: filepath.Join(c.dir, piecesDir, dataFileName(t.ih, shift)), shift: shift}
		t.files[shift] = d
	}
	d.refs++
	return d
}

// releaseLocked drops one reference of e to its file and returns the file if
// that was the last, for the caller to close once mu is released.
func (c *Cache) releaseLocked(e *entry) *dataFile {
	d := e.file
	if d == nil {
		return nil
	}
	e.file = nil
	d.refs--
	if d.refs > 0 {
		return nil
	}
	if e.t.files[d.shift] == d {
		delete(e.t.files, d.shift)
	}
	return d
}

// slotShiftLocked picks the slot size for a new piece of n bytes of t: the
// torrent's current one when the piece fits, else the smallest that holds it
// (which becomes the current one). A torrent's pieces all have its piece
// length but the last, so this settles on one file per torrent, two when the
// short last piece came first.
func slotShiftLocked(t *torrent, n int64) uint8 {
	if s := shiftFor(n); s > t.shift {
		t.shift = s
	}
	return t.shift
}

// writePiece writes data into e's slot. A failed write punches back whatever
// it may have allocated.
func (c *Cache) writePiece(e *entry, data []byte) error {
	f, err := e.file.file()
	if err != nil {
		return err
	}
	off := int64(e.piece) << e.file.shift
	if _, err := f.WriteAt(data, off); err != nil {
		c.punch(f, off, e.file.shift)
		return err
	}
	c.writes.written(e, off, int64(len(data)))
	return nil
}

// punch gives a slot's blocks back to the file system, and reports whether
// it did.
func (c *Cache) punch(f *os.File, off int64, shift uint8) bool {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, int64(1)<<shift)
	if err != nil && c.punchFailed.CompareAndSwap(false, true) {
		c.logf("cache: cannot free the space of evicted pieces in %s (%v): the disk use of the cache may grow past its capacity",
			filepath.Dir(f.Name()), err)
	}
	return err == nil
}

// readPiece copies bytes of e's piece from off into p. With verify it reads
// the whole piece, checking it against sum, and reports a failed check as
// bad; a short file is bad too.
func (c *Cache) readPiece(e *entry, d *dataFile, size int64, sum uint64, verify bool, p []byte, off int64) (n int, bad string, err error) {
	f, err := d.file()
	if err != nil {
		return 0, "", err
	}
	base := int64(e.piece) << d.shift
	want := p[:min(int64(len(p)), size-off)]
	if !verify {
		n, err = f.ReadAt(want, base+off)
		if err == io.EOF || (err == nil && n < len(want)) {
			return 0, fmt.Sprintf("size (the file ends %d bytes into it, want %d)", off+int64(n), size), nil
		}
		return n, "", err
	}
	// Hash the whole piece in chunks, copying the wanted range on the way.
	h := newPieceHasher(e.ih(), e.piece)
	buf := verifyBufs.Get().(*[]byte)
	defer verifyBufs.Put(buf)
	for pos := int64(0); pos < size; {
		chunk := (*buf)[:min(int64(len(*buf)), size-pos)]
		m, rerr := f.ReadAt(chunk, base+pos)
		if m < len(chunk) {
			if rerr == nil || rerr == io.EOF {
				return 0, fmt.Sprintf("size (the file ends %d bytes into it, want %d)", pos+int64(m), size), nil
			}
			return 0, "", rerr
		}
		_, _ = h.Write(chunk)
		if lo, hi := max(off, pos), min(off+int64(len(want)), pos+int64(m)); lo < hi {
			copy(want[lo-off:hi-off], chunk[lo-pos:hi-pos])
		}
		pos += int64(m)
	}
	if h.Sum64() != sum {
		return 0, "checksum", nil
	}
	return len(want), "", nil
}

// verifyBufs hold the chunks a first read hashes a piece in.
var verifyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// slot is a range of a piece file to keep.
type slot struct{ lo, hi int64 }

// punchOrphans frees whatever data the file holds outside the slots to keep
// (sorted): blocks a crash left behind, written by a Put whose record never
// committed, or of a piece whose record was deleted before its hole was
// punched. It walks the file's data extents (SEEK_DATA, SEEK_HOLE), so a
// sparse file costs a few syscalls. It returns the bytes it punched.
func punchOrphans(f *os.File, keep []slot) (int64, error) {
	fd := int(f.Fd())
	var freed int64
	gap := func(lo, hi int64) error {
		if lo >= hi {
			return nil
		}
		freed += hi - lo
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, lo, hi-lo)
	}
	for off := int64(0); ; {
		lo, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return freed, nil
		}
		if err != nil {
			return freed, err
		}
		hi, err := unix.Seek(fd, lo, unix.SEEK_HOLE)
		if err != nil {
			return freed, err
		}
		// Punch [lo, hi) minus the kept slots.
		i, _ := slices.BinarySearchFunc(keep, lo, func(s slot, x int64) int {
			switch {
			case s.hi <= x:
				return -1
			case s.lo > x:
				return 1
			}
			return 0
		})
		at := lo
		for ; i < len(keep) && keep[i].lo < hi; i++ {
			if err := gap(at, keep[i].lo); err != nil {
				return freed, err
			}
			at = max(at, keep[i].hi)
		}
		if err := gap(at, hi); err != nil {
			return freed, err
		}
		off = hi
	}
}
