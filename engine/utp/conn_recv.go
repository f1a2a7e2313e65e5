package utp

import (
	"time"
)

// dupAckLimit is how many duplicate ACKs (or packets SACKed past a hole)
// make a packet lost before its timeout.
const dupAckLimit = 3

// ackEvery and ackDelay shape delayed ACKs. At the end of a read batch
// a connection ACKs once it took ackEvery data packets (about 22 KB)
// since its last ACK; fewer wait for more until ackDelay after the batch
// that made them wait. A sender whose window is under ackEvery packets
// waits ackDelay more per round trip: nothing on a real path's round
// trip, and it keeps an ACK per batch from costing both ends a system
// call every few packets on a fast one.
const (
	ackEvery = 16
	ackDelay = time.Millisecond
)

// event says what a packet changed, for the caller to act on after
// unlocking.
type event uint8

const (
	evRemove  event = 1 << iota // the connection ended: remove it from the socket
	evPromote                   // a half-open connection proved its peer: queue it for Accept
	evAck                       // it wants an ACK at the end of the read batch
	evReset                     // it must answer with a RESET (the connection is gone)
	evRead                      // it has new data for Read: wake a waiting reader at the end of the batch
)

// handleLocked processes one packet addressed to c.
func (c *Conn) handleLocked(p *packet, now time.Time, ob *outbox) (ev event) {
	switch c.state {
	case stateDone:
		return 0
	case stateTimeWait:
		if p.typ == stFin || p.typ == stData {
			c.lastRecv = now
			c.stateLocked(now, ob)
		}
		return 0
	}
	if p.typ == stReset {
		c.finishLocked(ErrReset, now)
		return evRemove
	}
	if p.typ == stSyn {
		// A retransmitted SYN: our SYN-ACK was lost.
		if c.state == stateSynRecv || c.state == stateConnected && !c.outgoing && p.seq == c.synSeqLocked() {
			c.stateLocked(now, ob)
		}
		return 0
	}
	c.lastRecv = now
	c.replyMicro = c.s.micros(now) - p.tsUS

	// The ACK must not acknowledge what we never sent.
	acked := seqDiff(p.ack, c.seq-1)
	if acked > c.nsent {
		return 0
	}
	switch c.state {
	case stateSynSent:
		if p.typ != stState || acked != 1 {
			return 0 // only the SYN's ACK opens the connection
		}
		c.state = stateConnected
		c.ackNr = p.seq - 1
		c.upClosed = true
		close(c.up)
	case stateSynRecv:
		if p.ack != c.initSeq-1 {
			return 0
		}
		c.state = stateConnected
		ev |= evPromote
	}

	c.handleAckLocked(p, acked, now, ob)
	c.peerWnd = int(p.wnd)
	if p.typ == stData || p.typ == stFin {
		if c.handleDataLocked(p) {
			ev |= evRead
		}
	}
	c.ackWire.Store(uint32(c.ackNr))
	if c.state == stateConnected {
		c.sendLocked(now, ob)
	}
	if c.needAck {
		ev |= evAck
	}
	if c.maybeDoneLocked(now) {
		ev |= evRemove
	}
	return ev
}

// ackDueLocked reports whether c's ACK must go at the end of this read
// batch rather than wait for more data: enough packets came, a packet
// is missing (the selective ACK tells the sender at once what to
// resend), the peer's FIN came, the handshake is not over, c is closed,
// or our receive window is so small that the sender may be waiting on
// it.
func (c *Conn) ackDueLocked() bool {
	return c.state != stateConnected || c.unacked >= ackEvery || c.oooN > 0 || c.gotFIN || c.closed ||
		c.advWndLocked() < 2*ackEvery*c.mss
}

// synSeqLocked is the sequence number of the peer's SYN (acceptor).
func (c *Conn) synSeqLocked() uint16 { return c.initAck }

// handleAckLocked applies the cumulative ACK (acked packets past
// c.seq-1, possibly 0 or negative for an old one) and the selective ACK.
func (c *Conn) handleAckLocked(p *packet, acked int, now time.Time, ob *outbox) {
	if acked < 0 {
		return
	}
	bytesAcked := 0
	var rttSample time.Duration
	for range acked {
		q := c.sendq.popFront()
		c.nsent--
		c.seq++
		switch {
		case q.sacked:
		case q.lost:
			c.nlost--
			bytesAcked += q.n
		default:
			c.inflight -= q.n
			bytesAcked += q.n
		}
		if q.transmissions == 1 {
			rttSample = now.Sub(q.sentAt)
		}
		if q.typ == stFin {
			c.finAcked = true
		}
		c.queued -= q.n
		outPool.Put(q)
	}
	if acked > 0 {
		c.dupAcks = 0
		c.retries = 0
		signal(c.writeSig)
	} else if p.typ == stState && len(p.payload) == 0 && c.nsent > 0 && int(p.wnd) <= c.peerWnd {
		c.dupAcks++
		if c.dupAcks >= c.lossEvidenceLocked() {
			c.fastResendLocked(0, now, ob)
		}
	}
	if p.sack != nil && c.nsent > 1 {
		bytesAcked += c.handleSACKLocked(p.sack, now, ob, &rttSample)
	}
	if rttSample > 0 {
		c.rtt.add(rttSample)
		c.rto = c.rtt.rto()
	}
	if acked > 0 {
		if c.nsent > 0 {
			c.rtoAt = now.Add(c.rto)
		} else {
			c.rtoAt = time.Time{}
		}
	}
	if p.tsDiff != 0 && bytesAcked > 0 {
		d := c.cc.sample(p.tsDiff, now)
		if c.rtt.has && time.Duration(d)*time.Microsecond > c.rtt.rtt {
			d = uint32(c.rtt.rtt / time.Microsecond) // one way cannot exceed the round trip
		}
		c.cc.onAck(bytesAcked, d, c.cwndFull, c.mss, c.s.cfg.SendBuffer)
		c.cwndFull = false
	}
}

// handleSACKLocked marks the packets a selective ACK covers (bit i is
// sendq index i+1 after the cumulative ACK) and resends holes with at
// least dupAckLimit packets SACKed after them. It returns the bytes
// newly acknowledged.
func (c *Conn) handleSACKLocked(mask []byte, now time.Time, ob *outbox, rtt *time.Duration) int {
	bytes := 0
	total := 0
	for i := 0; i < len(mask)*8 && i+1 < c.nsent; i++ {
		if !sackBit(mask, i) {
			continue
		}
		total++
		q := c.sendq.at(i + 1)
		if q.sacked {
			continue
		}
		q.sacked = true
		if q.lost {
			q.lost = false
			c.nlost--
		} else {
			c.inflight -= q.n
		}
		bytes += q.n
		if q.transmissions == 1 {
			*rtt = now.Sub(q.sentAt)
		}
	}
	// A hole with dupAckLimit SACKed packets after it is lost (fewer
	// when fewer are in flight, lossEvidenceLocked).
	seen := 0
	for i, need := 0, c.lossEvidenceLocked(); i < c.nsent && total-seen >= need; i++ {
		if i > 0 && sackBit(mask, i-1) {
			seen++
			continue
		}
		c.fastResendLocked(i, now, ob)
	}
	return bytes
}

// lossEvidenceLocked is how many duplicate ACKs, or packets SACKed past
// a hole, make the hole lost: dupAckLimit, or one less than the packets
// in flight when 2 to dupAckLimit are and nothing waits to be sent
// (early retransmit, RFC 5827). A peer-wire request stream has a packet
// or two in flight at a time; without this, a lost request waited for
// the retransmission timeout (500 ms at least), as no third packet came
// to be SACKed past it.
func (c *Conn) lossEvidenceLocked() int {
	if c.nsent >= 2 && c.nsent <= dupAckLimit && c.sendq.len() == c.nsent {
		return c.nsent - 1
	}
	return dupAckLimit
}

// fastResendLocked resends sendq[i] once before its timeout and counts a
// loss (which halves the window once per window of data).
func (c *Conn) fastResendLocked(i int, now time.Time, ob *outbox) {
	q := c.sendq.at(i)
	if q.sacked || q.fastResent && now.Sub(q.sentAt) < c.resendGuardLocked() {
		return
	}
	q.fastResent = true
	seq := c.seq + uint16(i)
	if !seqLess(seq, c.lossSeq) {
		c.cc.onLoss(c.mss)
		c.lossSeq = c.seq + uint16(c.nsent)
	}
	if q.lost {
		q.lost = false
		c.nlost--
		c.inflight += q.n
	}
	c.transmitLocked(q, seq, now, ob)
}

// resendGuardLocked is how long a fast retransmission is given before
// the same evidence (more duplicate ACKs, more SACKed packets after it)
// may resend it again: about a round trip, so a lost retransmission
// need not wait for the retransmission timeout.
func (c *Conn) resendGuardLocked() time.Duration {
	if !c.rtt.has {
		return initialRTO
	}
	return max(2*time.Millisecond, c.rtt.rtt+c.rtt.rttVar)
}

// handleDataLocked takes the payload of an ST_DATA or the end of an
// ST_FIN. It reports whether Read has something new (data or EOF); the
// caller wakes the reader once per batch of datagrams rather than per
// packet, so a reader is not woken, run and parked again for each
// 1.4 KB packet while the socket's reader is still handling the batch.
func (c *Conn) handleDataLocked(p *packet) bool {
	c.needAck = true
	c.unacked++
	d := seqDiff(p.seq, c.ackNr)
	if p.typ == stFin {
		if !c.gotFIN {
			c.gotFIN, c.eofSeq = true, p.seq
		}
		if d == 1 {
			c.ackNr = p.seq
			c.eof = true
			return true
		}
		return false
	}
	if d <= 0 || d > reorderSlots || c.gotFIN && !seqLess(p.seq, c.eofSeq) {
		return false // a duplicate, too far ahead, or past the FIN
	}
	if !c.closed && c.readBytes+c.oooBytes+len(p.payload) > c.s.cfg.RecvBuffer {
		return false // over the window we advertised
	}
	if d > 1 {
		if c.ooo == nil {
			c.ooo = new([reorderSlots]*rxBuf)
		}
		slot := &c.ooo[int(p.seq)&(reorderSlots-1)]
		if *slot != nil {
			return false
		}
		r := rxPool.Get().(*rxBuf)
		r.seq, r.off, r.n = p.seq, 0, copy(r.b[:], p.payload)
		*slot = r
		c.oooN++
		c.oooBytes += r.n
		return false
	}
	c.deliverLocked(p.payload, nil)
	c.ackNr++
	for c.oooN > 0 {
		slot := &c.ooo[int(c.ackNr+1)&(reorderSlots-1)]
		r := *slot
		if r == nil || r.seq != c.ackNr+1 {
			break
		}
		*slot = nil
		c.oooN--
		c.oooBytes -= r.n
		c.ackNr++
		c.deliverLocked(r.b[:r.n], r)
	}
	if c.gotFIN && c.ackNr+1 == c.eofSeq {
		c.ackNr = c.eofSeq
		c.eof = true
	}
	return true
}

// deliverLocked appends in-order payload to the read queue, into the
// last buffer when it has room. r, if not nil, is the buffer b lives in
// and is either queued or returned to the pool.
func (c *Conn) deliverLocked(b []byte, r *rxBuf) {
	if c.closed || len(b) == 0 {
		if r != nil {
			rxPool.Put(r)
		}
		return
	}
	c.readBytes += len(b)
	if c.readq.len() > 0 {
		t := c.readq.back()
		if end := t.off + t.n; end+len(b) <= len(t.b) {
			t.n += copy(t.b[end:], b)
			if r != nil {
				rxPool.Put(r)
			}
			return
		}
	}
	if r == nil {
		r = rxPool.Get().(*rxBuf)
		r.off, r.n = 0, copy(r.b[:], b)
	}
	c.readq.pushBack(r)
}

// tickLocked runs the connection's timers.
func (c *Conn) tickLocked(now time.Time, ob *outbox) (ev event) {
	cfg := &c.s.cfg
	switch c.state {
	case stateDone:
		return 0
	case stateTimeWait:
		if now.After(c.doneAt) {
			c.state = stateDone
			return evRemove
		}
		return 0
	case stateSynRecv:
		if now.Sub(c.created) > cfg.HalfOpenTimeout {
			c.finishLocked(ErrTimeout, now)
			return evRemove
		}
		return 0
	case stateSynSent:
		if c.rtoAt.IsZero() || now.Before(c.rtoAt) {
			// Zero: Dial has made the connection visible but not yet
			// queued its SYN.
			return 0
		}
		if now.Sub(c.created) >= cfg.ConnectTimeout {
			c.finishLocked(ErrTimeout, now)
			return evRemove
		}
		c.rto = min(2*c.rto, maxRTO)
		c.rtoAt = time.Time{}
		c.transmitLocked(c.sendq.front(), c.seq, now, ob)
		return 0
	}
	if now.Sub(c.lastRecv) > cfg.IdleTimeout {
		c.finishLocked(ErrTimeout, now)
		return evRemove
	}
	if c.closed && now.After(c.doneAt) {
		c.resetLocked(now, ob)
		c.finishLocked(ErrReset, now)
		return evRemove
	}
	if c.nsent > 0 && !c.rtoAt.IsZero() && !now.Before(c.rtoAt) {
		c.timeoutLocked(now)
		if c.retries > cfg.MaxRetransmits {
			c.finishLocked(ErrTimeout, now)
			return evRemove
		}
	}
	c.sendLocked(now, ob)
	if c.needAck || now.Sub(c.lastSend) >= cfg.KeepAlive {
		c.stateLocked(now, ob)
	}
	return 0
}

// timeoutLocked handles the retransmission timer: every packet in
// flight is deemed lost, the window drops to one packet, the timer backs
// off.
func (c *Conn) timeoutLocked(now time.Time) {
	c.retries++
	c.nTimeouts++
	c.rto = min(2*c.rto, maxRTO)
	c.cc.onTimeout(c.mss)
	for i := range c.nsent {
		q := c.sendq.at(i)
		q.fastResent = false
		if q.sacked || q.lost {
			continue
		}
		q.lost = true
		c.nlost++
		c.inflight -= q.n
	}
	c.lossSeq = c.seq + uint16(c.nsent)
	c.dupAcks = 0
	c.rtoAt = now.Add(c.rto)
}
