package picker

// maxRarKey is the highest rarity bucket; availability at or above
// maxRarKey-1 is treated as equally common.
const maxRarKey = 255

// rarity keeps every piece in an array ordered by a small key (its
// bucket), libtorrent style: changing a key by d costs d swaps, so a HAVE
// costs O(1) and a piece leaving the candidates costs O(its availability).
// Bucket 0 holds pieces the background never starts (here, unwanted or
// already started); bucket k>0 holds candidates seen by k-1 non-seed peers.
// Within a bucket the order is a seeded shuffle, the random tie-break of
// rarest-first.
type rarity struct {
	order []int32 // pieces by key
	pos   []int32 // piece -> index in order
	key   []uint8
	start [maxRarKey + 2]int32 // start[k] = index of the first piece with key >= k
	rs    uint64               // seeded state for the tie-break of pieces that change bucket
}

func (r *rarity) init(n int, seed uint64) {
	r.order = make([]int32, n)
	r.pos = make([]int32, n)
	r.key = make([]uint8, n)
	for i := range r.order {
		r.order[i] = int32(i)
	}
	s := seed ^ 0x9e3779b97f4a7c15
	for i := n - 1; i > 0; i-- {
		s = splitmix(s)
		j := int(s % uint64(i+1))
		r.order[i], r.order[j] = r.order[j], r.order[i]
	}
	r.rs = s
	for i, pc := range r.order {
		r.pos[pc] = int32(i)
		r.key[pc] = 1
	}
	r.start[0], r.start[1] = 0, 0
	for k := 2; k < len(r.start); k++ {
		r.start[k] = int32(n)
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rarity) swap(i, j int32) {
	a, b := r.order[i], r.order[j]
	r.order[i], r.order[j] = b, a
	r.pos[a], r.pos[b] = j, i
}

// setKey moves piece to bucket k.
func (r *rarity) setKey(piece int, k uint8) {
	for r.key[piece] < k {
		c := r.key[piece]
		last := r.start[c+1] - 1
		r.swap(r.pos[piece], last)
		r.start[c+1]--
		r.key[piece] = c + 1
	}
	for r.key[piece] > k {
		c := r.key[piece]
		first := r.start[c]
		r.swap(r.pos[piece], first)
		r.start[c]++
		r.key[piece] = c - 1
	}
	// A piece enters its bucket at an edge; left there, pieces announced
	// in the same order (a fleet's hosts all hear one peer's HAVEs in the
	// order it sends them) would line up alike in every client. A seeded
	// swap within the bucket keeps the tie-break random.
	if k > 0 && k < maxRarKey {
		lo, hi := r.start[k], r.start[k+1]
		if hi-lo > 1 {
			r.rs = splitmix(r.rs)
			r.swap(r.pos[piece], lo+int32(r.rs%uint64(hi-lo)))
		}
	}
}
