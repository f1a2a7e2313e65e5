package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/peer"
)

var errTooManyFiles = syscall.EMFILE

const dialTimeout = 5 * time.Second

// handshakeTimeout bounds a whole handshake: the MSE key exchange if any,
// then each side's 68 bytes: one deadline for all of its reads and
// writes, so a peer that trickles its bytes in is dropped at the same time
// as one that sends nothing. A variable so that tests can shorten it.
var handshakeTimeout = 10 * time.Second

// ourReserved are the extension bits every client announces: fast (BEP 6)
// and the extension protocol (BEP 10). Client.reserved adds DHT.
func ourReserved() peer.Reserved {
	var r peer.Reserved
	r.SetFast()
	r.SetExtended()
	return r
}

// errPlainRefused: a plain handshake came in under --encryption require.
var errPlainRefused = errors.New("plain handshake refused (encryption required)")

// handleIncoming runs the receiving side of a handshake: tell an MSE
// stream from a plain handshake (Config.Encryption says which are
// welcome), read the info-hash, find the torrent, answer, read the peer
// id, hand the connection over. The accept loop reserved the handshake's
// room (beginHandshake).
func (c *Client) handleIncoming(nc net.Conn, ip netip.Addr) {
	defer c.endHandshake(ip)
	addr := remoteAddr(nc)
	deadline := time.Now().Add(handshakeTimeout)
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	stream, hand, err := c.incomingStream(ctx, nc)
	if err != nil {
		if !errors.Is(err, errStranger) {
			c.refusedLog.logf(c, "%s: incoming handshake failed: %v", addr, err)
		}
		nc.Close()
		return
	}
	stream.SetDeadline(deadline)
	rsv, ih, err := peer.ReadHandshakeHead(stream)
	if err != nil {
		nc.Close()
		return
	}
	if mc, ok := hand.(*mse.Conn); ok && mc.SKey() != ih {
		c.refusedLog.logf(c, "%s: refused: MSE stream for %x carries a handshake for %x", addr, mc.SKey(), ih)
		nc.Close()
		return
	}
	t, ok := c.Torrent(ih)
	if !ok || t.isBanned(addr.Addr()) {
		nc.Close()
		return
	}
	ih = t.upgradeTo(rsv, ih)
	if err := peer.WriteHandshake(stream, peer.Handshake{Reserved: t.reserved(), InfoHash: ih, PeerID: c.peerID}); err != nil {
		nc.Close()
		return
	}
	pid, err := peer.ReadPeerID(stream)
	if err != nil || pid == c.peerID {
		nc.Close()
		return
	}
	stream.SetDeadline(time.Time{})
	t.upgraded(&rsv, ih)
	t.handOver(hand, addr, pid, rsv, true)
}

// errStranger: the first bytes are neither a BitTorrent handshake nor, under
// --encryption off, anything we would answer; not worth a log line.
var errStranger = errors.New("not a BitTorrent peer")

// incomingStream decides how an incoming connection is read. It returns
// the stream to read the BitTorrent handshake from, and the connection to
// hand over once it is done (nc itself for a plain handshake, whose
// sniffed bytes the handshake consumes; the *mse.Conn for MSE).
func (c *Client) incomingStream(ctx context.Context, nc net.Conn) (stream, hand net.Conn, err error) {
	pol := c.cfg.Encryption
	if pol == mse.Off {
		// Check the protocol string before waiting for the rest of the
		// head, so a stray client (or an HTTP request) is dropped at once.
		// The length byte alone tells most strangers apart.
		dl, _ := ctx.Deadline()
		nc.SetDeadline(dl)
		var b [1]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != byte(len(peer.Protocol)) {
			return nil, nil, errStranger
		}
		return &replayConn{Conn: nc, prefix: b[:]}, nc, nil
	}
	// Both kinds of handshake send their first 20 bytes at once (a plain
	// one 68, MSE at least 96): a connection that has not within half the
	// handshake's time (an HTTP request shorter than that, a stray
	// client waiting for us to speak) is dropped without waiting longer.
	sctx, cancel := context.WithTimeout(ctx, handshakeTimeout/2)
	plain, replay, err := mse.Sniff(sctx, nc)
	cancel()
	if err != nil {
		return nil, nil, errStranger
	}
	if plain {
		if !pol.PlainHandshake() {
			return nil, nil, errPlainRefused
		}
		return replay, nc, nil
	}
	ec, err := mse.Accept(ctx, replay, c.findSKey, pol.Methods())
	if err != nil {
		return nil, nil, fmt.Errorf("mse: %w", err)
	}
	return ec, ec, nil
}

// replayConn reads prefix before the connection's stream.
type replayConn struct {
	net.Conn
	prefix []byte // read by Read only, by the handshake's goroutine
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(p, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// findSKey is the MSE responder's look-up: which of our torrents an
// initiator asks for by HASH('req2', info-hash). It takes Client.mu for
// the map look-up only.
func (c *Client) findSKey(req2 [20]byte) ([20]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ih, ok := c.req2[req2]
	return ih, ok
}

// dial connects to a peer over the transports of transportPlan, and on
// each runs the initiating side of the handshake with the methods of
// dialPlan. It returns what worked.
func (t *Torrent) dial(ctx context.Context, addr netip.AddrPort, known wireMethod, knownUTP bool) (net.Conn, [20]byte, peer.Reserved, wireMethod, error) {
	var errs []error
	plan := t.client.transportPlan(knownUTP)
	for i, k := range plan {
		nc, pid, rsv, m, err := t.dialOver(ctx, addr, k, known)
		if err == nil {
			return nc, pid, rsv, m, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || errors.Is(err, errSelf) {
			break
		}
		// A peer may refuse one transport outright or only after the
		// connect: libtorrent set to uTP only accepts TCP connections and
		// closes them at once. Either way the other transport may work.
		if i+1 < len(plan) {
			t.client.logf("%s: %s: %s failed (%v); trying %s", t.name(), addr, k, err, plan[i+1])
		}
	}
	return nil, [20]byte{}, peer.Reserved{}, 0, joinErrs(errs)
}

// dialOver is dial over one transport.
func (t *Torrent) dialOver(ctx context.Context, addr netip.AddrPort, k transportKind, known wireMethod) (net.Conn, [20]byte, peer.Reserved, wireMethod, error) {
	plan := dialPlan(t.client.cfg.Encryption, known)
	var errs []error
	triedAgain := false
	for i := 0; i < len(plan); i++ {
		m := plan[i]
		nc, pid, rsv, err := t.dialOnce(ctx, addr, k, m)
		if err == nil {
			return nc, pid, rsv, m, nil
		}
		var de *dialError
		if errors.As(err, &de) {
			return nil, [20]byte{}, peer.Reserved{}, 0, fmt.Errorf("%s: %w", k, err)
		}
		errs = append(errs, fmt.Errorf("%s %s handshake: %w", k, m, err))
		if ctx.Err() != nil || errors.Is(err, errSelf) {
			break // another handshake would not fare better
		}
		switch {
		case m == wireMSE && errors.Is(err, mse.ErrTryAgain) && !triedAgain:
			// libtorrent's short-secret bug: new keys on a new connection.
			triedAgain = true
			plan = append(plan[:i+1], append([]wireMethod{wireMSE}, plan[i+1:]...)...)
			t.client.logf("%s: %s: %v; retrying MSE on a new connection", t.name(), addr, err)
			continue
		case m == wireMSE && !refusedMSE(err):
			// The peer speaks MSE but the handshake failed for another
			// reason (a timeout, a protocol violation): a plain
			// handshake would not fare better.
			return nil, [20]byte{}, peer.Reserved{}, 0, joinErrs(errs)
		}
		if i+1 < len(plan) {
			t.client.logf("%s: %s: %s handshake failed (%v); retrying with %s", t.name(), addr, m, err, plan[i+1])
		}
	}
	return nil, [20]byte{}, peer.Reserved{}, 0, joinErrs(errs)
}

// joinErrs is errors.Join on one line ("a; b"), for the log.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return &joinedError{errs}
}

type joinedError struct{ errs []error }

func (e *joinedError) Error() string {
	s := e.errs[0].Error()
	for _, err := range e.errs[1:] {
		s += "; " + err.Error()
	}
	return s
}

func (e *joinedError) Unwrap() []error { return e.errs }

// refusedMSE reports whether an MSE initiation failed the way a peer that
// does not speak MSE makes it fail: it hung up (or reset the connection)
// on our public key.
func refusedMSE(err error) bool {
	return errors.Is(err, mse.ErrNotMSE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dialOnce makes one connection over k and one handshake with method m.
func (t *Torrent) dialOnce(ctx context.Context, addr netip.AddrPort, k transportKind, m wireMethod) (net.Conn, [20]byte, peer.Reserved, error) {
	c := t.client
	nc, err := c.connect(ctx, addr, k)
	if err != nil {
		return nil, [20]byte{}, peer.Reserved{}, err
	}
	deadline := time.Now().Add(handshakeTimeout)
	hs := peer.Handshake{Reserved: t.reserved(), InfoHash: t.infoHash, PeerID: c.peerID}
	var stream net.Conn = nc
	if m == wireMSE {
		// The BitTorrent handshake rides as the initial payload (IA):
		// no round trip of its own.
		hctx, cancel := context.WithDeadline(ctx, deadline)
		ec, err := mse.Initiate(hctx, nc, t.infoHash, c.cfg.Encryption.Methods(), peer.AppendHandshake(nil, hs))
		cancel()
		if err != nil {
			nc.Close()
			return nil, [20]byte{}, peer.Reserved{}, err
		}
		stream = ec
		stream.SetDeadline(deadline)
	} else {
		nc.SetDeadline(deadline)
		if err := peer.WriteHandshake(nc, hs); err != nil {
			nc.Close()
			return nil, [20]byte{}, peer.Reserved{}, err
		}
	}
	h, err := peer.ReadHandshake(stream)
	if err != nil {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, err
	}
	if h.InfoHash != t.infoHash && !t.upgraded(&h.Reserved, h.InfoHash) {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, fmt.Errorf("peer answered for info-hash %x", h.InfoHash)
	}
	if h.PeerID == c.peerID {
		nc.Close()
		return nil, [20]byte{}, peer.Reserved{}, errSelf
	}
	stream.SetDeadline(time.Time{})
	return stream, h.PeerID, h.Reserved, nil
}

var errSelf = errors.New("connected to ourselves")

// dialError is a failed TCP connect: the peer is not there, whatever the
// handshake.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func remoteAddr(nc net.Conn) netip.AddrPort {
	var ap netip.AddrPort
	switch a := nc.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort() // uTP
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
