package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// libtorrentExtHandshake is what libtorrent 2.0.8 sent in TestInteropLibtorrent.
const libtorrentExtHandshake = "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei191e4:reqqi2000e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e"

func TestParseExtendedHandshake(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ExtendedHandshake
	}{
		{"libtorrent 2.0", libtorrentExtHandshake, ExtendedHandshake{
			M:            map[string]int{"lt_donthave": 7, "share_mode": 8, "upload_only": 3, "ut_holepunch": 4, "ut_metadata": 2, "ut_pex": 1},
			V:            "libtorrent/2.0.8.0",
			Reqq:         2000,
			YourIP:       "\x7f\x00\x00\x01",
			MetadataSize: 191,
			UploadOnly:   1,
		}},
		{"empty", "de", ExtendedHandshake{}},
		{"disable", "d1:md11:ut_metadatai0eee", ExtendedHandshake{M: map[string]int{"ut_metadata": 0}}},
		{"all fields", "d4:ipv44:\x01\x02\x03\x044:ipv616:0123456789abcdef1:md6:ut_pexi255ee13:metadata_sizei0e1:pi6881e4:reqqi1e1:v2:xy6:yourip16:fedcba9876543210e",
			ExtendedHandshake{M: map[string]int{"ut_pex": 255}, IPv4: "\x01\x02\x03\x04", IPv6: "0123456789abcdef", Port: 6881, Reqq: 1, V: "xy", YourIP: "fedcba9876543210"}},
		{"wrong-typed optional fields ignored", "d13:metadata_size3:abc1:p4:68814:reqq3:5001:vi5e6:yourip5:12345e", ExtendedHandshake{}},
		{"out-of-range optional fields ignored", "d1:pi70000e4:reqqi-1e4:ipv43:abce", ExtendedHandshake{}},
		{"unknown keys and nested values", "d1:eli1ei2ee1:xd1:yd1:zleee1:md1:ai1eee", ExtendedHandshake{M: map[string]int{"a": 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExtendedHandshake([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseExtendedHandshakeBad(t *testing.T) {
	var many strings.Builder
	many.WriteString("d1:md")
	for i := range MaxExtensions + 1 {
		fmt.Fprintf(&many, "3:x%02di1e", i)
	}
	many.WriteString("ee")
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"list", "li1ee"},
		{"string", "4:spam"},
		{"m is a list", "d1:mli1eee"},
		{"m is an int", "d1:mi1ee"},
		{"id 256", "d1:md1:ai256eee"},
		{"id negative", "d1:md1:ai-1eee"},
		{"id huge", "d1:md1:ai99999999999999999eee"},
		{"id not int", "d1:md1:a1:1ee"},
		{"too many extensions", many.String()},
		{"negative metadata_size", "d13:metadata_sizei-5ee"},
		{"metadata_size beyond int32", "d13:metadata_sizei9999999999ee"},
		{"trailing garbage", "dexx"},
		{"huge string claim", "d1:v4294967295:xe"},
		{"unterminated", "d1:md1:ai1e"},
		{"deep nesting", "d1:x" + strings.Repeat("l", 100) + strings.Repeat("e", 100) + "e"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseExtendedHandshake([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %+v", h)
			}
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v does not wrap ErrProtocol", err)
			}
			t.Log(err)
		})
	}
}

func TestExtendedHandshakeMarshal(t *testing.T) {
	h := ExtendedHandshake{
		M:            map[string]int{ExtMetadata: 3, ExtPex: 1, "lt_donthave": 0},
		V:            "swarmfs/0.1",
		Reqq:         500,
		YourIP:       "\x7f\x00\x00\x02",
		Port:         51413,
		MetadataSize: 12345,
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "d1:md11:lt_donthavei0e11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei12345e1:pi51413e4:reqqi500e1:v11:swarmfs/0.16:yourip4:\x7f\x00\x00\x02e"
	if string(b) != want {
		t.Fatalf("Marshal = %q\nwant %q", b, want)
	}
	got, err := ParseExtendedHandshake(b)
	if err != nil || !reflect.DeepEqual(*got, h) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if ip, ok := got.YourIPAddr(); !ok || ip != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("YourIPAddr = %v %v", ip, ok)
	}

	if b, err := (&ExtendedHandshake{}).Marshal(); err != nil || string(b) != "d1:mdee" {
		t.Fatalf("empty: %q %v", b, err)
	}
	if _, err := (&ExtendedHandshake{M: map[string]int{"x": 256}}).Marshal(); err == nil {
		t.Fatal("id 256 marshalled")
	}
}
