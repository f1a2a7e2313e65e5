package cache

import (
	"bytes"
	"errors"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// The cache's decoders of bytes read back from badger: a piece record and a
// piece key. Both come from our own writes, but a damaged store must give an
// error, never a panic or a misread.

// FuzzDecodeRecord: decodeRecord accepts exactly the records encode writes
// (with a positive size that fits its slot), and any error wraps
// errBadRecord.
func FuzzDecodeRecord(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		nil,
		record{size: 1 << 20, sum: 0x0123456789abcdef, seq: 42, shift: 20}.encode(),
		record{size: 1, sum: 0, seq: 0, shift: minShift}.encode(),
		record{size: -1, sum: 1, seq: 1, shift: 14}.encode(),
		record{size: 1<<16 + 1, sum: 1, seq: 1, shift: 16}.encode(),
		record{size: 1, sum: 1, seq: 1, shift: maxShift + 1}.encode(),
		append(record{size: 7, sum: 1, seq: 1, shift: 13}.encode(), 0),
		{1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errBadRecord) || r != (record{}) {
				t.Fatalf("decodeRecord(%x) = %+v, %v", b, r, err)
			}
			return
		}
		if r.size <= 0 || r.shift < minShift || r.shift > maxShift || int64(r.size) > 1<<r.shift {
			t.Fatalf("accepted size %d in slots of 1<<%d", r.size, r.shift)
		}
		if got := r.encode(); !bytes.Equal(got, b) {
			t.Fatalf("record %+v re-encodes as %x, came from %x", r, got, b)
		}
	})
}

// FuzzParsePieceKey: parsePieceKey accepts exactly keys of pieceKeyLen
// bytes, and pieceKeyOf rebuilds them.
func FuzzParsePieceKey(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		nil,
		pieceKeyOf(kindPiece, ihOf(1), 0),
		pieceKeyOf(kindRecord, ihOf(0x1ff), 0xffffffff),
		metaKeyOf(ihOf(3)),
		append(pieceKeyOf(kindPiece, ihOf(1), 7), 0),
		formatKey,
	})
	f.Fuzz(func(t *testing.T, k []byte) {
		ih, piece, ok := parsePieceKey(k)
		if ok != (len(k) == pieceKeyLen) {
			t.Fatalf("parsePieceKey(%x) ok = %v", k, ok)
		}
		if ok && !bytes.Equal(pieceKeyOf(k[0], ih, piece), k) {
			t.Fatalf("key %x parsed as %x/%d", k, ih, piece)
		}
	})
}

// FuzzParseDataFileName: the names of the files in the pieces folder come
// from the disk, where anything may have put a file. parseDataFileName
// accepts exactly the names dataFileName gives.
func FuzzParseDataFileName(f *testing.F) {
	fuzztest.Seeds(f, []string{
		"",
		dataFileName(ihOf(1), 20),
		dataFileName(ihOf(0x1ff), minShift),
		dataFileName(ihOf(2), maxShift) + "0",
		"0000000000000000000000000000000000000001-020",
		"000000000000000000000000000000000000000g-20",
		"0000000000000000000000000000000000000001-+20",
		"0000000000000000000000000000000000000001",
		"000000000000000000000000000000000000000A-20",
	})
	f.Fuzz(func(t *testing.T, name string) {
		ih, shift, ok := parseDataFileName(name)
		if !ok {
			return
		}
		if shift < minShift || shift > maxShift {
			t.Fatalf("%q: shift %d", name, shift)
		}
		if got := dataFileName(ih, shift); got != name {
			t.Fatalf("%q parsed as %x/%d, which is named %q", name, ih, shift, got)
		}
	})
}
