package merkle

import (
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// naiveTree builds every layer of a file's tree the plain way, straight from
// BEP 52: leaves are block hashes then zero leaves up to a power of two, and
// each layer above hashes pairs. layers[0] are the leaves; the last holds
// the root. It is the reference the package is checked against.
func naiveTree(data []byte) [][]Hash {
	n := 1
	for n*BlockSize < len(data) {
		n *= 2
	}
	leaves := make([]Hash, n)
	for i := 0; i*BlockSize < len(data); i++ {
		leaves[i] = sha256.Sum256(data[i*BlockSize : min((i+1)*BlockSize, len(data))])
	}
	layers := [][]Hash{leaves}
	for len(layers[len(layers)-1]) > 1 {
		l := layers[len(layers)-1]
		up := make([]Hash, len(l)/2)
		for i := range up {
			var b []byte
			b = append(b, l[2*i][:]...)
			b = append(b, l[2*i+1][:]...)
			up[i] = sha256.Sum256(b)
		}
		layers = append(layers, up)
	}
	return layers
}

func randomData(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestPadHash(t *testing.T) {
	if PadHash(0) != (Hash{}) {
		t.Fatal("PadHash(0) is not 32 zero bytes")
	}
	if PadHash(1) != sha256.Sum256(make([]byte, 64)) {
		t.Fatal("PadHash(1) is not the hash of two zero leaves")
	}
	if want := naiveTree(make([]byte, 0))[0][0]; want != PadHash(0) {
		t.Fatal("naive tree of nothing")
	}
	for h := 1; h <= MaxLevels; h++ {
		if PadHash(h) != Parent(PadHash(h-1), PadHash(h-1)) {
			t.Fatalf("PadHash(%d)", h)
		}
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		length                int64
		blocks                int64
		levels                int
		pieceLength           int64
		pieceLevels, nodeLvls int
	}{
		{0, 0, 0, 16 << 10, 0, 0},
		{1, 1, 0, 16 << 10, 0, 0},
		{16 << 10, 1, 0, 32 << 10, 1, 0},
		{16<<10 + 1, 2, 1, 32 << 10, 1, 1},
		{48 << 10, 3, 2, 32 << 10, 1, 1},
		{5 << 20, 320, 9, 4 << 20, 8, 8},
		{1 << 62, 1 << 48, 48, 1 << 20, 6, 6},
		{1<<63 - 1, 1 << 49, 49, 16 << 20, 10, 10},
	}
	for _, tc := range tests {
		if got := NumBlocks(tc.length); got != tc.blocks {
			t.Errorf("NumBlocks(%d) = %d, want %d", tc.length, got, tc.blocks)
		}
		if got := FileLevels(tc.length); got != tc.levels {
			t.Errorf("FileLevels(%d) = %d, want %d", tc.length, got, tc.levels)
		}
		if got := PieceLevels(tc.pieceLength); got != tc.pieceLevels {
			t.Errorf("PieceLevels(%d) = %d, want %d", tc.pieceLength, got, tc.pieceLevels)
		}
		if got := PieceNodeLevels(tc.length, tc.pieceLength); got != tc.nodeLvls {
			t.Errorf("PieceNodeLevels(%d, %d) = %d, want %d", tc.length, tc.pieceLength, got, tc.nodeLvls)
		}
	}
	for _, bad := range []int64{0, 1, 8 << 10, 48 << 10, -16 << 10} {
		if PieceLevels(bad) != -1 {
			t.Errorf("PieceLevels(%d) accepted", bad)
		}
	}
}

// TestRoots checks DataRoot, LayerRoot and Hasher against the naive tree
// for files around block and piece boundaries.
func TestRoots(t *testing.T) {
	const pl = 64 << 10 // 4 blocks per piece
	sizes := []int{1, 100, BlockSize - 1, BlockSize, BlockSize + 1, 3 * BlockSize, pl - 1, pl, pl + 1,
		2 * pl, 3*pl + 5, 4 * pl, 5*pl + BlockSize, 9*pl - 1}
	for i, size := range sizes {
		data := randomData(uint64(i), size)
		naive := naiveTree(data)
		root := naive[len(naive)-1][0]
		levels := FileLevels(int64(size))
		if len(naive)-1 != levels {
			t.Fatalf("size %d: FileLevels %d, naive height %d", size, levels, len(naive)-1)
		}
		if got := DataRoot(data, levels); got != root {
			t.Errorf("size %d: DataRoot differs from the naive root", size)
		}
		if got := LayerRoot(naive[0][:NumBlocks(int64(size))], 0); got != root {
			t.Errorf("size %d: LayerRoot of the leaves differs", size)
		}

		// Piece by piece, as a creator or a verifier works.
		nl := PieceNodeLevels(int64(size), pl)
		var nodes []Hash
		for off := 0; off < size; off += pl {
			nodes = append(nodes, DataRoot(data[off:min(off+pl, size)], nl))
		}
		for k, n := range nodes {
			if n != naive[nl][k] {
				t.Errorf("size %d: piece %d node differs from the naive layer %d", size, k, nl)
			}
		}
		if got := LayerRoot(nodes, nl); got != root {
			t.Errorf("size %d: LayerRoot of the piece nodes differs", size)
		}

		h, err := NewHasher(pl)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		for rest := data; len(rest) > 0; {
			n := min(len(rest), rng.IntN(3*BlockSize)+1)
			h.Write(rest[:n])
			rest = rest[n:]
		}
		gotRoot, layer := h.Sum()
		if gotRoot != root {
			t.Errorf("size %d: Hasher root differs", size)
		}
		if size <= pl {
			if layer != nil {
				t.Errorf("size %d: a file of one piece has a layer of %d", size, len(layer))
			}
		} else if len(layer) != len(nodes) || LayerRoot(layer, nl) != root {
			t.Errorf("size %d: Hasher layer of %d nodes, want %d", size, len(layer), len(nodes))
		}
	}
	h, _ := NewHasher(pl)
	if r, l := h.Sum(); r != (Hash{}) || l != nil {
		t.Error("empty file has a root")
	}
	if _, err := NewHasher(48 << 10); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewHasher(48 KiB) = %v", err)
	}
}

func TestDataRootPanicsWhenTooWide(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for 3 blocks under a 2-leaf root")
		}
	}()
	DataRoot(make([]byte, 3*BlockSize), 1)
}

func TestSplitJoin(t *testing.T) {
	hs := []Hash{{1}, {2}, {3}}
	b := Join(hs)
	back, err := Split(b)
	if err != nil || len(back) != 3 || back[2] != hs[2] {
		t.Fatalf("Split(Join) = %v, %v", back, err)
	}
	if _, err := Split(b[:40]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Split(40 bytes) = %v", err)
	}
}
