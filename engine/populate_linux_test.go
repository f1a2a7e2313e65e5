package engine

import (
	"bytes"
	"testing"
)

// TestPopulateStaysInside: populate may overwrite b (with zeros), never a
// byte beside it, whatever b's length and alignment.
func TestPopulateStaysInside(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 8191, 8192, 3*4096 + 17, 1 << 20} {
		for _, at := range []int{0, 1, 4095} {
			outer := bytes.Repeat([]byte{0xa5}, at+n+4096)
			b := outer[at : at+n : at+n]
			populate(b)
			for i, c := range outer {
				if (i < at || i >= at+n) && c != 0xa5 {
					t.Fatalf("n=%d at=%d: byte %d beside b changed to %#x", n, at, i, c)
				}
				if i >= at && i < at+n && c != 0 && c != 0xa5 {
					t.Fatalf("n=%d at=%d: byte %d of b is %#x", n, at, i, c)
				}
			}
		}
	}
}
