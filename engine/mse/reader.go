package mse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// hsBufSize is the handshake reader's fixed buffer: room for the longest
// handshake either side reads (respHandshakeMax) and some of what follows
// it, so a peer's first messages rarely need a second read.
const hsBufSize = 2048

// hsReader reads a handshake from a peer through a fixed buffer. Nothing
// it allocates depends on what the peer sends: every length is checked
// against the spec's maxima first, and the handshake's total fits in the
// buffer, so the buffer never has to slide or grow. Reads take whatever
// the connection has (never waiting for more than the next step needs),
// so bytes after the handshake may end up in buf[r:w]: rest hands them on.
type hsReader struct {
	src  io.Reader
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	// what names the step being read, for errors.
	what string
}

func newHSReader(src io.Reader, prefix []byte) *hsReader {
	h := &hsReader{src: src, buf: make([]byte, hsBufSize)}
	h.w = copy(h.buf, prefix)
	return h
}

// fillTo reads until at least n bytes are unread. n must fit in the buffer
// (callers bound it by the protocol's maxima).
func (h *hsReader) fillTo(n int) error {
	if h.r+n > len(h.buf) {
		return fmt.Errorf("mse: internal error: %s needs %d bytes at offset %d of %d", h.what, n, h.r, len(h.buf))
	}
	for h.w-h.r < n {
		if err := h.readMore(); err != nil {
			return err
		}
	}
	return nil
}

// readMore does one Read into the free end of the buffer.
func (h *hsReader) readMore() error {
	if h.w == len(h.buf) {
		return fmt.Errorf("mse: internal error: handshake buffer full reading %s", h.what)
	}
	n, err := h.src.Read(h.buf[h.w:])
	h.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("mse: reading %s: %w", h.what, err)
}

// next consumes n bytes and returns them (valid until the reader is
// dropped: the buffer never moves).
func (h *hsReader) next(n int) ([]byte, error) {
	if err := h.fillTo(n); err != nil {
		return nil, err
	}
	b := h.buf[h.r : h.r+n]
	h.r += n
	return b, nil
}

// sync consumes everything up to and including the first occurrence of
// marker, which must start within maxSkip bytes. It reads no further than
// the marker's last possible byte needs, so a peer that sends less than
// the maximum and waits is not waited for.
func (h *hsReader) sync(marker []byte, maxSkip int) error {
	limit := maxSkip + len(marker) // the marker ends within limit bytes
	for {
		avail := min(h.w-h.r, limit)
		if i := bytes.Index(h.buf[h.r:h.r+avail], marker); i >= 0 {
			h.r += i + len(marker)
			return nil
		}
		if avail == limit {
			return fmt.Errorf("%w: %s not within %d bytes", ErrSyncNotFound, h.what, limit)
		}
		if h.r+limit > len(h.buf) {
			return fmt.Errorf("mse: internal error: %s search ends past the buffer", h.what)
		}
		if err := h.readMore(); err != nil {
			return err
		}
	}
}

// rest returns the unread bytes: what the peer sent after the handshake.
func (h *hsReader) rest() []byte { return h.buf[h.r:h.w] }
