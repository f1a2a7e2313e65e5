package bencode

import (
	"errors"
	"testing"
)

func TestScan(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		ok   bool
	}{
		{"int", "i42e", 4, true},
		{"negative", "i-7e", 4, true},
		{"zero", "i0e", 3, true},
		{"negative zero", "i-0e", 0, false},
		{"leading zero", "i03e", 0, false},
		{"empty int", "ie", 0, false},
		{"huge int", "i123456789012345678901e", 0, false},
		{"string", "4:spam", 6, true},
		{"empty string", "0:", 2, true},
		{"string too long", "5:spam", 0, false},
		{"huge declared length", "99999999999999999999:x", 0, false},
		{"list", "l4:spami1ee", 11, true},
		{"dict", "d3:cow3:moo4:spam4:eggse", 24, true},
		{"dict trailing", "d1:ai1ee-rest", 8, true},
		{"non-string key", "di1ei2ee", 0, false},
		{"duplicate key", "d1:ai1e1:ai2ee", 0, false},
		{"unterminated list", "l1:a", 0, false},
		{"unterminated dict", "d1:a", 0, false},
		{"garbage", "x", 0, false},
		{"empty", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Scan([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("Scan(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			if tc.ok && n != tc.n {
				t.Fatalf("Scan(%q) = %d, want %d", tc.in, n, tc.n)
			}
		})
	}
}

func TestDepthBound(t *testing.T) {
	deep := make([]byte, 0, 2*(MaxDepth+2))
	for i := 0; i < MaxDepth+2; i++ {
		deep = append(deep, 'l')
	}
	for i := 0; i < MaxDepth+2; i++ {
		deep = append(deep, 'e')
	}
	if _, err := Scan(deep); err == nil {
		t.Fatal("Scan accepted nesting beyond MaxDepth")
	}
}

func TestRaw(t *testing.T) {
	in := []byte("d8:announce3:url4:infod4:name1:xe5:otheri1ee")
	got, ok, err := Raw(in, "info")
	if err != nil || !ok {
		t.Fatalf("Raw: %v %v", ok, err)
	}
	if string(got) != "d4:name1:xe" {
		t.Fatalf("Raw = %q", got)
	}
	if _, ok, _ := Raw(in, "missing"); ok {
		t.Fatal("Raw found a missing key")
	}
	if _, _, err := Raw([]byte("li1ee"), "info"); err == nil {
		t.Fatal("Raw accepted a list")
	}
}

func TestUnmarshal(t *testing.T) {
	var v struct {
		Name string `bencode:"name"`
		Size int64  `bencode:"size"`
	}
	if err := Unmarshal([]byte("d4:name3:abc4:sizei12ee"), &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "abc" || v.Size != 12 {
		t.Fatalf("got %+v", v)
	}
	if err := Unmarshal([]byte("d4:name3:abc4:sizei12eeXX"), &v); err == nil {
		t.Fatal("Unmarshal accepted trailing data")
	}
	n, err := UnmarshalPrefix([]byte("d4:name1:ze\x00\x01"), &v)
	if err != nil || n != 11 || v.Name != "z" {
		t.Fatalf("UnmarshalPrefix = %d, %v, %+v", n, err, v)
	}
	b, err := Marshal(v)
	if err != nil || string(b) != "d4:name1:z4:sizei12ee" {
		t.Fatalf("Marshal = %q, %v", b, err)
	}
}
