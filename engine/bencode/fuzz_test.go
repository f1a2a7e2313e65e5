package bencode

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// FuzzScan holds Scan to its contract on any input: an error wraps
// ErrSyntax; a value it accepts is a prefix of the input that Scan and
// Check accept alone; Scan allocates nothing when it succeeds; and what
// the reflective decoder makes of an accepted value costs memory in
// proportion to the input and survives Marshal and Unmarshal unchanged
// (Marshal's output being canonical: encoding it again gives it back).
func FuzzScan(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		[]byte("i42e"), []byte("i-7e"), []byte("i0e"), []byte("i-0e"), []byte("i03e"), []byte("ie"),
		[]byte("i123456789012345678901e"), []byte("i9223372036854775807e"), []byte("i9999999999999999999e"),
		[]byte("4:spam"), []byte("0:"), []byte("5:spam"), []byte("99999999999999999999:x"),
		[]byte("l4:spami1ee"), []byte("d3:cow3:moo4:spam4:eggse"), []byte("d1:ai1ee-rest"),
		[]byte("di1ei2ee"), []byte("d1:ai1e1:ai2ee"), []byte("d1:ai1e1:bi2e1:ai3ee"), []byte("d1:bi1e1:ai2ee"),
		[]byte("l1:a"), []byte("d1:a"), []byte("x"), nil,
		[]byte("d1:ad1:bl1:ceee"),
		[]byte("d8:announce18:http://t/announce4:infod6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:01234567890123456789ee"),
		[]byte(strings.Repeat("l", MaxDepth+1) + strings.Repeat("e", MaxDepth+1)),
		[]byte(strings.Repeat("l", MaxDepth+2) + strings.Repeat("e", MaxDepth+2)),
		[]byte("l" + strings.Repeat("de", 64) + "e"),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Scan(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) || n != 0 {
				t.Fatalf("Scan = %d, %v", n, err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("Scan returned %d for %d bytes", n, len(data))
		}
		if alloc := fuzztest.Allocated(0, func() { n, err = Scan(data) }); alloc != 0 {
			t.Fatalf("Scan of %d bytes allocated %d bytes", len(data), alloc)
		}
		value := data[:n]
		if m, err := Scan(value); m != n || err != nil || Check(value) != nil {
			t.Fatalf("the value alone: Scan = %d, %v; Check = %v", m, err, Check(value))
		}
		// zeebo/bencode starts with a 4 KiB read buffer; an empty map or
		// list of any costs it tens of bytes per input byte.
		bound := uint64(128*n + 8<<10)
		var v any
		if alloc := fuzztest.Allocated(bound, func() { v = nil; err = Unmarshal(value, &v) }); alloc > bound {
			t.Fatalf("decoding %d bytes allocated %d bytes", n, alloc)
		}
		if err != nil {
			return // the reflective decoder may refuse what Scan accepts (an integer past int64)
		}
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", v, err)
		}
		if err := Check(b); err != nil {
			t.Fatalf("Marshal wrote %q, which Check refuses: %v", b, err)
		}
		var w any
		if err := Unmarshal(b, &w); err != nil {
			t.Fatalf("Unmarshal(%q): %v", b, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("round trip changed the value:\n%#v\n%#v", v, w)
		}
		if again, err := Marshal(w); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("Marshal is not canonical: %q then %q (%v)", b, again, err)
		}
	})
}
