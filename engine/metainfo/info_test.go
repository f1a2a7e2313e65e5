package metainfo

import (
	"crypto/sha1"
	"errors"
	"strings"
	"testing"
)

// validSingle returns the fields of a valid single-file info dictionary of
// 40000 zero bytes in 16 KiB pieces, for cases to alter.
func validSingle() map[string]any {
	return d("name", "file.bin", "piece length", int64(16384), "length", int64(40000),
		"pieces", string(piecesOf(make([]byte, 40000), 16384)))
}

func TestParseInfoValidation(t *testing.T) {
	with := func(kv ...any) map[string]any {
		m := validSingle()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	pieces3 := string(piecesOf(make([]byte, 40000), 16384))
	tests := []struct {
		name    string
		info    any    // marshalled with mustMarshal, unless raw is set
		raw     string // bencode verbatim
		wantErr error  // nil: must parse
		errText string // must appear in the message
	}{
		{name: "valid single", info: validSingle()},
		{name: "not bencode", raw: "d4:name", wantErr: ErrInvalid},
		{name: "not a dict", raw: "li1ee", wantErr: ErrInvalid, errText: "not a dictionary"},
		{name: "trailing data", raw: "de" + "x", wantErr: ErrInvalid},
		{name: "missing name", info: with("name", nil), wantErr: ErrInvalid, errText: "missing name"},
		{name: "name not string", info: with("name", int64(3)), wantErr: ErrInvalid, errText: "name is not a string"},
		{name: "missing piece length", info: with("piece length", nil), wantErr: ErrInvalid, errText: "missing piece length"},
		{name: "zero piece length", info: with("piece length", int64(0)), wantErr: ErrInvalid, errText: "piece length 0"},
		{name: "negative piece length", info: with("piece length", int64(-16384)), wantErr: ErrInvalid, errText: "piece length"},
		{name: "huge piece length", info: with("piece length", int64(1<<40)), wantErr: ErrInvalid, errText: "piece length"},
		{name: "piece length string", info: with("piece length", "16384"), wantErr: ErrInvalid, errText: "piece length is not an integer"},
		{name: "missing pieces", info: with("pieces", nil), wantErr: ErrInvalid, errText: "missing pieces"},
		{name: "pieces not multiple of 20", info: with("pieces", pieces3[:59]), wantErr: ErrInvalid, errText: "not a multiple of 20"},
		{name: "too few pieces", info: with("pieces", pieces3[:40]), wantErr: ErrInvalid, errText: "2 piece hashes"},
		{name: "too many pieces", info: with("pieces", pieces3+pieces3[:20]), wantErr: ErrInvalid, errText: "4 piece hashes"},
		{name: "negative length", info: with("length", int64(-1)), wantErr: ErrInvalid, errText: "negative length"},
		{name: "zero total", info: with("length", int64(0), "pieces", ""), wantErr: ErrInvalid, errText: "no data"},
		{name: "length and files", info: with("files", []any{fileEntry(1, "a")}), wantErr: ErrInvalid, errText: "both length and files"},
		{name: "neither length nor files", info: with("length", nil), wantErr: ErrInvalid, errText: "neither length nor files"},
		{name: "private not int", info: with("private", "yes"), wantErr: ErrInvalid, errText: "private"},
		{name: "files empty", info: with("length", nil, "files", []any{}), wantErr: ErrInvalid, errText: "files is empty"},
		{name: "files not list", info: with("length", nil, "files", "x"), wantErr: ErrInvalid, errText: "files"},
		{name: "file not dict", info: with("length", nil, "files", []any{"x"}), wantErr: ErrInvalid, errText: "files: entry 0 is not a dictionary"},
		{name: "file missing length", info: with("length", nil, "files", []any{d("path", []string{"a"})}), wantErr: ErrInvalid, errText: "file 0: missing length"},
		{name: "file negative length", info: with("length", nil, "files", []any{fileEntry(40001, "a"), fileEntry(-1, "b")}), wantErr: ErrInvalid, errText: "file 1: negative length"},
		{name: "file missing path", info: with("length", nil, "files", []any{d("length", int64(40000))}), wantErr: ErrInvalid, errText: "file 0: missing or empty path"},
		{name: "file empty path", info: with("length", nil, "files", []any{d("length", int64(40000), "path", []string{})}), wantErr: ErrInvalid, errText: "missing or empty path"},
		{name: "path not strings", info: with("length", nil, "files", []any{d("length", int64(40000), "path", []any{int64(1)})}), wantErr: ErrInvalid, errText: "files"},
		{name: "total overflow", info: with("length", nil, "files", []any{fileEntry(1<<62, "a"), fileEntry(1<<62, "b"), fileEntry(1<<62, "c")}), wantErr: ErrInvalid, errText: "overflows"},
		{name: "integer beyond int64", raw: "d6:lengthi99999999999999999999e4:name1:a12:piece lengthi16384e6:pieces0:e", wantErr: ErrInvalid},
		{name: "v2 only, empty file tree", info: with("length", nil, "pieces", nil, "meta version", int64(2), "file tree", d()), wantErr: ErrInvalid, errText: "file tree holds no files"},
		{name: "unknown meta version", info: with("pieces", nil, "meta version", int64(3)), wantErr: ErrUnsupported, errText: "meta version 3"},
		{name: "unknown meta version with v1 pieces parses v1", info: with("meta version", int64(3))},
		{name: "hybrid without pieces root", info: with("meta version", int64(2), "file tree", d("file.bin", d("", d("length", int64(40000))))), wantErr: ErrInvalid, errText: "without a pieces root"},
		{name: "hybrid", info: v2Spec{name: "file.bin", pl: 16384, files: []v2In{{"file.bin", make([]byte, 40000)}}, hybrid: true, single: true}.info()},
		{name: "v2 only", info: v2Spec{name: "file.bin", pl: 16384, files: []v2In{{"file.bin", make([]byte, 40000)}}}.info()},
		{name: "duplicate key apart", raw: "d4:name1:a6:lengthi1e4:name1:be", wantErr: ErrInvalid, errText: `"name" appears twice`},
		{name: "duplicate key adjacent", raw: "d4:name1:a4:name1:be", wantErr: ErrInvalid},
		{name: "duplicate key nested", info: with("length", nil, "files", []any{rawValue([]byte("d6:lengthi40000e4:pathl1:ae3:zzz0:6:lengthi1ee"))}), wantErr: ErrInvalid, errText: "appears twice"},
		{name: "too deep", raw: strings.Repeat("l", 100) + strings.Repeat("e", 100), wantErr: ErrInvalid},
		{name: "unknown keys ignored", info: with("source", "tracker", "x-whatever", []any{d("a", int64(1))})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.raw != "" {
				b = []byte(tc.raw)
			} else {
				b = mustMarshal(t, tc.info)
			}
			info, err := ParseInfo(b)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseInfo: %v", err)
				}
				checkInfoInvariants(t, info)
				return
			}
			if err == nil {
				t.Fatalf("ParseInfo accepted it: %+v", info)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %q does not wrap %q", err, tc.wantErr)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("error %q does not mention %q", err, tc.errText)
			}
			// The same info inside a .torrent fails the same way.
			if b[0] == 'd' {
				torrent := append(append([]byte("d4:info"), b...), 'e')
				if _, err := Parse(torrent); !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse: %v, want %v", err, tc.wantErr)
				}
			}
		})
	}
}

func TestParseInfoTooManyFiles(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("d5:filesl")
	for range MaxFiles + 1 {
		sb.WriteString("de")
	}
	sb.WriteString("e4:name1:a12:piece lengthi16384e6:pieces0:e")
	_, err := ParseInfo([]byte(sb.String()))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than 1000000 files") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseInfoSingle(t *testing.T) {
	m := validSingle()
	m["private"] = int64(1)
	b := mustMarshal(t, m)
	info, err := ParseInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if !info.SingleFile || !info.Private || info.Name != "file.bin" || info.TotalLength != 40000 || info.MetaVersion != 1 {
		t.Fatalf("%+v", info)
	}
	if len(info.Files) != 1 || info.Files[0].DisplayPath() != "file.bin" || info.Files[0].Length != 40000 {
		t.Fatalf("files %+v", info.Files)
	}
	if info.NumPieces() != 3 || info.PieceLen(0) != 16384 || info.PieceLen(2) != 40000-2*16384 || info.PieceOffset(2) != 32768 {
		t.Fatalf("pieces %d %d %d %d", info.NumPieces(), info.PieceLen(0), info.PieceLen(2), info.PieceOffset(2))
	}
	if info.PieceLen(-1) != 0 || info.PieceLen(3) != 0 {
		t.Fatal("PieceLen out of range")
	}
	if info.PieceHash(1) != sha1.Sum(make([]byte, 16384)) {
		t.Fatal("PieceHash")
	}
}

func TestParseInfoNames(t *testing.T) {
	tests := []struct {
		name     string
		info     map[string]any
		wantName string
		wantPath []string
	}{
		{"name.utf-8 preferred", d("name", "caf\xe9", "name.utf-8", "café"), "café", nil},
		{"bad name.utf-8 ignored", d("name", "plain", "name.utf-8", "caf\xe9"), "plain", nil},
		{"name only in utf-8", d("name.utf-8", "only"), "only", nil},
		{"slash in name", d("name", "a/b"), "a_b", nil},
		{"nul in name", d("name", "evil\x00.mkv"), "evil_.mkv", nil},
		{"dotdot name", d("name", ".."), "_", nil},
		{"empty name becomes hash", d("name", ""), "", nil},
		{"dot name becomes hash", d("name", "."), "", nil},
		{"odd unicode", d("name", "Ünïcødé 🎬 名前"), "Ünïcødé 🎬 名前", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validSingle()
			delete(m, "name")
			for k, v := range tc.info {
				m[k] = v
			}
			b := mustMarshal(t, m)
			info, err := ParseInfo(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantName
			if want == "" {
				want = Hash(sha1.Sum(b)).String()
			}
			if info.Name != want || info.Files[0].DisplayPath() != want {
				t.Fatalf("name %q, file %q, want %q", info.Name, info.Files[0].DisplayPath(), want)
			}
		})
	}
}

func TestParseInfoMultiFile(t *testing.T) {
	pad := fileEntry(16384-10, ".pad", "16374")
	pad["attr"] = "p"
	exe := fileEntry(5, "bin", "run")
	exe["attr"] = "x"
	utf := fileEntry(1, "caf\xe9")
	utf["path.utf-8"] = []string{"café"}
	b := multiInfo(t, "multi", 16384,
		fileEntry(10, "a.txt"),
		pad,
		fileEntry(0, "empty"),
		exe,
		fileEntry(3, strings.Split("d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt", "/")...),
		fileEntry(2, "weird\x00name"),
		utf,
	)
	info, err := ParseInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	checkInfoInvariants(t, info)
	want := []struct {
		path   string
		length int64
		offset int64
		pad    bool
		attr   string
	}{
		{"a.txt", 10, 0, false, ""},
		{".pad/16374", 16374, 10, true, "p"},
		{"empty", 0, 16384, false, ""},
		{"bin/run", 5, 16384, false, "x"},
		{"d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt", 3, 16389, false, ""},
		{"weird_name", 2, 16392, false, ""},
		{"café", 1, 16394, false, ""},
	}
	if info.SingleFile || len(info.Files) != len(want) || info.TotalLength != 16395 || info.NumPieces() != 2 {
		t.Fatalf("%+v", info)
	}
	for i, w := range want {
		f := info.Files[i]
		if f.DisplayPath() != w.path || f.Length != w.length || f.Offset != w.offset || f.Pad != w.pad || f.Attr != w.attr {
			t.Errorf("file %d = %+v, want %+v", i, f, w)
		}
	}
}

func TestEvilInfo(t *testing.T) {
	info, err := ParseInfo(evilInfo(t))
	if err != nil {
		t.Fatal(err)
	}
	checkInfoInvariants(t, info)
	for i, f := range info.Files {
		if f.DisplayPath() != evilWant[i] {
			t.Errorf("file %d: %q, want %q", i, f.DisplayPath(), evilWant[i])
		}
	}
}
