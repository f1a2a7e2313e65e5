package merkle

import (
	"math/bits"
)

// MaxRequestLength is the most nodes one request may ask for. libtorrent
// rejects more (8192 leaves cover a 128 MiB piece); BEP 52 asks requesters
// to stay at or under 512.
const MaxRequestLength = 8192

// Request names nodes of a file's tree as the hash request message does
// (BEP 52): Length nodes of the layer at height Base, from Index, and
// enough uncle hashes to reach ProofLayers layers above Base.
type Request struct {
	Base        int // height of the requested layer: 0 for leaves
	Index       int // first node requested in that layer
	Length      int // nodes requested: a power of two
	ProofLayers int // layers above Base the proof must reach, at least
}

// Uncles returns how many uncle hashes answer r: one per height from
// Base+log2(Length) to Base+ProofLayers, since the siblings below that lie
// inside the requested range (BEP 52: "the first log2(length)-1 proof
// layers are omitted"). It is 0 for a malformed r.
func (r Request) Uncles() int {
	if r.Length <= 0 || r.ProofLayers < 0 {
		return 0
	}
	return max(0, r.ProofLayers-Levels(int64(r.Length))+1)
}

// Check reports whether r is a request a file of fileLength bytes can
// answer: Length a power of two of at most MaxRequestLength, Index a
// multiple of it, the range inside the (padded) layer, the layer below the
// root and the proof reaching at most the root. It is the check a serving
// side makes before answering (libtorrent disconnects for none of these; a
// hash reject is the answer).
func (r Request) Check(fileLength int64) error {
	levels := FileLevels(fileLength)
	switch {
	case r.Length <= 0 || r.Length > MaxRequestLength || r.Length&(r.Length-1) != 0:
		return invalidf("request length %d is not a power of two from 1 to %d", r.Length, MaxRequestLength)
	case r.Index < 0 || r.Index%r.Length != 0:
		return invalidf("request index %d is not a multiple of its length %d", r.Index, r.Length)
	case r.Base < 0 || r.Base >= levels:
		return invalidf("request base layer %d is not below the root of a tree %d layers high", r.Base, levels)
	case int64(r.Index)+int64(r.Length) > int64(1)<<(levels-r.Base):
		return invalidf("request for nodes %d..%d of a layer of %d", r.Index, r.Index+r.Length-1, int64(1)<<(levels-r.Base))
	case r.ProofLayers < 0 || r.ProofLayers >= levels-r.Base:
		return invalidf("request for %d proof layers above layer %d of a tree %d layers high", r.ProofLayers, r.Base, levels)
	}
	return nil
}

// Top returns the height of the node a proof for r leads to:
// Base+ProofLayers+1, or the top of the requested range if that is higher.
func (r Request) Top() int {
	return r.Base + max(r.ProofLayers+1, Levels(int64(r.Length)))
}

// Proof is the answer to a Request: the requested nodes and the uncle
// hashes, bottom up, as a hashes message carries them.
type Proof struct {
	Request
	Nodes  []Hash
	Uncles []Hash
}

// Anchor folds the proof into the one ancestor it proves, at height
// r.Top(): the receiver compares it with a node it trusts (the root, or a
// checked piece-layer node). Only the sizes are checked here: every other
// mistake in the proof shows as a wrong anchor.
func (p *Proof) Anchor() (node Hash, height, index int, err error) {
	r := p.Request
	if r.Length <= 0 || r.Length > MaxRequestLength || r.Length&(r.Length-1) != 0 || r.Index < 0 || r.Index%r.Length != 0 ||
		r.Base < 0 || r.Base > MaxLevels || r.ProofLayers < 0 || r.Base+r.ProofLayers >= MaxLevels {
		return Hash{}, 0, 0, invalidf("malformed request %+v", r)
	}
	if len(p.Nodes) != r.Length || len(p.Uncles) != r.Uncles() {
		return Hash{}, 0, 0, invalidf("proof of %d nodes and %d uncles, want %d and %d", len(p.Nodes), len(p.Uncles), r.Length, r.Uncles())
	}
	var b builder
	for _, n := range p.Nodes {
		b.push(n, r.Base)
	}
	levels := bits.TrailingZeros(uint(r.Length))
	node = b.root(r.Base + levels)
	index = r.Index >> levels
	height = r.Base + levels
	for _, u := range p.Uncles {
		if index%2 == 0 {
			node = Parent(node, u)
		} else {
			node = Parent(u, node)
		}
		index /= 2
		height++
	}
	return node, height, index, nil
}

// Tree holds a file's tree from one layer up to its root: built from the
// piece layer it answers any request at or above it, and with the leaves of
// one piece (Answer's below) requests for that piece's blocks too. It is
// immutable and safe for concurrent use.
type Tree struct {
	length int64
	base   int      // height of layers[0]
	layers [][]Hash // layers[k]: the real nodes at height base+k; the last holds the root
}

// NewTree builds the tree of a file of fileLength bytes from the whole layer
// at the given height: its ceil(blocks / 2^height) real nodes, such as the
// file's leaves, or its piece layer (the pieces root alone for a file of
// one piece or less). It checks the layer's size, not its hashes: compare
// Root with the trusted root.
func NewTree(fileLength int64, height int, layer []Hash) (*Tree, error) {
	levels := FileLevels(fileLength)
	if fileLength <= 0 {
		return nil, invalidf("a tree needs a file of at least one byte, not %d", fileLength)
	}
	if height < 0 || height > levels {
		return nil, invalidf("layer %d of a tree %d layers high", height, levels)
	}
	want := (NumBlocks(fileLength)-1)>>height + 1
	if int64(len(layer)) != want {
		return nil, invalidf("layer %d holds %d nodes, want %d", height, len(layer), want)
	}
	return &Tree{length: fileLength, base: height, layers: layersUp(append([]Hash(nil), layer...), height, levels)}, nil
}

// layersUp returns layer (at height from) and every layer above it up to
// height to, each holding only the nodes over real data.
func layersUp(layer []Hash, from, to int) [][]Hash {
	layers := [][]Hash{layer}
	for h := from; h < to; h++ {
		up := make([]Hash, (len(layer)+1)/2)
		for i := range up {
			right := PadHash(h)
			if 2*i+1 < len(layer) {
				right = layer[2*i+1]
			}
			up[i] = Parent(layer[2*i], right)
		}
		layers = append(layers, up)
		layer = up
	}
	return layers
}

// Root returns the pieces root the tree was built to.
func (t *Tree) Root() Hash { return t.layers[len(t.layers)-1][0] }

// Base returns the height of the lowest layer the tree holds.
func (t *Tree) Base() int { return t.base }

// Layer returns the real nodes at the given height (nil if the tree does
// not hold it). The slice is shared: do not modify it.
func (t *Tree) Layer(height int) []Hash {
	if height < t.base || height-t.base >= len(t.layers) {
		return nil
	}
	return t.layers[height-t.base]
}

// node returns the node at (height, index) of the padded tree; ok is false
// when the tree does not hold that height or the index lies beyond it.
func (t *Tree) node(height, index int) (Hash, bool) {
	l := t.Layer(height)
	if l == nil || index < 0 || int64(index) >= int64(1)<<(len(t.layers)-1-(height-t.base)) {
		return Hash{}, false
	}
	if index < len(l) {
		return l[index], true
	}
	return PadHash(height), true
}

// Answer returns the proof for r, which must pass r.Check. Requests at or
// above the tree's base layer are answered from the tree alone. A request
// below it (blocks, when the tree starts at the piece layer) must fit under
// one node of the base layer, and below must hold the real nodes at height
// r.Base under that node: the leaves of that one piece, hashed from the
// data. They are checked against the tree first, so bad data on our side
// is an error, never a wrong answer.
func (t *Tree) Answer(r Request, below []Hash) (*Proof, error) {
	if err := r.Check(t.length); err != nil {
		return nil, err
	}
	p := &Proof{Request: r}
	var sub [][]Hash // the layers under one base node, for a request below the base
	subIndex := 0
	if r.Base < t.base {
		span := t.base - r.Base
		if r.Length > 1<<span {
			return nil, invalidf("request of %d nodes at layer %d spans more than one node of layer %d", r.Length, r.Base, t.base)
		}
		subIndex = r.Index >> span
		first := int64(subIndex) << span
		nodes := (NumBlocks(t.length)-1)>>r.Base + 1     // real nodes at height r.Base
		want := max(0, min(int64(1)<<span, nodes-first)) // 0: a node past the end of the file
		if int64(len(below)) != want {
			return nil, invalidf("%d nodes given under node %d of layer %d, want %d", len(below), subIndex, t.base, want)
		}
		sub = layersUp(below, r.Base, t.base)
		if top := sub[len(sub)-1]; len(top) > 0 {
			if got, _ := t.node(t.base, subIndex); top[0] != got {
				return nil, invalidf("the nodes given under node %d of layer %d do not hash to it", subIndex, t.base)
			}
		}
	}
	get := func(height, index int) Hash {
		if height < t.base {
			span := t.base - height
			local := index - subIndex<<span
			l := sub[height-r.Base]
			if local < len(l) {
				return l[local]
			}
			return PadHash(height)
		}
		h, _ := t.node(height, index)
		return h
	}
	p.Nodes = make([]Hash, r.Length)
	for i := range p.Nodes {
		p.Nodes[i] = get(r.Base, r.Index+i)
	}
	levels := bits.TrailingZeros(uint(r.Length))
	p.Uncles = make([]Hash, 0, r.Uncles())
	for h := r.Base + levels; h <= r.Base+r.ProofLayers; h++ {
		p.Uncles = append(p.Uncles, get(h, (r.Index>>(h-r.Base))^1))
	}
	return p, nil
}
