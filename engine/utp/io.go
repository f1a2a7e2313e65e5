package utp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// msg is one datagram in a batch.
type msg struct {
	buf  []byte
	n    int
	addr netip.AddrPort
	// seg, on a read, is the size of the datagrams that buf[:n] holds
	// back to back (a GRO run, the last one maybe shorter); 0 for one.
	seg int
	// ack, on a write, is the connection's ack_nr as it is when the
	// datagram leaves (Conn.ackWire), or nil: see refreshAck.
	ack *atomic.Uint32
}

// refreshAck writes the connection's latest ack_nr into a packet just
// before the system call that sends it. A packet is built under its
// connection's lock but sent after, and the writer's and the socket
// reader's sends race: a data packet built before a burst came in could
// leave after the ACKs of that burst, acknowledging less than they did.
// libtorrent drops a packet whose ack_nr is more than 3 behind the
// best it has seen (as "redundant"): a request lost that way cost a
// 500 ms retransmission timeout whenever fewer than 3 packets followed
// it. Only packets without extensions are patched (a selective ACK's
// bitmask counts from its ack_nr).
func (m *msg) refreshAck() {
	if m.ack != nil && m.n >= headerLen && m.buf[1] == extNone {
		binary.BigEndian.PutUint16(m.buf[18:20], uint16(m.ack.Load()))
	}
}

// packetIO moves batches of datagrams. readBatch blocks until at least
// one arrives and fills ms[:n], or until deadline (zero: none) passes
// (os.ErrDeadlineExceeded); writeBatch sends every message. readShape
// is how many read buffers of which size readBatch wants. close ends
// both and releases the socket.
type packetIO interface {
	readBatch(ms []msg, deadline time.Time) (int, error)
	writeBatch(ms []msg) error
	readShape() (count, size int)
	close() error
}

// outbox collects datagrams built under a connection's lock, to be sent
// after it is released. Its buffers are reused.
type outbox struct {
	msgs []msg
	n    int
}

// next returns the next message to fill, addressed to addr.
func (o *outbox) next(addr netip.AddrPort) *msg {
	if o.n == len(o.msgs) {
		o.msgs = append(o.msgs, msg{buf: make([]byte, MaxPacketSize)})
	}
	m := &o.msgs[o.n]
	o.n++
	m.addr, m.n, m.ack = addr, 0, nil
	return m
}

var outboxPool = sync.Pool{New: func() any { return new(outbox) }}

func getOutbox() *outbox { return outboxPool.Get().(*outbox) }

func putOutbox(o *outbox) {
	o.n = 0
	if len(o.msgs) > 4*maxBatch {
		o.msgs = nil // do not keep a burst's worth of buffers
	}
	outboxPool.Put(o)
}

// udpIO is the portable packetIO: one datagram per system call.
type udpIO struct {
	pc       net.PacketConn
	uc       *net.UDPConn // pc, when it is one (no allocation per datagram)
	deadline time.Time    // the read deadline set on pc
}

func (u *udpIO) close() error { return u.pc.Close() }

func (u *udpIO) readShape() (count, size int) { return 1, readBufSize }

func (u *udpIO) readBatch(ms []msg, deadline time.Time) (int, error) {
	if !deadline.Equal(u.deadline) {
		_ = u.pc.SetReadDeadline(deadline)
		u.deadline = deadline
	}
	if u.uc != nil {
		n, from, err := u.uc.ReadFromUDPAddrPort(ms[0].buf)
		if err != nil {
			return 0, err
		}
		ms[0].n, ms[0].addr = n, from
		return 1, nil
	}
	for {
		n, from, err := u.pc.ReadFrom(ms[0].buf)
		if err != nil {
			return 0, err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ms[0].n, ms[0].addr = n, ua.AddrPort()
		return 1, nil
	}
}

func (u *udpIO) writeBatch(ms []msg) error {
	var first error
	for i := range ms {
		ms[i].refreshAck()
		var err error
		if u.uc != nil {
			_, err = u.uc.WriteToUDPAddrPort(ms[i].buf[:ms[i].n], ms[i].addr)
		} else {
			_, err = u.pc.WriteTo(ms[i].buf[:ms[i].n], net.UDPAddrFromAddrPort(ms[i].addr))
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}
