package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

// The torrent's side of its store's limits: pieces a cache evicts, pieces
// it refuses, and DownloadAll against a cache smaller than the torrent.
//
// Evictions: the cache calls evicted on whatever goroutine caused the
// eviction (a hashing goroutine's WritePiece, a FUSE read that found a piece
// corrupt), so it only records the piece and pokes the loop; the loop
// (reconcileStore) asks the store whether the piece is really gone (it may
// have been stored again since) and only then clears the have-bit and tells
// the picker. A piece evicted between its WritePiece and pieceHashed is
// caught by pieceHashed's own Has check. Readers that find a have-bit
// without its piece queue the same re-check and wait for the loop's answer.
//
// Refusals: a piece the store refuses is parked. Its picker partial stays
// complete (every block received, never resolved), which the picker asks
// of nobody, so it is not fetched again in a loop. It is retried after a
// back-off (2 s doubling to 2 min, reset by a write that works), or
// earlier when Space.Room says a piece would fit. A lasting refusal
// (storage.ErrNoSpace, or any error but storage.ErrFull) fails the reads
// waiting for that piece at once, with the store's error (ENOSPC for no
// space); a cache full of pinned pieces (storage.ErrFull) keeps them
// waiting, since its readers' pins go as they finish. Stats shows the
// error and the count; the log gets one line a minute at most.
//
// DownloadAll: when the cache evicts one of this torrent's pieces, or
// refuses one, the background policy is paused (picker.SetBackground): the
// cache is full, and fetching more would only push out what it holds, to
// fetch that again later (a 16 MiB cache fetched 749 MB of a 64 MiB
// torrent in 8 s). It resumes when the store has room for more without
// evicting (Space.Free), e.g. after another torrent was removed.

// ErrNoSpace is wrapped by reads of a piece the store refused for lack of
// space (a full disk) and by AddTorrent for a torrent whose pieces the
// cache can never hold. It is storage.ErrNoSpace, which wraps
// syscall.ENOSPC: front-ends that map errors to errnos report ENOSPC.
var ErrNoSpace = storage.ErrNoSpace

const (
	// storeLogEvery bounds the log lines about the store: one a minute.
	storeLogEvery = time.Minute
	// minPause is the least time the background stays paused, so that a
	// cache at its limit does not flap between paused and resumed.
	minPause = 5 * time.Second
)

// storeState is the loop's record of its store's refusals. Loop-owned.
type storeState struct {
	// parked holds the refused pieces waiting for a retry, with their
	// bytes while the refusal should pass (a cache full of pins) and
	// parkedBytes stays within maxParkedBytes, else nil.
	parked      map[int]*partialPiece
	parkedBytes int64
	refusedAt   time.Time     // the latest refusal
	retryAt     time.Time     // when the parked pieces are retried, at the latest
	backoff     time.Duration // the current back-off; 0 after a write that worked
	pausedAt    time.Time     // when the background was paused
	lastLog     time.Time
	muted       int // log lines suppressed since lastLog
}

// maxParkedBytes bounds the refused pieces kept in memory to be stored
// again without downloading them again.
const maxParkedBytes = 32 << 20

// evicted is the store's eviction hook: it runs on the goroutine that caused
// the eviction and must never block, above all not on the loop.
func (t *Torrent) evicted(p int) { t.recheck(p, p) }

// recheck asks the loop to compare pieces first..last with the store. Safe
// from any goroutine once the info is set; never blocks.
func (t *Torrent) recheck(first, last int) {
	first, last = max(first, 0), min(last, t.info.NumPieces()-1)
	t.evictions.add(first, last)
}

// reconcileStore handles the queued re-checks: a piece the store no longer
// holds loses its have-bit and goes back to the picker, which fetches it
// again if a reader waits for it. Loop only.
func (t *Torrent) reconcileStore() {
	if t.picker == nil {
		return
	}
	list := t.evictions.take()
	if len(list) == 0 {
		return
	}
	ev, _ := t.store.(storage.Evicter)
	lost := -1
	for _, p := range list {
		if ev != nil && ev.Has(p) {
			continue // stored again since, or a reader's false alarm
		}
		if t.clearHave(p) {
			lost = p
		}
	}
	if lost >= 0 && ev != nil {
		t.pauseBackground(fmt.Sprintf("the cache is full (it evicted piece %d)", lost))
	}
	// Readers waiting on a piece that turned out to be gone re-check it
	// and wait for it again; the picker has made it urgent.
	t.waiters.wakeAll()
	t.fillAll()
}

// clearHave forgets a piece the store lost; false if it was not had.
// Loop only.
func (t *Torrent) clearHave(p int) bool {
	if !t.haveBits.clear(p) {
		return false
	}
	t.pub.numHave.Add(-1)
	t.pub.bytesHave.Add(-t.info.PieceLen(p))
	t.picker.Lost(p)
	return true
}

// storeRefused parks a verified piece the store would not take. It takes
// pp: kept to store again, or its buffer returned. Loop only.
func (t *Torrent) storeRefused(idx int, err error, pp *partialPiece, now time.Time) {
	st := &t.st
	if st.parked == nil {
		st.parked = make(map[int]*partialPiece)
	}
	if old := st.parked[idx]; old != nil && old != pp {
		st.parkedBytes -= int64(len(old.buf))
		t.mem.forget(idx)
		putPieceBuf(old.buf)
	}
	lasting := !errors.Is(err, storage.ErrFull)
	if !lasting && (st.parkedBytes == 0 || st.parkedBytes+int64(len(pp.buf)) <= maxParkedBytes) {
		// Pins pass: store it again then, without a download. Meanwhile
		// its readers copy it from memory: waiting for it would keep
		// their own pins, and could keep them all waiting.
		st.parked[idx] = pp
		st.parkedBytes += int64(len(pp.buf))
		t.mem.put(idx, pp.buf)
	} else {
		st.parked[idx] = nil
		putPieceBuf(pp.buf)
	}
	st.refusedAt = now
	if st.retryAt.IsZero() {
		st.backoff = storeRetry.next(st.backoff)
		st.retryAt = now.Add(st.backoff)
	}
	t.refusals.Add(1)
	if lasting {
		t.refusedBits.set(idx) // its readers fail now rather than wait
	}
	t.storeErr.refused(err)
	t.storeLogf(now, "cannot store piece %d: %v; it waits for space (retry within %v)", idx, err, st.retryAt.Sub(now).Round(time.Second))
	t.pauseBackground(fmt.Sprintf("the store refused piece %d", idx))
	t.waiters.wakeAll()
}

// dropParked returns the parked pieces' buffers. Loop only, at shutdown.
func (t *Torrent) dropParked() {
	for p, pp := range t.st.parked {
		if pp != nil {
			t.mem.forget(p)
			putPieceBuf(pp.buf)
		}
	}
	t.st.parked, t.st.parkedBytes = nil, 0
}

// storeWorked notes a piece stored: a refusal episode is over. Loop only.
func (t *Torrent) storeWorked(now time.Time) {
	st := &t.st
	st.backoff = 0
	if was := t.storeErr.worked(); was != nil {
		t.storeLogf(now, "storing pieces works again (%d refused so far)", t.refusals.Load())
	}
}

// evictedBeforeHashed handles a piece evicted between its WritePiece and
// pieceHashed: it is fetched again when wanted. Loop only.
func (t *Torrent) evictedBeforeHashed(idx int) {
	t.picker.PieceFailed(idx)
	t.pauseBackground(fmt.Sprintf("the cache is full (it evicted piece %d as it was stored)", idx))
	t.fillAll()
}

// storeTick retries parked pieces and resumes the background download when
// their time has come. Loop only, once a second.
func (t *Torrent) storeTick(now time.Time) {
	st := &t.st
	sp, _ := t.store.(storage.Space)
	if len(st.parked) > 0 {
		room := sp != nil && sp.Room(t.info.PieceLength) == nil
		due := !now.Before(st.retryAt)
		// A download again early when the store says a piece fits now,
		// but at most once per eighth of the back-off, in case it is
		// wrong. A piece still in memory costs no download: it is stored
		// again whenever there is room.
		early := room && now.Sub(st.refusedAt) >= max(time.Second, st.backoff/8)
		fetch := false
		for p, pp := range st.parked {
			switch {
			case pp != nil && (room || due):
				delete(st.parked, p)
				st.parkedBytes -= int64(len(pp.buf))
				t.writePiece(p, pp)
			case pp == nil && (early || due):
				delete(st.parked, p)
				t.refusedBits.clear(p)
				t.picker.PieceFailed(p)
				fetch = true
			}
		}
		if len(st.parked) == 0 {
			st.retryAt = time.Time{}
		}
		if fetch {
			t.fillAll()
		}
	}
	if !t.bgPaused.Load() || len(st.parked) > 0 || now.Sub(st.pausedAt) < max(minPause, st.backoff) {
		return
	}
	if sp != nil {
		// Room for a few pieces without evicting any, or for what is
		// missing if less.
		need := min(8*t.info.PieceLength, t.info.TotalLength-t.pub.bytesHave.Load())
		if sp.Free() < need {
			return
		}
	}
	t.picker.SetBackground(picker.All)
	t.bgPaused.Store(false)
	t.storeLogf(now, "resuming the background download: the store has room again")
	for c := range t.conns {
		t.updateInterest(c)
	}
	t.fillAll()
}

// pauseBackground stops DownloadAll's background fetching (readers are
// still served) because the store is full. Loop only.
func (t *Torrent) pauseBackground(why string) {
	if !t.opts.DownloadAll || t.bgPaused.Load() || t.picker == nil {
		return
	}
	now := time.Now()
	t.picker.SetBackground(picker.OnlyWanted)
	t.sendCancels(t.picker.Cancels())
	t.bgPaused.Store(true)
	t.st.pausedAt = now
	for c := range t.conns {
		t.updateInterest(c)
	}
	t.st.lastLog = time.Time{} // always told
	t.storeLogf(now, "background download paused at %d of %d pieces: %s; readers are still served",
		t.pub.numHave.Load(), t.info.NumPieces(), why)
}

// storeLogf logs one line about the store at most every storeLogEvery.
func (t *Torrent) storeLogf(now time.Time, format string, args ...any) {
	st := &t.st
	if !st.lastLog.IsZero() && now.Sub(st.lastLog) < storeLogEvery {
		st.muted++
		return
	}
	if st.muted > 0 {
		format += fmt.Sprintf(" (%d similar lines not shown)", st.muted)
		st.muted = 0
	}
	st.lastLog = now
	t.client.logf("%s: "+format, append([]any{t.name()}, args...)...)
}

// refusedErr is the error for a read waiting on piece, if the store
// refused it for good.
func (t *Torrent) refusedErr(piece int) error {
	if !t.refusedBits.get(piece) {
		return nil
	}
	err := t.storeErr.latest()
	if err == nil {
		err = ErrNoSpace
	}
	return fmt.Errorf("engine: %s: piece %d not stored: %w", t.name(), piece, err)
}
