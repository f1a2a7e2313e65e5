package picker

import "math/bits"

// bitset is a fixed-size set of piece indexes, one bit per piece.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) get(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) clear(i int)    { b[i>>6] &^= 1 << (uint(i) & 63) }

func (b bitset) count() int {
	c := 0
	for _, w := range b {
		c += bits.OnesCount64(w)
	}
	return c
}

// nextFree returns the first i in [from, to] that is clear in every one of
// blocked and set in has (has == nil means all set), or -1. It tests 64
// pieces per step, which is what keeps window scans cheap even when most of
// a window is already here or in flight.
func nextFree(blocked, has bitset, from, to int) int {
	if from > to {
		return -1
	}
	w := from >> 6
	last := to >> 6
	word := ^blocked[w]
	if has != nil {
		word &= has[w]
	}
	word &= ^uint64(0) << (uint(from) & 63)
	for {
		if w == last {
			word &= ^uint64(0) >> (63 - (uint(to) & 63))
		}
		if word != 0 {
			return w<<6 + bits.TrailingZeros64(word)
		}
		w++
		if w > last {
			return -1
		}
		word = ^blocked[w]
		if has != nil {
			word &= has[w]
		}
	}
}

// andCount returns |a ∩ b ∩ ¬c|.
func andNotCount(a, b, c bitset) int {
	n := 0
	for i := range a {
		n += bits.OnesCount64(a[i] & b[i] &^ c[i])
	}
	return n
}

func bitsTrailing(w uint64) int { return bits.TrailingZeros64(w) }
