//go:build linux && (amd64 || arm64)

package utp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestGSORun: which messages one GSO send carries.
func TestGSORun(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1")
	b := netip.MustParseAddrPort("127.0.0.1:2")
	mk := func(sizes ...int) []msg {
		ms := make([]msg, len(sizes))
		for i, n := range sizes {
			ms[i] = msg{n: n, addr: a}
		}
		return ms
	}
	many := make([]int, 100)
	for i := range many {
		many[i] = 1000
	}
	other := mk(1400, 1400, 1400)
	other[2].addr = b
	for _, tc := range []struct {
		name string
		ms   []msg
		i    int
		want int
	}{
		{"one", mk(1400), 0, 1},
		{"equal", mk(1400, 1400, 1400), 0, 3},
		{"shorter last", mk(1400, 1400, 20), 0, 3},
		{"shorter then longer", mk(1400, 20, 1400), 0, 2},
		{"larger second", mk(20, 1400), 0, 1},
		{"from the middle", mk(20, 1400, 1400), 1, 3},
		{"other address", other, 0, 2},
		{"segment cap", mk(many...), 0, maxGSOSegments},
		{"byte cap", mk(1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472,
			1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472,
			1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472, 1472), 0, maxGSOBytes / 1472},
	} {
		if got := gsoRun(tc.ms, tc.i); got != tc.want {
			t.Errorf("%s: run ends at %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestGroSegment: control messages that are short, truncated or of
// another kind give no segment size.
func TestGroSegment(t *testing.T) {
	var c [cmsgSize]byte
	if got := groSegment(c[:]); got != 0 {
		t.Errorf("zeroed: %d", got)
	}
	putSegment(c[:], 1400) // UDP_SEGMENT, not UDP_GRO
	if got := groSegment(c[:]); got != 0 {
		t.Errorf("UDP_SEGMENT taken for UDP_GRO: %d", got)
	}
	for i := range len(c) {
		_ = groSegment(c[:i]) // no panic on a short buffer
	}
}

// TestOffloadBatch: a run of datagrams written in one batch reaches
// another socket intact and in order; where the kernel has UDP GSO and
// GRO, as fewer reads than datagrams (one segmented send, one coalesced
// receive), which the read loop cuts back into datagrams.
func TestOffloadBatch(t *testing.T) {
	_, tx := openMmsg(t, nil)
	rxc, rx := openMmsg(t, nil)
	if !tx.gso.Load() || !rx.gro {
		t.Skip("this kernel has no UDP GSO/GRO")
	}
	if reads := sendRun(t, tx, rxc, rx); reads >= 10 {
		t.Errorf("10 datagrams came in %d reads: no segmentation offload", reads)
	}
}

// TestOffloadFallback: a socket whose GSO sends the kernel refuses
// (SO_NO_CHECK makes them fail with EINVAL) turns GSO off and still
// delivers every datagram, in order.
func TestOffloadFallback(t *testing.T) {
	_, tx := openMmsg(t, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
	rxc, rx := openMmsg(t, nil)
	if !tx.gso.Load() {
		t.Skip("this kernel has no UDP GSO")
	}
	sendRun(t, tx, rxc, rx)
	if tx.gso.Load() {
		t.Error("GSO still on after the kernel refused it")
	}
}

// openMmsg opens a loopback UDP socket, applies setup to it, and returns
// it with its mmsgIO.
func openMmsg(t *testing.T, setup func(fd int) error) (*net.UDPConn, *mmsgIO) {
	t.Helper()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	if setup != nil {
		rc, err := uc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setup(int(fd)) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
	}
	m, ok := newPacketIO(uc, false).(*mmsgIO)
	if !ok {
		t.Fatal("no mmsgIO on a UDP socket")
	}
	t.Cleanup(func() { m.close() })
	return uc, m
}

// sendRun writes ten datagrams (nine equal, a short last) from tx in
// one batch and reads them at rx, checking sizes, bytes and order; it
// returns how many reads they took.
func sendRun(t *testing.T, tx *mmsgIO, rxc *net.UDPConn, rx *mmsgIO) int {
	t.Helper()
	to := rxc.LocalAddr().(*net.UDPAddr).AddrPort()
	sizes := []int{1400, 1400, 1400, 1400, 1400, 1400, 1400, 1400, 1400, 300}
	ms := make([]msg, len(sizes))
	var want []byte
	for i, n := range sizes {
		ms[i] = msg{buf: make([]byte, MaxPacketSize), n: n, addr: to}
		for j := range n {
			ms[i].buf[j] = byte(i*7 + j)
		}
		want = append(want, ms[i].buf[:n]...)
	}
	if err := tx.writeBatch(ms); err != nil {
		t.Fatal(err)
	}
	count, size := rx.readShape()
	in := make([]msg, count)
	for i := range in {
		in[i].buf = make([]byte, size)
	}
	deadline := time.Now().Add(5 * time.Second)
	var got []byte
	var datagrams, reads int
	for len(got) < len(want) {
		n, err := rx.readBatch(in, deadline)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), len(want), err)
		}
		for _, m := range in[:n] {
			reads++
			seg := m.seg
			if seg == 0 {
				seg = m.n
			}
			for off := 0; off < m.n; off += seg {
				d := m.buf[off:min(m.n, off+seg)]
				if len(d) != sizes[datagrams] {
					t.Fatalf("datagram %d: %d bytes, want %d", datagrams, len(d), sizes[datagrams])
				}
				datagrams++
				got = append(got, d...)
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the datagrams arrived changed or out of order")
	}
	return reads
}
