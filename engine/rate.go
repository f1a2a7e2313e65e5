package engine

import (
	"math"
	"time"
)

// rateMeter is an exponentially weighted moving average of bytes per second,
// updated once per tick from a monotonically growing counter. Owned by the
// torrent loop.
type rateMeter struct {
	last  int64
	value float64
	at    time.Time
}

// rateHalfLife sets how fast a rate forgets: long enough to smooth bursts of
// pipelined blocks, short enough to notice a stalled peer within seconds.
const rateHalfLife = 2 * time.Second

func (r *rateMeter) update(total int64, now time.Time) {
	if r.at.IsZero() {
		r.at, r.last = now, total
		return
	}
	dt := now.Sub(r.at).Seconds()
	if dt <= 0 {
		return
	}
	inst := float64(total-r.last) / dt
	alpha := 1 - math.Exp2(-dt/rateHalfLife.Seconds())
	r.value += alpha * (inst - r.value)
	r.last, r.at = total, now
}
