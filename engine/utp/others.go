package utp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// otherQueue bounds the non-uTP datagrams waiting for OtherConn's
// reader; more are dropped (UDP may drop them anyway).
const otherQueue = 256

// OtherConn is the socket's traffic that is not uTP (bencoded DHT
// messages start with 'd', UDP tracker replies with 0): it reads those
// datagrams and writes through the shared socket. Its methods match what
// engine/dht reads and writes with, so a DHT node can run on the uTP
// socket's port. Safe for concurrent use.
type OtherConn struct {
	s         *Socket
	q         chan otherMsg
	done      chan struct{}
	closeOnce sync.Once
	delivered atomic.Uint64
}

type otherMsg struct {
	b    []byte
	from netip.AddrPort
}

// Others returns the socket's non-uTP traffic. Before the first call
// such datagrams are dropped; every call returns the same OtherConn.
func (s *Socket) Others() *OtherConn {
	if o := s.others.Load(); o != nil {
		return o
	}
	o := &OtherConn{s: s, q: make(chan otherMsg, otherQueue), done: make(chan struct{})}
	if !s.others.CompareAndSwap(nil, o) {
		return s.others.Load()
	}
	select {
	case <-s.closing:
		o.close()
	default:
	}
	return o
}

// other queues a non-uTP datagram (a copy) for OtherConn's reader.
func (s *Socket) other(b []byte, from netip.AddrPort) {
	o := s.others.Load()
	if o == nil || len(o.q) == cap(o.q) {
		s.otherDropped.Add(1)
		return
	}
	select {
	case o.q <- otherMsg{append([]byte(nil), b...), from}:
		o.delivered.Add(1)
	default:
		s.otherDropped.Add(1)
	}
}

// ReadFromUDPAddrPort waits for the next non-uTP datagram. It returns
// net.ErrClosed once the OtherConn or the socket is closed.
func (o *OtherConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case m := <-o.q:
		return copy(b, m.b), m.from, nil
	case <-o.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WriteToUDPAddrPort sends b to addr through the shared socket.
func (o *OtherConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-o.done:
		return 0, net.ErrClosed
	default:
	}
	if !o.s.reaches(addr.Addr().Unmap()) {
		return 0, fmt.Errorf("utp: write to %s: %w", addr, ErrFamily)
	}
	ob := getOutbox()
	defer putOutbox(ob)
	if len(b) > MaxPacketSize {
		// Rare (DHT replies are bounded well under this); no pooled buffer.
		ob.msgs = append(ob.msgs[:0], msg{buf: b, n: len(b), addr: addr})
		ob.n = 1
		err := o.s.io.writeBatch(ob.msgs[:1])
		ob.msgs = nil
		ob.n = 0
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	m := ob.next(addr)
	m.n = copy(m.buf, b)
	err := o.s.io.writeBatch(ob.msgs[:1])
	ob.n = 0
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close stops reading; the shared socket stays open (Socket.Close
// closes it).
func (o *OtherConn) Close() error {
	o.close()
	return nil
}

func (o *OtherConn) close() { o.closeOnce.Do(func() { close(o.done) }) }

// LocalAddr is the shared socket's address.
func (o *OtherConn) LocalAddr() net.Addr { return o.s.Addr() }
