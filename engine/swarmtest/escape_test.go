package swarmtest

import (
	"net/url"
	"testing"
)

// TestEscapeBytes: every byte survives the round trip, a space included
// (url.QueryEscape's '+' is what opentracker failed to decode).
func TestEscapeBytes(t *testing.T) {
	var all []byte
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	got, err := url.PathUnescape(escapeBytes(all))
	if err != nil || got != string(all) {
		t.Fatalf("round trip failed: %v", err)
	}
	if e := escapeBytes([]byte{0x20}); e != "%20" {
		t.Fatalf("space encoded as %q", e)
	}
}
