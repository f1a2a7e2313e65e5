package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// readBufferSize holds four 16 KiB piece messages with their headers, so a
// stream of blocks is decoded straight out of the buffer.
const readBufferSize = 68 << 10

// maxRetainedScratch bounds the buffer a Decoder keeps between messages too
// large for its read buffer; a bigger one (a huge bitfield, sent once) is
// released at the next Decode.
const maxRetainedScratch = DefaultMaxMessageLength

// Decoder reads length-prefixed peer wire messages from a stream.
//
// It reads through a bufio.Reader of at least 64 KiB (reusing r if r is
// already one that large, so bytes buffered while reading the handshake are
// not lost). Messages that fit in that buffer are decoded in place; larger
// ones go through a scratch buffer that grows only as their bytes actually
// arrive. Either way the slices of a decoded Message alias the Decoder's
// memory and are valid only until the next call to Decode. Decode does not
// allocate in the steady state.
//
// A Decoder is not safe for concurrent use: one reader goroutine owns it.
// After Decode returns an error the stream position is undefined; drop the
// connection.
type Decoder struct {
	br        *bufio.Reader
	maxLength int
	pending   int    // bytes of the last message left in br, discarded by the next Decode
	scratch   []byte // messages longer than br's buffer
}

// NewDecoder returns a Decoder reading from r that rejects, before reading
// or allocating anything for it, any message longer than maxLength bytes
// (the id byte counts, the 4-byte prefix does not). maxLength <= 0 means
// DefaultMaxMessageLength.
func NewDecoder(r io.Reader, maxLength int) *Decoder {
	d := &Decoder{br: bufio.NewReaderSize(r, readBufferSize)}
	d.SetMaxLength(maxLength)
	return d
}

// SetMaxLength changes the bound on message lengths, for instance once the
// piece count of a magnet's torrent is known and its bitfield may be large.
// maxLength <= 0 means DefaultMaxMessageLength.
func (d *Decoder) SetMaxLength(maxLength int) {
	if maxLength <= 0 {
		maxLength = DefaultMaxMessageLength
	}
	d.maxLength = maxLength
}

// MaxLength returns the current bound on message lengths.
func (d *Decoder) MaxLength() int { return d.maxLength }

// Decode reads the next message into m, overwriting every field.
//
// It returns io.EOF when the stream ends cleanly between messages. A stream
// that ends inside a message yields an error wrapping both ErrProtocol and
// io.ErrUnexpectedEOF. A length over the maximum wraps ErrMessageTooLarge;
// an unknown id, or a fixed-size message of the wrong length, wraps
// ErrProtocol; all are detected from the first five bytes, before the
// payload is read. Other read errors (timeouts, resets) are returned wrapped
// as they are.
//
// Decode checks the framing of a message, not its meaning: a bitfield's
// length against the torrent (CheckBitfield), a piece index against the
// piece count and a block against what was requested are the caller's.
func (d *Decoder) Decode(m *Message) error {
	if d.pending > 0 {
		_, _ = d.br.Discard(d.pending) // buffered already: cannot fail
		d.pending = 0
	}
	if cap(d.scratch) > maxRetainedScratch {
		d.scratch = nil
	}

	hdr, err := d.br.Peek(4)
	if err != nil {
		if len(hdr) == 0 && err == io.EOF {
			return io.EOF
		}
		return d.readError(err, "a message length")
	}
	length := binary.BigEndian.Uint32(hdr)
	if length == 0 {
		_, _ = d.br.Discard(4)
		*m = Message{KeepAlive: true}
		return nil
	}
	if uint64(length) > uint64(d.maxLength) {
		return fmt.Errorf("%w: length %d exceeds the maximum %d", ErrMessageTooLarge, length, d.maxLength)
	}
	hdr, err = d.br.Peek(5)
	if err != nil {
		return d.readError(err, "a message id")
	}
	t := MessageType(hdr[4])
	min, exact := t.fixedLength()
	switch {
	case min == 0:
		return fmt.Errorf("%w: unknown message id %d (length %d)", ErrProtocol, hdr[4], length)
	case exact && int(length) != min:
		return fmt.Errorf("%w: %v message of length %d, want %d", ErrProtocol, t, length, min)
	case int(length) < min:
		return fmt.Errorf("%w: %v message of length %d, want at least %d", ErrProtocol, t, length, min)
	case t == Hashes:
		// The header says how many hashes follow: check the length
		// against it before reading (or allocating for) any of them.
		hdr, err = d.br.Peek(5 + hashHeaderLength)
		if err != nil {
			return d.readError(err, "a hashes message")
		}
		if err := checkHashesLength(hdr[5:], int(length)-1); err != nil {
			return err
		}
	}

	var body []byte
	if total := 4 + int(length); total <= d.br.Size() {
		b, err := d.br.Peek(total)
		if err != nil {
			return d.readError(err, "a "+t.String()+" message")
		}
		body = b[5:total:total]
		d.pending = total
	} else {
		_, _ = d.br.Discard(5)
		if body, err = d.readLarge(int(length) - 1); err != nil {
			return d.readError(err, "a "+t.String()+" message")
		}
	}

	*m = Message{Type: t}
	switch t {
	case Have, Suggest, AllowedFast:
		m.Index = binary.BigEndian.Uint32(body)
	case Request, Cancel, Reject:
		m.Index = binary.BigEndian.Uint32(body)
		m.Begin = binary.BigEndian.Uint32(body[4:])
		m.Length = binary.BigEndian.Uint32(body[8:])
	case Piece:
		m.Index = binary.BigEndian.Uint32(body)
		m.Begin = binary.BigEndian.Uint32(body[4:])
		m.Block = body[8:]
	case Bitfield:
		m.Bitfield = body
	case Port:
		m.Port = binary.BigEndian.Uint16(body)
	case Extended:
		m.ExtendedID = body[0]
		m.Payload = body[1:]
	case HashRequest, HashReject, Hashes:
		return decodeHashHeader(m, body)
	}
	return nil
}

// readLarge reads n bytes into the scratch buffer, growing it only as data
// arrives so that a peer cannot make us allocate a length it never sends.
func (d *Decoder) readLarge(n int) ([]byte, error) {
	buf := d.scratch[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			c := min(max(2*cap(buf), readBufferSize), n)
			nb := make([]byte, len(buf), c)
			copy(nb, buf)
			buf = nb
			d.scratch = nb
		}
		k, err := io.ReadFull(d.br, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, err
		}
	}
	return buf[:n:n], nil
}

func (d *Decoder) readError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended inside %s: %w", ErrProtocol, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("peer: reading %s: %w", what, err)
}
