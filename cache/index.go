package cache

import "sync/atomic"

// The in-memory index: every stored piece has an entry, found through its
// torrent. All of it is guarded by Cache.mu.

// entry states. Only statePresent entries are visible to Has, ReadAt, Pieces
// and Usage; the other two exist so that a second Put of the same piece waits
// for the first write or eviction to finish instead of racing it.
const (
	stateWriting  uint8 = iota + 1 // Put is writing it; counted in used
	statePresent                   // stored and readable
	stateEvicting                  // being deleted; no longer counted in used
)

type entry struct {
	t        *torrent
	piece    uint32
	size     int32
	state    uint8
	verified bool        // data checked against sum in this process (written or read)
	dirty    bool        // seq changed by a read and not yet persisted
	readers  int32       // ReadAt calls reading its slot now; eviction waits for 0
	consumed atomic.Bool // read to its end since written (Consumed): its pages may go (pagecache.go)
	file     *dataFile   // the piece file holding its slot (see datafile.go)
	sum      uint64
	seq      uint64 // recency: larger is more recently written or read

	// LRU list links; non-nil only while the entry is present and unpinned.
	prev, next *entry
}

func (e *entry) ih() InfoHash { return e.t.ih }

// torrent groups one info-hash's entries.
type torrent struct {
	ih      InfoHash
	pieces  map[uint32]*entry
	present int                 // entries in statePresent
	bytes   int64               // their sizes
	meta    bool                // a metainfo record is stored
	files   map[uint8]*dataFile // open piece files by slot shift
	shift   uint8               // slot shift for new pieces (slotShiftLocked); 0 before the first
}

// lruList is an intrusive doubly-linked list with a sentinel: front is the
// most recently used entry, back the least.
type lruList struct {
	root  entry
	bytes int64 // total size of listed entries: what eviction could free
	n     int
}

func (l *lruList) init() {
	l.root.prev, l.root.next = &l.root, &l.root
}

func (l *lruList) pushFront(e *entry) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
	l.bytes += int64(e.size)
	l.n++
}

// remove unlinks e if it is listed.
func (l *lruList) remove(e *entry) {
	if e.next == nil {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	l.bytes -= int64(e.size)
	l.n--
}

func (l *lruList) moveToFront(e *entry) {
	if l.root.next == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

// back returns the least recently used entry, or nil.
func (l *lruList) back() *entry {
	if l.root.prev == &l.root {
		return nil
	}
	return l.root.prev
}
