package mse

import (
	"context"
	"fmt"
	"io"
	"net"
)

// plainHeader starts every plain BitTorrent handshake: the length byte and
// the protocol string. An MSE stream starts with a random public key, which
// begins with these 20 bytes with probability 2^-160.
const plainHeader = "\x13BitTorrent protocol"

// SniffLen is how many bytes Sniff reads. Both kinds of handshake are
// longer (68 bytes for a plain one, at least 96 for MSE), so a peer always
// sends that many before it waits for an answer.
const SniffLen = len(plainHeader)

// Sniff reads the first SniffLen bytes of an incoming connection and tells
// whether they start a plain BitTorrent handshake (plain) or, if not,
// presumably an MSE one. The returned net.Conn reads those bytes again
// before the rest of the stream; hand it to peer.ReadHandshake or to
// Accept (which takes the bytes back without copying them twice). ctx
// bounds the read as for Accept; conn's deadline is cleared on success.
func Sniff(ctx context.Context, conn net.Conn) (plain bool, replay net.Conn, err error) {
	done := guard(ctx, conn, 0)
	var b [SniffLen]byte
	_, err = io.ReadFull(conn, b[:])
	if err = done(err); err != nil {
		return false, nil, fmt.Errorf("mse: sniffing the first bytes: %w", err)
	}
	return string(b[:]) == plainHeader, &replayConn{Conn: conn, prefix: b[:]}, nil
}

// replayConn is a net.Conn whose Reads return prefix before the stream.
type replayConn struct {
	net.Conn
	prefix []byte // read by Read only: one reader, like any net.Conn stream
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(p, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}
