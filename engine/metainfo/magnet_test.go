package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseMagnet(t *testing.T) {
	const hx = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	const b32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
	want, _ := ParseHash(hx)
	tests := []struct {
		name    string
		uri     string
		want    *Magnet // InfoHash filled in when nil fields
		wantErr error
		errText string
	}{
		{name: "hex", uri: "magnet:?xt=urn:btih:" + hx, want: &Magnet{}},
		{name: "hex upper", uri: "magnet:?xt=urn:btih:" + strings.ToUpper(hx), want: &Magnet{}},
		{name: "base32", uri: "magnet:?xt=urn:btih:" + b32, want: &Magnet{}},
		{name: "scheme and urn case", uri: "MAGNET:?XT=URN:BTIH:" + hx, want: &Magnet{}},
		{
			name: "full",
			uri: "magnet:?xt=urn:btih:" + hx + "&dn=My+Movie%20(2024)&tr=http%3A%2F%2Ft1%2Fannounce&tr=udp://t2:80" +
				"&tr=http%3A%2F%2Ft1%2Fannounce&ws=http%3A%2F%2Fws%2F&x.pe=127.0.0.2:6881&x.pe=[::1]:6882&x.pe=bad&so=0-3&xl=100",
			want: &Magnet{DisplayName: "My Movie (2024)", Trackers: []string{"http://t1/announce", "udp://t2:80"},
				WebSeeds: []string{"http://ws/"}, Peers: []string{"127.0.0.2:6881", "[::1]:6882"}},
		},
		{name: "numbered params", uri: "magnet:?xt.1=urn:btih:" + hx + "&tr.1=http://a&tr.2=http://b", want: &Magnet{Trackers: []string{"http://a", "http://b"}}},
		{name: "xt not first", uri: "magnet:?dn=x&xt=urn:btih:" + hx, want: &Magnet{DisplayName: "x"}},
		{name: "empty pairs and fragment", uri: "magnet:?&&xt=urn:btih:" + hx + "&#frag", want: &Magnet{}},
		{name: "other urns ignored", uri: "magnet:?xt=urn:ed2k:abc&xt=urn:btih:" + hx, want: &Magnet{}},
		{name: "hybrid btih and btmh", uri: "magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1220" + strings.Repeat("ab", 32), want: &Magnet{}},
		{name: "same hash twice", uri: "magnet:?xt=urn:btih:" + hx + "&xt=urn:btih:" + b32, want: &Magnet{}},
		{name: "not magnet", uri: "http://example.com/?xt=urn:btih:" + hx, wantErr: ErrInvalidMagnet, errText: "does not start with magnet:"},
		{name: "empty", uri: "", wantErr: ErrInvalidMagnet, errText: "does not start with magnet:"},
		{name: "no query", uri: "magnet:xt=urn:btih:" + hx, wantErr: ErrInvalidMagnet, errText: "no query"},
		{name: "missing xt", uri: "magnet:?dn=x&tr=http://a", wantErr: ErrInvalidMagnet, errText: "missing xt"},
		{name: "garbage xt", uri: "magnet:?xt=urn:btih:zzzz", wantErr: ErrInvalidMagnet, errText: "not an info-hash"},
		{name: "bad hex", uri: "magnet:?xt=urn:btih:" + strings.Repeat("g", 40), wantErr: ErrInvalidMagnet, errText: "not an info-hash"},
		{name: "39 hex", uri: "magnet:?xt=urn:btih:" + hx[:39], wantErr: ErrInvalidMagnet, errText: "not an info-hash"},
		{name: "two different hashes", uri: "magnet:?xt=urn:btih:" + hx + "&xt=urn:btih:" + strings.Repeat("0", 40), wantErr: ErrInvalidMagnet, errText: "two different"},
		{name: "bad escape", uri: "magnet:?xt=urn:btih:" + hx + "&tr=%zz", wantErr: ErrInvalidMagnet, errText: "bad escape"},
		{name: "btmh other hash function", uri: "magnet:?xt=urn:btmh:1320" + strings.Repeat("ab", 32), wantErr: ErrUnsupported, errText: "not supported yet"},
		{name: "btmh bad hex", uri: "magnet:?xt=urn:btmh:1220" + strings.Repeat("zz", 32), wantErr: ErrInvalidMagnet, errText: "not a v2 info-hash"},
		{name: "btmh short", uri: "magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1220abab", wantErr: ErrInvalidMagnet, errText: "not a v2 info-hash"},
		{name: "two different btmh", uri: "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32) + "&xt=urn:btmh:1220" + strings.Repeat("cd", 32), wantErr: ErrInvalidMagnet, errText: "two different btmh"},
		{name: "too long", uri: "magnet:?xt=urn:btih:" + hx + "&tr=" + strings.Repeat("a", MaxMagnetLength), wantErr: ErrInvalidMagnet, errText: "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMagnet(tc.uri)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want %v mentioning %q", err, tc.wantErr, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := *tc.want
			w.InfoHash = want
			if m.InfoHash != w.InfoHash || m.DisplayName != w.DisplayName || !slices.Equal(m.Trackers, w.Trackers) ||
				!slices.Equal(m.WebSeeds, w.WebSeeds) || !slices.Equal(m.Peers, w.Peers) {
				t.Fatalf("got  %+v\nwant %+v", m, w)
			}
		})
	}
}

func TestMagnetString(t *testing.T) {
	m := &Magnet{
		InfoHash:    Hash{1, 2, 3},
		DisplayName: "a b&c=d+é",
		Trackers:    []string{"http://t/ann?x=1&y=2"},
		WebSeeds:    []string{"http://ws/"},
		Peers:       []string{"127.0.0.1:1"},
	}
	s := m.String()
	const want = "magnet:?xt=urn:btih:0102030000000000000000000000000000000000&dn=a%20b%26c%3Dd%2B%C3%A9" +
		"&tr=http%3A%2F%2Ft%2Fann%3Fx%3D1%26y%3D2&ws=http%3A%2F%2Fws%2F&x.pe=127.0.0.1%3A1"
	if s != want {
		t.Fatalf("String()\n got %s\nwant %s", s, want)
	}
	back, err := ParseMagnet(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.DisplayName != m.DisplayName || !slices.Equal(back.Trackers, m.Trackers) || !slices.Equal(back.Peers, m.Peers) {
		t.Fatalf("round trip %+v", back)
	}
	if got := (&Magnet{}).String(); got != "magnet:?xt=urn:btih:"+strings.Repeat("0", 40) {
		t.Fatalf("zero Magnet: %s", got)
	}
}

func TestParseMagnetV2(t *testing.T) {
	const hx = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	v1, _ := ParseHash(hx)
	v2, _ := ParseHashV2(strings.Repeat("ab", 32))
	tests := []struct {
		name   string
		uri    string
		ih     Hash
		ih2    HashV2
		hasV1  bool
		string string // what String gives back
	}{
		{"btmh only", "magnet:?xt=urn:btmh:1220" + strings.Repeat("AB", 32) + "&dn=x", v2.Truncate(), v2, false,
			"magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32) + "&dn=x"},
		{"hybrid", "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32) + "&xt=urn:btih:" + hx, v1, v2, true,
			"magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1220" + strings.Repeat("ab", 32)},
		{"same btmh twice", "magnet:?xt.1=urn:btmh:1220" + strings.Repeat("ab", 32) + "&xt.2=urn:btmh:1220" + strings.Repeat("ab", 32), v2.Truncate(), v2, false,
			"magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32)},
		{"btih with a btmh of a later version", "magnet:?xt=urn:btih:" + hx + "&xt=urn:btmh:1320" + strings.Repeat("ab", 32), v1, HashV2{}, true,
			"magnet:?xt=urn:btih:" + hx},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMagnet(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			if m.InfoHash != tc.ih || m.InfoHashV2 != tc.ih2 || m.HasV1() != tc.hasV1 {
				t.Fatalf("got %s %s v1 %v", m.InfoHash, m.InfoHashV2, m.HasV1())
			}
			if s := m.String(); s != tc.string {
				t.Fatalf("String() = %s, want %s", s, tc.string)
			}
		})
	}
}

func TestMagnetMatches(t *testing.T) {
	info := []byte("d4:name1:xe")
	v1 := Hash(sha1.Sum(info))
	v2 := HashV2(sha256.Sum256(info))
	other := []byte("d4:name1:ye")
	tests := []struct {
		name string
		m    Magnet
	}{
		{"v1", Magnet{InfoHash: v1}},
		{"v2", Magnet{InfoHash: v2.Truncate(), InfoHashV2: v2}},
		{"hybrid", Magnet{InfoHash: v1, InfoHashV2: v2}},
	}
	for _, tc := range tests {
		if !tc.m.Matches(info) || tc.m.Matches(other) {
			t.Errorf("%s: Matches(info) %v, Matches(other) %v", tc.name, tc.m.Matches(info), tc.m.Matches(other))
		}
	}
	wrongV2 := Magnet{InfoHash: v1, InfoHashV2: HashV2{1}}
	if wrongV2.Matches(info) {
		t.Error("a hybrid magnet matched with a wrong v2 hash")
	}
}
