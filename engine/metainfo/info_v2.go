package metainfo

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

// Sentinel errors of v2 verification.
var (
	// ErrNoPieceLayer is returned when a piece of a file larger than one
	// piece is to be checked but the file's piece layer is not known yet:
	// fetch it from peers (Info.LayerRequests) or check the piece with v1.
	ErrNoPieceLayer = errors.New("metainfo: piece layer not known")

	// ErrPieceHash is wrapped when data does not match the v2 hash it is
	// checked against.
	ErrPieceHash = errors.New("metainfo: data does not match its v2 hash")
)

// layOutV2 builds the files of a v2-only torrent from its file tree. Files
// are aligned to pieces (BEP 52): a pad file is placed after every
// non-empty file whose end is not on a piece boundary, except after the
// last non-empty file, so piece indices, offsets and the v1-shaped API work
// as for a hybrid torrent. The pads are marked Pad like BEP 47 pad files
// and are named ".pad/<size>" like libtorrent's.
func (i *Info) layOutV2(tree *fileTree) error {
	last := -1
	for k, f := range tree.files {
		if f.length > 0 {
			last = k
		}
	}
	pl := i.PieceLength
	hashes := make([]FileHashes, len(tree.files))
	files := make([]File, 0, len(tree.files))
	var off int64
	for k, f := range tree.files {
		hashes[k].PiecesRoot = f.root
		files = append(files, File{Path: f.path, Length: f.length, Offset: off, Attr: f.attr, V2: &hashes[k]})
		if off > math.MaxInt64-f.length {
			return invalidf("info: total length overflows at file %d", k)
		}
		off += f.length
		if f.length == 0 || k >= last || off%pl == 0 {
			continue
		}
		pad := pl - off%pl
		if off > math.MaxInt64-pad {
			return invalidf("info: total length overflows at file %d", k)
		}
		files = append(files, File{Path: []string{".pad", strconv.FormatInt(pad, 10)}, Length: pad, Offset: off, Attr: "p", Pad: true})
		off += pad
	}
	if tree.rootSingle && tree.rootName == i.Name {
		i.SingleFile = true
	}
	uniquePaths(files)
	i.Files, i.TotalLength = files, off
	return nil
}

// matchHybrid checks that the v2 file tree of a hybrid torrent describes
// the same files as its v1 part (names, lengths, order) with the same
// piece alignment, and gives the v1 files their v2 hashes. BEP 52 asks for
// this check before a hybrid joins both swarms; libtorrent makes the same.
func (i *Info) matchHybrid(tree *fileTree) error {
	pl := i.PieceLength
	hashes := make([]FileHashes, len(tree.files))
	k := 0
	var next, end int64 // where the next non-empty file must start; end of the last one
	for j := range i.Files {
		f := &i.Files[j]
		if f.Pad {
			continue
		}
		if k >= len(tree.files) {
			return invalidf("info: hybrid torrent: v1 lists %q, which the v2 file tree lacks", truncate(f.DisplayPath(), 200))
		}
		g := tree.files[k]
		if !slices.Equal(f.Path, g.path) {
			return invalidf("info: hybrid torrent: file %d is %q in v1 and %q in the v2 file tree",
				k, truncate(f.DisplayPath(), 200), truncate(File{Path: g.path}.DisplayPath(), 200))
		}
		if f.Length != g.length {
			return invalidf("info: hybrid torrent: %q has %d bytes in v1 and %d in the v2 file tree", truncate(f.DisplayPath(), 200), f.Length, g.length)
		}
		if f.Length > 0 {
			if f.Offset != next {
				return invalidf("info: hybrid torrent: %q starts at byte %d of the v1 data, not at %d where v2 places it (pad files missing or wrong)",
					truncate(f.DisplayPath(), 200), f.Offset, next)
			}
			end = f.Offset + f.Length
			if end > math.MaxInt64-pl {
				return invalidf("info: hybrid torrent: %q ends too far to be padded", truncate(f.DisplayPath(), 200))
			}
			next = end
			if r := end % pl; r != 0 {
				next += pl - r
			}
		}
		hashes[k].PiecesRoot = g.root
		f.V2 = &hashes[k]
		k++
	}
	if k < len(tree.files) {
		return invalidf("info: hybrid torrent: the v2 file tree lists %q, which v1 lacks", truncate(File{Path: tree.files[k].path}.DisplayPath(), 200))
	}
	// Only padding may follow the last file, and at most up to the next
	// piece boundary: libtorrent pads the tail (2.0.8 and later), older
	// creators do not.
	if i.TotalLength > max(next, end) {
		return invalidf("info: hybrid torrent: %d bytes of padding after the last file, past the piece boundary at %d", i.TotalLength-end, next)
	}
	return nil
}

// parsePieceLayers reads the "piece layers" dictionary of a .torrent into
// the files of info: each key is the pieces root of a file larger than one
// piece, each value that file's piece layer, checked against the root.
// Like libtorrent, a missing dictionary (or one of another type) is
// allowed, since peers can send the layers; a bad entry is an error.
func parsePieceLayers(info *Info, raw []byte) error {
	if raw == nil || raw[0] != 'd' || !info.HasV2() {
		return nil
	}
	layers := make(map[[32]byte][]byte)
	err := entries(raw, func(key, val []byte) error {
		if len(key) != 32 {
			return invalidf("piece layers: a key of %d bytes is not a pieces root", len(key))
		}
		s, ok := bencodeString(val)
		if !ok {
			return invalidf("piece layers: the layer of %x is not a string", key)
		}
		layers[[32]byte(key)] = s
		return nil
	})
	if err != nil {
		return err
	}
	return info.setPieceLayers(layers)
}

// setPieceLayers checks layers (pieces root -> concatenated piece-layer
// hashes) and stores a copy of each in the files it belongs to; i.Files
// must not be shared yet.
func (i *Info) setPieceLayers(layers map[[32]byte][]byte) error {
	pl := i.PieceLength
	levels := merkle.PieceLevels(pl)
	// The roots of files larger than a piece, with their piece counts.
	// Identical files share a root and a layer; files of different sizes
	// can share a root only by a crafted collision (a 64-byte file holding
	// two leaves), and then only the file whose size fits gets the layer.
	need := make(map[[32]byte]int64)
	for _, f := range i.Files {
		if f.V2 == nil || f.Length <= pl {
			continue
		}
		if _, dup := need[f.V2.PiecesRoot]; !dup {
			need[f.V2.PiecesRoot] = (f.Length-1)/pl + 1
		}
	}
	checked := make(map[[32]byte][]byte, len(layers))
	for root, layer := range layers {
		n, ok := need[root]
		if !ok {
			return invalidf("piece layers: %x is not the pieces root of a file larger than one piece", root)
		}
		if int64(len(layer)) != n*merkle.HashSize {
			return invalidf("piece layers: the layer of %x holds %d bytes, want %d for %d pieces", root, len(layer), n*merkle.HashSize, n)
		}
		nodes, err := merkle.Split(layer)
		if err != nil {
			return invalidf("piece layers: %w", err)
		}
		if merkle.LayerRoot(nodes, levels) != root {
			return invalidf("piece layers: the layer of %x does not hash to it", root)
		}
		checked[root] = bytes.Clone(layer)
	}
	hashes := make([]FileHashes, 0, len(i.Files))
	for j := range i.Files {
		f := &i.Files[j]
		if f.V2 == nil {
			continue
		}
		h := *f.V2
		if l, ok := checked[h.PiecesRoot]; ok && f.Length > pl && int64(len(l)) == ((f.Length-1)/pl+1)*merkle.HashSize {
			h.Layer = l
		}
		hashes = append(hashes, h)
		f.V2 = &hashes[len(hashes)-1]
	}
	return nil
}

// WithPieceLayers returns a copy of i whose files carry the given piece
// layers (pieces root -> the file's piece-layer hashes, concatenated), for a
// torrent whose info came without them (a magnet's) once they are fetched
// from peers. Each layer is checked against its root; a root that is not
// the root of a file larger than one piece is an error. Layers i already
// has are kept. i is not modified.
func (i *Info) WithPieceLayers(layers map[[32]byte][]byte) (*Info, error) {
	if !i.HasV2() {
		return nil, errors.New("metainfo: piece layers for a torrent without v2")
	}
	c := *i
	c.Files = slices.Clone(i.Files)
	all := make(map[[32]byte][]byte, len(layers))
	for _, f := range i.Files {
		if f.V2 != nil && f.V2.Layer != nil {
			all[f.V2.PiecesRoot] = f.V2.Layer
		}
	}
	for r, l := range layers {
		all[r] = l
	}
	if err := c.setPieceLayers(all); err != nil {
		return nil, err
	}
	return &c, nil
}

// HasPieceLayers reports whether every v2 file larger than one piece has
// its piece layer, so every piece can be checked with VerifyPieceV2.
func (i *Info) HasPieceLayers() bool {
	for _, f := range i.Files {
		if f.V2 != nil && f.Length > i.PieceLength && f.V2.Layer == nil {
			return false
		}
	}
	return true
}

// PieceV2 places a piece in the v2 view of a torrent: the file it belongs
// to (in v2 a piece never spans files) and the node of that file's tree it
// is checked against.
type PieceV2 struct {
	// File is the index in Info.Files of the file holding the piece.
	File int
	// Index is the piece's index within that file.
	Index int
	// Length is how many bytes of the piece are file data; the rest of
	// PieceLen, if any, is padding, zeros.
	Length int64
	// Levels is the height of the tree node the piece is checked against
	// (merkle.PieceNodeLevels): the piece layer, or for a file of one
	// piece or less the file's root.
	Levels int
	// Hash is that node, when Known: the piece-layer hash, or the pieces
	// root for a file of one piece.
	Hash  [32]byte
	Known bool
}

// PieceV2 returns where piece index sits in the v2 view; ok is false for a
// torrent without v2 or an index out of range.
func (i *Info) PieceV2(index int) (p PieceV2, ok bool) {
	if !i.HasV2() || index < 0 || index >= i.NumPieces() {
		return PieceV2{}, false
	}
	start := int64(index) * i.PieceLength
	// The file holding the piece: the last non-pad, non-empty file starting
	// at or before it (files are sorted by offset).
	j := dataFileAt(i.Files, start)
	if j < 0 {
		return PieceV2{}, false
	}
	f := i.Files[j]
	p = PieceV2{
		File:   j,
		Index:  int((start - f.Offset) / i.PieceLength),
		Length: min(i.PieceLength, f.Offset+f.Length-start),
		Levels: merkle.PieceNodeLevels(f.Length, i.PieceLength),
	}
	switch {
	case f.Length <= i.PieceLength:
		p.Hash, p.Known = f.V2.PiecesRoot, true
	case (p.Index+1)*merkle.HashSize <= len(f.V2.Layer):
		p.Hash, p.Known = [32]byte(f.V2.Layer[p.Index*merkle.HashSize:]), true
	}
	return p, true
}

// dataFileAt returns the index of the file holding byte off of the
// torrent's data, or -1 when that is a pad file's. Files are sorted by
// offset; empty files, which hold no byte, sort before or after it.
func dataFileAt(files []File, off int64) int {
	j, found := slices.BinarySearchFunc(files, off, func(f File, off int64) int {
		switch {
		case f.Offset+f.Length <= off:
			return -1
		case f.Offset > off:
			return 1
		}
		return 0
	})
	if !found || files[j].Pad || files[j].V2 == nil {
		return -1
	}
	return j
}

// VerifyPieceV2 checks the data of piece index (PieceLen(index) bytes, as
// assembled from blocks) against its v2 hash: the file's bytes hash to the
// piece's node, and the padding after them, if any, is zeros. It returns
// nil for a good piece, an error wrapping ErrPieceHash for a bad one, and
// ErrNoPieceLayer when the file's piece layer is not known yet.
func (i *Info) VerifyPieceV2(index int, data []byte) error {
	p, ok := i.PieceV2(index)
	if !ok {
		return fmt.Errorf("metainfo: piece %d: no v2 piece of this torrent", index)
	}
	if int64(len(data)) != i.PieceLen(index) {
		return fmt.Errorf("metainfo: piece %d: %d bytes, want %d", index, len(data), i.PieceLen(index))
	}
	if !p.Known {
		return ErrNoPieceLayer
	}
	if merkle.DataRoot(data[:p.Length], p.Levels) != p.Hash {
		return fmt.Errorf("%w: piece %d", ErrPieceHash, index)
	}
	for _, b := range data[p.Length:] {
		if b != 0 {
			return fmt.Errorf("%w: piece %d has non-zero padding", ErrPieceHash, index)
		}
	}
	return nil
}

// BlockRequest returns the request for the leaf hashes of piece p with
// the proof up to the piece's node: the answer (checked with CheckProof)
// tells which 16 KiB blocks of a piece that failed are bad, hence which
// peers sent them. ok is false for a piece of one block, whose one leaf is
// its node.
func (p PieceV2) BlockRequest() (r merkle.Request, ok bool) {
	if p.Levels == 0 {
		return merkle.Request{}, false
	}
	return merkle.Request{Base: 0, Index: p.Index << p.Levels, Length: 1 << p.Levels, ProofLayers: p.Levels - 1}, true
}

// MaxLayerRequestLength is how many piece-layer hashes LayerRequests asks
// for at once: 512, the most BEP 52 asks requesters to use.
const MaxLayerRequestLength = 512

// LayerRequests returns the hash requests that fetch the piece layer of
// file j, each with a proof up to the file's pieces root, so every answer
// can be checked on its own (CheckProof) and the checked hashes assembled
// into the layer for WithPieceLayers. It returns nil for a file that needs
// no layer.
func (i *Info) LayerRequests(j int) []merkle.Request {
	if j < 0 || j >= len(i.Files) || i.Files[j].V2 == nil || i.Files[j].Length <= i.PieceLength {
		return nil
	}
	f := i.Files[j]
	base := merkle.PieceLevels(i.PieceLength)
	top := merkle.FileLevels(f.Length)
	n := int((f.Length-1)/i.PieceLength + 1)
	var rs []merkle.Request
	for idx := 0; idx < n; idx += MaxLayerRequestLength {
		length := min(MaxLayerRequestLength, 1<<merkle.Levels(int64(n-idx)))
		rs = append(rs, merkle.Request{Base: base, Index: idx, Length: length, ProofLayers: top - base - 1})
	}
	return rs
}

// CheckProof checks a proof received for file j (a hashes message) against
// what the torrent trusts: the file's pieces root, or a node of its piece
// layer when that is known. A nil error means every node of p is part of
// the file's tree: a leaf can then be compared with a block's hash
// (merkle.BlockHash), a piece-layer node kept for WithPieceLayers. An
// error wrapping ErrPieceHash means the sender lied (or answered another
// request); a proof that reaches nothing trusted is an error too.
func (i *Info) CheckProof(j int, p *merkle.Proof) error {
	if j < 0 || j >= len(i.Files) || i.Files[j].V2 == nil || i.Files[j].Length == 0 {
		return fmt.Errorf("metainfo: file %d has no v2 tree", j)
	}
	f := i.Files[j]
	if err := p.Request.Check(f.Length); err != nil {
		return fmt.Errorf("metainfo: proof for %q: %w", truncate(f.DisplayPath(), 200), err)
	}
	node, height, index, err := p.Anchor()
	if err != nil {
		return fmt.Errorf("metainfo: proof for %q: %w", truncate(f.DisplayPath(), 200), err)
	}
	levels := merkle.PieceNodeLevels(f.Length, i.PieceLength)
	var want [32]byte
	switch {
	case height == merkle.FileLevels(f.Length) && index == 0:
		want = f.V2.PiecesRoot
	case height == levels && f.V2.Layer != nil && (index+1)*merkle.HashSize <= len(f.V2.Layer):
		want = [32]byte(f.V2.Layer[index*merkle.HashSize:])
	case height == levels && f.V2.Layer != nil:
		want = merkle.PadHash(levels) // past the last piece: padding
	default:
		return fmt.Errorf("metainfo: proof for %q reaches layer %d, where no hash is known yet", truncate(f.DisplayPath(), 200), height)
	}
	if node != want {
		return fmt.Errorf("%w: proof for %q does not lead to the trusted node at layer %d", ErrPieceHash, truncate(f.DisplayPath(), 200), height)
	}
	return nil
}

// outPieceLayers returns the "piece layers" dictionary of info: every
// known layer, keyed by its root; nil when there is none.
func outPieceLayers(info *Info) map[string][]byte {
	if info == nil || !info.HasV2() {
		return nil
	}
	out := make(map[string][]byte)
	for _, f := range info.Files {
		if f.V2 == nil || f.V2.Layer == nil {
			continue
		}
		out[string(f.V2.PiecesRoot[:])] = f.V2.Layer
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
