package engine

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/webseed"
	"github.com/swarmfs/swarmfs/picker"
)

// A web seed's runs: how each fetch of consecutive pieces starts, reads
// into piece buffers and hashes as it goes, ends, and is cut short when the
// picker withdraws what remains of it (see torrent_webseed.go for the rest).

// webSeedRun is one fetch of pieces [first, end) in flight. Loop-owned,
// except stopAt and cancel, which the fetch's goroutine reads.
type webSeedRun struct {
	first, end int
	next       int  // pieces before next were delivered to the loop
	stopped    bool // cut short by trimWebSeedRun: its end is no failure
	preempted  bool // ended by preemptWebSeedRun for an urgent read
	// stopAt: the fetch ends once the pieces before it are delivered
	// (end: it runs to its end).
	stopAt atomic.Int64
	cancel context.CancelFunc // ends the fetch at once
}

// errRunStopped ends a web-seed run whose remaining pieces were withdrawn.
var errRunStopped = errors.New("web seed run no longer wanted")

// startWebSeedRun fetches pieces [first, first+count) off the loop, each
// read from the HTTP body straight into a piece buffer of its own, which is
// posted to the loop as soon as the piece is in (no copy between the body
// and assembly). A v1 torrent's pieces are hashed as their bytes arrive, so
// a piece's verdict is ready with its last byte: hashing no longer follows
// the transfer (the time to the first byte after a seek is one piece's
// transfer, not a transfer and then a hash).
func (t *Torrent) startWebSeedRun(ws *webSeed, first, count int) {
	for p := first; p < first+count; p++ {
		ws.fetching[p] = true
	}
	ws.runs++
	ctx, cancel := context.WithCancel(t.ctx)
	run := &webSeedRun{first: first, end: first + count, next: first, cancel: cancel}
	run.stopAt.Store(int64(run.end))
	ws.active = append(ws.active, run)
	// A v2 or hybrid torrent's piece needs its Merkle check too, which
	// may wait for a piece layer: hashPiece checks those.
	sha1Only := !t.info.HasV2()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cancel()
		bufs := make([][]byte, count)
		for i := range bufs {
			bufs[i] = getPieceBuf(int(t.info.PieceLen(first + i)))
		}
		next := first // pieces before next were handed to the loop
		defer func() {
			for i := next - first; i < count; i++ {
				putPieceBuf(bufs[i])
			}
		}()
		var h pieceHasher
		var arrived func(idx, n int)
		if sha1Only {
			arrived = func(idx, n int) { h.add(idx, bufs[idx-first][:n]) }
		}
		err := ws.seed.FetchPieces(ctx, first, count, bufs, arrived, func(idx int, data []byte) error {
			good := false
			if sha1Only {
				h.add(idx, data)
				good = h.sum() == t.info.PieceHash(idx)
			}
			// --max-download-rate holds web seeds too: the rest of the
			// run is read no faster than the limit allows.
			if lim := t.client.downLim; lim != nil {
				if err := waitN(ctx, lim, len(data)); err != nil {
					return err
				}
			}
			t.pub.downloaded.Add(int64(len(data)))
			if !t.post(func() { t.webSeedPiece(ws, run, idx, data, good) }) {
				return ErrClosed
			}
			next = idx + 1
			if stop := int(run.stopAt.Load()); stop < run.end && next >= stop {
				return errRunStopped
			}
			return nil
		})
		t.post(func() { t.webSeedRunDone(ws, run, next, err) })
	}()
}

// webSeedRunDone ends a run whose pieces before next were delivered:
// what the picker asked of the rest is requestable again.
func (t *Torrent) webSeedRunDone(ws *webSeed, run *webSeedRun, next int, err error) {
	end := run.end
	ws.runs--
	ws.active = slices.DeleteFunc(ws.active, func(r *webSeedRun) bool { return r == run })
	for p := next; p < end; p++ {
		delete(ws.fetching, p)
		delete(ws.asked, p)
	}
	if run.stopped && (errors.Is(err, errRunStopped) || errors.Is(err, context.Canceled)) {
		err = nil // cut short by us: not the seed's failure
	}
	if t.picker == nil || ws.dropped {
		return
	}
	if next < end {
		for p := next; p < end; p++ {
			pl := t.info.PieceLen(p)
			for b := int64(0); b < pl; b += peer.BlockSize {
				t.picker.RequestReturned(ws.id, picker.Request{Piece: p, Begin: uint32(b), Length: uint32(min(peer.BlockSize, pl-b))})
			}
		}
	}
	now := time.Now()
	if err != nil && !errors.Is(err, ErrClosed) && t.ctx.Err() == nil {
		st := ws.seed.Stats()
		if errors.Is(err, webseed.ErrDropped) || st.State == webseed.Dropped {
			t.dropWebSeed(ws, err.Error())
			return
		}
		if msg := err.Error(); msg != ws.lastErr {
			ws.lastErr = msg
			if st.State == webseed.BackingOff {
				t.client.logf("%s: web seed: %v (backing off until %s)", t.name(), err, st.RetryAt.Format("15:04:05"))
			} else {
				t.client.logf("%s: web seed: %v", t.name(), err)
			}
		}
	} else if err == nil && !run.stopped {
		ws.lastErr = ""
	}
	t.fillWebSeed(ws, now)
}

// webSeedWithdrawn notes that the picker took back its request for a block
// of piece from ws (a seek, an urgent read elsewhere, a peer that delivered
// it first, or a timeout) and cuts short the run fetching it once none of
// that run's remaining pieces is asked of ws any more. Loop only.
func (t *Torrent) webSeedWithdrawn(ws *webSeed, piece int) {
	if ws.asked[piece] > 1 {
		ws.asked[piece]--
		return
	}
	delete(ws.asked, piece)
	for _, run := range ws.active {
		if piece >= run.next && piece < run.end {
			t.trimWebSeedRun(ws, run)
		}
	}
}

// trimWebSeedRun ends run after its last piece still asked of ws: at once
// (cancelling the request) when none of its remaining pieces is, or once
// the pieces before the unwanted tail are in. The picker may ask for a
// trimmed piece again: it is fetched by a later run.
func (t *Torrent) trimWebSeedRun(ws *webSeed, run *webSeedRun) {
	stop := int(run.stopAt.Load())
	for stop > run.next && ws.asked[stop-1] == 0 {
		stop--
	}
	if stop == int(run.stopAt.Load()) {
		return
	}
	run.cut(stop)
}

// cut ends run once the pieces before stop are delivered, at once when
// none is left to deliver before it; its end is no failure. Loop only.
func (run *webSeedRun) cut(stop int) {
	run.stopped = true
	run.stopAt.Store(int64(stop))
	if stop <= run.next {
		run.cancel()
	}
}

// preemptWebSeedRun ends one of ws's runs at once when every run slot is
// taken and a read waits for a piece ws has that nobody was asked for. The
// runs then hold background work, or an old window the picker still asks
// for, and the read would wait for one of them to end: seconds at a slow
// seed, a stalled request's timeout at a stuck one. The last started run
// with no piece under a pending read is cut; its piece in progress is
// fetched again later, and the freed slot goes to the urgent piece (the
// picker's Next gives urgent work first). One cut at a time: nothing more
// is cut while a cut run has not ended. Loop only.
func (t *Torrent) preemptWebSeedRun(ws *webSeed) {
	var victim *webSeedRun
	for _, run := range ws.active {
		if run.preempted {
			return
		}
		urgent := false
		for p := run.next; p < int(run.stopAt.Load()) && !urgent; p++ {
			urgent = t.waits.pending[p] > 0
		}
		if !urgent {
			victim = run
		}
	}
	if victim == nil || !t.picker.UrgentUnasked(ws.id) {
		return
	}
	victim.preempted = true
	victim.cut(victim.next)
}

// cutWebSeedRunsButFirst ends every run of ws but the one that starts
// lowest, once ws is found to ignore Range: the runs started before that
// was known each read their file from its start to reach their pieces
// (gigabytes, deep in a large file), while the picker now hands ws its
// pieces in order, for one run to read on from the last. The cut runs'
// pieces go back to the picker; their end is no failure. Loop only.
func (t *Torrent) cutWebSeedRunsButFirst(ws *webSeed) {
	var keep *webSeedRun
	for _, run := range ws.active {
		if keep == nil || run.first < keep.first {
			keep = run
		}
	}
	for _, run := range ws.active {
		if run != keep && !run.stopped {
			run.cut(run.next)
		}
	}
}

// webSeedByID returns the web seed whose picker peer is id, or nil.
func (t *Torrent) webSeedByID(id picker.PeerID) *webSeed {
	for _, ws := range t.ws.list {
		if ws.id == id && !ws.dropped {
			return ws
		}
	}
	return nil
}
