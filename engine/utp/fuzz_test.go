package utp

import (
	"net/netip"
	"testing"
	"time"
)

func netipLoopback() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:6881") }

func nowForTest() time.Time { return time.Unix(1e9, 0) }

// FuzzParsePacket: any datagram parses or fails cleanly, the extension
// chain never reads past the datagram, and a parsed header re-encodes
// to the same 20 bytes.
func FuzzParsePacket(f *testing.F) {
	for _, seed := range [][]byte{
		{0x41, 0, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0},
		{0x21, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 8, 0, 4, 0xff, 0, 0, 1},
		{0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 8, 1, 4, 0, 0, 0, 7, 0, 4, 1, 0, 0, 0, 'd', 'a', 't', 'a'},
		[]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p packet
		if err := parsePacket(b, &p); err != nil {
			return
		}
		if !isUTP(b) {
			t.Fatal("parsed a datagram isUTP rejects")
		}
		var h [headerLen]byte
		putHeader(h[:], &p.header, b[1])
		if string(h[:]) != string(b[:headerLen]) {
			t.Fatalf("re-encoded %x, want %x", h, b[:headerLen])
		}
		if len(p.payload) > len(b)-headerLen || len(p.sack) > 255 {
			t.Fatal("slices larger than the input")
		}
	})
}

// FuzzConnPackets feeds a connected pair's receiving side arbitrary
// packets (extension chains, SACKs, acks and sequence numbers out of
// range): nothing panics, the accounting stays within its bounds.
func FuzzConnPackets(f *testing.F) {
	f.Add([]byte{0x21, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 9, 0, 8, 0, 4, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x01, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 12, 0, 8, 'x', 'y'})
	f.Add([]byte{0x11, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 11, 0, 8})
	f.Add([]byte{0x31, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Socket{cfg: Config{RecvBuffer: 8 << 10, SendBuffer: 8 << 10}}
		s.cfg.setDefaults()
		now := nowForTest()
		c := newConn(s, netipLoopback(), 1, 2, true, now)
		c.state = stateConnected
		c.seq, c.ackNr = 1, 9
		c.enqueueLocked(make([]byte, 6000))
		ob := &outbox{}
		c.sendLocked(now, ob)
		for i := 0; i+headerLen <= len(b) && i < 4*headerLen; i += headerLen / 2 {
			var p packet
			if parsePacket(b[i:], &p) != nil {
				continue
			}
			c.handleLocked(&p, now, ob)
			now = now.Add(time.Second)
			c.tickLocked(now, ob)
			if c.inflight < 0 || c.nsent < 0 || c.nsent > c.sendq.len() || c.nlost < 0 ||
				c.readBytes < 0 || c.oooBytes < 0 || c.readBytes+c.oooBytes > s.cfg.RecvBuffer {
				t.Fatalf("accounting out of bounds: inflight %d nsent %d/%d lost %d read %d ooo %d",
					c.inflight, c.nsent, c.sendq.len(), c.nlost, c.readBytes, c.oooBytes)
			}
		}
	})
}
