//go:build linux && (amd64 || arm64)

package utp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgIO moves up to maxBatch datagrams per system call with recvmmsg
// and sendmmsg, through the socket's RawConn (so Go's poller still does
// the waiting) and without allocating per datagram. Reads happen on the
// socket's one reader goroutine; writes come from any goroutine, each
// with a batch state from a pool.
type mmsgIO struct {
	rc  syscall.RawConn
	is6 bool      // an AF_INET6 socket: IPv4 peers take mapped addresses
	r   mmsgBatch // the reader's
}

// mmsghdr is struct mmsghdr of 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// mmsgBatch is the kernel-facing arrays of one batch.
type mmsgBatch struct {
	hdrs  [maxBatch]mmsghdr
	iovs  [maxBatch]unix.Iovec
	names [maxBatch]unix.RawSockaddrInet6
	ms    []msg
	n     int
	err   error
	recv  func(fd uintptr) bool
	send  func(fd uintptr) bool
}

func newPacketIO(pc net.PacketConn) packetIO {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return &udpIO{pc: pc}
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return &udpIO{pc: pc, uc: uc}
	}
	m := &mmsgIO{rc: rc}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, serr = unix.Getsockname(int(fd))
		_, m.is6 = sa.(*unix.SockaddrInet6)
	}); err != nil || serr != nil {
		return &udpIO{pc: pc, uc: uc}
	}
	m.r.init()
	return m
}

func (b *mmsgBatch) init() {
	b.recv = func(fd uintptr) bool {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.ms)), 0, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		b.n, b.err = int(n), nil
		if e != 0 {
			b.n, b.err = 0, e
		}
		return true
	}
	b.send = func(fd uintptr) bool {
		for b.n < len(b.ms) {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.n])), uintptr(len(b.ms)-b.n), 0, 0, 0)
			switch {
			case e == unix.EAGAIN:
				return false
			case e == unix.EINTR:
				continue
			case e != 0:
				// This datagram cannot go (e.g. EMSGSIZE): skip it.
				if b.err == nil {
					b.err = e
				}
				b.n++
			default:
				b.n += int(n)
			}
		}
		return true
	}
}

func (m *mmsgIO) readBatch(ms []msg) (int, error) {
	b := &m.r
	b.ms = ms[:min(len(ms), maxBatch)]
	for i := range b.ms {
		b.iovs[i].Base = &b.ms[i].buf[0]
		b.iovs[i].SetLen(len(b.ms[i].buf))
		h := &b.hdrs[i].hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	if err := m.rc.Read(b.recv); err != nil {
		return 0, err
	}
	if b.err != nil {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: b.err}
	}
	k := 0
	for i := range b.n {
		if b.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
			continue // larger than any datagram we take
		}
		addr, ok := sockaddrAddrPort(&b.names[i])
		if !ok {
			continue
		}
		ms[k].buf, ms[i].buf = ms[i].buf, ms[k].buf
		ms[k].n, ms[k].addr = int(b.hdrs[i].n), addr
		k++
	}
	return k, nil
}

var mmsgPool = sync.Pool{New: func() any {
	b := new(mmsgBatch)
	b.init()
	return b
}}

func (m *mmsgIO) writeBatch(ms []msg) error {
	b := mmsgPool.Get().(*mmsgBatch)
	defer mmsgPool.Put(b)
	b.ms, b.n, b.err = ms[:min(len(ms), maxBatch)], 0, nil
	for i := range b.ms {
		b.iovs[i].Base = &b.ms[i].buf[0]
		b.iovs[i].SetLen(b.ms[i].n)
		h := &b.hdrs[i].hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = putSockaddr(&b.names[i], b.ms[i].addr, m.is6)
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	err := m.rc.Write(b.send)
	b.ms = nil
	if err == nil && b.err != nil {
		err = &net.OpError{Op: "sendmmsg", Net: "udp", Err: b.err}
	}
	if err != nil && errors.Is(err, syscall.EBADF) {
		err = net.ErrClosed
	}
	return err
}

// sockaddrAddrPort decodes an AF_INET or AF_INET6 socket address.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}

// putSockaddr encodes addr for a socket of family AF_INET6 (is6: IPv4
// as a mapped address) or AF_INET, and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, addr netip.AddrPort, is6 bool) uint32 {
	*sa = unix.RawSockaddrInet6{}
	port := addr.Port()
	if !is6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		sa4.Addr = addr.Addr().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	sa.Addr = addr.Addr().As16()
	return unix.SizeofSockaddrInet6
}
