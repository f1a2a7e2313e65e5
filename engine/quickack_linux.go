package engine

import (
	"io"
	"net"
	"syscall"
)

// quickAckReader re-arms TCP_QUICKACK after every read: Linux delays ACKs
// for up to 40 ms, and a sender with Nagle's algorithm on then holds the
// tail of a piece back until that ACK comes. Against a libtorrent seeder on
// loopback that was a 40 ms stall at the end of most first pieces (a
// magnet's first byte in 45 ms instead of 4); the setsockopt costs about a
// microsecond per read of up to 68 KiB.
type quickAckReader struct {
	nc *net.TCPConn
	rc syscall.RawConn
}

func newQuickAckReader(nc net.Conn) io.Reader {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &quickAckReader{nc: tc, rc: rc}
}

func (q *quickAckReader) Read(p []byte) (int, error) {
	n, err := q.nc.Read(p)
	if n > 0 {
		q.rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
