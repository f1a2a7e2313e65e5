package peer

import (
	"net"
	"net/netip"
	"testing"
)

// benchDecode decodes an endless stream of msgs; SetBytes counts wire bytes.
func benchDecode(b *testing.B, msgs []byte, perLoop int) {
	d := NewDecoder(&loopReader{data: msgs}, 0)
	var m Message
	b.SetBytes(int64(len(msgs) / perLoop))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Decode(&m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePiece decodes 16 KiB piece messages from a reader that
// copies like a socket does: the figure is wire throughput.
func BenchmarkDecodePiece(b *testing.B) {
	msg := AppendMessage(nil, &Message{Type: Piece, Index: 1, Begin: 2, Block: make([]byte, BlockSize)})
	benchDecode(b, msg, 1)
}

// BenchmarkDecodePiece128K decodes piece messages larger than the read
// buffer, which take the scratch path.
func BenchmarkDecodePiece128K(b *testing.B) {
	msg := AppendMessage(nil, &Message{Type: Piece, Index: 1, Begin: 2, Block: make([]byte, 128<<10)})
	benchDecode(b, msg, 1)
}

// BenchmarkDecodeHave decodes a stream of small messages.
func BenchmarkDecodeHave(b *testing.B) {
	var msgs []byte
	for i := range 1000 {
		msgs = AppendMessage(msgs, &Message{Type: Have, Index: uint32(i)})
	}
	benchDecode(b, msgs, 1000)
}

// BenchmarkDecodePieceTCP decodes piece messages sent over a loopback TCP
// connection, the end-to-end figure that matters for downloads.
func BenchmarkDecodePieceTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	msg := AppendMessage(nil, &Message{Type: Piece, Index: 1, Begin: 2, Block: make([]byte, BlockSize)})
	batch := make([]byte, 0, 64*len(msg))
	for range 64 {
		batch = append(batch, msg...)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := c.Write(batch); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(c, 0)
	var m Message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Decode(&m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	<-done
}

func BenchmarkAppendMessageRequest(b *testing.B) {
	buf := make([]byte, 0, 64)
	m := Message{Type: Request, Index: 12, Begin: 3 * BlockSize, Length: BlockSize}
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

func BenchmarkAppendMessagePiece(b *testing.B) {
	m := Message{Type: Piece, Index: 12, Begin: 3 * BlockSize, Block: make([]byte, BlockSize)}
	buf := make([]byte, 0, BlockSize+PieceHeaderLength)
	b.SetBytes(BlockSize + PieceHeaderLength)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

func BenchmarkAppendPieceHeader(b *testing.B) {
	buf := make([]byte, 0, PieceHeaderLength)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPieceHeader(buf[:0], 12, 3*BlockSize, BlockSize)
	}
}

func BenchmarkParseExtendedHandshake(b *testing.B) {
	payload := []byte(libtorrentExtHandshake)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseExtendedHandshake(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllowedFastSet(b *testing.B) {
	ip := netip.MustParseAddr("80.4.4.200")
	var ih [20]byte
	b.ReportAllocs()
	for b.Loop() {
		AllowedFastSet(ip, ih, 1313, 10)
	}
}
