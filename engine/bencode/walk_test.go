package bencode

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckUnique(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		check  bool // Check accepts it
		unique bool // CheckUnique accepts it
	}{
		{"sorted", "d1:ai1e1:bi2ee", true, true},
		{"unsorted, distinct", "d1:bi1e1:ai2e1:ci3ee", true, true},
		{"adjacent repeat", "d1:ai1e1:ai2ee", false, false},
		{"repeat apart", "d4:name1:a6:lengthi1e4:name1:be", true, false},
		{"repeat apart, after order broke", "d1:b0:1:a0:1:c0:1:a0:e", true, false},
		{"repeat in a nested dict", "d1:xld1:ai1e1:bi1e1:ai2eeee", true, false},
		{"same key in two dicts", "d1:ad1:ai1ee1:bd1:ai1eee", true, true},
		{"trailing data", "d1:ai1eeX", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.in))
			if (err == nil) != tc.check {
				t.Fatalf("Check(%q) = %v, want ok=%v", tc.in, err, tc.check)
			}
			err = CheckUnique([]byte(tc.in))
			if (err == nil) != tc.unique {
				t.Fatalf("CheckUnique(%q) = %v, want ok=%v", tc.in, err, tc.unique)
			}
			if err != nil && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
		})
	}
	long := strings.Repeat("k", 500)
	err := CheckUnique([]byte("d500:" + long + "0:1:a0:500:" + long + "0:e"))
	if err == nil || !strings.Contains(err.Error(), "appears twice") || len(err.Error()) > 200 {
		t.Fatalf("a long repeated key: %v (want it named, shortened)", err)
	}
}

func TestDictAndList(t *testing.T) {
	var got []string
	err := Dict([]byte("d1:bli1ei2ee1:ad1:xi3eee"), func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	})
	if err != nil || strings.Join(got, " ") != "b=li1ei2ee a=d1:xi3ee" {
		t.Fatalf("Dict = %q, %v", got, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := Dict([]byte("d1:ai1e1:bi2ee"), func(k, v []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Dict did not stop at fn's error: %v after %d", err, n)
	}
	// Dict walks as it checks: entries before the flaw may be seen, the
	// flaw is an error all the same.
	for _, in := range []string{"", "li1ee", "d1:ai1e", "d1:ai1eeX", "d1:ai1e1:ai2ee", "d1:ai1e1:bi01ee"} {
		if err := Dict([]byte(in), func(k, v []byte) error { return nil }); !errors.Is(err, ErrSyntax) {
			t.Errorf("Dict(%q) = %v, want ErrSyntax", in, err)
		}
	}

	got = nil
	err = List([]byte("li1e3:abcd1:ai1eelee"), func(v []byte) error {
		got = append(got, string(v))
		return nil
	})
	if err != nil || strings.Join(got, " ") != "i1e 3:abc d1:ai1ee le" {
		t.Fatalf("List = %q, %v", got, err)
	}
	for _, in := range []string{"", "d1:ai1ee", "li1e", "li1eeX"} {
		if err := List([]byte(in), func([]byte) error { return nil }); err == nil {
			t.Errorf("List(%q) accepted", in)
		}
	}
}

func TestWalksAllocateNothing(t *testing.T) {
	in := []byte("d1:ad1:bli1ei2e3:abce1:cdee1:zle4:zzzzi-3ee")
	fn := func(k, v []byte) error { return nil }
	for name, f := range map[string]func(){
		"Scan":  func() { Scan(in) },
		"Check": func() { Check(in) },
		"Dict":  func() { Dict(in, fn) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times a run", name, n)
		}
	}
}
