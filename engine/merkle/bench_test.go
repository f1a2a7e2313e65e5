package merkle

import (
	"crypto/sha1"
	"crypto/sha256"
	"testing"
	"time"
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

// BenchmarkPieceV1VsV2 alternates the two checks of a 1 MiB piece, SHA-1
// (v1) and DataRoot (v2: SHA-256 of 64 blocks and 63 parents), in one
// loop, so a loaded machine slows both alike: it reports the rate of each
// and v2's rate over v1's.
func BenchmarkPieceV1VsV2(b *testing.B) {
	piece := randomData(1, 1<<20)
	levels := PieceLevels(1 << 20)
	var t1, t2 time.Duration
	for b.Loop() {
		s := time.Now()
		sha1.Sum(piece)
		m := time.Now()
		DataRoot(piece, levels)
		t1, t2 = t1+m.Sub(s), t2+time.Since(m)
	}
	mb := float64(b.N) * float64(len(piece)) / 1e6
	b.ReportMetric(mb/t1.Seconds(), "sha1-MB/s")
	b.ReportMetric(mb/t2.Seconds(), "v2-MB/s")
	b.ReportMetric(t1.Seconds()/t2.Seconds(), "v2/v1-rate")
}
