package picker

import "time"

// Player behaviour.
const (
	simBufferSecs = 5.0      // a player keeps this much read ahead of playback
	simResumeSecs = 0.5      // after a stall, playback resumes with this much
	simStartSecs  = 1.0      // after an open or a seek, playback starts with this much
	simSeekGuard  = 16 << 20 // seeks land at least this far before the end
)

func (s *sim) open(i int) {
	r := s.readers[i]
	total := int64(s.sc.pieces) * s.sc.pieceLen
	to := r.spec.to
	if to == 0 {
		to = 1
	}
	r.start, r.end = int64(r.spec.from*float64(total)), int64(to*float64(total))
	r.pos = r.start
	r.id = s.p.AddReader(ReaderOptions{Start: r.start, End: r.end, Media: r.spec.media}, s.wall())
	r.opened = true
	r.waitFirst, r.waitSince = true, s.now
	r.nextSeek = s.now + r.spec.seekEvery
	s.afterReaderOp()
	s.issue(r)
}

// afterReaderOp is what the engine does after feeding the picker reader
// operations: send the cancels, refill every pipeline.
func (s *sim) afterReaderOp() {
	s.sendCancels(s.p.Cancels())
	s.fillAll()
}

func (s *sim) issue(r *simReader) {
	if r.pending || r.done {
		return
	}
	if r.pos >= r.end {
		if r.spec.bitrate == 0 {
			r.done = true
			s.res.copyTime = max(s.res.copyTime, s.now-r.spec.open)
		}
		return
	}
	if r.spec.bitrate > 0 && r.buffered >= simBufferSecs*r.spec.bitrate {
		return
	}
	r.pending = true
	r.pOff, r.pN = r.pos, int(min(simChunk, r.end-r.pos))
	s.tracef("read %d+%d", r.pOff, r.pN)
	s.p.ReaderRead(r.id, r.pOff, r.pN, s.wall())
	s.afterReaderOp()
	s.checkRead(r)
}

func (s *sim) checkReads() {
	for _, r := range s.readers {
		s.checkRead(r)
	}
}

// checkRead completes r's pending read if every piece under it is here.
func (s *sim) checkRead(r *simReader) {
	if !r.pending {
		return
	}
	for i := s.p.pieceOf(r.pOff); i <= s.p.pieceOf(r.pOff+int64(r.pN)-1); i++ {
		if !s.p.Have(i) {
			return
		}
	}
	r.pending = false
	s.tracef("read done %d+%d", r.pOff, r.pN)
	s.p.ReaderDone(r.id, r.pOff, r.pN)
	r.pos += int64(r.pN)
	r.buffered += float64(r.pN)
	if r.waitFirst {
		s.recordFirst(r)
		r.starting = r.spec.bitrate > 0
	}
	if r.starting && (r.buffered >= simStartSecs*r.spec.bitrate || r.pos >= r.end) {
		r.starting, r.playing = false, true
	}
	if r.stalled && (r.buffered >= simResumeSecs*r.spec.bitrate || r.pos >= r.end) {
		r.stalled = false
		r.playing = true
		s.res.stallTime += s.now - r.stallAt
	}
	s.issue(r)
}

// play advances r's playback clock by dt: consume, stall, seek.
func (s *sim) play(r *simReader, dt time.Duration) {
	if !r.opened || r.done || r.spec.bitrate == 0 {
		return
	}
	if r.nSeeks < r.spec.seeks && s.now >= r.nextSeek {
		s.seek(r)
		return
	}
	if r.playing {
		r.buffered -= r.spec.bitrate * dt.Seconds()
		if r.buffered <= 0 {
			r.buffered = 0
			r.playing = false
			if r.pos >= r.end && !r.pending {
				r.done = true
				return
			}
			r.stalled = true
			r.stallAt = s.now
			s.tracef("stall at %d pending %v", r.pos, r.pending)
			s.res.stalls++
		}
	}
	s.issue(r)
}

func (s *sim) seek(r *simReader) {
	if r.waitFirst {
		// The user gave up waiting: count the wait so far (a lower bound).
		s.recordFirst(r)
	}
	if r.pending {
		r.pending = false
		s.p.ReaderDone(r.id, r.pOff, r.pN) // the read was interrupted
	}
	if r.stalled {
		r.stalled = false
		s.res.stallTime += s.now - r.stallAt
	}
	r.nSeeks++
	s.tracef("seek")
	span := max(r.end-r.start-simSeekGuard, 1)
	r.pos = r.start + s.seeks.Int64N(span)/simChunk*simChunk
	r.buffered, r.playing, r.starting = 0, false, false
	r.waitFirst, r.isSeek, r.waitSince = true, true, s.now
	r.nextSeek = s.now + r.spec.seekEvery
	s.issue(r)
}

// recordFirst records the first reader's wait for its first byte after its
// open or last seek.
func (s *sim) recordFirst(r *simReader) {
	r.waitFirst = false
	d := s.now - r.waitSince
	if r != s.readers[0] {
		return
	}
	if r.isSeek {
		s.res.ttfbSeeks = append(s.res.ttfbSeeks, d)
	} else {
		s.res.ttfbOpen = d
	}
}
