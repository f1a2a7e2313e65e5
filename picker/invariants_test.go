package picker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// checkInvariants verifies the picker's redundant bookkeeping agrees.
func checkInvariants(p *Picker) error {
	// Availability and interest counts.
	for i := 0; i < p.n; i++ {
		a := 0
		for _, pe := range p.peers {
			if !pe.seed && pe.has.get(i) {
				a++
			}
		}
		if int(p.avail[i]) != a {
			return fmt.Errorf("piece %d avail %d, want %d", i, p.avail[i], a)
		}
		if k := p.rar.key[i]; k != p.rarKey(i) {
			return fmt.Errorf("piece %d rarity key %d, want %d", i, k, p.rarKey(i))
		}
	}
	for k := 0; k <= maxRarKey; k++ {
		for j := p.rar.start[k]; j < p.rar.start[k+1]; j++ {
			if got := p.rar.key[p.rar.order[j]]; int(got) != k {
				return fmt.Errorf("order[%d] = piece %d with key %d in bucket %d", j, p.rar.order[j], got, k)
			}
			if p.rar.pos[p.rar.order[j]] != j {
				return fmt.Errorf("pos of piece %d wrong", p.rar.order[j])
			}
		}
	}
	wm := 0
	for i := 0; i < p.n; i++ {
		if p.wanted.get(i) && !p.have.get(i) {
			wm++
		}
	}
	if wm != p.wantedMissing {
		return fmt.Errorf("wantedMissing %d, want %d", p.wantedMissing, wm)
	}
	// Outstanding requests, both directions.
	held := map[PeerID]int{}
	for idx, pa := range p.parts {
		if pa.partPos != idx || p.pidx[pa.piece] != int32(idx) {
			return fmt.Errorf("part %d index broken", pa.piece)
		}
		if p.have.get(pa.piece) {
			return fmt.Errorf("part %d for a piece we have", pa.piece)
		}
		unreq, recv := 0, 0
		for b := range pa.blocks {
			bl := &pa.blocks[b]
			if bl.recv {
				recv++
				if len(bl.holders) > 0 {
					return fmt.Errorf("piece %d block %d received but held by %v", pa.piece, b, bl.holders)
				}
			} else if len(bl.holders) == 0 {
				unreq++
				if b < pa.cursor {
					return fmt.Errorf("piece %d block %d unrequested below cursor %d", pa.piece, b, pa.cursor)
				}
			}
			for _, h := range bl.holders {
				pe := p.peer(h)
				if pe == nil {
					return fmt.Errorf("piece %d block %d held by gone peer %d", pa.piece, b, h)
				}
				if _, ok := pe.out[p.key(pa.piece, b)]; !ok {
					return fmt.Errorf("piece %d block %d held by %d without an out entry", pa.piece, b, h)
				}
				held[h]++
			}
		}
		if unreq != pa.nUnreq || recv != pa.nRecv {
			return fmt.Errorf("piece %d unreq %d/%d recv %d/%d", pa.piece, pa.nUnreq, unreq, pa.nRecv, recv)
		}
		if (unreq > 0) != (pa.openPos >= 0) || (unreq > 0) == p.busy.get(pa.piece) {
			return fmt.Errorf("piece %d open/busy out of step (unreq %d)", pa.piece, unreq)
		}
	}
	for i := 0; i < p.n; i++ {
		if p.pidx[i] < 0 && p.busy.get(i) != p.have.get(i) {
			return fmt.Errorf("piece %d busy without part", i)
		}
	}
	var counted int64
	for _, pe := range p.peers {
		if pe.total != nil {
			counted += pe.outBytes
		}
	}
	if counted != p.OutstandingBytes() {
		return fmt.Errorf("OutstandingBytes %d, want %d (the counted peers' outBytes)", p.OutstandingBytes(), counted)
	}
	for _, pe := range p.peers {
		var ob, cb int64
		for k, o := range pe.out {
			ob += o.length
			if !o.hot {
				cb += o.length
			}
			piece, b := p.unkey(k)
			pa := p.partOf(piece)
			if pa == nil || !holds(&pa.blocks[b], pe.id) {
				return fmt.Errorf("peer %d out %v not held", pe.id, p.blockReq(piece, b))
			}
		}
		if ob != pe.outBytes || cb != pe.coldBytes || held[pe.id] != len(pe.out) {
			return fmt.Errorf("peer %d outBytes %d/%d cold %d/%d held %d/%d", pe.id, pe.outBytes, ob, pe.coldBytes, cb, held[pe.id], len(pe.out))
		}
		if !pe.seed {
			if want := andNotCount(pe.has, p.wanted, p.have); want != pe.wantedMissing {
				return fmt.Errorf("peer %d wantedMissing %d, want %d", pe.id, pe.wantedMissing, want)
			}
		}
	}
	return nil
}

// TestRandomOperations drives pickers with random but plausible engine
// behaviour and checks the invariants after every step, and that Next
// never asks for a block already here or already asked of that peer.
func TestRandomOperations(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			pol := Policy(seed % 2)
			n := 40 + rng.IntN(40)
			if seed%3 == 0 {
				n = 200 + rng.IntN(200) // dense peers take the rarity-order scan
			}
			pl := []int64{16 << 10, 48 << 10, 64 << 10}[seed%3]
			p := New(Config{NumPieces: n, PieceLength: pl, TotalLength: int64(n-1)*pl + 5000, Background: pol, Seed: seed})
			type sent struct {
				id PeerID
				r  Request
			}
			var inflight []sent
			now := t0
			nextPeer := PeerID(1)
			var live []PeerID
			var readers []ReaderID
			var parked []int
			for step := 0; step < 3000; step++ {
				now = now.Add(time.Duration(rng.IntN(30)) * time.Millisecond)
				switch op := rng.IntN(100); {
				case op < 5 || len(live) == 0:
					id := nextPeer
					nextPeer++
					p.AddPeer(id)
					switch rng.IntN(3) {
					case 0:
						p.PeerHaveAll(id)
					case 1:
						bf := make([]byte, (n+7)/8)
						for i := range bf {
							bf[i] = byte(rng.Uint32())
						}
						p.PeerBitfield(id, bf)
					}
					p.PeerChoked(id, rng.IntN(4) == 0)
					if rng.IntN(5) == 0 {
						p.Uncount(id) // a web seed: out of OutstandingBytes
					}
					live = append(live, id)
				case op < 8:
					i := rng.IntN(len(live))
					p.RemovePeer(live[i])
					live = append(live[:i], live[i+1:]...)
				case op < 12:
					p.PeerHave(live[rng.IntN(len(live))], rng.IntN(n))
				case op < 14:
					id := live[rng.IntN(len(live))]
					p.PeerChoked(id, rng.IntN(2) == 0)
					p.PeerAllowedFast(id, rng.IntN(n))
					if rng.IntN(8) == 0 {
						p.Uncount(id) // with requests outstanding, perhaps
					}
				case op < 45:
					id := live[rng.IntN(len(live))]
					max := rng.IntN(12)
					before := p.Outstanding(id)
					got := p.Next(id, now, max)
					withdrawn := 0 // preemption inside Next
					for _, c := range p.cancels {
						if c.Peer == id {
							withdrawn++
						}
					}
					if len(got) > max || p.Outstanding(id) != before+len(got)-withdrawn {
						t.Fatalf("step %d: Next(%d) gave %d of max %d, outstanding %d -> %d", step, max, len(got), max, before, p.Outstanding(id))
					}
					seen := map[Request]bool{}
					for _, r := range got {
						if seen[r] || p.Have(r.Piece) {
							t.Fatalf("step %d: bad request %v", step, r)
						}
						seen[r] = true
						inflight = append(inflight, sent{id, r})
					}
				case op < 80 && len(inflight) > 0:
					i := rng.IntN(len(inflight))
					s := inflight[i]
					inflight = append(inflight[:i], inflight[i+1:]...)
					if rng.IntN(20) == 0 {
						p.RequestRejected(s.id, s.r)
						break
					}
					p.BlockReceived(s.id, s.r, now)
					if pa := p.partOf(s.r.Piece); pa != nil && pa.nRecv == len(pa.blocks) {
						switch rng.IntN(10) {
						case 0:
							p.PieceFailed(s.r.Piece)
							if rng.IntN(2) == 0 {
								p.Solo(s.r.Piece) // sent by several
							}
						case 1:
							// The store refused it: parked until retried.
							parked = append(parked, s.r.Piece)
						default:
							p.SetHave(s.r.Piece)
						}
					}
				case op < 82:
					// A web seed's whole verified piece, asked for
					// in part, wholly or not at all.
					piece := rng.IntN(n)
					if _, ok := p.PieceArrived(live[rng.IntN(len(live))], piece, now); ok {
						if pa := p.partOf(piece); pa == nil || pa.nRecv != len(pa.blocks) {
							t.Fatalf("step %d: piece %d arrived but not all its blocks are received", step, piece)
						}
						if rng.IntN(10) == 0 {
							p.PieceFailed(piece)
						} else {
							p.SetHave(piece)
						}
					}
				case op < 84:
					p.Timeouts(now)
				case op < 85:
					p.Lost(rng.IntN(n))
				case op < 86:
					p.SetBackground(Policy(rng.IntN(2)))
					if len(parked) > 0 {
						p.PieceFailed(parked[0])
						parked = parked[1:]
					}
				case op < 87:
					a, b := rng.Int64N(p.total), rng.Int64N(p.total)
					p.SetWanted(min(a, b), max(a, b)+1, rng.IntN(2) == 0)
				case op < 89:
					readers = append(readers, p.AddReader(ReaderOptions{Start: 0, End: p.total, Media: rng.IntN(2) == 0}, now))
				case op < 98 && len(readers) > 0:
					r := readers[rng.IntN(len(readers))]
					off := rng.Int64N(p.total)
					p.ReaderRead(r, off, 1+rng.IntN(200<<10), now)
					if rng.IntN(2) == 0 {
						p.ReaderDone(r, off, 0)
					}
				case len(readers) > 0:
					i := rng.IntN(len(readers))
					p.RemoveReader(readers[i])
					readers = append(readers[:i], readers[i+1:]...)
				}
				p.Cancels()
				if len(live) > 0 {
					p.Interesting(live[0])
				}
				if err := checkInvariants(p); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
		})
	}
}
