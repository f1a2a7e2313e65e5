package mse

import (
	"crypto/rc4"
	"fmt"
	"net"
	"sync"
	"time"
)

// maxWriteChunk bounds the buffer a Conn encrypts writes into: a larger
// Write is encrypted and sent in pieces of this size.
const maxWriteChunk = 64 << 10

// Conn is a connection after a successful MSE handshake: with RC4 it
// encrypts what is written and decrypts what is read; with Plaintext it
// passes both through (after the initial payload, which is always RC4).
// It first returns the bytes the handshake read past its end.
//
// Like any net.Conn it is safe for concurrent use; as with crypto/tls,
// a Read or Write holds its side's lock across the underlying call, since
// the cipher's position must follow the stream's. One reader goroutine and
// one writer goroutine never wait for each other.
type Conn struct {
	conn   net.Conn // read-only after the handshake
	method CryptoMethod
	skey   [20]byte

	rmu sync.Mutex // guards the read side below; held across conn.Read
	// pending are bytes read during the handshake past its end, already
	// decrypted; they alias the handshake buffer.
	pending []byte
	// dec decrypts what is read: everything (decAll) or the next decLeft
	// bytes, the initial payload of a Plaintext stream. nil: nothing.
	dec     *rc4.Cipher
	decAll  bool
	decLeft int

	wmu sync.Mutex // guards the write side below; held across conn.Write
	// enc encrypts what is written; nil for Plaintext.
	enc  *rc4.Cipher
	wbuf []byte // reused ciphertext buffer, at most maxWriteChunk
	werr error  // sticky: after a failed write the keystream is ahead of the stream
}

var _ net.Conn = (*Conn)(nil)

// Method is the crypto method the handshake selected: Plaintext or RC4.
func (c *Conn) Method() CryptoMethod { return c.method }

// SKey is the info-hash the connection is for: the one given to Initiate,
// or the one the initiator asked Accept for.
func (c *Conn) SKey() [20]byte { return c.skey }

// NetConn returns the underlying connection (for socket options, not for
// I/O: reading or writing it bypasses the cipher).
func (c *Conn) NetConn() net.Conn { return c.conn }

// setPending decrypts what the handshake read past its end and keeps it
// for Read.
func (c *Conn) setPending(b []byte) {
	if !c.decAll && c.decLeft == 0 {
		c.dec = nil
	}
	c.decrypt(b)
	if len(b) > 0 {
		c.pending = b
	}
}

// decrypt deciphers b, the next bytes of the stream, in place.
func (c *Conn) decrypt(b []byte) {
	if c.dec == nil || len(b) == 0 {
		return
	}
	if c.decAll {
		c.dec.XORKeyStream(b, b)
		return
	}
	k := min(len(b), c.decLeft)
	c.dec.XORKeyStream(b[:k], b[:k])
	c.decLeft -= k
	if c.decLeft == 0 {
		c.dec = nil // the rest of a Plaintext stream
	}
}

// Read reads and decrypts in place into p.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil // let the handshake buffer go
		}
		return n, nil
	}
	n, err := c.conn.Read(p)
	c.decrypt(p[:n])
	return n, err
}

// Write encrypts p into a buffer of its own (p is not modified) and
// writes it. After a failed Write (a deadline included) the Conn cannot
// write any more: the cipher has moved past bytes the peer never got.
func (c *Conn) Write(p []byte) (int, error) {
	if c.enc == nil {
		return c.conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+maxWriteChunk)]
		if cap(c.wbuf) < len(chunk) {
			c.wbuf = make([]byte, writeBufSize(len(chunk)))
		}
		b := c.wbuf[:len(chunk)]
		c.enc.XORKeyStream(b, chunk)
		m, err := c.conn.Write(b)
		n += m
		if err != nil {
			c.werr = fmt.Errorf("mse: write failed earlier: %w", err)
			return n, err
		}
	}
	return n, nil
}

// writeBufSize rounds n up to a power of two of at least 4 KiB (and at
// most maxWriteChunk), so a stream of growing writes reallocates a few
// times, not at every size.
func writeBufSize(n int) int {
	size := 4 << 10
	for size < n {
		size *= 2
	}
	return min(size, maxWriteChunk)
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr is the underlying connection's.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr is the underlying connection's.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the underlying connection's deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
