package utp

import (
	"math/rand/v2"
	"time"
)

// enqueueLocked copies as much of b as the send buffer takes into the
// send queue, topping up the last packet if it has not been sent yet.
func (c *Conn) enqueueLocked(b []byte) int {
	n := 0
	for n < len(b) {
		room := c.s.cfg.SendBuffer - c.queued
		if room <= 0 {
			break
		}
		var p *outPacket
		if c.sendq.len() > c.nsent {
			if q := c.sendq.back(); q.typ == stData && q.n < c.mss {
				p = q
			}
		}
		if p == nil {
			if c.sendq.len() >= 2*maxInflightPackets {
				break
			}
			p = outPool.Get().(*outPacket)
			*p = outPacket{typ: stData}
			c.sendq.pushBack(p)
		}
		k := copy(p.payload[p.n:c.mss], b[n:min(len(b), n+room)])
		p.n += k
		n += k
		c.queued += k
	}
	return n
}

// queueFinLocked appends our FIN after the queued data (once).
func (c *Conn) queueFinLocked() {
	if c.closeWrite {
		return
	}
	c.closeWrite = true
	p := outPool.Get().(*outPacket)
	*p = outPacket{typ: stFin}
	c.finQueued = true
	c.sendq.pushBack(p)
	signal(c.writeSig)
}

// window is how many payload bytes may be in flight.
func (c *Conn) windowLocked() int { return min(c.cc.cwnd, c.peerWnd) }

// sendLocked transmits what the windows allow: packets deemed lost
// first, then new ones.
func (c *Conn) sendLocked(now time.Time, ob *outbox) {
	if c.state != stateConnected {
		return
	}
	wnd := c.windowLocked()
	if c.nlost > 0 {
		for i := 0; i < c.nsent && c.nlost > 0; i++ {
			p := c.sendq.at(i)
			if !p.lost {
				continue
			}
			if c.inflight > 0 && c.inflight+p.n > wnd {
				c.cwndFull = true
				return
			}
			p.lost = false
			c.nlost--
			c.inflight += p.n
			c.transmitLocked(p, c.seq+uint16(i), now, ob)
		}
	}
	for c.nsent < c.sendq.len() && c.nsent < maxInflightPackets {
		p := c.sendq.at(c.nsent)
		if c.inflight > 0 && c.inflight+p.n > wnd {
			c.cwndFull = true
			return
		}
		if c.inflight == 0 && p.n > c.peerWnd {
			// The peer's window is closed: probe after a timeout
			// (or when its window update arrives).
			if c.probeAt.IsZero() {
				c.probeAt = now.Add(c.rto)
			}
			if now.Before(c.probeAt) {
				return
			}
		}
		c.probeAt = time.Time{}
		c.nsent++
		c.inflight += p.n
		c.transmitLocked(p, c.seq+uint16(c.nsent-1), now, ob)
	}
}

// advWndLocked is our free receive buffer, advertised in every packet.
func (c *Conn) advWndLocked() int {
	if c.closed {
		return c.s.cfg.RecvBuffer
	}
	return max(0, c.s.cfg.RecvBuffer-c.readBytes-c.oooBytes)
}

// headerLocked fills the fields every packet shares.
func (c *Conn) headerLocked(typ uint8, seq uint16, now time.Time) header {
	w := c.advWndLocked()
	c.lastAdv = w
	c.unacked = 0
	return header{
		typ:    typ,
		connID: c.sendID,
		tsUS:   c.s.micros(now),
		tsDiff: c.replyMicro,
		wnd:    uint32(w),
		seq:    seq,
		ack:    c.ackNr,
	}
}

// transmitLocked puts packet p (sequence number seq) in ob.
func (c *Conn) transmitLocked(p *outPacket, seq uint16, now time.Time, ob *outbox) {
	m := ob.next(c.raddr)
	h := c.headerLocked(p.typ, seq, now)
	if p.typ == stSyn {
		h.connID, h.ack = c.recvID, 0
	}
	putHeader(m.buf, &h, extNone)
	m.n = headerLen + copy(m.buf[headerLen:], p.payload[:p.n])
	if p.typ != stSyn {
		m.ack = &c.ackWire
	}
	p.transmissions++
	c.nSent++
	if p.transmissions > 1 {
		c.nResent++
	}
	p.sentAt = now
	c.lastSend = now
	if c.oooN == 0 {
		c.needAck = false
	}
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rto)
	}
}

// stateLocked puts an ST_STATE (an ACK, with a selective ACK when
// packets arrived out of order) in ob.
func (c *Conn) stateLocked(now time.Time, ob *outbox) {
	m := ob.next(c.raddr)
	h := c.headerLocked(stState, c.seq+uint16(c.nsent), now)
	n := headerLen
	if c.oooN > 0 {
		// Bit i stands for ackNr+2+i.
		last := 0
		for i := 0; i < maxSACKLen*8 && i+2 <= reorderSlots; i++ {
			if r := c.ooo[int(c.ackNr+2+uint16(i))&(reorderSlots-1)]; r != nil && r.seq == c.ackNr+2+uint16(i) {
				last = i + 1
			}
		}
		l := (last + 31) / 32 * 4
		if l > 0 {
			sack := m.buf[headerLen+2 : headerLen+2+l]
			clear(sack)
			for i := range last {
				if r := c.ooo[int(c.ackNr+2+uint16(i))&(reorderSlots-1)]; r != nil && r.seq == c.ackNr+2+uint16(i) {
					sack[i>>3] |= 1 << (i & 7)
				}
			}
			m.buf[headerLen] = extNone
			m.buf[headerLen+1] = byte(l)
			putHeader(m.buf, &h, extSACK)
			m.n = headerLen + 2 + l
			c.needAck = false
			c.lastSend = now
			return
		}
	}
	putHeader(m.buf, &h, extNone)
	m.n = n
	m.ack = &c.ackWire
	c.needAck = false
	c.lastSend = now
}

// resetLocked puts an ST_RESET in ob.
func (c *Conn) resetLocked(now time.Time, ob *outbox) {
	m := ob.next(c.raddr)
	h := c.headerLocked(stReset, uint16(rand.Uint32()), now)
	h.wnd = 0
	putHeader(m.buf, &h, extNone)
	m.n = headerLen
}

// sendState sends an ACK at once (a window update after a Read).
func (c *Conn) sendState() {
	now := time.Now()
	ob := getOutbox()
	c.mu.Lock()
	if c.state == stateConnected {
		c.stateLocked(now, ob)
	}
	c.mu.Unlock()
	c.s.flush(ob)
	putOutbox(ob)
}

// windowUpdateDueLocked reports whether reading opened the receive
// window enough since the last packet that the peer, which may be
// stalled on it, must hear at once.
func (c *Conn) windowUpdateDueLocked() bool {
	return c.state == stateConnected && c.advWndLocked()-c.lastAdv >= max(c.s.cfg.RecvBuffer/4, c.mss)
}

// startSynLocked queues and sends the SYN of a dialled connection.
func (c *Conn) startSynLocked(now time.Time, ob *outbox) {
	c.seq = c.s.cfg.initSeq()
	p := outPool.Get().(*outPacket)
	*p = outPacket{typ: stSyn}
	c.sendq.pushBack(p)
	c.nsent = 1
	c.transmitLocked(p, c.seq, now, ob)
}
