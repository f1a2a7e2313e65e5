package httpfs

import (
	"strings"
	"testing"
)

// FuzzSplitPath: no decoded segment is empty, ".", "..", or holds a
// separator or NUL, whatever the escaped path.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"a/b/c", "a/%2e%2e/b", "%2F", "a%00b", "a/", "", "%", "..%5c", "odd%20names/%23%25%26"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, esc string) {
		segs, _, err := splitPath(esc)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || len(s) > MaxSegmentBytes {
				t.Fatalf("splitPath(%q) gave segment %q", esc, s)
			}
		}
	})
}
