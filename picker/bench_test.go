package picker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchPicker builds a torrent of n pieces (256 KiB, 16 blocks) with
// peers connected: a tenth are seeds, the rest have a random 60%. A reader
// streams from the middle, so every layer of Next is exercised.
func benchPicker(n, peers int, rng *rand.Rand) (*Picker, ReaderID) {
	const pl = 256 << 10
	p := New(Config{NumPieces: n, PieceLength: pl, Background: All, Seed: 7})
	bf := make([]byte, (n+7)/8)
	for id := PeerID(0); id < PeerID(peers); id++ {
		p.AddPeer(id)
		if int(id)%10 == 0 {
			p.PeerHaveAll(id)
		} else {
			for i := range bf {
				bf[i] = 0
			}
			for i := 0; i < n; i++ {
				if rng.IntN(10) < 6 {
					bf[i/8] |= 0x80 >> (i % 8)
				}
			}
			p.PeerBitfield(id, bf)
		}
		p.PeerChoked(id, false)
		p.peer(id).rate, p.peer(id).nRate = float64(1+rng.IntN(8))*(1<<20), 1
		p.peer(id).lat, p.peer(id).nLat = float64(10+rng.IntN(90))/1000, 1
	}
	r := p.AddReader(ReaderOptions{Start: 0, End: int64(n) * pl, Media: true}, t0)
	return p, r
}

// BenchmarkNext measures pick decisions: Next for one peer (up to 4
// blocks), then those blocks arriving (BlockReceived, SetHave when a piece
// completes), round-robin over the peers. Verified pieces are evicted
// again (Lost) at random so the torrent never completes. One op is
// picksPerOp decisions (make bench runs 2 ops); ns/pick is the figure.
func BenchmarkNext(b *testing.B) {
	for _, n := range []int{1_000, 20_000, 200_000} {
		for _, peers := range []int{10, 200} {
			b.Run(fmt.Sprintf("pieces=%d/peers=%d", n, peers), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				p, r := benchPicker(n, peers, rng)
				now := t0
				off := int64(n/2) * p.pieceLen
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N*picksPerOp; i++ {
					now = now.Add(100 * time.Microsecond)
					id := PeerID(i % peers)
					if i%64 == 0 {
						p.ReaderRead(r, off, 128<<10, now)
						p.ReaderDone(r, off, 128<<10)
						off = (off + 128<<10) % p.total
						p.Cancels()
					}
					for _, q := range p.Next(id, now, 4) {
						p.BlockReceived(id, q, now)
						if pa := p.partOf(q.Piece); pa != nil && pa.nRecv == len(pa.blocks) {
							p.SetHave(q.Piece)
							if p.NumHave() > n/2 {
								for k := 0; k < 4; k++ {
									p.Lost(rng.IntN(n))
								}
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*picksPerOp), "ns/pick")
			})
		}
	}
}

const picksPerOp = 16384

// BenchmarkTimeouts measures the periodic timeout scan with full pipelines.
func BenchmarkTimeouts(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	p, _ := benchPicker(20_000, 200, rng)
	for id := PeerID(0); id < 200; id++ {
		p.Next(id, t0, 64)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Timeouts(t0.Add(time.Second))
	}
}

// BenchmarkNextManyReaders: 200,000 pieces, 200 peers, 20 players with
// windows and 1,000 open scanner handles, OnlyWanted.
func BenchmarkNextManyReaders(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	p, _ := benchPicker(200_000, 200, rng)
	p.policy = OnlyWanted
	now := t0
	var players []ReaderID
	var offs []int64
	for i := 0; i < 20; i++ {
		start := int64(i) * 10_000 * p.pieceLen
		players = append(players, p.AddReader(ReaderOptions{Start: start, End: start + 10_000*p.pieceLen}, now))
		offs = append(offs, start)
	}
	for i := 0; i < 1000; i++ {
		start := int64(rng.IntN(190_000)) * p.pieceLen
		id := p.AddReader(ReaderOptions{Start: start, End: start + 40*p.pieceLen, Media: true}, now)
		p.ReaderRead(id, start, 64<<10, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N*picksPerOp; i++ {
		now = now.Add(100 * time.Microsecond)
		if i%32 == 0 {
			k := (i / 32) % len(players)
			p.ReaderRead(players[k], offs[k], 128<<10, now)
			p.ReaderDone(players[k], offs[k], 128<<10)
			offs[k] += 128 << 10
			p.Cancels()
		}
		id := PeerID(i % 200)
		for _, q := range p.Next(id, now, 4) {
			p.BlockReceived(id, q, now)
			if pa := p.partOf(q.Piece); pa != nil && pa.nRecv == len(pa.blocks) {
				p.SetHave(q.Piece)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*picksPerOp), "ns/pick")
}
