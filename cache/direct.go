package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	badger "github.com/dgraph-io/badger/v4"
)

// Direct reads: ReadAt of a verified piece reads its bytes with pread from a
// descriptor of the value-log file that holds it, instead of copying them out
// of badger's memory map.
//
// Why: a copy out of the mapping faults its pages into the process's page
// tables (file-backed RSS, which the pager then has to unmap again) and runs
// on 4 KiB mappings, so a 1 MiB copy takes 256 TLB misses; the kernel's copy
// for pread reads the page cache through its own huge-page mapping. Random
// piece reads went from about 60% of a plain file's pread to about the same
// speed (BenchmarkReadPiece), and reads no longer grow the RSS at all.
//
// How: badger does not say where a value lives, but its Item holds the
// value pointer (file id, entry length, entry offset) in an unexported field;
// we read it with the field offsets reflect gives us, checked once at start
// (directLayout). The value is the entry's last bytes before its 4-byte
// checksum. Value-log entries are never changed once written, and a file is
// only ever deleted (by value-log GC) after its live values were rewritten
// elsewhere, so a descriptor we hold keeps reading the right bytes even if
// badger deletes the file meanwhile; one we try to open after the deletion
// fails, and ReadAt retries with a fresh lookup. Each file is checked when we
// open it: its entry header and key at the pointer's offset must be the
// piece's, or direct reads are switched off for good (a badger upgrade that
// changed the layout degrades to the mapped copy, it never returns wrong
// bytes).
//
// Descriptors of deleted files would keep their disk space, so all are closed
// after every value-log GC that rewrote a file, when the pager finds the
// cache idle, and at Close; they are reopened on demand.
//
// The mapped copy is still used for a piece's first read in a process (it
// verifies the whole piece against its checksum), for values small enough to
// live in the LSM tree, and when a direct read fails for any reason.

// bitValuePointer is badger's flag, in an item's meta byte, for a value
// stored in the value log (value.go in badger v4).
const bitValuePointer = 1 << 1

// directLayout is where badger.Item keeps its meta byte and value pointer,
// found once by reflection; ok is false if the fields are not there as
// expected, which switches direct reads off.
var directLayout = func() (l struct {
	meta, vptr uintptr
	ok         bool
},
) {
	t := reflect.TypeFor[badger.Item]()
	m, okm := t.FieldByName("meta")
	v, okv := t.FieldByName("vptr")
	if !okm || !okv || m.Type.Kind() != reflect.Uint8 || v.Type != reflect.TypeFor[[]byte]() {
		return l
	}
	l.meta, l.vptr, l.ok = m.Offset, v.Offset, true
	return l
}()

// valuePointer is where a value-log entry is: file id, length of the whole
// entry (header, key, value, checksum) and its offset in the file.
type valuePointer struct {
	fid, len, offset uint32
}

// valuePointerOf returns item's value pointer, or false when the value is
// stored inline in the LSM tree (or the layout is unknown).
func valuePointerOf(item *badger.Item) (valuePointer, bool) {
	if !directLayout.ok {
		return valuePointer{}, false
	}
	base := unsafe.Pointer(item)
	meta := *(*byte)(unsafe.Add(base, directLayout.meta))
	raw := *(*[]byte)(unsafe.Add(base, directLayout.vptr))
	if meta&bitValuePointer == 0 || len(raw) < 12 {
		return valuePointer{}, false
	}
	// badger copies its valuePointer struct (three uint32) as raw memory.
	return valuePointer{
		fid:    binary.NativeEndian.Uint32(raw[0:]),
		len:    binary.NativeEndian.Uint32(raw[4:]),
		offset: binary.NativeEndian.Uint32(raw[8:]),
	}, true
}

// valueLogFiles holds read-only descriptors of value-log files for direct
// reads.
type valueLogFiles struct {
	dir  string
	logf func(format string, args ...any)
	off  atomic.Bool  // direct reads switched off after a failed layout check
	hits atomic.Int64 // reads served directly (tests)
	mu   sync.Mutex
	open map[uint32]*os.File
}

// maxDirectFiles bounds the descriptors held; past it all are closed and
// reopened on demand (a 50 GiB cache has about 400 value-log files).
const maxDirectFiles = 64

// crcSize is the checksum badger appends to each value-log entry.
const crcSize = 4

// read copies len(p) bytes of the value of key (size bytes, at vp) starting
// at off into p, and reports whether it did. False means the caller must
// read through badger instead.
func (f *valueLogFiles) read(key []byte, vp valuePointer, size int64, p []byte, off int64) bool {
	if f.off.Load() || int64(vp.len) < size+crcSize {
		return false
	}
	fd := f.file(key, vp, size)
	if fd == nil {
		return false
	}
	start := int64(vp.offset) + int64(vp.len) - crcSize - size
	n, err := fd.ReadAt(p, start+off)
	// A descriptor closed by invalidate under us fails with os.ErrClosed;
	// anything else short is as unexpected, and as safely retried.
	if err != nil || n != len(p) {
		return false
	}
	f.hits.Add(1)
	return true
}

// file returns a descriptor of vp's file, opening and checking it if needed,
// or nil.
func (f *valueLogFiles) file(key []byte, vp valuePointer, size int64) *os.File {
	f.mu.Lock()
	fd := f.open[vp.fid]
	f.mu.Unlock()
	if fd != nil {
		return fd
	}
	fd, err := os.Open(valueLogPath(f.dir, int(vp.fid)))
	if err != nil {
		return nil // deleted by GC since the lookup: the caller retries
	}
	if err := checkEntry(fd, key, vp, size); err != nil {
		fd.Close()
		if f.off.CompareAndSwap(false, true) {
			f.logf("cache: reading pieces through badger's mapping only: %v", err)
		}
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.open[vp.fid]; old != nil {
		fd.Close()
		return old
	}
	if f.open == nil || len(f.open) >= maxDirectFiles {
		f.closeAllLocked()
		f.open = make(map[uint32]*os.File)
	}
	f.open[vp.fid] = fd
	return fd
}

// checkEntry checks that the value-log entry at vp in fd is key's, holding
// size bytes: badger's header (meta, user meta, then klen, vlen and expiry as
// uvarints), then the key with its 8-byte version.
func checkEntry(fd *os.File, key []byte, vp valuePointer, size int64) error {
	var buf [64]byte
	n, err := fd.ReadAt(buf[:min(len(buf), int(vp.len))], int64(vp.offset))
	if n < 2 {
		return fmt.Errorf("value-log entry at %d of %s: %v", vp.offset, fd.Name(), err)
	}
	h := buf[:n]
	i := 2
	klen, k := binary.Uvarint(h[i:])
	i += max(k, 0)
	vlen, v := binary.Uvarint(h[i:])
	i += max(v, 0)
	_, e := binary.Uvarint(h[i:])
	i += max(e, 0)
	switch {
	case k <= 0 || v <= 0 || e <= 0:
		return fmt.Errorf("value-log entry at %d of %s: bad header", vp.offset, fd.Name())
	case klen != uint64(len(key))+8 || vlen != uint64(size):
		return fmt.Errorf("value-log entry at %d of %s: key %d/value %d bytes, want %d/%d",
			vp.offset, fd.Name(), klen, vlen, len(key)+8, size)
	case uint64(i)+klen+vlen+crcSize != uint64(vp.len):
		return fmt.Errorf("value-log entry at %d of %s: %d bytes, pointer says %d",
			vp.offset, fd.Name(), uint64(i)+klen+vlen+crcSize, vp.len)
	case i+len(key) > n || !bytes.Equal(h[i:i+len(key)], key):
		return fmt.Errorf("value-log entry at %d of %s: not the key looked up", vp.offset, fd.Name())
	}
	return nil
}

// invalidate closes every descriptor, so none keeps a deleted file's space.
func (f *valueLogFiles) invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeAllLocked()
}

func (f *valueLogFiles) closeAllLocked() {
	for fid, fd := range f.open {
		fd.Close()
		delete(f.open, fid)
	}
}
