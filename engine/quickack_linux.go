package engine

import (
	"io"
	"net"
	"syscall"

	"github.com/swarmfs/swarmfs/engine/mse"
)

// quickAckReader re-arms TCP_QUICKACK after every read: Linux delays ACKs
// for up to 40 ms, and a sender with Nagle's algorithm on then holds the
// tail of a piece back until that ACK comes. Against a libtorrent seeder on
// loopback that was a 40 ms stall at the end of most first pieces (a
// magnet's first byte in 45 ms instead of 4); the setsockopt costs about a
// microsecond per read of up to 68 KiB.
//
// An MSE connection is read through (it decrypts, and holds bytes its
// handshake read ahead) while the option is set on the TCP socket under
// it (mse.Conn.NetConn).
type quickAckReader struct {
	r  io.Reader // what the peer's stream is read from
	rc syscall.RawConn
}

func newQuickAckReader(nc net.Conn) io.Reader {
	sock := nc
	if mc, ok := nc.(*mse.Conn); ok {
		sock = mc.NetConn()
	}
	tc, ok := sock.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &quickAckReader{r: nc, rc: rc}
}

func (q *quickAckReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	if n > 0 {
		q.rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
