package storage

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

var (
	// ErrNotStored is returned by ReadAt for a range whose piece is not (or
	// no longer) stored; the caller waits for it to be downloaded again.
	ErrNotStored = errors.New("storage: piece not stored")
	// ErrNoSpace is returned (wrapped) by WritePiece when the disk is full,
	// or the piece larger than the store ever takes, and by Open for a
	// torrent whose pieces are. It lasts until space frees, so the caller
	// stops fetching the piece and tells its readers. It wraps
	// syscall.ENOSPC, which is what a reader of a file should see.
	ErrNoSpace = fmt.Errorf("storage: %w", syscall.ENOSPC)
	// ErrFull is returned (wrapped) by WritePiece when the store is full of
	// pieces it must keep (pinned by readers). Pins go as readers move on:
	// the caller retries when Space.Room says there is room.
	ErrFull = errors.New("storage: full of pinned pieces")
)

// Provider opens per-torrent stores.
type Provider interface {
	// Open returns the store for a torrent and the pieces it already holds,
	// each known to match its hash.
	Open(ih metainfo.Hash, info *metainfo.Info) (Torrent, []int, error)
}

// Torrent stores one torrent's verified pieces. Offsets are in the torrent's
// concatenated byte space.
type Torrent interface {
	// ReadAt fills p from stored pieces; it returns ErrNotStored (wrapped) when
	// any byte of the range lies in a piece that is not stored.
	ReadAt(p []byte, off int64) (int, error)
	// WritePiece stores a piece whose hash has been checked.
	WritePiece(index int, data []byte) error
	Close() error
}

// Evicter is implemented by stores that can lose pieces on their own (a cache
// under its capacity limit). The engine registers to hear about it.
type Evicter interface {
	// OnEvict registers fn, called after a piece left the store, on the
	// goroutine that caused it (a WritePiece, or a ReadAt that found it
	// corrupt): fn must return at once. Evictions between Open and OnEvict
	// are reported when fn is registered, so none of the pieces Open
	// listed is lost unheard.
	OnEvict(fn func(piece int))
	// Has reports whether a piece is stored now. An eviction may land
	// between a WritePiece and the caller's use of its result; Has settles
	// which came last.
	Has(piece int) bool
}

// Space is implemented by stores with a size limit (a cache). The engine
// asks it before fetching more than readers need, and before retrying a
// piece that WritePiece refused.
type Space interface {
	// Free returns the bytes that can be stored without evicting anything.
	Free() int64
	// Room returns nil if a piece of n bytes could be stored now (evicting
	// what may go), or why not: an error wrapping ErrNoSpace or ErrFull.
	Room(n int64) error
}

// Consumer is implemented by stores that keep a copy of pieces in memory
// they can let go of (a cache, its pages in the kernel's page cache) once a
// reader has its own.
type Consumer interface {
	// Consumed tells the store that a reader has read the stored piece to
	// its end. A hint: nothing is lost if it is wrong.
	Consumed(piece int)
}

// Pinner is implemented by stores that can be told which pieces must stay.
type Pinner interface {
	Pin(piece int)
	Unpin(piece int)
}

// pieceSpan calls fn for each piece touched by [off, off+n).
func pieceSpan(info *metainfo.Info, off int64, n int, fn func(piece int, pieceOff int64, p0, p1 int) error) error {
	pl := info.PieceLength
	done := 0
	for done < n {
		cur := off + int64(done)
		piece := int(cur / pl)
		pieceOff := cur - int64(piece)*pl
		take := int(min(int64(n-done), info.PieceLen(piece)-pieceOff))
		if take <= 0 {
			return errors.New("storage: read beyond the torrent's end")
		}
		if err := fn(piece, pieceOff, done, done+take); err != nil {
			return err
		}
		done += take
	}
	return nil
}
