package engine

import (
	"fmt"
	"strings"
	"time"
)

// Reads that wait for a piece no source has: a torrent whose only source
// is an unreachable web seed, or a swarm without the piece, must not look
// like a slow swarm. The loop counts the pieces under pending reads (from
// the readers' operations) and, each tick, names those waited for longer
// than starveAfter that no connected peer has and no ready web seed
// serves: in Stats.Waiting, and once per piece in the log.

// starveAfter is how long a read waits before its piece's lack of source
// is reported: a piece normally arrives well within it.
const starveAfter = 2 * time.Second

// readWaits are the pieces under pending reads. Loop-owned.
type readWaits struct {
	pending map[int]int       // piece -> pending reads that need it
	since   map[int]time.Time // piece -> when a read first waited for it
	logged  map[int]bool      // pieces whose lack of source was logged
	msg     string            // Stats.Waiting
}

// noteReadWait counts the pieces of a read while it is pending. Every
// ReadAt queues an opRead and then an opDone, whatever happens to its
// reader, so the counts balance.
func (t *Torrent) noteReadWait(op readerOp) {
	if op.kind != opRead && op.kind != opDone || op.n <= 0 || t.info == nil {
		return
	}
	w := &t.waits
	if w.pending == nil {
		w.pending, w.since, w.logged = map[int]int{}, map[int]time.Time{}, map[int]bool{}
	}
	first := int(op.off / t.info.PieceLength)
	last := int((op.off + int64(op.n) - 1) / t.info.PieceLength)
	for p := first; p <= last; p++ {
		if op.kind == opRead {
			w.pending[p]++
			continue
		}
		if w.pending[p]--; w.pending[p] <= 0 {
			delete(w.pending, p)
			delete(w.since, p)
			delete(w.logged, p)
		}
	}
}

// checkWaits refreshes Stats.Waiting and logs each newly starved piece.
// Loop only.
func (t *Torrent) checkWaits(now time.Time) {
	w := &t.waits
	var starved []int
	for p := range w.pending {
		if t.HavePiece(p) || t.mem.has(p) {
			delete(w.since, p)
			continue
		}
		at, ok := w.since[p]
		if !ok {
			w.since[p] = now
			continue
		}
		if now.Sub(at) < starveAfter || t.hasSource(p, now) {
			continue
		}
		starved = append(starved, p)
	}
	if len(starved) == 0 {
		w.msg = ""
		return
	}
	first := starved[0]
	for _, p := range starved {
		first = min(first, p)
	}
	msg := fmt.Sprintf("waiting for piece %d: no source has it", first)
	if len(starved) > 1 {
		msg += fmt.Sprintf(" (and %d more pieces)", len(starved)-1)
	}
	msg += t.sourcesSummary(now)
	w.msg = msg
	for _, p := range starved {
		if !w.logged[p] {
			w.logged[p] = true
			t.client.logf("%s: a read is waiting for piece %d: no source has it%s", t.name(), p, t.sourcesSummary(now))
		}
	}
}

// hasSource reports whether a connected peer has piece p or a web seed
// that is not backing off serves it.
func (t *Torrent) hasSource(p int, now time.Time) bool {
	for c := range t.conns {
		if t.peerIsSeed(c) || c.has.bits.Has(p) {
			return true
		}
	}
	for _, ws := range t.ws.list {
		if !ws.dropped && ws.seed.Ready(now) && ws.seed.Has(p) {
			return true
		}
	}
	return false
}

// sourcesSummary says what the torrent's sources are doing, for a
// starved read: the peers, and each web seed's state and last error, as
// of the now hasSource judged by (a back-off that ends in between would
// otherwise show a seed as active beside a read it is not serving).
func (t *Torrent) sourcesSummary(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, " (%d peers", len(t.conns))
	for _, ws := range t.ws.list {
		st := ws.seed.StatsAt(now)
		fmt.Fprintf(&b, "; web seed %s %s", st.URL, st.State)
		if st.LastError != "" {
			fmt.Fprintf(&b, ": %s", st.LastError)
		}
	}
	b.WriteString(")")
	return b.String()
}
