package lsd

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

var (
	ih1 = [20]byte{0xaa, 1, 2, 3}
	ih2 = [20]byte{0xbb, 19: 0xff}
)

const ih1Hex = "aa01020300000000000000000000000000000000"

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Announce
		err  bool
	}{
		{"bep 14 example", "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: " + ih1Hex + "\r\ncookie: abc\r\n\r\n\r\n",
			Announce{Port: 6881, InfoHashes: [][20]byte{ih1}, Cookie: "abc"}, false},
		{"lf only, odd case, upper hex", "BT-SEARCH * HTTP/1.1\nHOST: x\nport:1\ninfohash:  " + strings.ToUpper(ih1Hex) + " \n\n",
			Announce{Port: 1, InfoHashes: [][20]byte{ih1}}, false},
		{"two hashes, no cookie", "BT-SEARCH * HTTP/1.1\r\nPort: 65535\r\nInfohash: " + ih1Hex + "\r\nInfohash: bb000000000000000000000000000000000000ff\r\n\r\n",
			Announce{Port: 65535, InfoHashes: [][20]byte{ih1, ih2}}, false},
		{"unknown headers ignored", "BT-SEARCH * HTTP/1.1\r\nX-Foo: bar\r\nPort: 7\r\nInfohash: " + ih1Hex + "\r\n\r\n",
			Announce{Port: 7, InfoHashes: [][20]byte{ih1}}, false},
		{"not bt-search", "M-SEARCH * HTTP/1.1\r\nPort: 7\r\nInfohash: " + ih1Hex + "\r\n\r\n", Announce{}, true},
		{"no port", "BT-SEARCH * HTTP/1.1\r\nInfohash: " + ih1Hex + "\r\n\r\n", Announce{}, true},
		{"port 0", "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + ih1Hex + "\r\n\r\n", Announce{}, true},
		{"port too big", "BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: " + ih1Hex + "\r\n\r\n", Announce{}, true},
		{"no hash", "BT-SEARCH * HTTP/1.1\r\nPort: 7\r\n\r\n", Announce{}, true},
		{"short hash", "BT-SEARCH * HTTP/1.1\r\nPort: 7\r\nInfohash: abcd\r\n\r\n", Announce{}, true},
		{"non-hex hash", "BT-SEARCH * HTTP/1.1\r\nPort: 7\r\nInfohash: " + strings.Repeat("zz", 20) + "\r\n\r\n", Announce{}, true},
		{"no colon", "BT-SEARCH * HTTP/1.1\r\nPort 7\r\n\r\n", Announce{}, true},
		{"empty", "", Announce{}, true},
		{"too long", "BT-SEARCH * HTTP/1.1\r\nPort: 7\r\nInfohash: " + ih1Hex + "\r\nX: " + strings.Repeat("a", MaxMessageSize) + "\r\n\r\n", Announce{}, true},
		{"too many lines", "BT-SEARCH * HTTP/1.1\r\nPort: 7\r\nInfohash: " + ih1Hex + "\r\n" + strings.Repeat("a:b\n", maxLines) + "\r\n", Announce{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if tc.err {
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse = %+v, %v; want an ErrMalformed error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseCapsHashes(t *testing.T) {
	a := Announce{Port: 1}
	for i := 0; i < MaxInfoHashes+5; i++ {
		a.InfoHashes = append(a.InfoHashes, [20]byte{byte(i)})
	}
	b := a.Append(nil, "h")
	if len(b) > MaxMessageSize {
		t.Fatalf("a full message is %d bytes, over %d", len(b), MaxMessageSize)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.InfoHashes) != MaxInfoHashes {
		t.Fatalf("%d hashes, want %d", len(got.InfoHashes), MaxInfoHashes)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	a := Announce{Port: 51413, InfoHashes: [][20]byte{ih1, ih2}, Cookie: "0123456789abcdef"}
	b := a.Append(nil, DefaultGroup.String())
	if !strings.HasPrefix(string(b), "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n") || !strings.HasSuffix(string(b), "\r\n\r\n\r\n") {
		t.Fatalf("unexpected framing:\n%q", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip %+v, want %+v", got, a)
	}
}

// fuzzSeeds is the seed corpus of FuzzParse, committed in
// testdata/fuzz/FuzzParse (see package fuzztest).
func fuzzSeeds() [][]byte {
	good := Announce{Port: 6881, InfoHashes: [][20]byte{ih1, ih2}, Cookie: "c00k1e"}.Append(nil, DefaultGroup.String())
	return [][]byte{
		good,
		[]byte("BT-SEARCH * HTTP/1.1\nport:1\ninfohash:" + ih1Hex + "\n\n"),
		[]byte("BT-SEARCH * HTTP/1.1\r\nPort: 99999\r\n\r\n"),
		[]byte("BT-SEARCH * HTTP/1.1\r\nInfohash: " + ih1Hex + "\r\nInfohash: zz\r\n"),
		[]byte("BT-SEARCH * HTTP/1.1"),
		good[:40],
	}
}

// FuzzParse checks that Parse never fails other than with ErrMalformed,
// keeps its bounds, and that what it accepts survives Append and Parse.
func FuzzParse(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if a.Port == 0 || len(a.InfoHashes) == 0 || len(a.InfoHashes) > MaxInfoHashes || len(a.Cookie) > maxCookie || len(data) > MaxMessageSize {
			t.Fatalf("accepted out of bounds: %+v from %d bytes", a, len(data))
		}
		if strings.ContainsAny(a.Cookie, "\r\n") {
			t.Fatalf("cookie %q spans lines", a.Cookie)
		}
		again, err := Parse(a.Append(nil, "h"))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip %+v, want %+v", again, a)
		}
	})
}
