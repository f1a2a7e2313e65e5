package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"math"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/merkle"
)

// Bounds on what an info dictionary may declare. They sit far above any real
// torrent and far below what would exhaust memory.
const (
	// MaxPieceLength bounds the piece length; a piece is held in memory
	// while it is assembled and verified.
	MaxPieceLength = 256 << 20
	// MaxFiles bounds the number of files in one torrent.
	MaxFiles = 1_000_000
	// MaxPieces bounds the pieces of a torrent without v1 piece hashes,
	// whose count comes from declared file sizes rather than from bytes of
	// hashes in the input: a peer's bitfield and our piece state are sized
	// by it (4M pieces: a 512 KiB bitfield).
	MaxPieces = 1 << 22
)

// File is one file of a torrent, as a position in the torrent's concatenated
// data. The zero-length file is valid and common.
type File struct {
	// Path holds sanitised components relative to the torrent's folder
	// (Info.Name); it is never empty and unique within the torrent.
	Path []string
	// Length is the file's size in bytes.
	Length int64
	// Offset is where the file starts in the torrent's concatenated data.
	Offset int64
	// Pad is set for BEP 47 padding files (attr contains 'p'). They hold
	// zeros, occupy bytes in pieces like any file, and should not be shown.
	Pad bool
	// Attr is the BEP 47 attribute string verbatim ('p' pad, 'x'
	// executable, 'h' hidden, 'l' symlink).
	Attr string
	// V2 holds the file's BEP 52 hashes in a v2 or hybrid torrent; it is
	// nil in a v1 torrent and for pad files.
	V2 *FileHashes
}

// FileHashes are the v2 hashes of one file (BEP 52).
type FileHashes struct {
	// PiecesRoot is the root of the file's Merkle tree (engine/merkle);
	// zero for an empty file.
	PiecesRoot [32]byte
	// Layer is the file's piece layer: one 32-byte hash per piece of the
	// file, concatenated. It is nil for a file of one piece or less (its
	// one piece is checked against PiecesRoot itself) and while the layer
	// is not known: a .torrent may leave "piece layers" out and an info
	// dictionary fetched for a magnet never has them (see
	// Info.WithPieceLayers). When set it has been checked against
	// PiecesRoot. Shared between Infos: do not modify.
	Layer []byte
}

// DisplayPath returns the file's path joined with "/".
func (f File) DisplayPath() string { return path.Join(f.Path...) }

// Info is a parsed, validated and sanitised info dictionary: v1, v2 or
// hybrid (see the package documentation). It is immutable after parsing and
// safe for concurrent reads.
type Info struct {
	// Name is the sanitised torrent name: the folder holding Files, or the
	// single file's name. Never empty (the info-hash hex stands in).
	Name string
	// PieceLength is the size of every piece but the last.
	PieceLength int64
	// Pieces concatenates the 20-byte SHA-1 of each piece; nil for a
	// v2-only torrent, whose pieces are checked against the files' trees
	// (VerifyPieceV2).
	Pieces []byte
	// Private is the BEP 27 flag: trackers only, no DHT or PEX.
	Private bool
	// Files is always populated: a single-file torrent yields one File
	// whose Path is []string{Name}.
	Files []File
	// TotalLength is the sum of all file lengths, pad files included.
	TotalLength int64
	// SingleFile is set when the dictionary used "length" rather than
	// "files".
	SingleFile bool
	// MetaVersion is 1, or 2 for a v2-only or hybrid torrent.
	MetaVersion int
	// InfoHashV1 is the SHA-1 of the info dictionary, zero for a v2-only
	// torrent; InfoHashV2 its SHA-256, zero without v2. See InfoHash.
	InfoHashV1 Hash
	InfoHashV2 HashV2
}

// HasV1 reports whether the torrent has v1 piece hashes (v1 or hybrid).
func (i *Info) HasV1() bool { return len(i.Pieces) > 0 }

// HasV2 reports whether the torrent has v2 file trees (v2-only or hybrid).
func (i *Info) HasV2() bool { return i.MetaVersion == 2 }

// InfoHash returns the 20-byte hash that names the torrent to trackers, the
// DHT and peers: the v1 info-hash when there is one, else the v2 info-hash
// truncated. MetaInfo.InfoHash and Magnet.InfoHash hold the same.
func (i *Info) InfoHash() Hash {
	if i.HasV1() || i.InfoHashV2.IsZero() {
		return i.InfoHashV1
	}
	return i.InfoHashV2.Truncate()
}

// NumPieces returns the number of pieces: one per SHA-1 in Pieces, or for a
// v2-only torrent as many as TotalLength takes.
func (i *Info) NumPieces() int {
	if len(i.Pieces) > 0 || i.PieceLength <= 0 {
		return len(i.Pieces) / sha1.Size
	}
	return int((i.TotalLength + i.PieceLength - 1) / i.PieceLength)
}

// PieceHash returns the expected SHA-1 of piece index. A torrent without v1
// hashes (v2-only: check its pieces with VerifyPieceV2) has none and gets
// the zero hash, which no data matches. Otherwise it panics if index is out
// of range, like a slice index.
func (i *Info) PieceHash(index int) [20]byte {
	if len(i.Pieces) == 0 {
		return [20]byte{}
	}
	return [20]byte(i.Pieces[index*sha1.Size : (index+1)*sha1.Size])
}

// PieceOffset returns where piece index starts in the concatenated data.
func (i *Info) PieceOffset(index int) int64 { return int64(index) * i.PieceLength }

// PieceLen returns the length of piece index; only the last piece is shorter
// than PieceLength. It returns 0 for an index out of range.
func (i *Info) PieceLen(index int) int64 {
	if index < 0 || index >= i.NumPieces() {
		return 0
	}
	if index == i.NumPieces()-1 {
		return i.TotalLength - i.PieceOffset(index)
	}
	return i.PieceLength
}

// rawInfo receives the info dictionary with every field undecoded, so each
// can be decoded on its own and a wrong type named in the error.
type rawInfo struct {
	Name        bencode.RawMessage `bencode:"name"`
	NameUTF8    bencode.RawMessage `bencode:"name.utf-8"`
	PieceLength bencode.RawMessage `bencode:"piece length"`
	Pieces      bencode.RawMessage `bencode:"pieces"`
	Private     bencode.RawMessage `bencode:"private"`
	Length      bencode.RawMessage `bencode:"length"`
	Attr        bencode.RawMessage `bencode:"attr"`
	Files       bencode.RawMessage `bencode:"files"`
	MetaVersion bencode.RawMessage `bencode:"meta version"`
	FileTree    bencode.RawMessage `bencode:"file tree"` // v2; kept raw so it is not decoded
}

// rawFile is one entry of the "files" list.
type rawFile struct {
	Length   *int64   `bencode:"length"`
	Path     []string `bencode:"path"`
	PathUTF8 []string `bencode:"path.utf-8"`
	Attr     string   `bencode:"attr"`
}

// ParseInfo parses and validates an info dictionary, such as one fetched from
// peers with ut_metadata (BEP 9) after checking it against the magnet's
// info-hash (Magnet.Matches). It reads v1, v2-only and hybrid dictionaries;
// a hybrid's two descriptions of the files must agree. infoBytes is not
// retained.
func ParseInfo(infoBytes []byte) (*Info, error) {
	if err := bencode.Check(infoBytes); err != nil {
		return nil, fmt.Errorf("metainfo: %w: info: %w", ErrInvalid, err)
	}
	if infoBytes[0] != 'd' {
		return nil, invalidf("info is not a dictionary")
	}
	if err := checkKeys("info", infoBytes); err != nil {
		return nil, err
	}
	var raw rawInfo
	if err := bencode.Unmarshal(infoBytes, &raw); err != nil {
		return nil, fmt.Errorf("metainfo: %w: info: %w", ErrInvalid, err)
	}
	info := &Info{MetaVersion: 1}

	// BEP 52 asks to look at the version first, before errors that would
	// only confuse about a newer format.
	if raw.MetaVersion != nil {
		var v int64
		if err := bencode.Unmarshal(raw.MetaVersion, &v); err != nil {
			return nil, invalidf("info: meta version is not an integer")
		}
		switch {
		case v == 2:
			info.MetaVersion = 2
		case raw.Pieces == nil:
			return nil, fmt.Errorf("metainfo: meta version %d is %w", v, ErrUnsupported)
		}
		// Another version with v1 pieces is read as v1, as before v2 existed.
	}
	hasV1 := raw.Pieces != nil || info.MetaVersion == 1
	if hasV1 {
		info.InfoHashV1 = sha1.Sum(infoBytes)
	}
	if info.HasV2() {
		info.InfoHashV2 = sha256.Sum256(infoBytes)
	}

	// Name.
	name, ok := utf8String(raw.NameUTF8)
	if !ok {
		if raw.Name == nil {
			return nil, invalidf("info: missing name")
		}
		if err := bencode.Unmarshal(raw.Name, &name); err != nil {
			return nil, invalidf("info: name is not a string")
		}
	}
	info.Name = SanitizeComponent(name)
	if info.Name == "" {
		if hasV1 {
			info.Name = info.InfoHashV1.String()
		} else {
			info.Name = info.InfoHashV2.String()
		}
	}

	// Pieces.
	if raw.PieceLength == nil {
		return nil, invalidf("info: missing piece length")
	}
	if err := bencode.Unmarshal(raw.PieceLength, &info.PieceLength); err != nil {
		return nil, invalidf("info: piece length is not an integer")
	}
	if info.PieceLength <= 0 || info.PieceLength > MaxPieceLength {
		return nil, invalidf("info: piece length %d is outside 1..%d", info.PieceLength, MaxPieceLength)
	}
	if info.HasV2() && merkle.PieceLevels(info.PieceLength) < 0 {
		return nil, invalidf("info: piece length %d is not a power of two of at least 16 KiB, as v2 requires", info.PieceLength)
	}
	if hasV1 {
		if raw.Pieces == nil {
			return nil, invalidf("info: missing pieces")
		}
		if err := bencode.Unmarshal(raw.Pieces, &info.Pieces); err != nil {
			return nil, invalidf("info: pieces is not a string")
		}
		if len(info.Pieces)%sha1.Size != 0 {
			return nil, invalidf("info: pieces is %d bytes, not a multiple of 20", len(info.Pieces))
		}
	}

	if raw.Private != nil {
		var p int64
		if err := bencode.Unmarshal(raw.Private, &p); err != nil {
			return nil, invalidf("info: private is not an integer")
		}
		info.Private = p != 0
	}

	var tree *fileTree
	if info.HasV2() {
		if raw.FileTree == nil {
			return nil, invalidf("info: meta version 2 without a file tree")
		}
		var err error
		if tree, err = parseFileTree(raw.FileTree, defaultTreeLimits); err != nil {
			return nil, err
		}
	}
	if !hasV1 {
		// v2-only: the file tree is the only description of the files (a
		// stray "length" or "files" without "pieces" is not a v1 part).
		if err := info.layOutV2(tree); err != nil {
			return nil, err
		}
		if info.TotalLength == 0 {
			return nil, invalidf("info: torrent holds no data (total length 0)")
		}
		if n := info.NumPieces(); n > MaxPieces {
			return nil, invalidf("info: %d pieces, more than %d", n, MaxPieces)
		}
		return info, nil
	}

	// Files.
	switch {
	case raw.Length != nil && raw.Files != nil:
		return nil, invalidf("info: has both length and files")
	case raw.Length != nil:
		var n int64
		if err := bencode.Unmarshal(raw.Length, &n); err != nil {
			return nil, invalidf("info: length is not a 64-bit integer")
		}
		if n < 0 {
			return nil, invalidf("info: negative length %d", n)
		}
		var attr string
		if raw.Attr != nil {
			_ = bencode.Unmarshal(raw.Attr, &attr) // advisory only
		}
		info.SingleFile = true
		info.TotalLength = n
		info.Files = []File{{Path: []string{info.Name}, Length: n, Attr: attr, Pad: strings.ContainsRune(attr, 'p')}}
	case raw.Files != nil:
		files, total, err := parseFiles(raw.Files)
		if err != nil {
			return nil, err
		}
		info.Files, info.TotalLength = files, total
	default:
		return nil, invalidf("info: has neither length nor files")
	}

	if info.TotalLength == 0 {
		return nil, invalidf("info: torrent holds no data (total length 0)")
	}
	want := info.TotalLength / info.PieceLength
	if info.TotalLength%info.PieceLength != 0 {
		want++
	}
	if got := int64(len(info.Pieces) / sha1.Size); got != want {
		return nil, invalidf("info: %d piece hashes for %d bytes in pieces of %d (want %d)",
			got, info.TotalLength, info.PieceLength, want)
	}
	if tree != nil {
		if err := info.matchHybrid(tree); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// parseFiles decodes, validates and sanitises the "files" list.
func parseFiles(b []byte) ([]File, int64, error) {
	n, err := countDicts("info: files", b, MaxFiles)
	if err != nil {
		return nil, 0, err
	}
	if n > MaxFiles {
		return nil, 0, invalidf("info: more than %d files", MaxFiles)
	}
	if n == 0 {
		return nil, 0, invalidf("info: files is empty")
	}
	raws := make([]rawFile, 0, n)
	if err := bencode.Unmarshal(b, &raws); err != nil {
		return nil, 0, invalidf("info: files: wrong type in a file entry: %w", err)
	}
	files := make([]File, len(raws))
	var total int64
	for i, rf := range raws {
		if rf.Length == nil {
			return nil, 0, invalidf("info: file %d: missing length", i)
		}
		l := *rf.Length
		if l < 0 {
			return nil, 0, invalidf("info: file %d: negative length %d", i, l)
		}
		if total > math.MaxInt64-l {
			return nil, 0, invalidf("info: total length overflows at file %d", i)
		}
		comps := rf.Path
		if len(rf.PathUTF8) > 0 && allUTF8(rf.PathUTF8) {
			comps = rf.PathUTF8
		} else if rf.Path == nil {
			return nil, 0, invalidf("info: file %d: missing or empty path", i)
		}
		files[i] = File{
			Path:   sanitizePath(comps),
			Length: l,
			Offset: total,
			Attr:   rf.Attr,
			Pad:    strings.ContainsRune(rf.Attr, 'p'),
		}
		total += l
	}
	uniquePaths(files)
	return files, total, nil
}

// utf8String decodes an optional "*.utf-8" string field; ok is false when it
// is absent, not a string, or not valid UTF-8.
func utf8String(raw []byte) (string, bool) {
	if raw == nil {
		return "", false
	}
	var s string
	if err := bencode.Unmarshal(raw, &s); err != nil || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}

func allUTF8(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
