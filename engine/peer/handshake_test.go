package peer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func testHandshake() Handshake {
	var h Handshake
	h.Reserved.SetFast()
	h.Reserved.SetExtended()
	h.Reserved.SetDHT()
	copy(h.InfoHash[:], "infohash-infohash-in")
	copy(h.PeerID[:], "-XX0001-abcdefghijkl")
	return h
}

// countingWriter records the size of each Write.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

func TestHandshakeRoundTrip(t *testing.T) {
	h := testHandshake()
	var w countingWriter
	if err := WriteHandshake(&w, h); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) != 1 || w.writes[0] != HandshakeLength {
		t.Fatalf("writes %v, want one of %d bytes", w.writes, HandshakeLength)
	}
	want := "\x13BitTorrent protocol\x00\x00\x00\x00\x00\x10\x00\x05infohash-infohash-in-XX0001-abcdefghijkl"
	if w.String() != want {
		t.Fatalf("wire %q, want %q", w.String(), want)
	}
	got, err := ReadHandshake(bytes.NewReader(w.Bytes()))
	if err != nil || got != h {
		t.Fatalf("ReadHandshake = %+v, %v", got, err)
	}

	// Head then peer id, as an accepting side reads it; nothing read past.
	r := bytes.NewReader(append(w.Bytes(), "next"...))
	res, ih, err := ReadHandshakeHead(r)
	if err != nil || res != h.Reserved || ih != h.InfoHash {
		t.Fatalf("ReadHandshakeHead = %x %x %v", res, ih, err)
	}
	id, err := ReadPeerID(r)
	if err != nil || id != h.PeerID {
		t.Fatalf("ReadPeerID = %q %v", id, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "next" {
		t.Fatalf("read past the handshake: left %q", rest)
	}
}

func TestReserved(t *testing.T) {
	var r Reserved
	if r.Fast() || r.Extended() || r.DHT() {
		t.Fatal("zero Reserved advertises something")
	}
	r.SetFast()
	if !r.Fast() || r.Extended() || r.DHT() || r != (Reserved{7: 0x04}) {
		t.Fatalf("SetFast: %x", r)
	}
	r.SetExtended()
	if !r.Extended() || r != (Reserved{5: 0x10, 7: 0x04}) {
		t.Fatalf("SetExtended: %x", r)
	}
	r.SetDHT()
	if !r.DHT() || r != (Reserved{5: 0x10, 7: 0x05}) {
		t.Fatalf("SetDHT: %x", r)
	}
	// Unknown bits other clients set (e.g. BEP 52 v2 upgrade, 0x10 of byte 7) are kept.
	r2 := Reserved{7: 0x10}
	r2.SetFast()
	if r2[7] != 0x14 || r2.DHT() {
		t.Fatalf("got %x", r2)
	}
}

func TestReadHandshakeBad(t *testing.T) {
	good := AppendHandshake(nil, testHandshake())
	tests := []struct {
		name     string
		in       []byte
		protocol bool // wraps ErrProtocol
		eof      bool // exactly io.EOF
	}{
		{"empty", nil, false, true},
		{"truncated head", good[:30], true, false},
		{"truncated peer id", good[:60], true, false},
		{"ends after the info-hash", good[:48], true, false},
		{"wrong pstrlen", append([]byte{18}, good[1:]...), true, false},
		{"wrong protocol string", append([]byte("\x13BitTorrent protocoL"), good[20:]...), true, false},
		{"HTTP request", []byte("GET /announce?info_hash=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r\n"), true, false},
		{"encrypted stream", bytes.Repeat([]byte{0xC3}, 96), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadHandshake(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.eof != (err == io.EOF) {
				t.Errorf("err == io.EOF: %v, want %v", err == io.EOF, tc.eof)
			}
			if tc.protocol != errors.Is(err, ErrProtocol) {
				t.Errorf("ErrProtocol: %v, want %v (%v)", errors.Is(err, ErrProtocol), tc.protocol, err)
			}
			t.Log(err)
		})
	}
}

func TestHandshakeWriteError(t *testing.T) {
	boom := errors.New("broken pipe")
	if err := WriteHandshake(failWriter{boom}, testHandshake()); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestNewPeerID(t *testing.T) {
	a, b := NewPeerID(), NewPeerID()
	if !strings.HasPrefix(string(a[:]), "-SF0001-") || !strings.HasPrefix(string(b[:]), PeerIDPrefix) {
		t.Fatalf("prefix: %q", a)
	}
	if a == b {
		t.Fatal("two peer ids are equal")
	}
}

// TestHandshakeThenDecoder checks that a Decoder over the same reader picks
// up exactly after the handshake.
func TestHandshakeThenDecoder(t *testing.T) {
	in := AppendHandshake(nil, testHandshake())
	in = AppendMessage(in, &Message{Type: HaveAll})
	r := bytes.NewReader(in)
	if _, err := ReadHandshake(r); err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := NewDecoder(r, 0).Decode(&m); err != nil || m.Type != HaveAll {
		t.Fatalf("%v %v", m.String(), err)
	}
}
