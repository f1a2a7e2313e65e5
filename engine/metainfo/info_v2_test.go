package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

const kib = 1 << 10

// TestParseV2 reads v2-only and hybrid torrents of every shape and checks
// the layout, the hashes and that every piece verifies with its v2 hash.
func TestParseV2(t *testing.T) {
	type want struct {
		paths  []string // DisplayPath of each File, pads included
		offs   []int64
		total  int64
		pieces int
		single bool
	}
	tests := []struct {
		name string
		spec v2Spec
		want want
	}{
		{"v2 multi", v2Spec{name: "m", pl: 32 * kib, files: v2Files(1000, 0, 70*kib, 32*kib, 5)},
			want{[]string{"f0.bin", ".pad/31768", "f1.bin", "f2.bin", ".pad/26624", "f3.bin", "f4.bin"},
				[]int64{0, 1000, 32 * kib, 32 * kib, 102 * kib, 128 * kib, 160 * kib}, 160*kib + 5, 6, false}},
		{"v2 single", v2Spec{name: "f0.bin", pl: 16 * kib, files: v2Files(40000)},
			want{[]string{"f0.bin"}, []int64{0}, 40000, 3, true}},
		{"v2 one file named unlike the torrent", v2Spec{name: "folder", pl: 16 * kib, files: v2Files(40000)},
			want{[]string{"f0.bin"}, []int64{0}, 40000, 3, false}},
		{"v2 trailing empty file", v2Spec{name: "m", pl: 16 * kib, files: v2Files(10, 20, 0)},
			want{[]string{"f0.bin", ".pad/16374", "f1.bin", "f2.bin"}, []int64{0, 10, 16 * kib, 16*kib + 20}, 16*kib + 20, 2, false}},
		{"v2 nested", v2Spec{name: "n", pl: 16 * kib, files: []v2In{
			{"a/b/c.txt", []byte("abc")}, {"a/z", []byte("zz")}, {"b", make([]byte, 40*kib)}}},
			want{[]string{"a/b/c.txt", ".pad/16381", "a/z", ".pad/16382", "b"}, []int64{0, 3, 16 * kib, 16*kib + 2, 32 * kib}, 72 * kib, 5, false}},
		{"hybrid with tail pad", v2Spec{name: "h", pl: 16 * kib, files: v2Files(1000, 0, 40000, 7), hybrid: true, tailPad: true},
			want{[]string{"f0.bin", ".pad/15384", "f1.bin", "f2.bin", ".pad/9152", "f3.bin", ".pad/16377"},
				[]int64{0, 1000, 16 * kib, 16 * kib, 16*kib + 40000, 64 * kib, 64*kib + 7}, 80 * kib, 5, false}},
		{"hybrid without tail pad", v2Spec{name: "h", pl: 16 * kib, files: v2Files(1000, 40000, 7), hybrid: true},
			want{[]string{"f0.bin", ".pad/15384", "f1.bin", ".pad/9152", "f2.bin"},
				[]int64{0, 1000, 16 * kib, 16*kib + 40000, 64 * kib}, 64*kib + 7, 5, false}},
		{"hybrid single file", v2Spec{name: "f0.bin", pl: 16 * kib, files: v2Files(40000), hybrid: true, single: true},
			want{[]string{"f0.bin"}, []int64{0}, 40000, 3, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.spec.torrent(t)
			m, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info
			checkInfoInvariants(t, info)
			var paths []string
			var offs []int64
			for _, f := range info.Files {
				paths = append(paths, f.DisplayPath())
				offs = append(offs, f.Offset)
				if f.Pad != strings.HasPrefix(f.DisplayPath(), ".pad/") || f.Pad != (f.V2 == nil) {
					t.Errorf("%s: Pad %v, V2 %v", f.DisplayPath(), f.Pad, f.V2)
				}
			}
			w := tc.want
			if !slices.Equal(paths, w.paths) || !slices.Equal(offs, w.offs) || info.TotalLength != w.total ||
				info.NumPieces() != w.pieces || info.SingleFile != w.single {
				t.Fatalf("files %q at %d, total %d, %d pieces, single %v\nwant  %q at %d, total %d, %d pieces, single %v",
					paths, offs, info.TotalLength, info.NumPieces(), info.SingleFile, w.paths, w.offs, w.total, w.pieces, w.single)
			}
			ib, _, _ := bytesRaw(raw)
			if !info.HasV2() || info.HasV1() != tc.spec.hybrid || info.InfoHashV2 != sha256.Sum256(ib) || m.InfoHashV2 != info.InfoHashV2 {
				t.Fatalf("HasV2 %v HasV1 %v, v2 hash %s", info.HasV2(), info.HasV1(), info.InfoHashV2)
			}
			if tc.spec.hybrid {
				if m.InfoHash != sha1.Sum(ib) || info.InfoHashV1 != m.InfoHash {
					t.Fatal("a hybrid is named by its v1 hash")
				}
			} else if m.InfoHash != info.InfoHashV2.Truncate() || !info.InfoHashV1.IsZero() || info.PieceHash(0) != ([20]byte{}) {
				t.Fatal("a v2-only torrent is named by its truncated v2 hash and has no SHA-1")
			}
			if !info.HasPieceLayers() {
				t.Fatal("piece layers were in the torrent but are not in the Info")
			}

			// Every piece checks with v2; a changed byte, or a non-zero
			// byte of padding, does not.
			roots, _ := tc.spec.roots()
			data := stream(info, tc.spec.files)
			k := 0
			for _, f := range info.Files {
				if !f.Pad {
					if f.V2.PiecesRoot != roots[k] {
						t.Fatalf("%s: pieces root differs", f.DisplayPath())
					}
					k++
				}
			}
			for i := range info.NumPieces() {
				piece := pieceData(info, data, i)
				if err := info.VerifyPieceV2(i, piece); err != nil {
					t.Fatalf("piece %d: %v", i, err)
				}
				if tc.spec.hybrid && sha1.Sum(piece) != info.PieceHash(i) {
					t.Fatalf("piece %d: v1 hash differs", i)
				}
				p, _ := info.PieceV2(i)
				bad := slices.Clone(piece)
				bad[0] ^= 1
				if err := info.VerifyPieceV2(i, bad); !errors.Is(err, ErrPieceHash) {
					t.Fatalf("piece %d with a changed byte: %v", i, err)
				}
				if p.Length < int64(len(piece)) {
					bad = slices.Clone(piece)
					bad[len(bad)-1] = 1
					if err := info.VerifyPieceV2(i, bad); !errors.Is(err, ErrPieceHash) {
						t.Fatalf("piece %d with dirty padding: %v", i, err)
					}
				}
			}
			if err := info.VerifyPieceV2(info.NumPieces(), nil); err == nil {
				t.Fatal("piece past the end verified")
			}

			// Marshal keeps the piece layers, so the bytes round-trip.
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil || !back.Info.HasPieceLayers() || back.InfoHash != m.InfoHash || back.InfoHashV2 != m.InfoHashV2 {
				t.Fatalf("round trip: %v", err)
			}
			mg, err := ParseMagnet(m.Magnet())
			if err != nil || mg.InfoHash != m.InfoHash || mg.InfoHashV2 != m.InfoHashV2 || mg.HasV1() != tc.spec.hybrid || !mg.Matches(ib) {
				t.Fatalf("magnet %s: %v %+v", m.Magnet(), err, mg)
			}
		})
	}
}

// TestParseV2Errors alters valid v2 and hybrid info dictionaries in every
// way the parser must refuse.
func TestParseV2Errors(t *testing.T) {
	base := v2Spec{name: "m", pl: 16 * kib, files: []v2In{{"a/x", make([]byte, 1000)}, {"b", make([]byte, 40000)}}}
	hybrid := base
	hybrid.hybrid = true
	tree := func(s v2Spec) map[string]any { return s.info()["file tree"].(map[string]any) }
	fileProps := func(info map[string]any) map[string]any {
		return info["file tree"].(map[string]any)["b"].(map[string]any)[""].(map[string]any)
	}
	tests := []struct {
		name  string
		info  func() map[string]any
		text  string
		unsup bool
	}{
		{"no file tree", func() map[string]any { i := base.info(); delete(i, "file tree"); return i }, "without a file tree", false},
		{"file tree not a dict", func() map[string]any { i := base.info(); i["file tree"] = "x"; return i }, "file tree is not a dictionary", false},
		{"empty file tree", func() map[string]any { i := base.info(); i["file tree"] = d(); return i }, "holds no files", false},
		{"only empty folders", func() map[string]any { i := base.info(); i["file tree"] = d("a", d(), "b", d("c", d())); return i }, "holds no files", false},
		{"root is a file", func() map[string]any { i := base.info(); i["file tree"] = d("", d("length", int64(1))); return i }, "root is a file", false},
		{"file beside names", func() map[string]any {
			i := base.info()
			i["file tree"].(map[string]any)["a"].(map[string]any)[""] = d("length", int64(0))
			return i
		}, "beside other names", false},
		{"entry not a dict", func() map[string]any { i := base.info(); i["file tree"].(map[string]any)["c"] = int64(5); return i }, `"c" is not a dictionary`, false},
		{"props not a dict", func() map[string]any { i := base.info(); i["file tree"].(map[string]any)["c"] = d("", "x"); return i }, "not a dictionary", false},
		{"missing length", func() map[string]any { i := base.info(); delete(fileProps(i), "length"); return i }, `"b": missing length`, false},
		{"negative length", func() map[string]any { i := base.info(); fileProps(i)["length"] = int64(-1); return i }, "negative length", false},
		{"length not an integer", func() map[string]any { i := base.info(); fileProps(i)["length"] = "1"; return i }, "length is not", false},
		{"missing pieces root", func() map[string]any { i := base.info(); delete(fileProps(i), "pieces root"); return i }, "without a pieces root", false},
		{"zero pieces root", func() map[string]any {
			i := base.info()
			fileProps(i)["pieces root"] = string(make([]byte, 32))
			return i
		}, "without a pieces root", false},
		{"short pieces root", func() map[string]any { i := base.info(); fileProps(i)["pieces root"] = "abc"; return i }, "32-byte", false},
		{"pad file in the tree", func() map[string]any { i := base.info(); fileProps(i)["attr"] = "p"; return i }, "pad file", false},
		{"attr not a string", func() map[string]any { i := base.info(); fileProps(i)["attr"] = int64(1); return i }, "attr is not a string", false},
		{"piece length not a power of two", func() map[string]any { i := base.info(); i["piece length"] = int64(40000); return i }, "power of two", false},
		{"piece length under 16 KiB", func() map[string]any { i := base.info(); i["piece length"] = int64(8192); return i }, "power of two", false},
		{"meta version 3", func() map[string]any { i := base.info(); i["meta version"] = int64(3); return i }, "meta version 3", true},
		{"too many pieces", func() map[string]any {
			i := base.info()
			fileProps(i)["length"] = int64(MaxPieces+1) * 16 * kib
			return i
		}, "pieces, more than", false},
		{"total overflows", func() map[string]any {
			i := base.info()
			fileProps(i)["length"] = int64(1 << 62)
			i["file tree"].(map[string]any)["c"] = d("", d("length", int64(1<<62), "pieces root", strings.Repeat("r", 32)))
			return i
		}, "overflows", false},

		{"hybrid: name differs", func() map[string]any {
			i := hybrid.info()
			t := tree(hybrid)
			t["c"] = t["b"]
			delete(t, "b")
			i["file tree"] = t
			return i
		}, `file 1 is "b" in v1 and "c" in the v2 file tree`, false},
		{"hybrid: length differs", func() map[string]any {
			i := hybrid.info()
			i["files"].([]any)[2].(map[string]any)["length"] = int64(39999)
			return i
		}, "40000 in the v2 file tree", false},
		{"hybrid: pad missing", func() map[string]any {
			i := hybrid.info()
			files := i["files"].([]any)
			i["files"] = []any{files[0], files[2]}
			i["pieces"] = string(piecesOf(make([]byte, 41000), 16*kib))
			return i
		}, "pad files missing or wrong", false},
		{"hybrid: file only in v1", func() map[string]any {
			i := hybrid.info()
			e := fileEntry(0, "zz")
			i["files"] = append(i["files"].([]any), e)
			return i
		}, `v1 lists "zz"`, false},
		{"hybrid: file only in v2", func() map[string]any {
			i := hybrid.info()
			i["file tree"].(map[string]any)["c"] = d("", d("length", int64(0)))
			return i
		}, `file tree lists "c"`, false},
		{"hybrid: too much tail padding", func() map[string]any {
			i := hybrid.info()
			e := fileEntry(16*kib+1, ".pad", "x")
			e["attr"] = "p"
			i["files"] = append(i["files"].([]any), e)
			i["pieces"] = string(piecesOf(make([]byte, 56384+16*kib+1), 16*kib))
			return i
		}, "past the piece boundary", false},
		{"hybrid: no file tree", func() map[string]any { i := hybrid.info(); delete(i, "file tree"); return i }, "without a file tree", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustMarshal(t, tc.info())
			info, err := ParseInfo(b)
			want := ErrInvalid
			if tc.unsup {
				want = ErrUnsupported
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v mentioning %q (info %+v)", err, want, tc.text, info)
			}
			t.Log(err)
		})
	}
	if _, err := ParseInfo(mustMarshal(t, hybrid.info())); err != nil {
		t.Fatalf("the unaltered hybrid: %v", err)
	}
}

// TestParsePieceLayersErrors alters the piece layers of a .torrent.
func TestParsePieceLayersErrors(t *testing.T) {
	s := v2Spec{name: "m", pl: 16 * kib, files: v2Files(40000, 50000, 100)}
	roots, layers := s.roots()
	tests := []struct {
		name   string
		layers any
		text   string
	}{
		{"short layer", d(string(roots[0][:]), string(layers[0][:64])), "holds 64 bytes, want 96"},
		{"layer not hashing to its root", d(string(roots[0][:]), string(layers[1][:96])), "does not hash to it"},
		{"unknown root", d(strings.Repeat("x", 32), string(layers[0])), "is not the pieces root"},
		{"root of a one-piece file", d(string(roots[2][:]), string(roots[2][:])), "is not the pieces root"},
		{"key not 32 bytes", d("abc", string(layers[0])), "key of 3 bytes"},
		{"value not a string", d(string(roots[0][:]), int64(1)), "not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustMarshal(t, d("info", s.info(), "piece layers", tc.layers))
			if _, err := Parse(b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.text)
			}
		})
	}
	// Absent, or of another type, they are fetched from peers later.
	for _, pl := range []any{nil, "x"} {
		top := d("info", s.info())
		if pl != nil {
			top["piece layers"] = pl
		}
		m, err := Parse(mustMarshal(t, top))
		if err != nil {
			t.Fatal(err)
		}
		if m.Info.HasPieceLayers() {
			t.Fatal("layers out of nowhere")
		}
		if err := m.Info.VerifyPieceV2(0, make([]byte, 16*kib)); !errors.Is(err, ErrNoPieceLayer) {
			t.Fatalf("piece of an unknown layer: %v", err)
		}
		// A file of one piece needs no layer.
		data := stream(m.Info, s.files)
		last := m.Info.NumPieces() - 1
		if err := m.Info.VerifyPieceV2(last, pieceData(m.Info, data, last)); err != nil {
			t.Fatalf("one-piece file: %v", err)
		}
	}
	// Only some layers: the others stay unknown.
	m, err := Parse(mustMarshal(t, d("info", s.info(), "piece layers", d(string(roots[1][:]), string(layers[1])))))
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Files[0].V2.Layer != nil || m.Info.Files[2].V2.Layer == nil || m.Info.HasPieceLayers() {
		t.Fatal("partial layers misplaced")
	}
}

// TestWithPieceLayers adds layers fetched from peers, layer by layer, each
// chunk checked with a proof up to the root.
func TestWithPieceLayers(t *testing.T) {
	s := v2Spec{name: "m", pl: 16 * kib, files: v2Files(40000, 20*16*kib+5)}
	info, err := ParseInfo(mustMarshal(t, s.info()))
	if err != nil {
		t.Fatal(err)
	}
	fetched := map[[32]byte][]byte{}
	for j, f := range info.Files {
		rs := info.LayerRequests(j)
		if f.Pad {
			if rs != nil {
				t.Fatal("requests for a pad file")
			}
			continue
		}
		// A seeder's tree from the file's data.
		var data []byte
		for _, in := range s.files {
			if in.path == f.DisplayPath() {
				data = in.data
			}
		}
		h, _ := merkle.NewHasher(s.pl)
		h.Write(data)
		_, layer := h.Sum()
		tree, err := merkle.NewTree(f.Length, merkle.PieceLevels(s.pl), layer)
		if err != nil {
			t.Fatal(err)
		}
		var got []merkle.Hash
		for _, r := range rs {
			p, err := tree.Answer(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := info.CheckProof(j, p); err != nil {
				t.Fatalf("file %d: %+v: %v", j, r, err)
			}
			p.Nodes[0][0] ^= 1
			if err := info.CheckProof(j, p); !errors.Is(err, ErrPieceHash) {
				t.Fatalf("a lying proof: %v", err)
			}
			p.Nodes[0][0] ^= 1
			got = append(got, p.Nodes...)
		}
		n := int((f.Length-1)/s.pl + 1)
		got = got[:n] // the rest is padding
		fetched[f.V2.PiecesRoot] = merkle.Join(got)
	}
	if len(fetched) != 2 {
		t.Fatalf("fetched %d layers", len(fetched))
	}
	with, err := info.WithPieceLayers(fetched)
	if err != nil {
		t.Fatal(err)
	}
	if !with.HasPieceLayers() || info.HasPieceLayers() {
		t.Fatal("WithPieceLayers did not add them, or changed its receiver")
	}
	data := stream(with, s.files)
	for i := range with.NumPieces() {
		if err := with.VerifyPieceV2(i, pieceData(with, data, i)); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	for root, l := range fetched {
		l[0] ^= 1
		if _, err := info.WithPieceLayers(map[[32]byte][]byte{root: l}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a wrong layer: %v", err)
		}
		l[0] ^= 1
	}
	v1, _ := ParseInfo(mustMarshal(t, validSingle()))
	if _, err := v1.WithPieceLayers(fetched); err == nil {
		t.Fatal("layers for a v1 torrent")
	}
}

// TestBlockProof finds the bad block of a piece that failed, as the engine
// does to tell which peer lied: leaf hashes with a proof up to the piece's
// node, then each block against its leaf.
func TestBlockProof(t *testing.T) {
	s := v2Spec{name: "m", pl: 64 * kib, files: v2Files(3*64*kib+100, 40*kib)}
	m, err := Parse(s.torrent(t))
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info
	data := stream(info, s.files)
	for i := range info.NumPieces() {
		p, _ := info.PieceV2(i)
		r, ok := p.BlockRequest()
		if !ok {
			t.Fatalf("piece %d: no block request", i)
		}
		f := info.Files[p.File]
		var src []byte
		for _, in := range s.files {
			if in.path == f.DisplayPath() {
				src = in.data
			}
		}
		var leaves []merkle.Hash
		for off := 0; off < len(src); off += merkle.BlockSize {
			leaves = append(leaves, merkle.BlockHash(src[off:min(off+merkle.BlockSize, len(src))]))
		}
		tree, err := merkle.NewTree(f.Length, 0, leaves)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := tree.Answer(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := info.CheckProof(p.File, proof); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		piece := slices.Clone(pieceData(info, data, i))
		piece[merkle.BlockSize+7] ^= 1 // block 1 goes bad
		var bad []int
		for b := 0; int64(b*merkle.BlockSize) < p.Length; b++ {
			block := piece[b*merkle.BlockSize : min(int64((b+1)*merkle.BlockSize), p.Length)]
			if merkle.BlockHash(block) != proof.Nodes[b] {
				bad = append(bad, b)
			}
		}
		if p.Length > merkle.BlockSize && !slices.Equal(bad, []int{1}) {
			t.Fatalf("piece %d: bad blocks %v, want [1]", i, bad)
		}
	}
	one := v2Spec{name: "m", pl: 16 * kib, files: v2Files(100)}
	mo, _ := Parse(one.torrent(t))
	if p, _ := mo.Info.PieceV2(0); p.Levels != 0 {
		t.Fatal("levels of a one-block file")
	} else if _, ok := p.BlockRequest(); ok {
		t.Fatal("a block request for a one-block file")
	}
	if err := info.CheckProof(99, &merkle.Proof{}); err == nil {
		t.Fatal("proof for a file out of range")
	}
}

// TestFileTreeBounds feeds trees that would expand into too many files or
// too much path text, each refused before anything is allocated for them.
// The limits are scaled down; TestFileTreeLimits checks the real ones are
// in force.
func TestFileTreeBounds(t *testing.T) {
	file := "d0:d6:lengthi1e11:pieces root32:" + strings.Repeat("r", 32) + "ee"
	// A folder three deep of long names holding many files: small input,
	// long expanded paths.
	long := strings.Repeat("a", 200)
	var sb strings.Builder
	sb.WriteString("d200:" + long + "d200:" + long + "d200:" + long + "d")
	for i := range 100 {
		sb.WriteString(fmt.Sprintf("3:%03d", i) + file)
	}
	sb.WriteString("eeee") // the three folders and the root
	tree := []byte(sb.String())
	tests := []struct {
		name string
		lim  treeLimits
		text string
	}{
		{"files", treeLimits{files: 99, components: 1000, pathBytes: 1 << 20}, "more than 99 files"},
		{"components", treeLimits{files: 100, components: 399, pathBytes: 1 << 20}, "paths hold more than 399 components"},
		{"path bytes", treeLimits{files: 100, components: 400, pathBytes: 100*606 - 1}, "60599 bytes"},
	}
	for _, tc := range tests {
		if _, err := parseFileTree(tree, tc.lim); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.text)
		}
	}
	ft, err := parseFileTree(tree, treeLimits{files: 100, components: 400, pathBytes: 100 * 606})
	if err != nil || len(ft.files) != 100 || len(ft.files[99].path) != 4 {
		t.Fatalf("at the limits: %v", err)
	}
	// Too deep for the bencode gate.
	deep := strings.Repeat("d1:a", 80) + file + strings.Repeat("e", 80)
	if _, err := ParseInfo([]byte("d9:file tree" + deep + "12:meta versioni2e4:name1:x12:piece lengthi16384ee")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deep tree: %v", err)
	}
}

// TestFileTreeLimits checks ParseInfo's limits: MaxFiles files, and paths
// bounded like a v1 list within MaxTorrentSize. (A tree of a million files
// takes half a minute under the race detector; TestFileTreeBounds runs the
// same code with small limits.)
func TestFileTreeLimits(t *testing.T) {
	if defaultTreeLimits != (treeLimits{files: MaxFiles, components: 1 << 22, pathBytes: MaxTorrentSize}) {
		t.Fatalf("tree limits %+v", defaultTreeLimits)
	}
}

// TestPadsYieldToFiles: a real file named like a pad keeps its name; the
// pad is renamed.
func TestPadsYieldToFiles(t *testing.T) {
	s := v2Spec{name: "m", pl: 16 * kib, files: []v2In{{".pad/16383", []byte("x")}, {"a", []byte("y")}, {"b", []byte("z")}}}
	info, err := ParseInfo(mustMarshal(t, s.info()))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range info.Files {
		paths = append(paths, f.DisplayPath())
	}
	want := []string{".pad/16383", ".pad/16383.1", "a", ".pad/16383.2", "b"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %q, want %q", paths, want)
	}
	if info.Files[0].Pad || !info.Files[1].Pad {
		t.Fatal("the real file became the pad")
	}
}

// TestRootCollision: two files of different sizes can claim one pieces
// root (a crafted torrent can always lie; a 64-byte file holding two leaves
// even has the root of the two-block file they are the leaves of). The
// layer must go only to a file it fits, never to one it is too short for.
func TestRootCollision(t *testing.T) {
	s := v2Spec{name: "m", pl: 16 * kib, files: []v2In{{"a", make([]byte, 4*16*kib)}}}
	info := s.info()
	tree := info["file tree"].(map[string]any)
	root := tree["a"].(map[string]any)[""].(map[string]any)["pieces root"]
	tree["b"] = d("", d("length", int64(8*16*kib), "pieces root", root))
	m, err := Parse(mustMarshal(t, d("info", info, "piece layers", s.pieceLayers())))
	if err != nil {
		t.Fatal(err)
	}
	files := m.Info.Files
	if files[0].V2.Layer == nil || files[1].V2.Layer != nil {
		t.Fatalf("layers of %d and %d bytes", len(files[0].V2.Layer), len(files[1].V2.Layer))
	}
	for i := range m.Info.NumPieces() {
		p, ok := m.Info.PieceV2(i)
		if !ok || p.Known != (p.File == 0) {
			t.Fatalf("piece %d: %+v", i, p)
		}
		_ = m.Info.VerifyPieceV2(i, make([]byte, m.Info.PieceLen(i)))
	}
}
