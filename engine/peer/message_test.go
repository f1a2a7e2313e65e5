package peer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// wire builds test input from hex with spaces.
func wire(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// messageCases covers every message type with its exact wire form.
var messageCases = []struct {
	name string
	msg  Message
	wire []byte
}{
	{"keepalive", Message{KeepAlive: true}, wire("00000000")},
	{"choke", Message{Type: Choke}, wire("00000001 00")},
	{"unchoke", Message{Type: Unchoke}, wire("00000001 01")},
	{"interested", Message{Type: Interested}, wire("00000001 02")},
	{"not interested", Message{Type: NotInterested}, wire("00000001 03")},
	{"have", Message{Type: Have, Index: 0x01020304}, wire("00000005 04 01020304")},
	{"bitfield", Message{Type: Bitfield, Bitfield: []byte{0xff, 0x80}}, wire("00000003 05 ff80")},
	{"request", Message{Type: Request, Index: 1, Begin: 0x4000, Length: 0x4000}, wire("0000000d 06 00000001 00004000 00004000")},
	{"piece", Message{Type: Piece, Index: 7, Begin: 0x8000, Block: []byte("hello")}, append(wire("0000000e 07 00000007 00008000"), "hello"...)},
	{"piece empty block", Message{Type: Piece, Index: 7, Begin: 0, Block: []byte{}}, wire("00000009 07 00000007 00000000")},
	{"cancel", Message{Type: Cancel, Index: 0xffffffff, Begin: 1, Length: 2}, wire("0000000d 08 ffffffff 00000001 00000002")},
	{"port", Message{Type: Port, Port: 6881}, wire("00000003 09 1ae1")},
	{"suggest", Message{Type: Suggest, Index: 42}, wire("00000005 0d 0000002a")},
	{"have all", Message{Type: HaveAll}, wire("00000001 0e")},
	{"have none", Message{Type: HaveNone}, wire("00000001 0f")},
	{"reject", Message{Type: Reject, Index: 3, Begin: 4, Length: 5}, wire("0000000d 10 00000003 00000004 00000005")},
	{"allowed fast", Message{Type: AllowedFast, Index: 9}, wire("00000005 11 00000009")},
	{"extended handshake", Message{Type: Extended, ExtendedID: 0, Payload: []byte("de")}, wire("00000004 14 00 6465")},
	{"extended empty", Message{Type: Extended, ExtendedID: 3, Payload: []byte{}}, wire("00000002 14 03")},
}

func TestAppendMessage(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got := AppendMessage(append([]byte(nil), prefix...), &tc.msg)
			if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], tc.wire) {
				t.Fatalf("AppendMessage(%v) = %x, want %x", tc.msg.String(), got[len(prefix):], tc.wire)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tc.wire), 0)
			m := Message{Index: 99, Bitfield: []byte("stale"), Payload: []byte("stale")} // must be overwritten
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.msg) {
				t.Fatalf("Decode = %+v, want %+v", m, tc.msg)
			}
			if err := d.Decode(&m); err != io.EOF {
				t.Fatalf("Decode at end = %v, want io.EOF", err)
			}
		})
	}
}

// TestDecodeStream decodes every case from one stream, read a few bytes at
// a time, so messages straddle reads.
func TestDecodeStream(t *testing.T) {
	var stream []byte
	for _, tc := range messageCases {
		stream = append(stream, tc.wire...)
	}
	for _, chunk := range []int{1, 3, 7, 1 << 20} {
		d := NewDecoder(&chunkReader{data: stream, chunk: chunk}, 0)
		var m Message
		for _, tc := range messageCases {
			if err := d.Decode(&m); err != nil {
				t.Fatalf("chunk %d, %s: %v", chunk, tc.name, err)
			}
			if !reflect.DeepEqual(m, tc.msg) {
				t.Fatalf("chunk %d: Decode = %+v, want %+v", chunk, m, tc.msg)
			}
		}
		if err := d.Decode(&m); err != io.EOF {
			t.Fatalf("chunk %d: at end %v", chunk, err)
		}
	}
}

type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestDecodeLarge covers messages longer than the read buffer, which go
// through the scratch buffer, interleaved with small ones.
func TestDecodeLarge(t *testing.T) {
	big := bytes.Repeat([]byte{0xA5}, 300<<10)
	block := bytes.Repeat([]byte{0x5A}, 128<<10)
	var stream []byte
	stream = AppendMessage(stream, &Message{Type: Bitfield, Bitfield: big})
	stream = AppendMessage(stream, &Message{Type: Have, Index: 1})
	stream = AppendMessage(stream, &Message{Type: Piece, Index: 2, Begin: 3, Block: block})
	stream = AppendMessage(stream, &Message{Type: Piece, Index: 4, Begin: 5, Block: block[:BlockSize]})
	d := NewDecoder(&chunkReader{data: stream, chunk: 5000}, len(big)+1)
	var m Message
	if err := d.Decode(&m); err != nil || m.Type != Bitfield || !bytes.Equal(m.Bitfield, big) {
		t.Fatalf("bitfield: %v %v", m.String(), err)
	}
	if err := d.Decode(&m); err != nil || m.Type != Have || m.Index != 1 {
		t.Fatalf("have: %v %v", m.String(), err)
	}
	if cap(d.scratch) != 0 {
		t.Errorf("scratch of %d bytes kept after a huge message", cap(d.scratch))
	}
	if err := d.Decode(&m); err != nil || m.Type != Piece || m.Index != 2 || !bytes.Equal(m.Block, block) {
		t.Fatalf("big piece: %v %v", m.String(), err)
	}
	if err := d.Decode(&m); err != nil || m.Type != Piece || m.Index != 4 || !bytes.Equal(m.Block, block[:BlockSize]) {
		t.Fatalf("piece: %v %v", m.String(), err)
	}
	if cap(d.scratch) == 0 {
		t.Errorf("scratch for a 128 KiB block was not kept")
	}
}

// TestDecodeAliasCapped checks that appending to a decoded slice cannot
// overwrite the next message in the buffer.
func TestDecodeAliasCapped(t *testing.T) {
	var stream []byte
	stream = AppendMessage(stream, &Message{Type: Piece, Block: []byte("abc")})
	stream = AppendMessage(stream, &Message{Type: Have, Index: 7})
	d := NewDecoder(bytes.NewReader(stream), 0)
	var m Message
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if cap(m.Block) != len(m.Block) {
		t.Fatalf("Block cap %d > len %d", cap(m.Block), len(m.Block))
	}
	_ = append(m.Block, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	if err := d.Decode(&m); err != nil || m.Type != Have || m.Index != 7 {
		t.Fatalf("next message: %v %v", m.String(), err)
	}
}

func TestDecodeHostile(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		tooBig  bool // wraps ErrMessageTooLarge
		eofWrap bool // wraps io.ErrUnexpectedEOF
	}{
		{name: "length 0xFFFFFFFF", in: wire("ffffffff 07"), tooBig: true},
		{name: "length just over max", in: wire("0002000a 07"), tooBig: true},
		{name: "length at max, truncated", in: wire("00020009 07"), eofWrap: true},
		{name: "huge bitfield claim", in: wire("7fffffff 05 ff"), max: 1 << 20, tooBig: true},
		{name: "unknown id", in: wire("00000001 0a")},
		{name: "unknown id 255", in: wire("00000005 ff 00000000")},
		{name: "unknown id 24", in: wire("00000031 18")},
		{name: "choke with payload", in: wire("00000002 00 00")},
		{name: "have_all with payload", in: wire("00000002 0e 00")},
		{name: "short have", in: wire("00000004 04 000000")},
		{name: "long have", in: wire("00000006 04 0000000000")},
		{name: "huge have", in: wire("00010000 04")},
		{name: "short request", in: wire("0000000c 06 00000000 00000000 000000")},
		{name: "long cancel", in: wire("0000000e 08 00000000 00000000 00000000 00")},
		{name: "short reject", in: wire("00000005 10 00000000")},
		{name: "short port", in: wire("00000002 09 1a")},
		{name: "long port", in: wire("00000004 09 1ae100")},
		{name: "short piece", in: wire("00000008 07 00000000 000000")},
		{name: "empty extended", in: wire("00000001 14")},
		{name: "truncated length", in: wire("0000"), eofWrap: true},
		{name: "truncated id", in: wire("00000001"), eofWrap: true},
		{name: "truncated have", in: wire("00000005 04 0000"), eofWrap: true},
		{name: "truncated piece", in: append(wire("00004009 07 00000000 00000000"), make([]byte, 100)...), eofWrap: true},
		{name: "truncated large bitfield", in: append(wire("00100001 05"), make([]byte, 1000)...), max: 1 << 21, eofWrap: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tc.in), tc.max)
			var m Message
			err := d.Decode(&m)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Decode(%x) = %v, want an ErrProtocol error", tc.in, err)
			}
			if errors.Is(err, ErrMessageTooLarge) != tc.tooBig {
				t.Errorf("ErrMessageTooLarge: %v, want %v", errors.Is(err, ErrMessageTooLarge), tc.tooBig)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tc.eofWrap {
				t.Errorf("io.ErrUnexpectedEOF: %v, want %v", errors.Is(err, io.ErrUnexpectedEOF), tc.eofWrap)
			}
			t.Log(err)
		})
	}
}

// TestDecodeNoBigAllocation sends a length prefix claiming the whole
// allowed maximum and then stops: the decoder must not allocate for the
// claim.
func TestDecodeNoBigAllocation(t *testing.T) {
	const max = 64 << 20
	in := append(wire("03ffffff 05"), make([]byte, 100)...)
	before := totalAlloc()
	for range 10 {
		d := NewDecoder(bytes.NewReader(in), max)
		var m Message
		if err := d.Decode(&m); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
	}
	if grown := totalAlloc() - before; grown > 10*(1<<20) {
		t.Fatalf("10 truncated 64 MiB claims allocated %d bytes", grown)
	}
}

// errReader fails with a non-EOF error after its data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset")
	d := NewDecoder(&errReader{data: wire("00000005 04 00"), err: boom}, 0)
	var m Message
	err := d.Decode(&m)
	if !errors.Is(err, boom) || errors.Is(err, ErrProtocol) {
		t.Fatalf("Decode = %v, want the read error and no ErrProtocol", err)
	}
}

func TestDecoderMaxLength(t *testing.T) {
	bf := make([]byte, 1000)
	in := AppendMessage(nil, &Message{Type: Bitfield, Bitfield: bf})
	d := NewDecoder(bytes.NewReader(in), 100)
	var m Message
	if err := d.Decode(&m); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("got %v", err)
	}
	d = NewDecoder(bytes.NewReader(in), 100)
	d.SetMaxLength(1001)
	if d.MaxLength() != 1001 {
		t.Fatal(d.MaxLength())
	}
	if err := d.Decode(&m); err != nil || len(m.Bitfield) != 1000 {
		t.Fatalf("got %v", err)
	}
	if NewDecoder(nil, -1).MaxLength() != DefaultMaxMessageLength {
		t.Fatal("default max")
	}
}

func TestDecodeAllocs(t *testing.T) {
	block := make([]byte, BlockSize)
	var msgs []byte
	for i := range 8 {
		msgs = AppendMessage(msgs, &Message{Type: Piece, Index: uint32(i), Block: block})
		msgs = AppendMessage(msgs, &Message{Type: Have, Index: uint32(i)})
		msgs = AppendMessage(msgs, &Message{Type: Extended, ExtendedID: 1, Payload: []byte("d1:ai1ee")})
		msgs = AppendMessage(msgs, &Message{KeepAlive: true})
	}
	msgs = AppendMessage(msgs, &Message{Type: Piece, Block: make([]byte, 128<<10)}) // scratch path
	r := &loopReader{data: msgs}
	d := NewDecoder(r, 0)
	var m Message
	for range 40 { // warm up: the scratch buffer is allocated once
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %.2f times per message", allocs)
	}
}

// loopReader repeats data forever.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.data[r.off:])
		n += k
		r.off = (r.off + k) % len(r.data)
	}
	return n, nil
}

func TestAppendPieceHeader(t *testing.T) {
	block := []byte("0123456789")
	hdr := AppendPieceHeader(nil, 5, 16384, len(block))
	if len(hdr) != PieceHeaderLength {
		t.Fatalf("header is %d bytes", len(hdr))
	}
	full := AppendMessage(nil, &Message{Type: Piece, Index: 5, Begin: 16384, Block: block})
	if !bytes.Equal(append(hdr, block...), full) {
		t.Fatalf("header+block %x != message %x", append(hdr, block...), full)
	}
}

func TestAppendUnknownType(t *testing.T) {
	got := AppendMessage(nil, &Message{Type: 24, Payload: []byte{1, 2}})
	if want := wire("00000003 18 0102"); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestMessageTypeString(t *testing.T) {
	for typ, want := range map[MessageType]string{
		Choke: "choke", NotInterested: "not_interested", Piece: "piece", Port: "port",
		Suggest: "suggest", HaveAll: "have_all", HaveNone: "have_none", Reject: "reject",
		AllowedFast: "allowed_fast", Extended: "extended", 10: "MessageType(10)", 255: "MessageType(255)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
		if typ.Known() != !strings.HasPrefix(want, "MessageType") {
			t.Errorf("%d.Known() = %v", typ, typ.Known())
		}
	}
	for _, tc := range messageCases {
		if s := tc.msg.String(); s == "" {
			t.Errorf("%s: empty String", tc.name)
		}
	}
}

func totalAlloc() uint64 {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return s.TotalAlloc
}
