package session

import (
	"context"
	"errors"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/picker"
)

// Index prefetch: a player opening a video reads the container's head, then
// its index, which an MP4 written without faststart, Matroska's cues and
// AVI's idx1 keep at the end of the file. Fetched at open, the two cost a
// player (or ffprobe, or a media server scanning a library) two pieces'
// transfer before the first frame; fetched shortly after the torrent's info
// is known, they are usually there by the time a program opens the file. The
// session fetches the head and tail of the files Config.IndexFile picks,
// one file at a time in the torrent's order, until the pieces asked for
// reach Config.IndexBudget bytes.

const (
	// indexSpan is how much of each end of a file is fetched: what the
	// picker asks for at a media reader's open.
	indexSpan = picker.HeadTailSize
	// indexWait bounds the wait for one file's pieces: a torrent no peer
	// serves does not hold the prefetch goroutine for long.
	indexWait = 2 * time.Minute
	// indexDelay lets the reads that come with the mount (a player
	// started with it, a read right after the listing) have the peers
	// first: measured in the bench's fast and slow swarms, a prefetch
	// started at once cost such a read 3-30 ms.
	indexDelay = 200 * time.Millisecond
)

// headTailer is what a Reader offers to wait for the head and tail it
// asked for at open without making them urgent; an *engine.Reader has it.
type headTailer interface {
	AwaitHeadTail(ctx context.Context) error
}

var _ headTailer = (*engine.Reader)(nil)

// indexCost is what the pieces under file f's head and tail (as the picker
// takes them: indexSpan at each end, the whole file when it is at most
// twice that) cost in bytes.
func indexCost(info *metainfo.Info, f metainfo.File) int64 {
	pl := info.PieceLength
	if f.Length <= 0 || pl <= 0 {
		return 0
	}
	spans := [][2]int64{{0, f.Length}}
	if f.Length > 2*indexSpan {
		spans = [][2]int64{{0, indexSpan}, {f.Length - indexSpan, f.Length}}
	}
	var cost int64
	for _, s := range spans {
		first := (f.Offset + s[0]) / pl
		last := (f.Offset + s[1] - 1) / pl
		cost += (last - first + 1) * pl
	}
	return cost
}

// prefetchIndexesLocked starts fetching the heads and tails of t's media files
// indexDelay after its info is known. s.mu must be held.
func (s *Session) prefetchIndexesLocked(t *Torrent) {
	if s.indexFile == nil || s.indexBudget <= 0 {
		return
	}
	s.goLocked(func() {
		if !until(s, t, t.InfoReady()) {
			return
		}
		delay := time.NewTimer(indexDelay)
		defer delay.Stop()
		if !until(s, t, delay.C) {
			return
		}
		mi := t.h.MetaInfo()
		if mi == nil || mi.Info == nil {
			return
		}
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		go func() {
			select {
			case <-t.gone:
				cancel()
			case <-ctx.Done():
			}
		}()
		s.prefetchIndexes(ctx, t, mi.Info)
	})
}

// prefetchIndexes opens each media file of info in turn, within the
// budget, as a media reader (the picker asks for its head and tail) and
// waits for those pieces. It returns when they are all verified, ctx ends,
// a file's wait runs out, or the picker grants no more heads and tails.
func (s *Session) prefetchIndexes(ctx context.Context, t *Torrent, info *metainfo.Info) {
	budget := s.indexBudget
	n := 0
	for i, f := range info.Files {
		if f.Pad || f.Length == 0 || !s.indexFile(f.DisplayPath()) {
			continue
		}
		if t.h.FileBytesCompleted(i) == f.Length {
			continue // cached whole: costs nothing
		}
		cost := indexCost(info, f)
		if cost > budget {
			break
		}
		budget -= cost
		r, err := t.h.NewReader(i, true)
		if err != nil {
			return
		}
		ht, ok := r.(headTailer)
		if !ok {
			r.Close()
			return
		}
		fctx, fcancel := context.WithTimeout(ctx, indexWait)
		err = ht.AwaitHeadTail(fctx)
		fcancel()
		r.Close()
		if ctx.Err() != nil || errors.Is(err, engine.ErrNoHeadTail) {
			return
		}
		if err != nil {
			// Most likely no source has the pieces yet (or gives them
			// only to a read: a web seed that ignores Range): the next
			// files would wait as long.
			if errors.Is(err, context.DeadlineExceeded) {
				s.logf("%s (%s): the head and tail of %s did not arrive within %v; media indexes are fetched when read", t.Name(), t.ih, f.DisplayPath(), indexWait)
			} else {
				s.logf("%s (%s): prefetching the head and tail of %s: %v", t.Name(), t.ih, f.DisplayPath(), err)
			}
			return
		}
		n++
	}
	switch {
	case n == 1:
		s.logf("%s (%s): fetched the head and tail of 1 media file", t.Name(), t.ih)
	case n > 1:
		s.logf("%s (%s): fetched the heads and tails of %d media files", t.Name(), t.ih, n)
	}
}
