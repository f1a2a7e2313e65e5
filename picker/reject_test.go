package picker

import (
	"slices"
	"testing"
	"time"
)

// TestRejectedNotAskedAgainAtOnce: a peer that claims every piece but
// refuses (REJECT) most blocks it is asked for must not get the same
// blocks back at once: the engine asks it again on every REJECT, and the
// refused blocks went round between us and it for ever while an honest
// seeder sat idle (TestV2BadBlockIdentified stalled so). Refused blocks go
// to the other peer; after rejectBackoff the refuser may be asked again.
func TestRejectedNotAskedAgainAtOnce(t *testing.T) {
	p := New(smallCfg())
	seed(p, 1) // refuses every block but the second of each piece
	seed(p, 2) // honest, asked once a round
	train(p, 1, 50<<20, time.Millisecond)
	train(p, 2, 1<<20, 50*time.Millisecond)
	now := t0
	var pending []Request // asked of peer 1, not answered yet
	for round := 0; round < 100 && p.NumHave() < 8; round++ {
		now = now.Add(100 * time.Millisecond)
		pending = append(pending, p.Next(1, now, 64)...)
		for range 20 { // peer 1 answers at once; we ask it again at once
			now = now.Add(time.Millisecond)
			reqs := pending
			pending = nil
			for _, r := range reqs {
				if r.Begin == 16<<10 {
					fetch(t, p, 1, []Request{r}, now)
				} else {
					p.RequestRejected(1, r)
				}
				pending = append(pending, p.Next(1, now, 64)...)
			}
		}
		fetch(t, p, 2, p.Next(2, now, 64), now.Add(time.Millisecond))
	}
	if p.NumHave() != 8 {
		t.Fatalf("have %d of 8 pieces: the blocks peer 1 refuses stay with it", p.NumHave())
	}

	// After the back-off the refuser is asked again.
	p = New(smallCfg())
	seed(p, 1)
	reqs := p.Next(1, t0, 1)
	p.RequestRejected(1, reqs[0])
	if got := p.Next(1, at(time.Second), 1); len(got) != 1 || got[0] == reqs[0] {
		t.Fatalf("refused block %+v asked again at once: %v", reqs[0], got)
	}
	if got := p.Next(1, at(rejectBackoff+2*time.Second), 1); !slices.Contains(got, reqs[0]) {
		t.Fatalf("refused block %+v not asked again after the back-off: %v", reqs[0], got)
	}
}
