package utp

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{typ: stData, connID: 0xbeef, tsUS: 0x01020304, tsDiff: 0xa0b0c0d0, wnd: 1 << 20, seq: 65535, ack: 7}
	b := make([]byte, headerLen+3)
	putHeader(b, &h, extNone)
	copy(b[headerLen:], "abc")
	want := []byte{0x01, 0, 0xbe, 0xef, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 0, 0x10, 0, 0, 0xff, 0xff, 0, 7, 'a', 'b', 'c'}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded %x, want %x", b, want)
	}
	var p packet
	if err := parsePacket(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.header != h || string(p.payload) != "abc" || p.sack != nil {
		t.Fatalf("decoded %+v %q", p, p.payload)
	}
}

func TestParseErrors(t *testing.T) {
	valid := func(typ uint8, ext uint8, tail ...byte) []byte {
		b := make([]byte, headerLen, headerLen+len(tail))
		putHeader(b, &header{typ: typ}, ext)
		return append(b, tail...)
	}
	tests := []struct {
		name string
		b    []byte
		err  error
		sack []byte
		pay  string
	}{
		{name: "short", b: valid(stData, 0)[:19], err: errShort},
		{name: "version 0", b: append([]byte{0x00}, valid(stData, 0)[1:]...), err: errVersion},
		{name: "type 5", b: append([]byte{0x51}, valid(stData, 0)[1:]...), err: errType},
		{name: "sack", b: valid(stState, extSACK, 0, 4, 1, 2, 3, 4), sack: []byte{1, 2, 3, 4}},
		{name: "sack then payload", b: valid(stData, extSACK, 0, 4, 0xff, 0, 0, 0, 'x'), sack: []byte{0xff, 0, 0, 0}, pay: "x"},
		{name: "unknown extension skipped", b: valid(stFin, 3, extSACK, 4, 9, 9, 9, 9, 0, 4, 8, 0, 0, 0), sack: []byte{8, 0, 0, 0}},
		{name: "extension cut short", b: valid(stState, extSACK, 0, 8, 1, 2), err: errExtension},
		{name: "extension header cut", b: valid(stState, extSACK, 0), err: errExtension},
		{name: "too many extensions", b: valid(stState, 7, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 0, 0), err: errExtension},
		{name: "empty sack ignored", b: valid(stState, extSACK, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p packet
			err := parsePacket(tt.b, &p)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(p.sack, tt.sack) || string(p.payload) != tt.pay {
				t.Fatalf("sack %x payload %q, want %x %q", p.sack, p.payload, tt.sack, tt.pay)
			}
		})
	}
}

func TestIsUTP(t *testing.T) {
	b := make([]byte, headerLen)
	for typ := uint8(0); typ <= stMax; typ++ {
		putHeader(b, &header{typ: typ}, 0)
		if !isUTP(b) {
			t.Errorf("type %d not recognised", typ)
		}
	}
	dht := []byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
	if isUTP(dht) {
		t.Error("a DHT query taken for uTP")
	}
	tracker := make([]byte, 20) // BEP 15 replies start with a 32-bit action
	if isUTP(tracker) {
		t.Error("a UDP tracker reply taken for uTP")
	}
}

func TestSeqWrap(t *testing.T) {
	if !seqLess(65535, 0) || seqLess(0, 65535) || !seqLess(65000, 100) {
		t.Fatal("seqLess does not wrap")
	}
	if seqDiff(2, 65534) != 4 || seqDiff(65534, 2) != -4 {
		t.Fatal("seqDiff does not wrap")
	}
}

// TestSACKEncoding: the ACK we send for out-of-order packets marks
// exactly those, bit i standing for ack_nr+2+i, and the sender side
// reads the same bits back.
func TestSACKEncoding(t *testing.T) {
	s := &Socket{cfg: Config{}}
	s.cfg.setDefaults()
	c := newConn(s, netipLoopback(), 1, 2, true, nowForTest())
	c.state = stateConnected
	c.ackNr = 65533 // the bitmask wraps too
	have := []uint16{65535, 0, 3, 40}
	c.ooo = new([reorderSlots]*rxBuf)
	for _, q := range have {
		c.ooo[int(q)&(reorderSlots-1)] = &rxBuf{seq: q}
		c.oooN++
	}
	ob := &outbox{}
	c.stateLocked(nowForTest(), ob)
	var p packet
	if err := parsePacket(ob.msgs[0].buf[:ob.msgs[0].n], &p); err != nil {
		t.Fatal(err)
	}
	if len(p.sack) != 8 {
		t.Fatalf("sack of %d bytes, want 8 (bits up to 38)", len(p.sack))
	}
	for i := range len(p.sack) * 8 {
		want := false
		for _, q := range have {
			want = want || q == p.ack+2+uint16(i)
		}
		if sackBit(p.sack, i) != want {
			t.Fatalf("bit %d (seq %d) = %v, want %v", i, p.ack+2+uint16(i), !want, want)
		}
	}
}
