package utp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors a Conn returns. Deadlines give os.ErrDeadlineExceeded; a Conn
// used after Close gives net.ErrClosed.
var (
	// ErrReset is the peer's RESET (or ours, sent when the socket or a
	// lingering connection was closed with data still unacknowledged).
	ErrReset = errors.New("utp: connection reset")
	// ErrTimeout is a peer that stopped answering: its ACKs, a SYN's
	// answer or any packet at all did not come within the limits of
	// Config.
	ErrTimeout = &timeoutError{}
	// ErrRefused is a dial whose SYN was answered with a RESET.
	ErrRefused = errors.New("utp: connection refused")
	// ErrFamily is a dial or a write to an IPv6 address on a socket bound
	// to an IPv4 address.
	ErrFamily = errors.New("utp: address family not reachable from this socket")
)

type timeoutError struct{}

func (*timeoutError) Error() string   { return "utp: peer timed out" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

var _ net.Error = ErrTimeout

type connState uint8

const (
	stateSynSent   connState = iota // dialled, waiting for the SYN's ACK
	stateSynRecv                    // accepted a SYN, waiting for proof the peer is at its address
	stateConnected                  // data flows (each direction may have ended with a FIN)
	stateTimeWait                   // done; kept briefly to answer a late FIN
	stateDone                       // removed from the socket
)

// reorderSlots is how far past the next expected sequence number a
// packet is buffered (and so the most out-of-order packets held).
const reorderSlots = 1024

// maxInflightPackets bounds the packets sent and not yet acknowledged
// (well inside the 32768 that 16-bit wrap-around comparison allows).
const maxInflightPackets = 2048

// Conn is one uTP connection: a net.Conn. Reads and writes may run
// concurrently with each other and with the socket's goroutines; at most
// one Read and one Write at a time is the expected use, as for TCP.
//
// Lock order: Conn.mu is taken without Socket.mu held and is never held
// across socket I/O, a blocking channel operation or a call out of the
// package; deadline.mu is a leaf taken without Conn.mu.
type Conn struct {
	// Read-only after construction.
	s        *Socket
	raddr    netip.AddrPort
	key      connKey
	recvID   uint16
	sendID   uint16
	outgoing bool
	created  time.Time
	mss      int           // most payload per packet
	readSig  chan struct{} // cap 1: data, EOF or an error for Read
	writeSig chan struct{} // cap 1: room in the send queue or an error for Write
	up       chan struct{} // closed when connected or failed
	rd, wd   *deadline

	halfOpen bool // counted in Socket.halfOpen; guarded by Socket.mu

	mu       sync.Mutex // guards everything below
	state    connState
	err      error // terminal error, returned by Read and Write
	upClosed bool
	closed   bool // Close was called: Read and Write return net.ErrClosed
	doneAt   time.Time

	// Send side. sendq holds packets from sequence number seq on:
	// sendq[:nsent] were transmitted at least once, the rest wait for
	// the window; only the last unsent one still takes bytes from Write.
	seq        uint16
	sendq      ring[*outPacket]
	nsent      int
	queued     int // payload bytes in sendq
	inflight   int // payload bytes sent, neither acked nor SACKed nor deemed lost
	peerWnd    int
	cc         ledbat
	cwndFull   bool // the last send stopped at the congestion window
	rtt        rttEstimator
	rto        time.Duration
	rtoAt      time.Time // when the oldest unacked packet times out
	retries    int       // timeouts in a row
	dupAcks    int
	nlost      int    // packets marked lost
	lossSeq    uint16 // losses of packets before this do not cut the window again
	finQueued  bool
	finAcked   bool
	lastSend   time.Time
	probeAt    time.Time // zero-window probe
	closeWrite bool      // CloseWrite or Close: no more Write

	nSent, nResent, nTimeouts uint64 // counters for Stats

	// Receive side.
	ackNr      uint16 // last sequence number received in order
	initSeq    uint16 // acceptor: the sequence number our SYN-ACK announced
	initAck    uint16 // acceptor: the peer's SYN's sequence number
	ooo        *[reorderSlots]*rxBuf
	oooN       int
	oooBytes   int
	readq      ring[*rxBuf]
	readBytes  int
	gotFIN     bool   // a FIN arrived (maybe ahead of data)
	eofSeq     uint16 // its sequence number
	eof        bool   // everything up to the FIN arrived
	needAck    bool
	unacked    int           // data packets taken since our last packet carrying an ACK
	ackQueued  bool          // on the reader's list of ACKs to send at the end of a batch
	lastAdv    int           // window advertised in the last packet
	ackWire    atomic.Uint32 // ackNr for packets on their way out (msg.refreshAck): stored under mu, read without
	replyMicro uint32
	lastRecv   time.Time
}

// outPacket is one packet of the send queue. Its payload is frozen once
// transmitted; retransmissions send the same bytes.
type outPacket struct {
	typ           uint8
	n             int
	transmissions int
	sacked        bool
	lost          bool // deemed lost: out of inflight, waiting to be resent
	fastResent    bool // resent for duplicate ACKs or SACK holes, at sentAt
	sentAt        time.Time
	payload       [maxPayloadCap]byte
}

// rxBuf holds received payload: out of order, or in order and unread.
type rxBuf struct {
	seq    uint16
	off, n int
	b      [maxDatagram]byte
}

var (
	outPool = sync.Pool{New: func() any { return new(outPacket) }}
	rxPool  = sync.Pool{New: func() any { return new(rxBuf) }}
)

func newConn(s *Socket, raddr netip.AddrPort, recvID, sendID uint16, outgoing bool, now time.Time) *Conn {
	mss := s.cfg.PacketSize - headerLen
	c := &Conn{
		s:        s,
		raddr:    raddr,
		key:      connKey{raddr, recvID},
		recvID:   recvID,
		sendID:   sendID,
		outgoing: outgoing,
		created:  now,
		mss:      mss,
		readSig:  make(chan struct{}, 1),
		writeSig: make(chan struct{}, 1),
		up:       make(chan struct{}),
		rd:       newDeadline(),
		wd:       newDeadline(),
		cc:       newLedbat(mss),
		rto:      initialRTO,
		peerWnd:  mss,
		lastRecv: now,
		lastSend: now,
	}
	if outgoing {
		c.state = stateSynSent
	} else {
		c.state = stateSynRecv
	}
	c.lastAdv = s.cfg.RecvBuffer
	return c
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// wake tells blocked readers and writers to look again.
func (c *Conn) wake() {
	signal(c.readSig)
	signal(c.writeSig)
}

// Read reads data in order; io.EOF after the peer's FIN and all data
// before it.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		if isClosed(c.rd.wait()) {
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
		n, err, done := c.readLocked(b)
		update := false
		if done && n > 0 {
			update = c.windowUpdateDueLocked()
		}
		c.mu.Unlock()
		if update {
			c.sendState()
		}
		if done {
			return n, err
		}
		select {
		case <-c.readSig:
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// readLocked copies buffered data into b. done is false when the caller
// must wait.
func (c *Conn) readLocked(b []byte) (n int, err error, done bool) {
	if c.closed {
		return 0, net.ErrClosed, true
	}
	if len(b) == 0 {
		return 0, nil, true
	}
	for n < len(b) && c.readq.len() > 0 {
		r := c.readq.front()
		k := copy(b[n:], r.b[r.off:r.off+r.n])
		n += k
		r.off += k
		r.n -= k
		c.readBytes -= k
		if r.n == 0 {
			rxPool.Put(c.readq.popFront())
		}
	}
	if n > 0 {
		return n, nil, true
	}
	if c.eof {
		return 0, io.EOF, true
	}
	if c.err != nil {
		return 0, c.err, true
	}
	return 0, nil, false
}

// Write queues b and sends what the windows allow. It blocks while the
// send buffer (Config.SendBuffer) is full.
func (c *Conn) Write(b []byte) (int, error) {
	n := 0
	for {
		if isClosed(c.wd.wait()) {
			return n, os.ErrDeadlineExceeded
		}
		now := time.Now()
		ob := getOutbox()
		c.mu.Lock()
		var err error
		switch {
		case c.closed:
			err = net.ErrClosed
		case c.err != nil:
			err = c.err
		case c.closeWrite:
			err = errWriteClosed
		default:
			n += c.enqueueLocked(b[n:])
			c.sendLocked(now, ob)
		}
		c.mu.Unlock()
		c.s.flush(ob)
		putOutbox(ob)
		if err != nil || n == len(b) {
			return n, err
		}
		select {
		case <-c.writeSig:
		case <-c.wd.wait():
			return n, os.ErrDeadlineExceeded
		}
	}
}

var errWriteClosed = errors.New("utp: write after CloseWrite")

// CloseWrite sends a FIN after the data already written: the peer reads
// io.EOF. Reading goes on.
func (c *Conn) CloseWrite() error {
	now := time.Now()
	ob := getOutbox()
	c.mu.Lock()
	err := c.err
	if c.closed {
		err = net.ErrClosed
	}
	if err == nil {
		c.queueFinLocked()
		c.sendLocked(now, ob)
	}
	c.mu.Unlock()
	c.s.flush(ob)
	putOutbox(ob)
	return err
}

// Close ends both directions and returns at once. Data already written
// and the FIN are still delivered in the background, for up to
// Config.Linger; data arriving after Close is acknowledged and dropped.
func (c *Conn) Close() error {
	now := time.Now()
	ob := getOutbox()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		putOutbox(ob)
		return net.ErrClosed
	}
	c.closed = true
	for c.readq.len() > 0 {
		rxPool.Put(c.readq.popFront())
	}
	c.readBytes = 0
	remove := false
	if c.state == stateSynRecv || c.state == stateSynSent || c.err != nil {
		remove = c.finishLocked(net.ErrClosed, now)
	} else {
		c.doneAt = now.Add(c.s.cfg.Linger)
		c.queueFinLocked()
		c.sendLocked(now, ob)
		remove = c.maybeDoneLocked(now)
	}
	c.mu.Unlock()
	c.wake()
	c.s.flush(ob)
	putOutbox(ob)
	c.rd.stop()
	c.wd.stop()
	if remove {
		c.s.remove(c)
	}
	return nil
}

// LocalAddr is the socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.s.Addr() }

// RemoteAddr is the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.raddr) }

// RemoteAddrPort is the peer's UDP address.
func (c *Conn) RemoteAddrPort() netip.AddrPort { return c.raddr }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline makes a pending and future Reads fail with
// os.ErrDeadlineExceeded after t; the zero time clears it.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline is SetReadDeadline for Write.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// Stats is a snapshot of a connection's transport state.
type Stats struct {
	RTT        time.Duration // smoothed round-trip time
	RTO        time.Duration
	Cwnd       int    // congestion window, bytes
	QueueDelay uint32 // LEDBAT's estimate of our queuing delay, µs
	PeerWindow int    // the peer's advertised receive window
	InFlight   int    // bytes sent and not acknowledged
	Sent       uint64 // packets sent, retransmissions included
	Resent     uint64 // retransmissions
	Timeouts   uint64 // retransmission timeouts
}

// Stats returns a snapshot.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{RTT: c.rtt.rtt, RTO: c.rto, Cwnd: c.cc.cwnd, QueueDelay: c.cc.ourDelay, PeerWindow: c.peerWnd,
		InFlight: c.inflight, Sent: c.nSent, Resent: c.nResent, Timeouts: c.nTimeouts}
}

// finishLocked ends the connection with err (nil for a clean end),
// releases its buffers and reports whether the caller must remove it
// from the socket (after unlocking).
func (c *Conn) finishLocked(err error, now time.Time) bool {
	if c.state == stateDone || c.state == stateTimeWait {
		return false
	}
	if c.err == nil {
		c.err = err
		if err == nil {
			c.err = net.ErrClosed
		}
	}
	if !c.upClosed {
		c.upClosed = true
		close(c.up)
	}
	c.releaseLocked()
	if err == nil {
		// A clean end waits a little to answer a retransmitted FIN.
		c.state = stateTimeWait
		c.doneAt = now.Add(c.s.cfg.timeWait)
		return false
	}
	c.state = stateDone
	return true
}

// releaseLocked returns every buffer to the pools.
func (c *Conn) releaseLocked() {
	for c.sendq.len() > 0 {
		outPool.Put(c.sendq.popFront())
	}
	c.nsent, c.queued, c.inflight = 0, 0, 0
	if c.ooo != nil {
		for i, r := range c.ooo {
			if r != nil {
				rxPool.Put(r)
				c.ooo[i] = nil
			}
		}
		c.ooo = nil
	}
	c.oooN, c.oooBytes = 0, 0
	if c.closed {
		for c.readq.len() > 0 {
			rxPool.Put(c.readq.popFront())
		}
		c.readBytes = 0
	}
}

// maybeDoneLocked ends a closed connection once both directions are
// finished: our FIN acknowledged and the peer's FIN received.
func (c *Conn) maybeDoneLocked(now time.Time) bool {
	if c.closed && c.finAcked && c.eof && c.state == stateConnected {
		return c.finishLocked(nil, now)
	}
	return false
}
