package merkle

import (
	"crypto/sha1"
	"crypto/sha256"
	"testing"
)

// The hashing rates behind v1 and v2 verification, per core, on 1 MiB
// pieces: v1 is one SHA-1 over the piece; v2 hashes each 16 KiB block with
// SHA-256 and then 63 parent nodes (DataRoot).
func BenchmarkPieceSHA1(b *testing.B) {
	piece := randomData(1, 1<<20)
	b.SetBytes(int64(len(piece)))
	for b.Loop() {
		sha1.Sum(piece)
	}
}

func BenchmarkPieceSHA256(b *testing.B) {
	piece := randomData(1, 1<<20)
	b.SetBytes(int64(len(piece)))
	for b.Loop() {
		sha256.Sum256(piece)
	}
}

func BenchmarkPieceDataRoot(b *testing.B) {
	piece := randomData(1, 1<<20)
	b.SetBytes(int64(len(piece)))
	b.ReportAllocs()
	for b.Loop() {
		DataRoot(piece, PieceLevels(1<<20))
	}
}
