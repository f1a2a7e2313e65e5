package utp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes of datagrams.
const (
	// MaxPacketSize is the largest Config.PacketSize: a 1500-byte
	// Ethernet frame less the IPv4 and UDP headers, as libtorrent's
	// ceiling.
	MaxPacketSize = 1472
	// DefaultPacketSize leaves room for IPv6, PPPoE and most tunnels,
	// so packets are not fragmented on common paths.
	DefaultPacketSize = 1400
	minPacketSize     = 576 - 60 - 8

	maxPayloadCap = MaxPacketSize - headerLen
	// maxDatagram is the largest uTP datagram we accept (rxBuf's size).
	maxDatagram = 2048
	// readBufSize is the socket's read buffer per datagram: DHT messages
	// (Others) may be up to 4 KiB.
	readBufSize = 4096
)

// Config configures a Socket. The zero value of each field picks the
// documented default.
type Config struct {
	// PacketSize is the largest datagram sent (uTP header included),
	// default DefaultPacketSize, at most MaxPacketSize.
	PacketSize int
	// RecvBuffer bounds each connection's received and unread data,
	// in-order and out-of-order (the window it advertises); default
	// 1 MiB.
	RecvBuffer int
	// SendBuffer bounds each connection's written and unacknowledged
	// data; Write blocks beyond it. Default 1 MiB.
	SendBuffer int
	// MaxHalfOpen bounds incoming connections whose peer has not yet
	// proven its address (default 64): a flood of SYNs from spoofed
	// sources costs at most this many small entries.
	MaxHalfOpen int
	// AcceptBacklog bounds connections waiting for Accept (default
	// 128); more are reset.
	AcceptBacklog int
	// HalfOpenTimeout drops a half-open connection (default 10 s).
	HalfOpenTimeout time.Duration
	// ConnectTimeout bounds the SYN retransmissions of a Dial (default
	// 15 s); the Dial's context may end it sooner.
	ConnectTimeout time.Duration
	// IdleTimeout ends a connection that received nothing for this long
	// (default 60 s; keep-alives flow every KeepAlive).
	IdleTimeout time.Duration
	// KeepAlive is the longest silence we keep towards a connected peer
	// (default 29 s, under common NAT timeouts).
	KeepAlive time.Duration
	// Linger is how long a closed connection keeps trying to deliver
	// its data and FIN (default 30 s).
	Linger time.Duration
	// MaxRetransmits ends a connection after this many retransmission
	// timeouts in a row (default 8: about a minute with back-off).
	MaxRetransmits int
	// NoOffload keeps UDP segmentation offload off (Linux: UDP_SEGMENT
	// on sends, UDP_GRO on reads), which is on where the kernel has it:
	// for measurements, and for paths where it misbehaves.
	NoOffload bool
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)

	// Test hooks: the first sequence number of each connection (random
	// if nil), how long a cleanly closed one answers late FINs, and
	// whether the reader yields to the connection readers it woke.
	initSeq  func() uint16
	timeWait time.Duration
	noYield  bool
}

func (cfg *Config) setDefaults() {
	if cfg.PacketSize <= 0 {
		cfg.PacketSize = DefaultPacketSize
	}
	cfg.PacketSize = max(minPacketSize, min(cfg.PacketSize, MaxPacketSize))
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.RecvBuffer, 1<<20)
	def(&cfg.SendBuffer, 1<<20)
	cfg.RecvBuffer = max(cfg.RecvBuffer, 2*cfg.PacketSize)
	cfg.SendBuffer = max(cfg.SendBuffer, 2*cfg.PacketSize)
	def(&cfg.MaxHalfOpen, 64)
	def(&cfg.AcceptBacklog, 128)
	def(&cfg.MaxRetransmits, 8)
	defd(&cfg.HalfOpenTimeout, 10*time.Second)
	defd(&cfg.ConnectTimeout, 15*time.Second)
	defd(&cfg.IdleTimeout, 60*time.Second)
	defd(&cfg.KeepAlive, 29*time.Second)
	defd(&cfg.Linger, 30*time.Second)
	defd(&cfg.timeWait, 3*time.Second)
	if cfg.initSeq == nil {
		cfg.initSeq = func() uint16 { return uint16(rand.Uint32()) }
	}
}

// connKey finds a connection: the peer's address and our receive id.
type connKey struct {
	addr netip.AddrPort
	id   uint16
}

// Socket is uTP over one UDP socket: it dials, accepts (it is a
// net.Listener) and hands datagrams that are not uTP to Others. All
// methods are safe for concurrent use.
//
// Lock order: Socket.mu is a leaf with respect to Conn.mu (never held
// together); neither is held across socket I/O.
type Socket struct {
	// Read-only after construction.
	cfg      Config
	io       packetIO
	laddr    net.Addr
	only4    bool // an IPv4 socket: it cannot send to IPv6 addresses
	epoch    time.Time
	acceptq  chan *Conn
	closing  chan struct{} // closed by Close
	timerPok chan struct{} // cap 1: a connection was added
	wg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	others    atomic.Pointer[OtherConn]

	// Counters.
	pktsIn, pktsOut, malformed, refused, otherDropped, writeErrs atomic.Uint64
	readBatches, readerWakes                                     atomic.Uint64
	readerYields                                                 atomic.Uint64 // batches after which the reader yielded (tests)

	// acks is the reader goroutine's list of connections that want an
	// ACK at the end of the current batch or, deferred, by ackBy (both
	// the reader's own; ackBy is zero when none is deferred).
	acks  []*Conn
	ackBy time.Time
	// wakes is the reader goroutine's list of connections whose readers
	// it wakes at the end of the current batch.
	wakes []*Conn

	mu       sync.Mutex // guards the following
	conns    map[connKey]*Conn
	halfOpen int
	closed   bool
}

// Listen binds a UDP socket on addr ("127.0.0.1:0", ":6881") and runs
// uTP on it.
func Listen(network, addr string, cfg Config) (*Socket, error) {
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("utp: listen: %w", err)
	}
	s, err := NewSocket(pc, cfg)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return s, nil
}

// NewSocket runs uTP on pc, which it owns from now on: it reads every
// datagram (one goroutine) and closes pc on Close. A *net.UDPConn gets
// batched reads and writes on Linux, on a duplicate of its descriptor
// outside Go's poller: pc itself is closed at once (the socket stays
// open until Close), so nothing else may use it.
func NewSocket(pc net.PacketConn, cfg Config) (*Socket, error) {
	if pc == nil {
		return nil, errors.New("utp: nil packet conn")
	}
	cfg.setDefaults()
	if uc, ok := pc.(*net.UDPConn); ok {
		// Bursts of a whole window arrive faster than one goroutine
		// drains them; the default ~200 KiB socket buffer drops them
		// (the kernel caps this at net.core.rmem_max / wmem_max).
		_ = uc.SetReadBuffer(socketBuffer)
		_ = uc.SetWriteBuffer(socketBuffer)
	}
	s := &Socket{
		cfg:      cfg,
		io:       newPacketIO(pc, cfg.NoOffload),
		laddr:    pc.LocalAddr(),
		only4:    isOnly4(pc.LocalAddr()),
		epoch:    time.Now(),
		acceptq:  make(chan *Conn, cfg.AcceptBacklog),
		closing:  make(chan struct{}),
		timerPok: make(chan struct{}, 1),
		conns:    make(map[connKey]*Conn),
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.timerLoop()
	return s, nil
}

func (s *Socket) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// micros is the microsecond clock of timestamps (it wraps at 32 bits).
func (s *Socket) micros(now time.Time) uint32 {
	return uint32(now.Sub(s.epoch) / time.Microsecond)
}

// Addr is the UDP address the socket is bound to.
func (s *Socket) Addr() net.Addr { return s.laddr }

// isOnly4 tells whether a socket bound to laddr speaks IPv4 only: bound to
// an IPv4 address (0.0.0.0 included). One bound to [::] is dual-stack.
func isOnly4(laddr net.Addr) bool {
	ua, ok := laddr.(*net.UDPAddr)
	return ok && ua.IP.To4() != nil
}

// reaches tells whether the socket can send to a (unmapped): an IPv4
// socket cannot send to an IPv6 address, and must not try (the batched
// writer has no way to encode one).
func (s *Socket) reaches(a netip.Addr) bool { return !s.only4 || a.Is4() }

// SocketStats counts a socket's traffic.
type SocketStats struct {
	Conns          int    // connections, half-open and closing included
	HalfOpen       int    // incoming connections not yet proven
	PacketsIn      uint64 // uTP datagrams received
	PacketsOut     uint64 // uTP datagrams sent
	Malformed      uint64 // uTP-looking datagrams that did not parse
	Refused        uint64 // SYNs refused: too many half-open, backlog full, id collision
	OtherDropped   uint64 // non-uTP datagrams dropped (no Others reader, or its queue full)
	WriteErrors    uint64
	OtherDelivered uint64
	// ReadBatches counts the reads that returned datagrams (one system
	// call each, at most one GRO run or maxBatch datagrams); PacketsIn
	// over it is the batch size that sets the reader's cost per packet.
	ReadBatches uint64
	// ReaderWakeups counts the signals to connections' readers that
	// data came: at most one per connection per read batch.
	ReaderWakeups uint64
}

// Stats returns a snapshot.
func (s *Socket) Stats() SocketStats {
	s.mu.Lock()
	st := SocketStats{Conns: len(s.conns), HalfOpen: s.halfOpen}
	s.mu.Unlock()
	st.PacketsIn = s.pktsIn.Load()
	st.PacketsOut = s.pktsOut.Load()
	st.Malformed = s.malformed.Load()
	st.Refused = s.refused.Load()
	st.OtherDropped = s.otherDropped.Load()
	st.WriteErrors = s.writeErrs.Load()
	st.ReadBatches = s.readBatches.Load()
	st.ReaderWakeups = s.readerWakes.Load()
	if o := s.others.Load(); o != nil {
		st.OtherDelivered = o.delivered.Load()
	}
	return st
}

// Accept waits for an incoming connection whose peer has proven its
// address (it acknowledged our SYN-ACK).
func (s *Socket) Accept() (net.Conn, error) {
	c, err := s.AcceptUTP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptUTP is Accept returning the concrete type.
func (s *Socket) AcceptUTP() (*Conn, error) {
	select {
	case c := <-s.acceptq:
		return c, nil
	case <-s.closing:
		return nil, net.ErrClosed
	}
}

// Dial connects to addr (host:port; a host name is resolved).
func (s *Socket) Dial(ctx context.Context, addr string) (*Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return nil, fmt.Errorf("utp: dial %s: %w", addr, rerr)
		}
		ap = ua.AddrPort()
	}
	return s.DialAddrPort(ctx, ap)
}

// DialAddrPort connects to raddr. It returns when the peer answered the
// SYN, ctx ended, Config.ConnectTimeout passed or the socket closed.
func (s *Socket) DialAddrPort(ctx context.Context, raddr netip.AddrPort) (*Conn, error) {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if !raddr.IsValid() || raddr.Port() == 0 {
		return nil, fmt.Errorf("utp: dial %s: invalid address", raddr)
	}
	if !s.reaches(raddr.Addr()) {
		return nil, fmt.Errorf("utp: dial %s: %w", raddr, ErrFamily)
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	var c *Conn
	for range 64 {
		id := uint16(rand.Uint32())
		if s.conns[connKey{raddr, id}] == nil {
			c = newConn(s, raddr, id, id+1, true, now)
			s.conns[c.key] = c
			break
		}
	}
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("utp: dial %s: no free connection id", raddr)
	}
	signal(s.timerPok)
	ob := getOutbox()
	c.mu.Lock()
	c.startSynLocked(now, ob)
	c.mu.Unlock()
	s.flush(ob)
	putOutbox(ob)

	var err error
	select {
	case <-c.up:
		c.mu.Lock()
		if c.state != stateConnected {
			err = c.err
		}
		c.mu.Unlock()
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.closing:
		err = net.ErrClosed
	}
	if err != nil {
		c.abort(err)
		if errors.Is(err, ErrReset) {
			err = ErrRefused
		}
		return nil, fmt.Errorf("utp: dial %s: %w", raddr, err)
	}
	return c, nil
}

// abort ends c at once, with a RESET if the peer knows it.
func (c *Conn) abort(err error) {
	now := time.Now()
	ob := getOutbox()
	c.mu.Lock()
	if c.state == stateConnected {
		c.resetLocked(now, ob)
	}
	remove := c.finishLocked(err, now)
	c.mu.Unlock()
	c.wake()
	c.s.flush(ob)
	putOutbox(ob)
	if remove {
		c.s.remove(c)
	}
}

// remove forgets a finished connection.
func (s *Socket) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
		if c.halfOpen {
			c.halfOpen = false
			s.halfOpen--
		}
	}
	s.mu.Unlock()
}

// Close resets every connection, closes the UDP socket and waits for
// the socket's goroutines. Pending Accepts and Others' reads return
// net.ErrClosed.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*Conn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		clear(s.conns)
		s.halfOpen = 0
		s.mu.Unlock()
		close(s.closing)
		now := time.Now()
		ob := getOutbox()
		for _, c := range conns {
			c.mu.Lock()
			if c.state == stateConnected {
				c.resetLocked(now, ob)
			}
			c.finishLocked(net.ErrClosed, now)
			c.state = stateDone
			c.mu.Unlock()
			c.wake()
		}
		s.flush(ob)
		putOutbox(ob)
		s.closeErr = s.io.close()
		s.wg.Wait()
		if o := s.others.Load(); o != nil {
			o.close()
		}
	})
	return s.closeErr
}

// flush sends what ob holds and empties it.
func (s *Socket) flush(ob *outbox) {
	for i := 0; i < ob.n; {
		j := min(ob.n, i+maxBatch)
		if err := s.io.writeBatch(ob.msgs[i:j]); err != nil {
			s.writeErrs.Add(1)
			if !errors.Is(err, net.ErrClosed) {
				s.logf("utp: write: %v", err)
			}
		}
		s.pktsOut.Add(uint64(j - i))
		i = j
	}
	ob.n = 0
}

// socketBuffer is the kernel buffer asked for the UDP socket.
const socketBuffer = 4 << 20

// maxBatch is how many datagrams one read or write system call moves.
const maxBatch = 64

// tickInterval is the resolution of every connection timer (RTO,
// keep-alive, timeouts).
const tickInterval = 20 * time.Millisecond

// timerLoop runs the connections' timers; it sleeps while there are
// none.
func (s *Socket) timerLoop() {
	defer s.wg.Done()
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	var cs []*Conn
	ob := &outbox{}
	for {
		var now time.Time
		select {
		case <-s.closing:
			return
		case now = <-t.C:
		}
		s.mu.Lock()
		cs = cs[:0]
		for _, c := range s.conns {
			cs = append(cs, c)
		}
		s.mu.Unlock()
		if len(cs) == 0 {
			select {
			case <-s.closing:
				return
			case <-s.timerPok:
			}
			continue
		}
		for _, c := range cs {
			c.mu.Lock()
			ev := c.tickLocked(now, ob)
			c.mu.Unlock()
			if ev&evRemove != 0 {
				c.wake()
				s.remove(c)
			}
		}
		clear(cs)
		s.flush(ob)
	}
}
