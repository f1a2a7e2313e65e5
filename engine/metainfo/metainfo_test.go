package metainfo

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func torrentWith(t *testing.T, kv ...any) []byte {
	t.Helper()
	m := d(kv...)
	if _, ok := m["info"]; !ok {
		m["info"] = validSingle()
	}
	return mustMarshal(t, m)
}

func TestParseTopLevel(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		check   func(t *testing.T, m *MetaInfo)
		wantErr string
	}{
		{name: "empty input", data: nil, wantErr: "empty input"},
		{name: "garbage", data: []byte("hello"), wantErr: "malformed"},
		{name: "list", data: []byte("le"), wantErr: "not a dictionary"},
		{name: "missing info", data: []byte("d8:announce1:xe"), wantErr: "missing info"},
		{name: "info not dict", data: []byte("d4:info4:spame"), wantErr: "info is not a dictionary"},
		{name: "huge declared string", data: []byte("d4:info999999999:xe"), wantErr: "exceeds"},
		{name: "duplicate info apart", data: []byte("d4:infod4:name1:ae1:ai1e4:infod4:name1:bee"), wantErr: `"info" appears twice`},
		{
			name: "all fields",
			data: torrentWith(t, "announce", "http://a/ann", "announce-list", [][]string{{"http://a/ann", "http://b/ann"}, {"udp://c:1"}},
				"url-list", []string{"http://ws1/", "http://ws2/"}, "creation date", int64(1700000000),
				"comment", "hi", "created by", "tool 1.0",
				"nodes", []any{[]any{"router.example", int64(6881)}, []any{"::1", int64(1)}, []any{"bad", "port"}, "x", []any{"h", int64(0)}}),
			check: func(t *testing.T, m *MetaInfo) {
				if m.Announce != "http://a/ann" || m.Comment != "hi" || m.CreatedBy != "tool 1.0" {
					t.Fatalf("%+v", m)
				}
				if !m.CreationDate.Equal(time.Unix(1700000000, 0)) {
					t.Fatalf("date %v", m.CreationDate)
				}
				if !slices.Equal(m.URLList, []string{"http://ws1/", "http://ws2/"}) {
					t.Fatalf("url-list %q", m.URLList)
				}
				if len(m.AnnounceList) != 2 {
					t.Fatalf("announce-list %q", m.AnnounceList)
				}
				if !slices.Equal(m.Nodes, []string{"router.example:6881", "[::1]:1"}) {
					t.Fatalf("nodes %q", m.Nodes)
				}
			},
		},
		{
			name: "url-list string",
			data: torrentWith(t, "url-list", "http://ws/"),
			check: func(t *testing.T, m *MetaInfo) {
				if !slices.Equal(m.URLList, []string{"http://ws/"}) {
					t.Fatalf("url-list %q", m.URLList)
				}
			},
		},
		{
			name: "url-list empty string and repeats dropped",
			data: torrentWith(t, "url-list", []string{"", "http://ws/", "http://ws/"}),
			check: func(t *testing.T, m *MetaInfo) {
				if !slices.Equal(m.URLList, []string{"http://ws/"}) {
					t.Fatalf("url-list %q", m.URLList)
				}
			},
		},
		{
			name: "wrong-typed optional fields ignored",
			data: torrentWith(t, "announce", int64(1), "announce-list", "x", "url-list", int64(2), "creation date", "today",
				"comment", []any{}, "created by", d()),
			check: func(t *testing.T, m *MetaInfo) {
				if m.Announce != "" || m.AnnounceList != nil || m.URLList != nil || !m.CreationDate.IsZero() || m.Comment != "" || m.CreatedBy != "" {
					t.Fatalf("%+v", m)
				}
			},
		},
		{
			name: "comment.utf-8 preferred",
			data: torrentWith(t, "comment", "caf\xe9", "comment.utf-8", "café"),
			check: func(t *testing.T, m *MetaInfo) {
				if m.Comment != "café" {
					t.Fatalf("comment %q", m.Comment)
				}
			},
		},
		{
			name: "unsorted keys keep their hash",
			data: []byte("d4:infod6:lengthi1e4:name1:a6:pieces20:" + string(piecesOf([]byte{0}, 16384)) + "12:piece lengthi16384ee8:announce1:xe"),
			check: func(t *testing.T, m *MetaInfo) {
				want := sha1.Sum([]byte("d6:lengthi1e4:name1:a6:pieces20:" + string(piecesOf([]byte{0}, 16384)) + "12:piece lengthi16384ee"))
				if m.InfoHash != want || m.Announce != "x" {
					t.Fatalf("hash %s announce %q", m.InfoHash, m.Announce)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.data)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, _, _ := bytesRaw(tc.data)
			if !bytes.Equal(m.InfoBytes, raw) || m.InfoHash != sha1.Sum(raw) {
				t.Fatal("InfoBytes or InfoHash do not match the file's info dictionary")
			}
			tc.check(t, m)
		})
	}
}

func TestTrackers(t *testing.T) {
	tests := []struct {
		name     string
		announce string
		list     [][]string
		want     [][]string
	}{
		{"none", "", nil, nil},
		{"announce only", "http://a", nil, [][]string{{"http://a"}}},
		{"announce trimmed", "  http://a \n", nil, [][]string{{"http://a"}}},
		{"list wins", "http://a", [][]string{{"http://b"}, {"http://c"}}, [][]string{{"http://b"}, {"http://c"}}},
		{"dedup across tiers", "", [][]string{{"http://b", "http://b"}, {"http://b", "http://c"}}, [][]string{{"http://b"}, {"http://c"}}},
		{"empty dropped", "", [][]string{{"", " "}, {}, {"http://c", ""}}, [][]string{{"http://c"}}},
		{"empty list falls back", "http://a", [][]string{{""}}, [][]string{{"http://a"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &MetaInfo{Announce: tc.announce, AnnounceList: tc.list}
			if got := m.Trackers(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("Trackers() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseAnnounceListLenient(t *testing.T) {
	m, err := Parse(torrentWith(t, "announce-list", []any{"http://bare", []any{"http://a", int64(3)}, int64(7)}))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"http://bare"}, {"http://a"}}
	if !slices.EqualFunc(m.AnnounceList, want, slices.Equal) {
		t.Fatalf("AnnounceList = %q", m.AnnounceList)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	// Unsorted info keys and an unknown info key must survive verbatim.
	info := "d6:lengthi1e4:name1:a6:pieces20:" + string(piecesOf([]byte{0}, 16384)) + "12:piece lengthi16384e1:xi5ee"
	in := &MetaInfo{
		Announce:     "http://a",
		AnnounceList: [][]string{{"http://a"}, {"http://b"}},
		URLList:      []string{"http://ws/"},
		CreationDate: time.Unix(1600000000, 0),
		Comment:      "c",
		CreatedBy:    "me",
		Nodes:        []string{"1.2.3.4:5", "[::1]:6881"},
		InfoBytes:    []byte(info),
	}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.InfoBytes) != info || out.InfoHash != sha1.Sum([]byte(info)) {
		t.Fatal("info dictionary changed")
	}
	if out.Announce != in.Announce || out.Comment != in.Comment || out.CreatedBy != in.CreatedBy ||
		!out.CreationDate.Equal(in.CreationDate) || !slices.Equal(out.URLList, in.URLList) || !slices.Equal(out.Nodes, in.Nodes) ||
		!slices.EqualFunc(out.AnnounceList, in.AnnounceList, slices.Equal) {
		t.Fatalf("round trip\n in %+v\nout %+v", in, out)
	}
	again, err := out.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("second Marshal differs: %v", err)
	}
	if _, err := (&MetaInfo{}).Marshal(); err == nil {
		t.Fatal("Marshal without InfoBytes succeeded")
	}
	if _, err := (&MetaInfo{InfoBytes: []byte(info), Nodes: []string{"nope"}}).Marshal(); err == nil {
		t.Fatal("Marshal with a bad node succeeded")
	}
	if _, err := (&MetaInfo{InfoBytes: []byte("le")}).Marshal(); err == nil {
		t.Fatal("Marshal with a list for info succeeded")
	}
}

func TestMetaInfoMagnet(t *testing.T) {
	m, err := Parse(torrentWith(t, "announce-list", [][]string{{"http://a/x"}, {"udp://b:1"}}, "url-list", "http://ws/"))
	if err != nil {
		t.Fatal(err)
	}
	got := m.Magnet()
	want := "magnet:?xt=urn:btih:" + m.InfoHash.String() + "&dn=file.bin&tr=http%3A%2F%2Fa%2Fx&tr=udp%3A%2F%2Fb%3A1&ws=http%3A%2F%2Fws%2F"
	if got != want {
		t.Fatalf("Magnet()\n got %s\nwant %s", got, want)
	}
	mg, err := ParseMagnet(got)
	if err != nil || mg.InfoHash != m.InfoHash || mg.DisplayName != "file.bin" || len(mg.Trackers) != 2 || len(mg.WebSeeds) != 1 {
		t.Fatalf("ParseMagnet(Magnet()) = %+v, %v", mg, err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.torrent")
	if err := os.WriteFile(good, torrentWith(t, "announce", "http://a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := Load(good); err != nil || m.Announce != "http://a" {
		t.Fatalf("Load: %v", err)
	}

	bad := filepath.Join(dir, "bad.torrent")
	os.WriteFile(bad, []byte("d4:infoi1ee"), 0o644)
	big := filepath.Join(dir, "big.torrent")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxTorrentSize + 1) // sparse
	f.Close()
	tests := []struct {
		name, path, want string
		is               error
	}{
		{"missing", filepath.Join(dir, "nope.torrent"), "nope.torrent", os.ErrNotExist},
		{"invalid", bad, "bad.torrent", ErrInvalid},
		{"too big", big, "big.torrent", nil},
		{"folder", dir, dir, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%s) err = %v, want one naming %q", tc.path, err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err %v does not wrap %v", err, tc.is)
			}
		})
	}
}
