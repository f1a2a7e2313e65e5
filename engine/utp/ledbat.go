package utp

import "time"

// LEDBAT parameters (BEP 29; libtorrent's defaults where the BEP leaves
// a choice).
const (
	targetDelayUS = 100_000 // 100 ms of queuing delay is the target
	// gainBytes is the most the window grows per round trip when the
	// measured delay is zero (libtorrent's utp_gain_factor).
	gainBytes = 3000
	// baseBuckets × baseBucketLen is the window over which the base
	// (propagation) delay is the minimum of the one-way delay samples.
	baseBuckets   = 12
	baseBucketLen = 10 * time.Second
	// recentSamples of the one-way delay are kept; the smallest counts,
	// which filters out a single delayed ACK.
	recentSamples = 3
)

// ledbat is one connection's delay-based congestion controller. Its
// owner (the connection, under its mutex) feeds it delay samples and
// ACKed byte counts and reads cwnd.
type ledbat struct {
	cwnd      int // congestion window, bytes
	slowStart bool
	ssthresh  int

	base      [baseBuckets]uint32 // per-bucket minimum delay sample
	baseN     int                 // buckets filled
	baseIdx   int
	baseStart time.Time // when bucket baseIdx began
	recent    [recentSamples]uint32
	recentN   int
	recentIdx int
	ourDelay  uint32 // last queuing delay estimate, µs
}

func newLedbat(mss int) ledbat {
	return ledbat{cwnd: 2 * mss, slowStart: true, ssthresh: 1 << 30}
}

// less32 compares delay samples that may wrap (they are differences of
// two unrelated 32-bit microsecond clocks).
func less32(a, b uint32) bool { return int32(a-b) < 0 }

// sample records a one-way delay sample (the peer's
// timestamp_difference) and returns the queuing delay above the base.
func (l *ledbat) sample(s uint32, now time.Time) uint32 {
	if l.baseN == 0 {
		l.base[0], l.baseN, l.baseIdx, l.baseStart = s, 1, 0, now
	} else {
		if now.Sub(l.baseStart) >= baseBucketLen {
			l.baseIdx = (l.baseIdx + 1) % baseBuckets
			l.base[l.baseIdx] = s
			l.baseStart = now
			l.baseN = min(l.baseN+1, baseBuckets)
		} else if less32(s, l.base[l.baseIdx]) {
			l.base[l.baseIdx] = s
		}
	}
	base := l.base[l.baseIdx]
	for i := range l.baseN {
		if less32(l.base[i], base) {
			base = l.base[i]
		}
	}
	d := s - base
	if int32(d) < 0 {
		d = 0
	}
	l.recent[l.recentIdx] = d
	l.recentIdx = (l.recentIdx + 1) % recentSamples
	l.recentN = min(l.recentN+1, recentSamples)
	m := l.recent[0]
	for i := 1; i < l.recentN; i++ {
		m = min(m, l.recent[i])
	}
	l.ourDelay = m
	return m
}

// onAck grows or shrinks the window for acked bytes, given the current
// queuing delay (µs) and whether the window limited sending (a window
// that was not full is not grown: an application-limited flow would
// inflate it without bound). maxCwnd caps it.
func (l *ledbat) onAck(acked int, delayUS uint32, full bool, mss, maxCwnd int) {
	if acked <= 0 {
		return
	}
	offTarget := int64(targetDelayUS) - int64(min(delayUS, 4*targetDelayUS))
	if l.slowStart {
		if offTarget > targetDelayUS/2 && l.cwnd < l.ssthresh {
			if full {
				l.cwnd += acked
			}
			l.cwnd = min(l.cwnd, maxCwnd)
			return
		}
		l.slowStart = false
	}
	if offTarget < 0 {
		// Over the target, shrink in proportion to the window, as
		// LEDBAT++ does (draft-irtf-iccrg-ledbat-plus-plus, 4.2):
		// cwnd -= acked × (delay/target - 1), at most acked/2 (half
		// the window per round trip). BEP 29's linear decrease, at most
		// 3 × 3000 bytes per round trip, takes tens of seconds to give
		// way to a TCP flow that fills the queue (TestLEDBATYieldsToTCP:
		// TCP got 60% of the link, not 85%).
		dec := int64(acked) * min(-offTarget, targetDelayUS/2) / targetDelayUS
		l.cwnd = int(max(int64(mss), int64(l.cwnd)-dec))
		return
	}
	// cwnd += gain × off_target/target × acked/cwnd
	gain := int64(gainBytes) * offTarget * int64(acked) / (int64(targetDelayUS) * int64(max(l.cwnd, 1)))
	if gain > 0 && !full {
		gain = 0
	}
	l.cwnd = int(max(int64(mss), min(int64(maxCwnd), int64(l.cwnd)+gain)))
}

// onLoss halves the window (once per window of data: the caller checks).
func (l *ledbat) onLoss(mss int) {
	l.cwnd = max(mss, l.cwnd/2)
	l.ssthresh = l.cwnd
	l.slowStart = false
}

// onTimeout shrinks the window to one packet.
func (l *ledbat) onTimeout(mss int) {
	l.ssthresh = max(mss, l.cwnd/2)
	l.cwnd = mss
	l.slowStart = true
}

// RTO bounds (BEP 29: timeout = max(rtt + 4 rtt_var, 500 ms)).
const (
	minRTO     = 500 * time.Millisecond
	initialRTO = 1000 * time.Millisecond
	maxRTO     = 30 * time.Second
)

// rttEstimator is the smoothed round-trip time and its variance.
type rttEstimator struct {
	rtt, rttVar time.Duration
	has         bool
}

func (r *rttEstimator) add(s time.Duration) {
	if !r.has {
		r.rtt, r.rttVar, r.has = s, s/2, true
		return
	}
	d := r.rtt - s
	if d < 0 {
		d = -d
	}
	r.rttVar += (d - r.rttVar) / 4
	r.rtt += (s - r.rtt) / 8
}

func (r *rttEstimator) rto() time.Duration {
	if !r.has {
		return initialRTO
	}
	return min(maxRTO, max(minRTO, r.rtt+4*r.rttVar))
}
