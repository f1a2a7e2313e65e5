package engine

import (
	"errors"
	"time"
)

// Partial seeds (BEP 21): a torrent that wants nothing more says
// upload_only in its extension handshake (sent again when that changes),
// so that others do not count it as a leecher; a peer that says it and has
// nothing we want is dropped when we want nothing either, and is the first
// to give up its slot to a newcomer. Loop-owned.

// uploadOnlyIdle is how long a torrent that downloads only what readers
// ask for must have had no reader and no piece in progress before it says
// upload_only: a player that pauses between reads should not lose its
// seeds. A variable so that tests can shorten it.
var uploadOnlyIdle = 30 * time.Second

// errBothUploadOnly drops a peer that, like us, wants nothing more.
var errBothUploadOnly = errors.New("neither side wants anything (upload_only)")

// uploadOnlyState is what we last said. Loop-owned.
type uploadOnlyState struct {
	said     bool      // our last extension handshake said upload_only
	wantedAt time.Time // the last time we wanted something (a reader, a piece in progress)
}

// wantsNothing reports whether the torrent wants no more pieces: complete,
// or downloading only for readers and idle for uploadOnlyIdle; never while
// super-seeding (as libtorrent).
func (t *Torrent) wantsNothing(now time.Time) bool {
	if t.picker == nil || t.super.active {
		// A super-seed hides what it has: libtorrent drops an upload_only
		// peer it wants nothing from, which is all of it at first.
		return false
	}
	if t.isComplete {
		return true
	}
	if t.opts.DownloadAll || len(t.readers) > 0 || len(t.partial) > 0 || t.uploadOnly.wantedAt.IsZero() {
		t.uploadOnly.wantedAt = now
		return false
	}
	return now.Sub(t.uploadOnly.wantedAt) >= uploadOnlyIdle
}

// uploadOnlyTick tells peers when upload_only changes; every second.
func (t *Torrent) uploadOnlyTick(now time.Time) {
	want := t.wantsNothing(now)
	if want == t.uploadOnly.said {
		return
	}
	t.uploadOnly.said = want
	for c := range t.conns {
		if c.ext {
			t.sendExtHandshake(c)
		}
	}
	if want {
		for c := range t.conns {
			t.dropRedundant(c)
		}
	}
}

// peerUploadOnly reports whether c said upload_only.
func peerUploadOnly(c *conn) bool { return c.exts.hs != nil && c.exts.hs.UploadOnly != 0 }

// dropRedundant drops c when it and we both want nothing more from each
// other: it says upload_only and has nothing we want, and we want nothing.
// A seed we keep while leeching is not redundant (we want from it).
func (t *Torrent) dropRedundant(c *conn) {
	if c.removed || !peerUploadOnly(c) || c.choke.amInterested || !t.uploadOnly.said {
		return
	}
	c.close(errBothUploadOnly)
	t.removeConn(c)
}
