package merkle

import (
	"errors"
	"testing"
)

func TestRequestUnclesAndTop(t *testing.T) {
	tests := []struct {
		r      Request
		uncles int
		top    int
	}{
		// libtorrent's block request for a piece of 4 blocks, proof to the
		// piece layer's parent: the 4 leaves give the piece node (2 layers
		// up), uncles start there.
		{Request{Base: 0, Index: 8, Length: 4, ProofLayers: 2}, 1, 3},
		{Request{Base: 0, Index: 8, Length: 4, ProofLayers: 1}, 0, 2},
		{Request{Base: 0, Index: 8, Length: 4, ProofLayers: 0}, 0, 2},
		{Request{Base: 0, Index: 3, Length: 1, ProofLayers: 0}, 1, 1},
		{Request{Base: 0, Index: 2, Length: 2, ProofLayers: 3}, 3, 4},
		{Request{Base: 2, Index: 0, Length: 512, ProofLayers: 12}, 4, 15},
		{Request{Base: 2, Index: 0, Length: 0, ProofLayers: 12}, 0, 15},
	}
	for _, tc := range tests {
		if got := tc.r.Uncles(); got != tc.uncles {
			t.Errorf("%+v: Uncles() = %d, want %d", tc.r, got, tc.uncles)
		}
		if got := tc.r.Top(); tc.r.Length > 0 && got != tc.top {
			t.Errorf("%+v: Top() = %d, want %d", tc.r, got, tc.top)
		}
	}
}

func TestRequestCheck(t *testing.T) {
	const length = 10 * BlockSize // 10 blocks: 16 leaves, 4 levels
	tests := []struct {
		name string
		r    Request
		ok   bool
	}{
		{"leaves pair", Request{0, 0, 2, 3}, true},
		{"one leaf", Request{0, 9, 1, 0}, true},
		{"all leaves", Request{0, 0, 16, 3}, true},
		{"pad leaves", Request{0, 14, 2, 3}, true},
		{"layer 3", Request{3, 0, 2, 0}, true},
		{"length 0", Request{0, 0, 0, 0}, false},
		{"length 3", Request{0, 0, 3, 0}, false},
		{"length too big", Request{0, 0, MaxRequestLength * 2, 0}, false},
		{"index not multiple", Request{0, 1, 2, 0}, false},
		{"negative index", Request{0, -2, 2, 0}, false},
		{"past the layer", Request{0, 16, 2, 0}, false},
		{"straddles the end", Request{1, 4, 8, 0}, false},
		{"root layer", Request{4, 0, 1, 0}, false},
		{"negative base", Request{-1, 0, 2, 0}, false},
		{"proof past the root", Request{0, 0, 2, 4}, false},
		{"negative proof", Request{0, 0, 2, -1}, false},
	}
	for _, tc := range tests {
		err := tc.r.Check(length)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check(%+v) = %v, want ok=%v", tc.name, tc.r, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tc.name, err)
		}
	}
	if err := (Request{0, 0, 1, 0}).Check(BlockSize); err == nil {
		t.Error("a one-block file (its root is all there is) accepted a request")
	}
}

// TestTreeAnswers asks a tree built from the piece layer every valid request
// of a file, checks each answer folds to the node of the naive tree at its
// Top, and that a tampered answer does not.
func TestTreeAnswers(t *testing.T) {
	const pl = 64 << 10 // piece layer at height 2
	for _, size := range []int{1, BlockSize + 1, pl, pl + 1, 5*pl + 3, 8 * pl} {
		data := randomData(uint64(size), size)
		naive := naiveTree(data)
		levels := len(naive) - 1
		nl := PieceNodeLevels(int64(size), pl)
		var nodes []Hash
		for off := 0; off < size; off += pl {
			nodes = append(nodes, DataRoot(data[off:min(off+pl, size)], nl))
		}
		tree, err := NewTree(int64(size), nl, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if tree.Root() != naive[levels][0] {
			t.Fatalf("size %d: tree root differs", size)
		}
		checked := 0
		for base := 0; base < levels; base++ {
			width := 1 << (levels - base)
			for length := 1; length <= width; length *= 2 {
				for index := 0; index < width; index += length {
					for proof := 0; proof < levels-base; proof++ {
						r := Request{base, index, length, proof}
						var below []Hash
						if base < nl {
							span := nl - base
							if length > 1<<span {
								if _, err := tree.Answer(r, nil); err == nil {
									t.Fatalf("size %d: %+v spans pieces but was answered", size, r)
								}
								continue
							}
							first := (index >> span) << span
							for i := first; i < first+1<<span && i < len(naive[base]); i++ {
								if int64(i)<<base < NumBlocks(int64(size)) {
									below = append(below, naive[base][i])
								}
							}
						}
						p, err := tree.Answer(r, below)
						if err != nil {
							t.Fatalf("size %d: Answer(%+v): %v", size, r, err)
						}
						node, h, idx, err := p.Anchor()
						if err != nil {
							t.Fatalf("size %d: Anchor(%+v): %v", size, r, err)
						}
						if h != r.Top() || node != naive[h][idx] || idx != index>>(h-base) {
							t.Fatalf("size %d: %+v anchors at (%d, %d), not the naive node", size, r, h, idx)
						}
						for i, n := range p.Nodes {
							if n != naive[base][index+i] {
								t.Fatalf("size %d: %+v node %d differs", size, r, i)
							}
						}
						// A lie anywhere moves the anchor.
						if len(p.Uncles) > 0 {
							p.Uncles[len(p.Uncles)-1][0] ^= 1
						} else {
							p.Nodes[0][0] ^= 1
						}
						if bad, _, _, _ := p.Anchor(); bad == node {
							t.Fatalf("size %d: tampered %+v still anchors", size, r)
						}
						checked++
					}
				}
			}
		}
		if levels > 0 && checked == 0 {
			t.Fatalf("size %d: no request checked", size)
		}
	}
}

func TestTreeErrors(t *testing.T) {
	const pl = 64 << 10
	size := 3*pl + 1
	data := randomData(1, size)
	naive := naiveTree(data)
	var nodes []Hash
	for off := 0; off < size; off += pl {
		nodes = append(nodes, DataRoot(data[off:min(off+pl, size)], 2))
	}
	if _, err := NewTree(int64(size), 2, nodes[:3]); !errors.Is(err, ErrInvalid) {
		t.Errorf("short layer: %v", err)
	}
	if _, err := NewTree(int64(size), 9, nodes); !errors.Is(err, ErrInvalid) {
		t.Errorf("layer above the root: %v", err)
	}
	if _, err := NewTree(0, 0, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty file: %v", err)
	}
	tree, err := NewTree(int64(size), 2, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Layer(2); len(got) != 4 || tree.Layer(1) != nil || tree.Base() != 2 {
		t.Errorf("Layer(2) has %d nodes, Layer(1) %v, Base %d", len(got), tree.Layer(1), tree.Base())
	}
	r := Request{Base: 0, Index: 4, Length: 4, ProofLayers: 3}
	good := naive[0][4:8]
	if _, err := tree.Answer(r, good); err != nil {
		t.Fatal(err)
	}
	bad := append([]Hash(nil), good...)
	bad[1][5] ^= 1
	if _, err := tree.Answer(r, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("leaves that do not hash to the piece node: %v", err)
	}
	if _, err := tree.Answer(r, good[:3]); !errors.Is(err, ErrInvalid) {
		t.Errorf("too few leaves: %v", err)
	}
	if _, err := tree.Answer(Request{Base: 0, Index: 0, Length: 8, ProofLayers: 3}, naive[0][:8]); !errors.Is(err, ErrInvalid) {
		t.Errorf("request over two pieces: %v", err)
	}
	// The last piece holds one block; a request in its padding needs none.
	if p, err := tree.Answer(Request{Base: 0, Index: 14, Length: 2, ProofLayers: 3}, naive[0][12:13]); err != nil || p.Nodes[0] != PadHash(0) {
		t.Errorf("request in the padding: %v", err)
	}
	p := &Proof{Request: r, Nodes: good[:3]}
	if _, _, _, err := p.Anchor(); !errors.Is(err, ErrInvalid) {
		t.Errorf("proof with 3 nodes: %v", err)
	}
	p = &Proof{Request: Request{Base: 0, Index: 0, Length: 3}, Nodes: good[:3]}
	if _, _, _, err := p.Anchor(); !errors.Is(err, ErrInvalid) {
		t.Errorf("proof of length 3: %v", err)
	}
}
