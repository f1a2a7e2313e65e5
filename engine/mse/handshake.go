package mse

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// config holds what tests vary; the zero value is the real thing.
type config struct {
	// rand draws private keys, padding lengths and padding bytes;
	// nil means crypto/rand.
	rand io.Reader
	// pads fixes the lengths of the pads this side sends (PadA or PadB
	// first, then PadC or PadD) when set; values above MaxPad let tests
	// send what a broken peer would.
	pads *[2]int
	// timeout replaces DefaultTimeout when not 0.
	timeout time.Duration
}

func (c *config) reader() io.Reader {
	if c.rand != nil {
		return c.rand
	}
	return rand.Reader
}

// padding returns pad i (0: PadA/PadB, 1: PadC/PadD): a random length in
// [0, MaxPad] of random bytes.
func (c *config) padding(i int) ([]byte, error) {
	n := 0
	if c.pads != nil {
		n = c.pads[i]
	} else {
		// The modulo's bias does not matter for padding.
		var v [2]byte
		if _, err := io.ReadFull(c.reader(), v[:]); err != nil {
			return nil, fmt.Errorf("mse: padding: %w", err)
		}
		n = int(binary.BigEndian.Uint16(v[:])) % (MaxPad + 1)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.reader(), b); err != nil {
		return nil, fmt.Errorf("mse: padding: %w", err)
	}
	return b, nil
}

// Initiate runs the initiator's side of an MSE handshake on conn for the
// torrent whose info-hash is skey, offering the methods in provide
// (Plaintext, RC4 or both), and sends initialPayload (IA, usually the
// BitTorrent handshake; may be empty, at most MaxInitialPayload bytes)
// encrypted inside the handshake, which saves a round trip.
//
// It returns once the responder has selected a method, with a Conn that
// encrypts and decrypts (RC4) or passes through (Plaintext) and holds any
// bytes the responder sent after its handshake. ctx bounds the handshake:
// its deadline becomes conn's (DefaultTimeout if it has none) and
// cancelling it aborts blocked I/O; the deadline is cleared on success.
// On error, conn is left to the caller to close: it cannot carry a plain
// handshake any more, a retry needs a new connection.
func Initiate(ctx context.Context, conn net.Conn, skey [20]byte, provide CryptoMethod, initialPayload []byte) (*Conn, error) {
	return initiate(ctx, conn, skey, provide, initialPayload, &config{})
}

func initiate(ctx context.Context, conn net.Conn, skey [20]byte, provide CryptoMethod, ia []byte, cfg *config) (c *Conn, err error) {
	if provide&knownMethods == 0 || provide&^knownMethods != 0 {
		return nil, fmt.Errorf("mse: cannot offer crypto methods %v", provide)
	}
	if len(ia) > MaxInitialPayload {
		return nil, fmt.Errorf("mse: initial payload of %d bytes (at most %d)", len(ia), MaxInitialPayload)
	}
	done := guard(ctx, conn, cfg.timeout)
	defer func() {
		if err = done(err); err != nil {
			c = nil
		}
	}()

	// 1. A->B: Ya, PadA.
	key, err := newDHKey(cfg.reader())
	if err != nil {
		return nil, err
	}
	padA, err := cfg.padding(0)
	if err != nil {
		return nil, err
	}
	if err := write(conn, "public key", key.pub[:], padA); err != nil {
		return nil, err
	}

	// 2. B->A: Yb, PadB. A peer that hangs up here does not speak MSE.
	h := newHSReader(conn, nil)
	h.what = "public key"
	yb, err := h.next(KeyLen)
	if err != nil {
		if h.w == 0 && hungUp(err) {
			return nil, fmt.Errorf("%w: it closed the connection: %w", ErrNotMSE, err)
		}
		return nil, err
	}
	if string(yb[:len(plainHeader)]) == plainHeader {
		return nil, fmt.Errorf("%w: it answered with a plain BitTorrent handshake", ErrNotMSE)
	}
	s, err := key.secret(yb)
	if err != nil {
		return nil, err
	}

	// 3. A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
	// ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA).
	keys := newStreamKeys(&s, skey, true)
	padC, err := cfg.padding(1)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, 40+vcLen+4+2+len(padC)+2+len(ia))
	req1 := hash([]byte("req1"), s[:])
	msg = append(msg, req1[:]...)
	req2, req3 := Req2(skey), hash([]byte("req3"), s[:])
	subtle.XORBytes(req2[:], req2[:], req3[:])
	msg = append(msg, req2[:]...)
	enc := len(msg)
	msg = append(msg, make([]byte, vcLen)...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(provide))
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(padC)))
	msg = append(msg, padC...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(ia)))
	msg = append(msg, ia...)
	keys.enc.XORKeyStream(msg[enc:], msg[enc:])
	if err := write(conn, "crypto offer", msg); err != nil {
		return nil, err
	}

	// 4. B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), then the
	// stream. Find ENCRYPT(VC) after PadB: B's keystream over 8 zeros.
	var vc [vcLen]byte
	keys.dec.XORKeyStream(vc[:], vc[:])
	h.what = "verification constant"
	if err := h.sync(vc[:], MaxPad); err != nil {
		if s[0] == 0 && hungUp(err) {
			return nil, fmt.Errorf("%w: %w", ErrTryAgain, err)
		}
		return nil, err
	}
	h.what = "crypto select"
	sel, err := h.next(4 + 2)
	if err != nil {
		return nil, err
	}
	keys.dec.XORKeyStream(sel, sel)
	method := CryptoMethod(binary.BigEndian.Uint32(sel))
	if method != Plaintext && method != RC4 || method&provide == 0 {
		return nil, fmt.Errorf("%w: peer selected %v, offered %v", ErrProtocol, method, provide)
	}
	padLen := int(binary.BigEndian.Uint16(sel[4:]))
	if padLen > MaxPad {
		return nil, fmt.Errorf("%w: PadD of %d bytes", ErrProtocol, padLen)
	}
	h.what = "PadD"
	padD, err := h.next(padLen)
	if err != nil {
		return nil, err
	}
	keys.dec.XORKeyStream(padD, padD)

	c = &Conn{conn: conn, method: method, skey: skey}
	if method == RC4 {
		c.enc, c.dec, c.decAll = keys.enc, keys.dec, true
	}
	c.setPending(h.rest())
	return c, nil
}

// Accept runs the responder's side of an MSE handshake on conn, whose
// first bytes the caller has told apart from a plain BitTorrent handshake
// (Sniff does; Accept also refuses a plain one, with ErrNotMSE). find
// looks the requested torrent up (SKeys builds one); allowed is the set
// of methods this side accepts. When the initiator offers both RC4 and
// plaintext and both are allowed, RC4 is selected.
//
// The returned Conn reads the initiator's initial payload (IA) first, then
// the stream: a caller reads the BitTorrent handshake from it as from a
// plain connection. Conn.SKey says which torrent was asked for. ctx
// bounds the handshake as for Initiate.
func Accept(ctx context.Context, conn net.Conn, find SKeyFunc, allowed CryptoMethod) (*Conn, error) {
	return accept(ctx, conn, find, allowed, &config{})
}

func accept(ctx context.Context, conn net.Conn, find SKeyFunc, allowed CryptoMethod, cfg *config) (c *Conn, err error) {
	if allowed&knownMethods == 0 {
		return nil, fmt.Errorf("mse: no crypto method allowed (%v)", allowed)
	}
	if find == nil {
		return nil, errors.New("mse: Accept without an SKeyFunc")
	}
	var prefix []byte
	if rc, ok := conn.(*replayConn); ok {
		// Read the sniffed bytes from our own buffer, and keep the
		// replaying wrapper out of the returned Conn's read path.
		conn, prefix = rc.Conn, rc.prefix
	}
	done := guard(ctx, conn, cfg.timeout)
	defer func() {
		if err = done(err); err != nil {
			c = nil
		}
	}()

	// 1. A->B: Ya, PadA.
	h := newHSReader(conn, prefix)
	h.what = "public key"
	if err := h.fillTo(len(plainHeader)); err != nil {
		return nil, err
	}
	if string(h.rest()[:len(plainHeader)]) == plainHeader {
		return nil, fmt.Errorf("%w: a plain BitTorrent handshake", ErrNotMSE)
	}
	ya, err := h.next(KeyLen)
	if err != nil {
		return nil, err
	}
	key, err := newDHKey(cfg.reader())
	if err != nil {
		return nil, err
	}
	s, err := key.secret(ya)
	if err != nil {
		return nil, err
	}

	// 2. B->A: Yb, PadB.
	padB, err := cfg.padding(0)
	if err != nil {
		return nil, err
	}
	if err := write(conn, "public key", key.pub[:], padB); err != nil {
		return nil, err
	}

	// 3. A->B: HASH('req1', S) after PadA, then
	// HASH('req2', SKEY) xor HASH('req3', S).
	h.what = "HASH('req1', S)"
	req1 := hash([]byte("req1"), s[:])
	if err := h.sync(req1[:], MaxPad); err != nil {
		return nil, err
	}
	h.what = "stream key hash"
	x, err := h.next(20)
	if err != nil {
		return nil, err
	}
	req3 := hash([]byte("req3"), s[:])
	var req2 [20]byte
	subtle.XORBytes(req2[:], x, req3[:])
	skey, ok := find(req2)
	if !ok {
		return nil, ErrUnknownInfoHash
	}

	// ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)).
	keys := newStreamKeys(&s, skey, false)
	h.what = "crypto provide"
	head, err := h.next(vcLen + 4 + 2)
	if err != nil {
		return nil, err
	}
	keys.dec.XORKeyStream(head, head)
	for _, b := range head[:vcLen] {
		if b != 0 {
			return nil, fmt.Errorf("%w: wrong verification constant %x", ErrProtocol, head[:vcLen])
		}
	}
	provided := CryptoMethod(binary.BigEndian.Uint32(head[vcLen:]))
	padLen := int(binary.BigEndian.Uint16(head[vcLen+4:]))
	if padLen > MaxPad {
		return nil, fmt.Errorf("%w: PadC of %d bytes", ErrProtocol, padLen)
	}
	h.what = "PadC"
	tail, err := h.next(padLen + 2)
	if err != nil {
		return nil, err
	}
	keys.dec.XORKeyStream(tail, tail)
	iaLen := int(binary.BigEndian.Uint16(tail[padLen:]))

	method := choose(provided, allowed)
	if method == 0 {
		return nil, fmt.Errorf("%w: peer offers %v, we allow %v", ErrNoCommonMethod, provided, allowed)
	}

	// 4. B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD).
	padD, err := cfg.padding(1)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, vcLen+4+2+len(padD))
	msg = append(msg, make([]byte, vcLen)...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(method))
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(padD)))
	msg = append(msg, padD...)
	keys.enc.XORKeyStream(msg, msg)
	if err := write(conn, "crypto select", msg); err != nil {
		return nil, err
	}

	// The IA is always RC4; what follows it is in the selected method.
	c = &Conn{conn: conn, method: method, skey: skey, dec: keys.dec, decLeft: iaLen}
	if method == RC4 {
		c.enc, c.decAll = keys.enc, true
	}
	c.setPending(h.rest())
	return c, nil
}

// hungUp reports whether err is the peer closing the connection.
func hungUp(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// write sends the parts in one Write, so they leave in as few segments as
// the connection allows.
func write(conn net.Conn, what string, parts ...[]byte) error {
	var b []byte
	if len(parts) == 1 {
		b = parts[0]
	} else {
		for _, p := range parts {
			b = append(b, p...)
		}
	}
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("mse: writing %s: %w", what, err)
	}
	return nil
}

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// guard puts the handshake under ctx: conn gets ctx's deadline (or
// timeout from now, DefaultTimeout if 0) and a cancelled ctx moves it into
// the past. The returned func ends the guard: on success it clears the
// deadline; on failure it says whether ctx was the cause.
func guard(ctx context.Context, conn net.Conn, timeout time.Duration) func(error) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		deadline = time.Now().Add(timeout)
	}
	setErr := conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	return func(err error) error {
		stopped := stop()
		if err == nil && setErr != nil {
			err = fmt.Errorf("mse: setting deadline: %w", setErr)
		}
		if err == nil && !stopped {
			// ctx ended as the handshake did: the deadline may be in
			// the past already, so the connection is not usable.
			err = ctx.Err()
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("%w: %w", cerr, err)
			}
			return err
		}
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return fmt.Errorf("mse: clearing deadline: %w", err)
		}
		return nil
	}
}
