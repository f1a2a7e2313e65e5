package metainfo

import (
	"strings"
	"testing"
)

func TestParseHash(t *testing.T) {
	const hexHash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	want := Hash{0xc1, 0x2f, 0xe1, 0xc0, 0x6b, 0xba, 0x25, 0x4a, 0x9d, 0xc9, 0xf5, 0x19, 0xb3, 0x35, 0xaa, 0x7c, 0x13, 0x67, 0xa8, 0x8a}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex lower", hexHash, true},
		{"hex upper", strings.ToUpper(hexHash), true},
		{"base32 upper", "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK", true},
		{"base32 lower", "yex6dqdlxisuvhoj6um3gnnkpqjwpkek", true},
		{"empty", "", false},
		{"short hex", hexHash[:39], false},
		{"long hex", hexHash + "0", false},
		{"bad hex digit", "g" + hexHash[1:], false},
		{"bad base32 char", "1EX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK", false},
		{"base32 padding", "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPK==", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHash(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseHash(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && h != want {
				t.Fatalf("ParseHash(%q) = %s", tc.in, h)
			}
		})
	}
}

func TestHashText(t *testing.T) {
	h := Hash{0: 0xab, 19: 0x01}
	s := h.String()
	if s != "ab00000000000000000000000000000000000001" || h.HexString() != s {
		t.Fatalf("String = %q, HexString = %q", s, h.HexString())
	}
	b, _ := h.MarshalText()
	var back Hash
	if err := back.UnmarshalText(b); err != nil || back != h {
		t.Fatalf("text round trip: %v %s", err, back)
	}
	if err := back.UnmarshalText([]byte("nope")); err == nil {
		t.Fatal("UnmarshalText accepted garbage")
	}
	if h.IsZero() || !(Hash{}).IsZero() {
		t.Fatal("IsZero")
	}
}

func TestParseHashV2(t *testing.T) {
	const hx = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	want := HashV2{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90,
		0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex", hx, true},
		{"hex upper", strings.ToUpper(hx), true},
		{"multihash", "1220" + hx, true},
		{"empty", "", false},
		{"short", hx[:63], false},
		{"sha1 multihash", "1114" + hx[:40], false},
		{"other multihash code", "1320" + hx, false},
		{"bad digit", "z" + hx[1:], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHashV2(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseHashV2(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && h != want {
				t.Fatalf("ParseHashV2(%q) = %s", tc.in, h)
			}
		})
	}
	if want.String() != hx || want.Multihash() != "1220"+hx || want.Truncate() != Hash(want[:20]) {
		t.Fatal("String, Multihash or Truncate")
	}
	b, _ := want.MarshalText()
	var back HashV2
	if err := back.UnmarshalText(b); err != nil || back != want || back.IsZero() || !(HashV2{}).IsZero() {
		t.Fatalf("text round trip: %v %s", err, back)
	}
}
