package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// BlockSize is the size of the data under one leaf: BEP 52 fixes it at
// 16 KiB, the size of a request.
const BlockSize = 16 << 10

// HashSize is the size of every node hash (SHA-256).
const HashSize = sha256.Size

// Hash is one node of a tree. It is an alias so that [32]byte values (a
// file's pieces root in metainfo, a message's field) need no conversion.
type Hash = [HashSize]byte

// MaxLevels is the height of the tallest tree: a file of 2^63 bytes has
// 2^49 blocks.
const MaxLevels = 63 - 14

// ErrInvalid is wrapped by every error about a request, a proof or a layer
// that does not fit the tree it claims to belong to.
var ErrInvalid = errors.New("merkle: invalid")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// padHashes[h] is the root of a subtree of 2^h zero leaves.
var padHashes = func() (p [MaxLevels + 1]Hash) {
	for h := 1; h <= MaxLevels; h++ {
		p[h] = Parent(p[h-1], p[h-1])
	}
	return p
}()

// PadHash returns the hash of a node of the given height whose leaves all
// lie past the end of the file: all zeros at height 0, then the hash of two
// pad nodes one height below. It panics if height is outside 0..MaxLevels.
func PadHash(height int) Hash { return padHashes[height] }

// BlockHash returns the leaf of one block (the last block of a file may be
// shorter than BlockSize).
func BlockHash(block []byte) Hash { return sha256.Sum256(block) }

// Parent returns the hash of the node whose children are left and right.
func Parent(left, right Hash) Hash {
	var b [2 * HashSize]byte
	copy(b[:HashSize], left[:])
	copy(b[HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// NumBlocks returns the number of blocks, hence real leaves, of a file of
// length bytes.
func NumBlocks(length int64) int64 {
	if length <= 0 {
		return 0
	}
	return (length-1)/BlockSize + 1
}

// Levels returns the height of a tree over n nodes: the smallest h with
// 2^h >= n, 0 for n <= 1.
func Levels(n int64) int {
	if n <= 1 {
		return 0
	}
	return bits.Len64(uint64(n - 1))
}

// FileLevels returns the height of a file's tree: its root sits that many
// layers above its leaves.
func FileLevels(length int64) int { return Levels(NumBlocks(length)) }

// PieceLevels returns the height of the piece layer for pieceLength, which
// must be a power of two of at least BlockSize (BEP 52); other lengths give
// -1.
func PieceLevels(pieceLength int64) int {
	if pieceLength < BlockSize || pieceLength&(pieceLength-1) != 0 {
		return -1
	}
	return bits.TrailingZeros64(uint64(pieceLength / BlockSize))
}

// PieceNodeLevels returns the height of the node a piece of a file is
// checked against: the piece layer, or for a file of one piece or less the
// file's root, which covers fewer leaves than a piece. See the package
// documentation.
func PieceNodeLevels(fileLength, pieceLength int64) int {
	return min(PieceLevels(pieceLength), FileLevels(fileLength))
}

// DataRoot returns the root of a subtree of 2^levels leaves whose first
// leaves are the blocks of data and the rest zero leaves: the node a piece
// is checked against (levels from PieceNodeLevels). It panics if data has
// more than 2^levels blocks.
func DataRoot(data []byte, levels int) Hash {
	var b builder
	for len(data) > 0 {
		n := min(len(data), BlockSize)
		b.push(BlockHash(data[:n]), 0)
		data = data[n:]
	}
	return b.root(levels)
}

// LayerRoot returns the root of the tree over layer, a whole layer of
// nodes at the given height, padded with pad nodes to the next power of
// two: a file's pieces root from its piece layer (or, with height 0, from
// its leaves). One node is its own root; no node gives the zero hash.
func LayerRoot(layer []Hash, height int) Hash {
	if len(layer) == 0 {
		return Hash{}
	}
	var b builder
	for _, h := range layer {
		b.push(h, height)
	}
	return b.root(height + Levels(int64(len(layer))))
}

// builder folds nodes pushed left to right into complete subtrees, keeping
// one per height (at most MaxLevels+1 with strictly decreasing heights):
// O(log n) memory for a layer of any size.
type builder struct {
	nodes   [MaxLevels + 2]Hash
	heights [MaxLevels + 2]int
	n       int
}

func (b *builder) push(h Hash, height int) {
	for b.n > 0 && b.heights[b.n-1] == height {
		b.n--
		h = Parent(b.nodes[b.n], h)
		height++
	}
	b.nodes[b.n], b.heights[b.n] = h, height
	b.n++
}

// root pads the right edge with pad nodes until one node of the given
// height is left, and returns it.
func (b *builder) root(height int) Hash {
	if b.n == 0 {
		return PadHash(height)
	}
	for b.n > 1 || b.heights[0] < height {
		b.n--
		top, th := b.nodes[b.n], b.heights[b.n]
		b.push(Parent(top, PadHash(th)), th+1)
	}
	if b.heights[0] != height {
		panic(fmt.Sprintf("merkle: %d levels of nodes do not fit a tree of height %d", b.heights[0], height))
	}
	return b.nodes[0]
}

// Hasher computes a file's pieces root and piece layer from its bytes
// written in order, holding one partial block and O(log n) nodes. The
// zero value is not usable: make one with NewHasher.
type Hasher struct {
	pieceLevels int
	blocksLeft  int // blocks the current piece still takes
	block       [BlockSize]byte
	nblock      int
	length      int64
	piece       builder
	layer       []Hash
}

// NewHasher returns a Hasher for pieces of pieceLength bytes, which must be
// a power of two of at least BlockSize.
func NewHasher(pieceLength int64) (*Hasher, error) {
	pl := PieceLevels(pieceLength)
	if pl < 0 {
		return nil, invalidf("piece length %d is not a power of two of at least %d", pieceLength, BlockSize)
	}
	return &Hasher{pieceLevels: pl, blocksLeft: 1 << pl}, nil
}

// Write hashes p as the next bytes of the file. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	h.length += int64(n)
	for len(p) > 0 {
		if h.nblock == 0 && len(p) >= BlockSize {
			h.addLeaf(BlockHash(p[:BlockSize]))
			p = p[BlockSize:]
			continue
		}
		k := copy(h.block[h.nblock:], p)
		h.nblock += k
		p = p[k:]
		if h.nblock == BlockSize {
			h.addLeaf(BlockHash(h.block[:]))
			h.nblock = 0
		}
	}
	return n, nil
}

func (h *Hasher) addLeaf(leaf Hash) {
	h.piece.push(leaf, 0)
	h.blocksLeft--
	if h.blocksLeft == 0 {
		h.layer = append(h.layer, h.piece.root(h.pieceLevels))
		h.piece = builder{}
		h.blocksLeft = 1 << h.pieceLevels
	}
}

// Sum returns the pieces root of what was written and its piece layer, one
// node per piece. The layer is nil for a file of one piece or less, which
// has none (BEP 52 lists piece layers only for larger files); the root is
// zero for an empty file. Sum does not change the Hasher's state, so more
// can be written after it.
func (h *Hasher) Sum() (root Hash, layer []Hash) {
	if h.length == 0 {
		return Hash{}, nil
	}
	piece := h.piece
	if h.nblock > 0 {
		piece.push(BlockHash(h.block[:h.nblock]), 0)
	}
	levels := min(h.pieceLevels, FileLevels(h.length))
	layer = append([]Hash(nil), h.layer...)
	if piece.n > 0 {
		layer = append(layer, piece.root(levels))
	}
	root = LayerRoot(layer, levels)
	if len(layer) == 1 {
		layer = nil
	}
	return root, layer
}

// Split reads concatenated hashes, as a piece layer or a hashes message
// holds them. Its length must be a multiple of HashSize.
func Split(b []byte) ([]Hash, error) {
	if len(b)%HashSize != 0 {
		return nil, invalidf("%d bytes of hashes is not a multiple of %d", len(b), HashSize)
	}
	out := make([]Hash, len(b)/HashSize)
	for i := range out {
		out[i] = Hash(b[i*HashSize:])
	}
	return out, nil
}

// Join concatenates hashes, the inverse of Split.
func Join(hs []Hash) []byte {
	out := make([]byte, 0, len(hs)*HashSize)
	for i := range hs {
		out = append(out, hs[i][:]...)
	}
	return out
}
