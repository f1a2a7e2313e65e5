package storage

import (
	"errors"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// ErrNotStored is returned by ReadAt for a range whose piece is not (or no
// longer) stored; the caller waits for it to be downloaded again.
var ErrNotStored = errors.New("storage: piece not stored")

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
	OnEvict(fn func(piece int))
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
