//go:build linux && (amd64 || arm64)

package utp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgIO moves up to maxBatch datagrams per system call with recvmmsg
// and sendmmsg, on a descriptor of its own outside Go's poller (ownFD),
// without allocating per datagram. Reads happen on the socket's one
// reader goroutine; writes come from any goroutine, each with a batch
// state from a pool.
//
// Where the kernel offers them (Linux 4.18 and 5.0), it also uses UDP
// segmentation offload: a run of equal-sized datagrams to one address
// (a window of data packets) goes down as one UDP_SEGMENT message, which
// the kernel (or the NIC) cuts into datagrams at the last moment, and
// UDP_GRO hands such runs up as one buffer with its segment size. Per
// datagram, the stack then costs almost nothing: on loopback, a run
// crosses it as one packet. A GSO send that fails (a device without
// checksum offload answers EIO) turns GSO off for the socket and the
// run is sent datagram by datagram.
type mmsgIO struct {
	fd  *ownFD
	is6 bool        // an AF_INET6 socket: IPv4 peers take mapped addresses
	gro bool        // UDP_GRO is on: reads may return runs (msg.seg)
	gso atomic.Bool // UDP_SEGMENT works on this socket (so far)
	r   mmsgBatch   // the reader's
	// drained: the reader's last read took fewer datagrams than it had
	// room for, so the next one waits for more before reading.
	drained bool
	// lastN is how many datagrams the reader's last read took (a GRO
	// run counts each).
	lastN int
}

// readNap is how long the reader lets datagrams gather before a read
// when its last read, which emptied the socket, still took napMin or
// more: they come faster than it handles them. Without it the reader
// woke for every 3-4 datagrams from a libtorrent seeder on loopback,
// each time a ppoll, a recvmmsg and the connection's reader scheduled;
// with it, 8-10 datagrams a read and a third of the reads. A lone
// datagram (requests, ACKs, a slow peer) is read at once: no nap after
// a read that took one, which also bounds what a nap can cost a
// round trip (readNap plus the timer's slack, about 100 µs).
const (
	readNap = 50 * time.Microsecond
	napMin  = 2
)

// napFor is how long the reader waits before its next read.
func (m *mmsgIO) napFor() time.Duration {
	if m.drained && m.lastN >= napMin {
		return readNap
	}
	return 0
}

// GSO bounds: the kernel's UDP_MAX_SEGMENTS (64 before Linux 5.19) and
// an IP packet's 64 KiB less headers.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65000
	// groBufSize is a read buffer that holds a whole GRO run.
	groBufSize = 65536
	// groBatch is how many GRO buffers one read fills (1 MiB).
	groBatch = 16
	// cmsgSize holds one control message of an int (CmsgSpace(4)).
	cmsgSize = 24
)

// mmsghdr is struct mmsghdr of 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// mmsgBatch is the kernel-facing arrays of one batch.
type mmsgBatch struct {
	hdrs   [maxBatch]mmsghdr
	iovs   [maxBatch]unix.Iovec
	names  [maxBatch]unix.RawSockaddrInet6
	ctrl   [maxBatch][cmsgSize]byte
	ms     []msg
	nh     int           // headers to send (a GSO run takes one for many msgs)
	first  [maxBatch]int // index in ms of each header's first message
	n      int
	err    error
	gsoErr bool // a GSO header failed: b.n is its index
	recv   func(fd uintptr) bool
	send   func(fd uintptr) bool
}

// newPacketIO takes pc: a *net.UDPConn's socket leaves Go's poller for
// an mmsgIO (pc is closed, the socket kept open through a duplicate of
// its descriptor); anything else, or a socket whose descriptor cannot be
// had, is read and written through pc.
func newPacketIO(pc net.PacketConn, noOffload bool) packetIO {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return &udpIO{pc: pc}
	}
	sa, err := getsockname(uc)
	if err != nil {
		return &udpIO{pc: pc, uc: uc}
	}
	fd, err := takeFD(uc)
	if err != nil {
		return &udpIO{pc: pc, uc: uc}
	}
	m := &mmsgIO{fd: fd}
	_, m.is6 = sa.(*unix.SockaddrInet6)
	if !noOffload {
		// Probes: each option is known to the kernel or not.
		if _, err := unix.GetsockoptInt(fd.fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil {
			m.gso.Store(true)
		}
		m.gro = unix.SetsockoptInt(fd.fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	}
	m.r.init()
	return m
}

// getsockname is uc's local address as the kernel has it (its family
// says how to encode destinations).
func getsockname(uc *net.UDPConn) (unix.Sockaddr, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return nil, err
	}
	return sa, serr
}

// close shuts the socket, waking a reader or writer that waits, and
// closes it.
func (m *mmsgIO) close() error { return m.fd.close() }

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
		if b.n < b.nh {
			// Under the socket's write lock: packets leave in the order
			// their acks were refreshed.
			for i := b.first[b.n]; i < len(b.ms); i++ {
				b.ms[i].refreshAck()
			}
		}
		for b.n < b.nh {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.n])), uintptr(b.nh-b.n), 0, 0, 0)
			switch {
			case e == unix.EAGAIN:
				return false
			case e == unix.EINTR:
				continue
			case b.hdrs[b.n].hdr.Controllen != 0 && gsoRefused(e):
				// GSO refused (EIO: no checksum offload; EINVAL):
				// the caller sends the rest without it.
				b.gsoErr = true
				return true
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

// readShape: GRO runs need 64 KiB buffers, fewer of them.
func (m *mmsgIO) readShape() (count, size int) {
	if m.gro {
		return groBatch, groBufSize
	}
	return maxBatch, readBufSize
}

func (m *mmsgIO) readBatch(ms []msg, deadline time.Time) (int, error) {
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
		if m.gro {
			h.Control = &b.ctrl[i][0]
			h.SetControllen(cmsgSize)
		}
	}
	waitFirst := m.drained
	if d := m.napFor(); d > 0 {
		// A nanosleep of this thread, not a Go timer: Go's timers
		// wake a thread of its poller.
		ts := unix.NsecToTimespec(int64(d))
		_ = unix.Nanosleep(&ts, nil)
		waitFirst = false
	}
	if err := m.fd.do(unix.POLLIN, deadline, waitFirst, b.recv); err != nil {
		m.drained, m.lastN = false, 0
		return 0, err
	}
	if b.err != nil {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: b.err}
	}
	m.drained, m.lastN = b.n < len(b.ms), 0
	k := 0
	for i := range b.n {
		if b.hdrs[i].hdr.Flags&unix.MSG_TRUNC != 0 {
			continue // larger than any datagram we take
		}
		addr, ok := sockaddrAddrPort(&b.names[i])
		if !ok {
			continue
		}
		seg := 0
		if m.gro {
			seg = groSegment(b.ctrl[i][:min(int(b.hdrs[i].hdr.Controllen), cmsgSize)])
		}
		ms[k].buf, ms[i].buf = ms[i].buf, ms[k].buf
		ms[k].n, ms[k].addr, ms[k].seg = int(b.hdrs[i].n), addr, seg
		k++
		m.lastN++
		if seg > 0 && seg < ms[k-1].n {
			m.lastN += (ms[k-1].n - 1) / seg // a GRO run's further datagrams
		}
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
	gso := m.gso.Load()
	b.ms, b.n, b.nh, b.err, b.gsoErr = ms[:min(len(ms), maxBatch)], 0, 0, nil, false
	for i := 0; i < len(b.ms); {
		j := i + 1
		if gso {
			j = gsoRun(b.ms, i)
		}
		for k := i; k < j; k++ {
			b.iovs[k].Base = &b.ms[k].buf[0]
			b.iovs[k].SetLen(b.ms[k].n)
		}
		h := &b.hdrs[b.nh].hdr
		*h = unix.Msghdr{}
		h.Name = (*byte)(unsafe.Pointer(&b.names[b.nh]))
		h.Namelen = putSockaddr(&b.names[b.nh], b.ms[i].addr, m.is6)
		h.Iov = &b.iovs[i]
		h.SetIovlen(j - i)
		if j-i > 1 {
			putSegment(b.ctrl[b.nh][:], uint16(b.ms[i].n))
			h.Control = &b.ctrl[b.nh][0]
			h.SetControllen(unix.CmsgSpace(2))
		}
		b.first[b.nh] = i
		b.nh++
		i = j
	}
	err := m.fd.do(unix.POLLOUT, time.Time{}, false, b.send)
	rest := 0
	if b.gsoErr {
		rest = b.first[b.n]
	}
	b.ms = nil
	if err == nil && b.err != nil {
		err = &net.OpError{Op: "sendmmsg", Net: "udp", Err: b.err}
	}
	if err != nil && (errors.Is(err, syscall.EBADF) || m.fd.closing.Load()) {
		// A send racing Close meets the shut socket (EPIPE).
		err = net.ErrClosed
	}
	if err == nil && b.gsoErr {
		// Segmentation offload does not work here: off for good.
		m.gso.Store(false)
		return m.writeBatch(ms[rest:min(len(ms), maxBatch)])
	}
	return err
}

// gsoRefused reports whether a send with UDP_SEGMENT failed for the
// segmentation itself rather than for its destination (an unreachable
// peer must not turn GSO off for every other).
func gsoRefused(e syscall.Errno) bool {
	return e == unix.EIO || e == unix.EINVAL || e == unix.EOPNOTSUPP || e == unix.ENOPROTOOPT
}

// gsoRun is the end of the run of messages from ms[i] that one GSO send
// can carry: one address, every datagram the size of the first but the
// last, which may be shorter.
func gsoRun(ms []msg, i int) int {
	size, total := ms[i].n, ms[i].n
	j := i + 1
	for j < len(ms) && j-i < maxGSOSegments && ms[j].addr == ms[i].addr &&
		ms[j-1].n == size && ms[j].n <= size && ms[j].n > 0 && total+ms[j].n <= maxGSOBytes {
		total += ms[j].n
		j++
	}
	return j
}

// putSegment writes a UDP_SEGMENT control message of size into c.
func putSegment(c []byte, size uint16) {
	clear(c[:unix.CmsgSpace(2)])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = size
}

// groSegment is the segment size of a UDP_GRO control message in c (the
// datagram is a run of that size's segments), 0 if there is none.
func groSegment(c []byte) int {
	for len(c) >= unix.CmsgLen(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(c) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])))
		}
		c = c[min(len(c), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
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
