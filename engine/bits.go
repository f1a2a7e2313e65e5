package engine

import "sync/atomic"

// bitSet is a fixed-size set of piece indexes safe for concurrent use: the
// torrent's have-bits, which readers test without the loop, and the store's
// refused and to-be-rechecked pieces. Wire bitfields (BEP 3 bit order) are
// peer.Bits.
type bitSet []atomic.Uint64

func newBitSet(n int) bitSet { return make(bitSet, (n+63)/64) }

func (b bitSet) get(i int) bool { return b[i/64].Load()&(1<<(uint(i)%64)) != 0 }

// set adds i and reports whether it was new.
func (b bitSet) set(i int) bool {
	bit := uint64(1) << (uint(i) % 64)
	return b[i/64].Or(bit)&bit == 0
}

// clear removes i and reports whether it was there.
func (b bitSet) clear(i int) bool {
	bit := uint64(1) << (uint(i) % 64)
	return b[i/64].And(^bit)&bit != 0
}
