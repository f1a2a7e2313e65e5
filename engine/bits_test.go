package engine

import "testing"

func TestBitSet(t *testing.T) {
	b := newBitSet(130)
	if len(b) != 3 {
		t.Fatalf("newBitSet(130) has %d words, want 3", len(b))
	}
	for _, i := range []int{0, 63, 64, 129} {
		if b.get(i) || !b.set(i) || !b.get(i) || b.set(i) {
			t.Fatalf("set(%d) did not add it once", i)
		}
	}
	if b.get(1) || b.get(65) || b.get(128) {
		t.Fatal("set touched a neighbour")
	}
	if !b.clear(64) || b.get(64) || b.clear(64) || !b.get(63) {
		t.Fatal("clear(64) did not remove it once, or removed a neighbour")
	}
}
