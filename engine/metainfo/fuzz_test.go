package metainfo

import (
	"bytes"
	"crypto/sha1"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// The seed corpora (fuzzSeeds: the golden fixtures and hand-made cases) are
// committed in testdata/fuzz/<FuzzName>/; see package fuzztest.

func FuzzParse(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds(f)["FuzzParse"])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("non-nil MetaInfo with an error")
			}
			return
		}
		if m.InfoHash != m.Info.InfoHash() || m.Info.HasV1() && m.InfoHash != sha1.Sum(m.InfoBytes) {
			t.Fatal("InfoHash is not the SHA-1 of InfoBytes")
		}
		raw, ok, err := bytesRaw(data)
		if err != nil || !ok || !bytes.Equal(raw, m.InfoBytes) {
			t.Fatal("InfoBytes are not the file's info dictionary")
		}
		checkInfoInvariants(t, m.Info)
		for _, tier := range m.Trackers() {
			if len(tier) == 0 || slices.Contains(tier, "") {
				t.Fatalf("empty tier or URL in %q", m.Trackers())
			}
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal()) failed: %v", err)
		}
		if back.InfoHash != m.InfoHash || back.Announce != m.Announce || back.Comment != m.Comment ||
			back.CreatedBy != m.CreatedBy || !back.CreationDate.Equal(m.CreationDate) ||
			!slices.Equal(back.URLList, m.URLList) || !slices.Equal(back.Nodes, m.Nodes) ||
			!slices.EqualFunc(back.Trackers(), m.Trackers(), slices.Equal) {
			t.Fatalf("round trip changed the torrent:\n%+v\n%+v", m, back)
		}
		if _, err := ParseMagnet(m.Magnet()); err != nil {
			t.Fatalf("ParseMagnet(Magnet()): %v", err)
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds(f)["FuzzParseInfo"])
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(data)
		if err != nil {
			return
		}
		checkInfoInvariants(t, info)
		for i := range info.NumPieces() {
			_ = info.PieceHash(i)
		}
		again, err := ParseInfo(data)
		if err != nil || !slices.EqualFunc(again.Files, info.Files, func(a, b File) bool {
			return slices.Equal(a.Path, b.Path) && a.Length == b.Length
		}) {
			t.Fatal("ParseInfo is not deterministic")
		}
	})
}

func FuzzParseMagnet(f *testing.F) {
	fuzztest.Seeds(f, magnetSeeds())
	f.Fuzz(func(t *testing.T, uri string) {
		m, err := ParseMagnet(uri)
		if err != nil {
			return
		}
		s := m.String()
		back, err := ParseMagnet(s)
		if err != nil {
			t.Fatalf("ParseMagnet(%q) failed: %v", s, err)
		}
		if back.InfoHash != m.InfoHash || back.DisplayName != m.DisplayName ||
			!slices.Equal(back.Trackers, m.Trackers) || !slices.Equal(back.WebSeeds, m.WebSeeds) ||
			!slices.Equal(back.Peers, m.Peers) {
			t.Fatalf("round trip changed the magnet:\n%+v\n%+v", m, back)
		}
	})
}

// fuzzSeeds gathers the seeds of FuzzParse and FuzzParseInfo: every golden
// fixture, and every hand-made case of the table tests that can be expressed
// here.
func fuzzSeeds(t testing.TB) map[string][][]byte {
	seeds := map[string][][]byte{}
	add := func(name string, b []byte) { seeds[name] = append(seeds[name], b) }
	fixtures, err := filepath.Glob(filepath.Join(goldenDir, "*.torrent"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, p := range fixtures {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		add("FuzzParse", b)
		if raw, ok, _ := bytesRaw(b); ok {
			add("FuzzParseInfo", raw)
		}
	}
	infos := [][]byte{
		mustMarshal(t, validSingle()),
		evilInfo(t),
		multiInfo(t, "m", 16384, fileEntry(0, "empty"), fileEntry(5, "a", "b"), fileEntry(5, "a")),
		[]byte("d4:name1:a6:lengthi1e4:name1:be"),
		[]byte("d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces0:e"),
		[]byte("d12:meta versioni2e9:file treede4:name1:a12:piece lengthi16384ee"),
		[]byte("d5:filesld6:lengthi-1e4:pathl1:aeee4:name1:a12:piece lengthi1e6:pieces0:e"),
		[]byte("d5:filesldee4:name0:12:piece lengthi16384e6:pieces0:e"),
	}
	for _, b := range infos {
		add("FuzzParseInfo", b)
		add("FuzzParse", append(append([]byte("d8:announce8:http://a4:info"), b...), 'e'))
	}
	add("FuzzParse", mustMarshal(t, d("nodes", []any{[]any{"1.2.3.4", int64(6881)}, []any{"::1", int64(1)}},
		"url-list", "http://ws/", "announce-list", []any{"http://bare", []any{"http://a", int64(3)}},
		"creation date", int64(1700000000), "comment.utf-8", "café", "info", validSingle())))
	for _, s := range []string{"", "de", "le", "d4:infoi1ee", "d4:info999999999:xe", "d4:infod4:name1:ae1:ai1e4:infod4:name1:bee",
		strings.Repeat("l", 80) + strings.Repeat("e", 80)} {
		add("FuzzParse", []byte(s))
	}
	return seeds
}

// magnetSeeds are FuzzParseMagnet's seeds: magnets of each form, and a few
// broken ones.
func magnetSeeds() []string {
	const hx = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	return []string{
		"magnet:?xt=urn:btih:" + hx,
		"magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=name",
		"magnet:?xt=urn:btih:" + hx + "&dn=My+Movie%20(2024)&tr=http%3A%2F%2Ft1%2Fannounce&tr=udp://t2:80&ws=http%3A%2F%2Fws%2F&x.pe=127.0.0.2:6881&x.pe=[::1]:6882",
		"magnet:?xt.1=urn:btih:" + hx + "&tr.1=http://a&tr.2=http://b",
		"magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32),
		"magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1220" + strings.Repeat("ab", 32),
		"magnet:?xt=urn:btih:zzzz",
		"magnet:?dn=x",
		"magnet:?xt=urn:btih:" + hx + "&tr=%zz",
		"magnet:?xt=urn:btih:" + hx + "&dn=%00%2F..%2F&x.pe=host:0#frag",
		"MAGNET:?XT=URN:BTIH:" + hx,
		"http://example.com/",
	}
}
