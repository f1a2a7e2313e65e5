package peer

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

var testRoot = [32]byte{0xaa, 1, 2, 3, 31: 0xff}

// hashMessageCases covers the BEP 52 messages with their exact wire form.
var hashMessageCases = []struct {
	name string
	msg  Message
	wire []byte
}{
	{"hash request", Message{Type: HashRequest, PiecesRoot: testRoot, BaseLayer: 2, Index: 512, Length: 512, ProofLayers: 11},
		wire("00000031 15 aa010203" + strings.Repeat("00", 27) + "ff 00000002 00000200 00000200 0000000b")},
	{"hash reject", Message{Type: HashReject, PiecesRoot: testRoot, BaseLayer: 0, Index: 4, Length: 4, ProofLayers: 0},
		wire("00000031 17 aa010203" + strings.Repeat("00", 27) + "ff 00000000 00000004 00000004 00000000")},
	// 4 nodes and proof layers 3: the range's top is 2 layers up, so
	// layers 2 and 3 give one uncle each.
	{"hashes", Message{Type: Hashes, PiecesRoot: testRoot, Index: 8, Length: 4, ProofLayers: 3, Hashes: bytes.Repeat([]byte{7}, 6*32)},
		wire("000000f1 16 aa010203" + strings.Repeat("00", 27) + "ff 00000000 00000008 00000004 00000003" + strings.Repeat("07", 6*32))},
	{"hashes, one node", Message{Type: Hashes, PiecesRoot: testRoot, BaseLayer: 1, Index: 3, Length: 1, ProofLayers: 0, Hashes: bytes.Repeat([]byte{9}, 2*32)},
		wire("00000071 16 aa010203" + strings.Repeat("00", 27) + "ff 00000001 00000003 00000001 00000000" + strings.Repeat("09", 2*32))},
}

func TestHashMessages(t *testing.T) {
	var stream []byte
	for _, tc := range hashMessageCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendMessage(nil, &tc.msg); !bytes.Equal(got, tc.wire) {
				t.Fatalf("AppendMessage\n got %x\nwant %x", got, tc.wire)
			}
			d := NewDecoder(bytes.NewReader(tc.wire), 0)
			m := Message{Hashes: []byte("stale"), Payload: []byte("stale")}
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.msg) {
				t.Fatalf("Decode = %+v, want %+v", m, tc.msg)
			}
			if m.Type == Hashes && cap(m.Hashes) != len(m.Hashes) {
				t.Fatal("Hashes is not capped at its length")
			}
			if m.String() == "" || !m.Type.Known() {
				t.Fatal("String or Known")
			}
		})
		stream = append(stream, tc.wire...)
	}
	// All at once, a few bytes per read, among other messages.
	stream = append(stream, wire("00000005 04 00000007")...)
	for _, chunk := range []int{1, 5, 1 << 20} {
		d := NewDecoder(&chunkReader{data: stream, chunk: chunk}, 0)
		var m Message
		for _, tc := range hashMessageCases {
			if err := d.Decode(&m); err != nil || !reflect.DeepEqual(m, tc.msg) {
				t.Fatalf("chunk %d, %s: %v %+v", chunk, tc.name, err, m)
			}
		}
		if err := d.Decode(&m); err != nil || m.Type != Have || m.Index != 7 {
			t.Fatalf("chunk %d: the have after: %v %v", chunk, m.String(), err)
		}
		if err := d.Decode(&m); err != io.EOF {
			t.Fatalf("chunk %d: at end %v", chunk, err)
		}
	}
	for typ, name := range map[MessageType]string{HashRequest: "hash_request", Hashes: "hashes", HashReject: "hash_reject", 24: "MessageType(24)"} {
		if typ.String() != name {
			t.Errorf("%d.String() = %q", typ, typ.String())
		}
	}
}

func TestDecodeHashesHostile(t *testing.T) {
	head := func(id string, base, index, length, proof string) string {
		return id + strings.Repeat("00", 32) + base + index + length + proof
	}
	tests := []struct {
		name    string
		in      []byte
		eofWrap bool
	}{
		{"request too short", wire("00000030 15" + strings.Repeat("00", 47)), false},
		{"request too long", wire("00000032 15" + strings.Repeat("00", 49)), false},
		{"reject too short", wire("00000002 17 00"), false},
		{"request of 0 nodes", wire("00000031" + head("15", "00000000", "00000000", "00000000", "00000000")), false},
		{"request of too many nodes", wire("00000031" + head("15", "00000000", "00000000", "00002001", "00000000")), false},
		{"request of 2^32-1 nodes", wire("00000031" + head("15", "00000000", "00000000", "ffffffff", "00000000")), false},
		{"base layer too high", wire("00000031" + head("15", "00000040", "00000000", "00000002", "00000000")), false},
		{"proof layers too high", wire("00000031" + head("17", "00000000", "00000000", "00000002", "ffffffff")), false},
		{"hashes without a header", wire("00000010 16" + strings.Repeat("00", 15)), false},
		{"hashes one hash short", wire("000000d1 16" + head("", "00000000", "00000008", "00000004", "00000003") + strings.Repeat("07", 5*32)), false},
		{"hashes one hash long", wire("00000111 16" + head("", "00000000", "00000008", "00000004", "00000003") + strings.Repeat("07", 7*32)), false},
		{"hashes of too many nodes", wire("00000031" + head("16", "00000000", "00000000", "00002001", "00000000")), false},
		{"hashes with huge proof", wire("00000031" + head("16", "00000000", "00000000", "00000001", "7fffffff")), false},
		{"hashes cut in the header", wire("000000f1 16" + strings.Repeat("00", 20)), true},
		{"hashes cut in the hashes", wire("000000f1 16" + head("", "00000000", "00000008", "00000004", "00000003") + strings.Repeat("07", 40)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := NewDecoder(bytes.NewReader(tc.in), 0).Decode(&m)
			if !errors.Is(err, ErrProtocol) || errors.Is(err, io.ErrUnexpectedEOF) != tc.eofWrap {
				t.Fatalf("Decode(%x) = %v, want ErrProtocol (unexpected EOF: %v)", tc.in, err, tc.eofWrap)
			}
			t.Log(err)
		})
	}
}

// TestDecodeHashesNoAllocation sends a whole 4 MiB hashes message whose
// header asks for two hashes: the decoder refuses it from the header,
// before reading (and allocating for) the rest.
func TestDecodeHashesNoAllocation(t *testing.T) {
	const max = 64 << 20
	in := wire("00400000 16" + strings.Repeat("00", 32) + "00000000 00000000 00000002 00000000")
	in = append(in, make([]byte, 4<<20)...)
	before := totalAlloc()
	for range 10 {
		var m Message
		if err := NewDecoder(bytes.NewReader(in), max).Decode(&m); !errors.Is(err, ErrProtocol) || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v", err)
		}
	}
	if grown := totalAlloc() - before; grown > 10*(1<<20) {
		t.Fatalf("10 lying 4 MiB hashes messages allocated %d bytes", grown)
	}
}

// TestNumUncles checks the wire's uncle count against engine/merkle's,
// which answers the requests, and libtorrent's formula.
func TestNumUncles(t *testing.T) {
	for length := uint32(1); length <= MaxHashLength; length *= 2 {
		for proof := uint32(0); proof < 40; proof++ {
			r := merkle.Request{Length: int(length), ProofLayers: int(proof)}
			if got := NumUncles(length, proof); got != r.Uncles() {
				t.Fatalf("NumUncles(%d, %d) = %d, merkle says %d", length, proof, got, r.Uncles())
			}
		}
	}
	// libtorrent counts a length that is no power of two as the next one.
	if NumUncles(3, 5) != NumUncles(4, 5) || NumUncles(5, 2) != 0 {
		t.Fatal("non-power-of-two lengths")
	}
	if n, err := HashesLength(512, 12); err != nil || n != 32*(512+4) {
		t.Fatalf("HashesLength(512, 12) = %d, %v", n, err)
	}
	if _, err := HashesLength(0, 0); !errors.Is(err, ErrProtocol) {
		t.Fatalf("HashesLength(0, 0): %v", err)
	}
}

func TestReservedV2(t *testing.T) {
	var r Reserved
	if r.V2() {
		t.Fatal("zero Reserved says v2")
	}
	r.SetV2()
	if r != (Reserved{7: 0x10}) || !r.V2() || r.Fast() || r.DHT() || r.Extended() {
		t.Fatalf("SetV2 set %x", r)
	}
	r.SetFast()
	r.SetDHT()
	r.SetExtended()
	if r != (Reserved{5: 0x10, 7: 0x15}) || !r.V2() {
		t.Fatalf("all bits: %x", r)
	}
}
