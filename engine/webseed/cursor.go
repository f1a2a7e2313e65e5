package webseed

import (
	"context"
	"io"
	"time"
)

// Servers that ignore Range. Some servers answer every request with the
// whole file, 200 and all of it: Python's http.server, many embedded and
// ad-hoc servers, some CGI scripts. Such a response is still the right
// file (checkResponse holds it to the file's length, and the hash check
// guards the rest), so it is used: the bytes before the range asked for
// are read and discarded. Read that way, a file read run after run would
// be read from its start for every run, which costs the square of its
// length; so the body of such a response is not closed after its run but
// parked, at the file offset where the run ended (a cursor), and the next
// run in that file that starts at or after that offset continues from it,
// discarding only the gap. A player reading a file in order reads it from
// such a server once.
//
// A seed parks one body at a time (the most recent; a parked body holds
// one of the host's connections, Config.Client's MaxConnsPerHost, and on a
// simple server its only thread), and only while none of its other
// requests is under way; it closes the body before it makes a request the
// body cannot serve (so the seed never holds an idle connection while it
// waits for one) and after Config.CursorIdle without use. A body cut
// short (a cancelled run, an error) is closed, never parked: where it
// stands is unknown. A parked body that fails before any of its bytes
// reach the caller (the server closed it meanwhile) is replaced by a new
// request.
//
// A 200 to a request for a whole file says nothing about ranges (a server
// may answer so when the range is the whole file): only a 200 to a
// request for part of a file marks the seed as ignoring Range.

// stream is a response body being read: a new request's, or a parked one.
type stream struct {
	file   int
	body   io.ReadCloser
	whole  bool  // a 200: the body is the whole file
	pos    int64 // the file offset of the body's next byte (whole only)
	ctx    context.Context
	cancel context.CancelCauseFunc // ends the request
	idle   *time.Timer             // closes a parked stream
}

// close closes the stream's body and ends its request (in that order: a
// body read to its end leaves its connection to be kept).
func (st *stream) close() {
	st.body.Close()
	st.cancel(nil)
}

// takeCursor returns the parked stream of file when it can serve a span
// starting at off, removing it from the seed, or nil. A parked stream that
// cannot is closed: the caller is about to make a request of its own.
func (s *Seed) takeCursor(file int, off int64) *stream {
	s.mu.Lock()
	c := s.parked
	s.parked = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	if !c.idle.Stop() {
		// Its idle timer fired: the timer's function closes it.
		return nil
	}
	if c.file != file || c.pos > off {
		c.close()
		return nil
	}
	return c
}

// park keeps st, whose body stands at st.pos in its file, for a later run,
// closing the stream parked before it.
func (s *Seed) park(st *stream) {
	st.idle = time.AfterFunc(s.cfg.CursorIdle, func() {
		s.mu.Lock()
		if s.parked == st {
			s.parked = nil
		}
		s.mu.Unlock()
		st.close()
	})
	s.mu.Lock()
	old := s.parked
	closed := s.closed
	if !closed {
		s.parked = st
	}
	s.mu.Unlock()
	if old != nil && old.idle.Stop() {
		old.close()
	}
	if closed && st.idle.Stop() {
		st.close()
	}
}

// CloseCursor closes the body kept open for the next run, if any: when
// nothing more is to be fetched for a while (the torrent is complete),
// so as not to hold the server's connection until Config.CursorIdle.
func (s *Seed) CloseCursor() {
	s.mu.Lock()
	c := s.parked
	s.parked = nil
	s.mu.Unlock()
	if c != nil && c.idle.Stop() {
		c.close()
	}
}
