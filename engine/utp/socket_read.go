package utp

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"
)

// readLoop receives datagrams until the socket closes. Connections
// process their packets inline; ACKs wait for the end of the batch, and
// those not yet due (sendAcks) for more packets or the read deadline.
func (s *Socket) readLoop() {
	defer s.wg.Done()
	count, size := s.io.readShape()
	ms := make([]msg, count)
	for i := range ms {
		ms[i].buf = make([]byte, size)
	}
	ob := &outbox{}
	for {
		// Deferred ACKs bound the wait for more datagrams.
		n, err := s.io.readBatch(ms, s.ackBy)
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.sendAcks(time.Now(), ob, true)
				s.flush(ob)
				continue
			}
			s.logf("utp: read: %v", err)
			select {
			case <-s.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		now := time.Now()
		s.readBatches.Add(1)
		for i := range n {
			m := &ms[i]
			if m.seg <= 0 || m.seg >= m.n {
				s.handleDatagram(m.buf[:m.n], m.addr, now, ob)
				continue
			}
			for off := 0; off < m.n; off += m.seg { // a GRO run
				s.handleDatagram(m.buf[off:min(m.n, off+m.seg)], m.addr, now, ob)
			}
		}
		if s.wakeReaders() && !s.cfg.noYield {
			// The readers just woken wait on this thread's run queue,
			// and the next read may block it in ppoll, where only
			// another thread stealing them or Go's monitor taking the
			// thread's P back (20 µs to 10 ms) gets them going. Yield:
			// they run here now, with the data still in this core's
			// cache, and no other thread is woken for them. What the
			// batch made us send goes first; ACKs wait for their
			// requests to carry them.
			s.flush(ob)
			s.readerYields.Add(1)
			runtime.Gosched()
		}
		s.sendAcks(time.Now(), ob, false)
		s.flush(ob)
	}
}

// wakeReaders wakes, once per read batch, the readers of connections
// that took data in it, and reports whether it woke any.
func (s *Socket) wakeReaders() bool {
	for _, c := range s.wakes {
		signal(c.readSig)
	}
	n := len(s.wakes)
	s.readerWakes.Add(uint64(n))
	clear(s.wakes)
	s.wakes = s.wakes[:0]
	return n > 0
}

// sendAcks puts in ob the ACKs that connections on s.acks owe, at the
// end of a read batch: each connection that took ackEvery data packets
// since its last ACK (or wants one at once, ackDueLocked) gets one; the
// others wait for more, up to ackDelay after the batch that first made
// one wait (s.ackBy), or until force. Fewer ACKs matter on a fast link:
// acking each batch sent one ACK per 4-5 packets from a libtorrent
// seeder on loopback, and each costs both ends a system call and the
// sender a pass through its congestion control.
func (s *Socket) sendAcks(now time.Time, ob *outbox, force bool) {
	kept := s.acks[:0]
	for _, c := range s.acks {
		c.mu.Lock()
		switch {
		case !c.needAck || c.state != stateConnected && c.state != stateSynRecv && c.state != stateTimeWait:
			c.ackQueued = false
		case force || c.ackDueLocked():
			c.ackQueued = false
			c.stateLocked(now, ob)
		default:
			kept = append(kept, c)
		}
		c.mu.Unlock()
	}
	clear(s.acks[len(kept):])
	s.acks = kept
	switch {
	case len(kept) == 0:
		s.ackBy = time.Time{}
	case s.ackBy.IsZero():
		s.ackBy = now.Add(ackDelay)
	}
}

// handleDatagram routes one datagram: to a connection, to a new
// half-open connection, or to Others.
func (s *Socket) handleDatagram(b []byte, from netip.AddrPort, now time.Time, ob *outbox) {
	if !isUTP(b) {
		s.other(b, from)
		return
	}
	var p packet
	if len(b) > maxDatagram {
		s.malformed.Add(1)
		return
	}
	if err := parsePacket(b, &p); err != nil {
		s.malformed.Add(1)
		return
	}
	s.pktsIn.Add(1)
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if p.typ == stSyn {
		s.handleSyn(&p, from, now, ob)
		return
	}
	s.mu.Lock()
	c := s.conns[connKey{from, p.connID}]
	if c == nil && p.typ == stReset {
		// A RESET may carry either of our ids.
		for _, id := range [2]uint16{p.connID - 1, p.connID + 1} {
			if k := s.conns[connKey{from, id}]; k != nil && k.sendID == p.connID {
				c = k
			}
		}
	}
	s.mu.Unlock()
	if c != nil {
		s.deliver(c, &p, now, ob)
	}
}

// deliver hands p to c and acts on what it says.
func (s *Socket) deliver(c *Conn, p *packet, now time.Time, ob *outbox) {
	c.mu.Lock()
	ev := c.handleLocked(p, now, ob)
	queue := ev&evAck != 0 && !c.ackQueued
	if queue {
		c.ackQueued = true
	}
	c.mu.Unlock()
	if queue {
		s.acks = append(s.acks, c)
	}
	if ev&evRead != 0 && (len(s.wakes) == 0 || s.wakes[len(s.wakes)-1] != c) {
		// Repeats (packets of several connections interleaved) only
		// signal again.
		s.wakes = append(s.wakes, c)
	}
	if ev&evRemove != 0 {
		c.wake()
		s.remove(c)
	}
	if ev&evPromote != 0 {
		s.promote(c, now, ob)
	}
}

// promote moves a connection whose peer proved its address from
// half-open to the accept queue (or resets it when the queue is full).
func (s *Socket) promote(c *Conn, now time.Time, ob *outbox) {
	s.mu.Lock()
	if c.halfOpen {
		c.halfOpen = false
		s.halfOpen--
	}
	s.mu.Unlock()
	select {
	case s.acceptq <- c:
		return
	default:
	}
	s.refused.Add(1)
	c.mu.Lock()
	c.resetLocked(now, ob)
	remove := c.finishLocked(ErrReset, now)
	c.mu.Unlock()
	if remove {
		s.remove(c)
	}
}

// handleSyn answers a SYN: a new half-open connection, a retransmitted
// SYN of one we know, or a collision with a connection we dialled.
func (s *Socket) handleSyn(p *packet, from netip.AddrPort, now time.Time, ob *outbox) {
	key := connKey{from, p.connID + 1}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if c := s.conns[key]; c != nil {
		s.mu.Unlock()
		if c.outgoing {
			// Our own connection uses that id: refuse the newcomer.
			s.refused.Add(1)
			s.rawReset(from, p.connID, p.seq, ob)
			return
		}
		s.deliver(c, p, now, ob)
		return
	}
	if s.halfOpen >= s.cfg.MaxHalfOpen {
		s.mu.Unlock()
		s.refused.Add(1)
		return
	}
	c := newConn(s, from, p.connID+1, p.connID, false, now)
	c.halfOpen = true
	s.conns[key] = c
	s.halfOpen++
	s.mu.Unlock()
	signal(s.timerPok)

	c.mu.Lock()
	c.initAck, c.ackNr = p.seq, p.seq
	c.ackWire.Store(uint32(c.ackNr))
	c.seq = s.cfg.initSeq()
	c.initSeq = c.seq
	c.replyMicro = s.micros(now) - p.tsUS
	c.peerWnd = int(p.wnd)
	c.stateLocked(now, ob)
	c.mu.Unlock()
}

// rawReset sends a RESET for a connection we do not hold.
func (s *Socket) rawReset(to netip.AddrPort, connID, ack uint16, ob *outbox) {
	m := ob.next(to)
	h := header{typ: stReset, connID: connID, tsUS: s.micros(time.Now()), seq: uint16(rand.Uint32()), ack: ack}
	putHeader(m.buf, &h, extNone)
	m.n = headerLen
}
