package peer

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestCheckBitfield(t *testing.T) {
	tests := []struct {
		name      string
		b         []byte
		numPieces int
		ok        bool
	}{
		{"exact byte", []byte{0xff}, 8, true},
		{"spare bits clear", []byte{0xff, 0xe0}, 11, true},
		{"spare bit set", []byte{0xff, 0xf0}, 11, false},
		{"last spare bit set", []byte{0xff, 0x01}, 9, false},
		{"one piece", []byte{0x80}, 1, true},
		{"one piece, spare set", []byte{0xc0}, 1, false},
		{"too short", []byte{0xff}, 9, false},
		{"too long", []byte{0xff, 0x00}, 8, false},
		{"huge for small torrent", make([]byte, 1<<16), 10, false},
		{"empty for no pieces", nil, 0, true},
		{"empty for pieces", nil, 3, false},
		{"negative pieces", nil, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBitfield(tc.b, tc.numPieces)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckBitfield = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.numPieces >= 0 && !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v does not wrap ErrProtocol", err)
			}
		})
	}
}

func TestAllowedFastSet(t *testing.T) {
	var ih [20]byte
	for i := range ih {
		ih[i] = 0xaa
	}
	ip := netip.MustParseAddr("80.4.4.200")
	// The example vectors published in BEP 6.
	want7 := []uint32{1059, 431, 808, 1217, 287, 376, 1188}
	want9 := []uint32{1059, 431, 808, 1217, 287, 376, 1188, 353, 508}
	if got := AllowedFastSet(ip, ih, 1313, 7); !reflect.DeepEqual(got, want7) {
		t.Errorf("k=7: %v, want %v", got, want7)
	}
	if got := AllowedFastSet(ip, ih, 1313, 9); !reflect.DeepEqual(got, want9) {
		t.Errorf("k=9: %v, want %v", got, want9)
	}
	// Only the /24 matters, and an IPv4-mapped address is IPv4.
	if got := AllowedFastSet(netip.MustParseAddr("80.4.4.1"), ih, 1313, 9); !reflect.DeepEqual(got, want9) {
		t.Errorf("same /24: %v", got)
	}
	if got := AllowedFastSet(netip.MustParseAddr("::ffff:80.4.4.200"), ih, 1313, 9); !reflect.DeepEqual(got, want9) {
		t.Errorf("mapped: %v", got)
	}
	if got := AllowedFastSet(netip.MustParseAddr("80.4.5.200"), ih, 1313, 9); reflect.DeepEqual(got, want9) {
		t.Errorf("other /24 gave the same set")
	}
	// k larger than the torrent: every piece once, no endless loop.
	got := AllowedFastSet(ip, ih, 5, 10)
	if len(got) != 5 {
		t.Fatalf("k > pieces: %v", got)
	}
	seen := map[uint32]bool{}
	for _, p := range got {
		if p >= 5 || seen[p] {
			t.Fatalf("bad set %v", got)
		}
		seen[p] = true
	}
	// IPv6: deterministic, by /48.
	a := AllowedFastSet(netip.MustParseAddr("2001:db8:1::1"), ih, 1313, 10)
	b := AllowedFastSet(netip.MustParseAddr("2001:db8:1:ffff::2"), ih, 1313, 10)
	c := AllowedFastSet(netip.MustParseAddr("2001:db8:2::1"), ih, 1313, 10)
	if len(a) != 10 || !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Errorf("IPv6 sets: %v %v %v", a, b, c)
	}
	if AllowedFastSet(ip, ih, 0, 10) != nil || AllowedFastSet(ip, ih, 10, 0) != nil {
		t.Error("empty cases")
	}
}

func TestBits(t *testing.T) {
	b := NewBits(11)
	if len(b) != 2 || b.Count() != 0 {
		t.Fatalf("NewBits(11) = %x, count %d", b, b.Count())
	}
	for _, i := range []int{0, 7, 8, 10} {
		if !b.Set(i) {
			t.Fatalf("Set(%d) was not new", i)
		}
	}
	if b.Set(7) {
		t.Fatal("Set(7) twice was new")
	}
	if want := (Bits{0x81, 0xa0}); !reflect.DeepEqual(b, want) {
		t.Fatalf("bits = %x, want %x (BEP 3: high bit first)", b, want)
	}
	if err := CheckBitfield(b, 11); err != nil {
		t.Fatalf("CheckBitfield: %v", err)
	}
	for i, want := range map[int]bool{-1: false, 0: true, 1: false, 7: true, 8: true, 9: false, 10: true, 11: false, 16: false, 1 << 40: false} {
		if got := b.Has(i); got != want {
			t.Errorf("Has(%d) = %v, want %v", i, got, want)
		}
	}
	if b.Count() != 4 {
		t.Fatalf("Count = %d, want 4", b.Count())
	}
	var got []int
	b.Each(func(i int) bool { got = append(got, i); return true })
	if !reflect.DeepEqual(got, []int{0, 7, 8, 10}) {
		t.Fatalf("Each = %v", got)
	}
	got = nil
	b.Each(func(i int) bool { got = append(got, i); return len(got) < 2 })
	if !reflect.DeepEqual(got, []int{0, 7}) {
		t.Fatalf("Each stopped at %v, want [0 7]", got)
	}

	var g Bits
	if g.Has(3) || g.Count() != 0 {
		t.Fatal("the zero Bits is not empty")
	}
	g = g.Grow(17)
	if len(g) != 3 {
		t.Fatalf("Grow(17) = %d bytes, want 3", len(g))
	}
	g.Set(17)
	if g = g.Grow(3); len(g) != 3 || !g.Has(17) {
		t.Fatalf("Grow(3) shrank or lost a bit: %x", g)
	}
}
