package metainfo

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// The v2 fuzz targets' seeds live in testdata/fuzz/<FuzzName>/, made from
// the v2 golden fixtures and hand-made cases (fuzzSeedsV2) and checked or,
// with -update-corpus, rewritten by fuzztest.Seeds.

// FuzzParseV2 parses .torrent files with v2 and hybrid parts and checks
// what a v2 Info promises: both hashes, piece-aligned files, every piece in
// one file, piece layers that survive Marshal, magnets that round-trip.
func FuzzParseV2(f *testing.F) {
	fuzztest.Seeds(f, v2Seeds(f, "FuzzParseV2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		checkV2Invariants(t, m.Info, m.InfoBytes)
		if m.InfoHash != m.Info.InfoHash() || m.InfoHashV2 != m.Info.InfoHashV2 {
			t.Fatal("MetaInfo and Info disagree on the hashes")
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal()): %v", err)
		}
		if back.InfoHash != m.InfoHash || back.InfoHashV2 != m.InfoHashV2 || !slices.EqualFunc(back.Info.Files, m.Info.Files, sameHashes) {
			t.Fatal("round trip changed the torrent's hashes or layers")
		}
		mg, err := ParseMagnet(m.Magnet())
		if err != nil || mg.InfoHash != m.InfoHash || mg.InfoHashV2 != m.InfoHashV2 || !mg.Matches(m.InfoBytes) {
			t.Fatalf("magnet %s: %v", m.Magnet(), err)
		}
	})
}

// FuzzParseInfoV2 parses info dictionaries as they come from peers.
func FuzzParseInfoV2(f *testing.F) {
	fuzztest.Seeds(f, v2Seeds(f, "FuzzParseInfoV2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(data)
		if err != nil {
			return
		}
		checkV2Invariants(t, info, data)
		if info.HasV2() {
			if _, err := info.WithPieceLayers(nil); err != nil {
				t.Fatalf("WithPieceLayers(nil): %v", err)
			}
		}
	})
}

// FuzzParseMagnetV2 checks magnets with btmh round-trip with both hashes.
func FuzzParseMagnetV2(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeedsV2(f)["FuzzParseMagnetV2"])
	f.Fuzz(func(t *testing.T, uri string) {
		m, err := ParseMagnet(uri)
		if err != nil {
			return
		}
		if m.InfoHashV2.IsZero() && !m.HasV1() || !m.HasV1() && m.InfoHash != m.InfoHashV2.Truncate() {
			t.Fatalf("hashes %s %s", m.InfoHash, m.InfoHashV2)
		}
		back, err := ParseMagnet(m.String())
		if err != nil || back.InfoHash != m.InfoHash || back.InfoHashV2 != m.InfoHashV2 || back.HasV1() != m.HasV1() {
			t.Fatalf("round trip of %s: %v %+v", m.String(), err, back)
		}
	})
}

func sameHashes(a, b File) bool {
	if (a.V2 == nil) != (b.V2 == nil) {
		return false
	}
	return a.V2 == nil || a.V2.PiecesRoot == b.V2.PiecesRoot && bytes.Equal(a.V2.Layer, b.V2.Layer)
}

// checkV2Invariants asserts what every parsed Info with a v2 part
// promises, on top of checkInfoInvariants.
func checkV2Invariants(t *testing.T, info *Info, infoBytes []byte) {
	t.Helper()
	checkInfoInvariants(t, info)
	if !info.HasV2() {
		if !info.InfoHashV2.IsZero() || !info.HasV1() {
			t.Fatal("a v1 Info with a v2 hash, or without v1 hashes")
		}
		return
	}
	if info.InfoHashV2 != sha256.Sum256(infoBytes) || info.HasV1() == info.InfoHashV1.IsZero() {
		t.Fatal("v2 hash is not the SHA-256 of the info, or v1 hash and hashes disagree")
	}
	if info.NumPieces() > MaxPieces && !info.HasV1() {
		t.Fatalf("%d pieces", info.NumPieces())
	}
	for j, f := range info.Files {
		if f.Pad != (f.V2 == nil) {
			t.Fatalf("file %d: pad %v, v2 %v", j, f.Pad, f.V2)
		}
		if f.Pad {
			continue
		}
		if f.Length > 0 && (f.Offset%info.PieceLength != 0 || f.V2.PiecesRoot == [32]byte{}) {
			t.Fatalf("file %d at %d of %d bytes: not aligned, or no root", j, f.Offset, f.Length)
		}
		if l := f.V2.Layer; l != nil && int64(len(l)) != ((f.Length-1)/info.PieceLength+1)*32 {
			t.Fatalf("file %d: layer of %d bytes", j, len(l))
		}
		for _, r := range info.LayerRequests(j) {
			if err := r.Check(f.Length); err != nil {
				t.Fatalf("file %d: layer request %+v: %v", j, r, err)
			}
		}
	}
	for i := range min(info.NumPieces(), 64) {
		p, ok := info.PieceV2(i)
		if !ok || p.File < 0 || p.File >= len(info.Files) || p.Length <= 0 || p.Length > info.PieceLen(i) {
			t.Fatalf("piece %d: %+v %v", i, p, ok)
		}
		if r, ok := p.BlockRequest(); ok {
			if err := r.Check(info.Files[p.File].Length); err != nil {
				t.Fatalf("piece %d: block request %+v: %v", i, r, err)
			}
		}
		if info.PieceLen(i) <= 1<<20 {
			err := info.VerifyPieceV2(i, make([]byte, info.PieceLen(i)))
			if err != nil && !errors.Is(err, ErrPieceHash) && !(errors.Is(err, ErrNoPieceLayer) && !p.Known) {
				t.Fatalf("piece %d of zeros: %v", i, err)
			}
		}
	}
}

// v2Seeds is fuzzSeedsV2's seeds of one target as []byte.
func v2Seeds(tb testing.TB, name string) [][]byte {
	var out [][]byte
	for _, s := range fuzzSeedsV2(tb)[name] {
		out = append(out, []byte(s))
	}
	return out
}

// fuzzSeedsV2 gathers seeds: the v2 and hybrid golden fixtures, hand-made
// torrents of every shape TestParseV2 reads, the broken ones
// TestParseV2Errors refuses, and magnets with btmh.
func fuzzSeedsV2(t testing.TB) map[string][]string {
	seeds := map[string][]string{}
	add := func(name string, b []byte) { seeds[name] = append(seeds[name], string(b)) }
	fixtures, err := filepath.Glob(filepath.Join(goldenDir, "libtorrent-*.torrent"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := Parse(b); err != nil || !m.Info.HasV2() {
			continue
		}
		add("FuzzParseV2", b)
		if raw, ok, _ := bytesRaw(b); ok {
			add("FuzzParseInfoV2", raw)
		}
	}
	specs := []v2Spec{
		{name: "m", pl: 32 * kib, files: v2Files(1000, 0, 70*kib, 32*kib, 5)},
		{name: "f0.bin", pl: 16 * kib, files: v2Files(40000)},
		{name: "n", pl: 16 * kib, files: []v2In{{"a/b/c.txt", []byte("abc")}, {"a/z", []byte("zz")}, {"b", make([]byte, 40*kib)}}},
		{name: "h", pl: 16 * kib, files: v2Files(1000, 0, 40000, 7), hybrid: true, tailPad: true},
		{name: "h", pl: 16 * kib, files: v2Files(1000, 40000, 7), hybrid: true},
		{name: "f0.bin", pl: 16 * kib, files: v2Files(40000), hybrid: true, single: true},
		{name: "..", pl: 16 * kib, files: []v2In{{"../x", []byte("1")}, {".pad/16383", []byte("2")}, {"\x00/.", []byte("3")}}},
	}
	for _, s := range specs {
		add("FuzzParseV2", s.torrent(t))
		add("FuzzParseInfoV2", mustMarshal(t, s.info()))
	}
	bad := []map[string]any{
		d("name", "x", "piece length", int64(16384), "meta version", int64(2), "file tree", d()),
		d("name", "x", "piece length", int64(16384), "meta version", int64(2), "file tree", d("", d("length", int64(1)))),
		d("name", "x", "piece length", int64(16384), "meta version", int64(2), "file tree", d("a", d("", d("length", int64(5))))),
		d("name", "x", "piece length", int64(40000), "meta version", int64(2), "file tree", d("a", d("", d("length", int64(0))))),
		d("name", "x", "piece length", int64(16384), "meta version", int64(3), "file tree", d("a", d("", d("length", int64(0))))),
	}
	for _, b := range bad {
		add("FuzzParseInfoV2", mustMarshal(t, b))
		add("FuzzParseV2", mustMarshal(t, d("info", b)))
	}
	s := v2Spec{name: "m", pl: 16 * kib, files: v2Files(40000, 50000, 100)}
	roots, layers := s.roots()
	add("FuzzParseV2", mustMarshal(t, d("info", s.info(), "piece layers", d(string(roots[0][:]), string(layers[0][:64])))))
	add("FuzzParseV2", mustMarshal(t, d("info", s.info(), "piece layers", d(strings.Repeat("x", 32), string(layers[0])))))
	add("FuzzParseInfoV2", []byte("d9:file treed1:ad0:d6:lengthi1e11:pieces root32:"+strings.Repeat("r", 32)+"ee1:bd0:d6:lengthi0eeee12:meta versioni2e4:name1:x12:piece lengthi16384ee"))
	add("FuzzParseInfoV2", []byte("d9:file tree"+strings.Repeat("d1:a", 30)+"d0:d6:lengthi1e11:pieces root32:"+strings.Repeat("r", 32)+"ee"+strings.Repeat("e", 30)+"12:meta versioni2e4:name1:x12:piece lengthi16384ee"))

	const hx = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	v2 := strings.Repeat("ab", 32)
	for _, u := range []string{
		"magnet:?xt=urn:btmh:1220" + v2,
		"magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1220" + v2 + "&dn=x&tr=http://t/",
		"magnet:?xt=urn:btmh:1220" + strings.ToUpper(v2) + "&xt=urn:btih:" + hx,
		"magnet:?xt=urn:btmh:1320" + v2,
		"magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1320" + v2,
		"magnet:?xt=urn:btmh:1220" + v2[:60],
		"magnet:?xt=urn:btmh:1220" + v2 + "&xt=urn:btmh:1220" + strings.Repeat("cd", 32),
		"magnet:?xt.1=urn:btmh:1220" + v2 + "&xt.2=urn:btmh:1220" + v2,
		"magnet:?xt=urn:btmh:",
		"magnet:?xt=urn:btmh:1220" + v2 + "#x",
	} {
		add("FuzzParseMagnetV2", []byte(u))
	}
	return seeds
}
