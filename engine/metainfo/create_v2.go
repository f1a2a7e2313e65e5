package metainfo

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

// Format is the kind of torrent Create makes.
type Format int

const (
	// FormatV1 makes a BEP 3 torrent: SHA-1 piece hashes, read by every
	// client. It is the default.
	FormatV1 Format = iota
	// FormatV2 makes a BEP 52 torrent: per-file SHA-256 Merkle trees, read
	// by libtorrent 2.0 clients and a few others.
	FormatV2
	// FormatHybrid makes one torrent with both, which v1-only and v2
	// clients share (libtorrent's default since 2.0).
	FormatHybrid
)

// String returns the name ParseFormat reads: "v1", "v2" or "hybrid".
func (f Format) String() string {
	switch f {
	case FormatV1:
		return "v1"
	case FormatV2:
		return "v2"
	case FormatHybrid:
		return "hybrid"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat reads a format name as a command line gives it: "v1", "v2"
// or "hybrid".
func ParseFormat(s string) (Format, error) {
	for _, f := range []Format{FormatV1, FormatV2, FormatHybrid} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("metainfo: unknown torrent format %q (want v1, v2 or hybrid)", truncate(s, 40))
}

// Set makes a *Format usable as a flag.Value.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// padFiles returns files with a pad file after every non-empty file that
// does not end on a piece boundary, the last one included, unless there is
// only one file: the layout libtorrent 2.0.8 gives a hybrid torrent (and
// the piece alignment any v2 torrent has), so our info-hashes equal its
// own. It returns the padded total length.
func padFiles(files []srcFile, pl int64) ([]srcFile, int64) {
	out := make([]srcFile, 0, 2*len(files))
	var off int64
	for _, f := range files {
		out = append(out, f)
		off += f.length
		if len(files) > 1 && f.length > 0 && off%pl != 0 {
			pad := pl - off%pl
			out = append(out, srcFile{path: []string{".pad", strconv.FormatInt(pad, 10)}, length: pad, pad: true})
			off += pad
		}
	}
	return out, off
}

// pieceSpans tells, for a piece of a piece-aligned stream, how many bytes
// of file data it holds and the height of the tree node they hash to.
type pieceSpans struct {
	pl    int64
	first []int64 // per non-empty file, in order: its first piece
	sizes []int64 // and its length
}

func newPieceSpans(files []srcFile, pl int64) pieceSpans {
	s := pieceSpans{pl: pl}
	var off int64
	for _, f := range files {
		if !f.pad && f.length > 0 {
			s.first = append(s.first, off/pl)
			s.sizes = append(s.sizes, f.length)
		}
		off += f.length
	}
	return s
}

// at returns the data bytes and the node height of piece idx.
func (s pieceSpans) at(idx int64) (int64, int) {
	k := sort.Search(len(s.first), func(k int) bool { return s.first[k] > idx }) - 1
	n := min(s.pl, s.sizes[k]-(idx-s.first[k])*s.pl)
	return n, merkle.PieceNodeLevels(s.sizes[k], s.pl)
}

// fileTreeOf builds the "file tree" of the padded stream from the pieces'
// v2 nodes, and the piece layers of the files larger than one piece. The
// tree holds paths relative to the torrent's folder, or the single file's
// name.
func fileTreeOf(stream []srcFile, nodes []merkle.Hash, pl int64) (map[string]any, map[[32]byte][]byte) {
	tree := map[string]any{}
	layers := map[[32]byte][]byte{}
	var off int64
	for _, f := range stream {
		start := off
		off += f.length
		if f.pad {
			continue
		}
		props := map[string]any{"length": f.length}
		if f.length > 0 {
			first, n := start/pl, (f.length-1)/pl+1
			own := nodes[first : first+n]
			root := merkle.LayerRoot(own, merkle.PieceNodeLevels(f.length, pl))
			props["pieces root"] = string(root[:])
			if n > 1 {
				layers[root] = merkle.Join(own)
			}
		}
		dir := tree
		for _, c := range f.path[:len(f.path)-1] {
			sub, ok := dir[c].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dir[c] = sub
			}
			dir = sub
		}
		dir[f.path[len(f.path)-1]] = map[string]any{"": props}
	}
	return tree, layers
}
