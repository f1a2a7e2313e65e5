package fuzztest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSync: writing makes the directory hold exactly the seeds (keeping
// other files), and checking then passes; a missing, changed or stale seed
// fails the check.
func TestSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "FuzzX")
	seeds := [][]byte{[]byte("a"), []byte("\x00\xff\"\n"), nil}
	if err := syncDir(dir, seeds, false); err == nil {
		t.Fatal("check passed without a corpus")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	found := filepath.Join(dir, "0123456789abcdef") // as the fuzzer names a find
	if err := os.WriteFile(found, []byte("go test fuzz v1\n[]byte(\"x\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale, _ := seedFile([]byte("gone"))
	if err := os.WriteFile(filepath.Join(dir, stale), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(dir, seeds, false); err == nil {
		t.Fatal("check passed with a stale seed and none of the seeds")
	}
	if err := syncDir(dir, seeds, true); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(dir, seeds, false); err != nil {
		t.Fatalf("check after writing: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(seeds)+1 {
		t.Fatalf("%d files after writing %d seeds next to one find", len(ents), len(seeds))
	}
	if _, err := os.Stat(found); err != nil {
		t.Fatalf("the fuzzer's find was removed: %v", err)
	}
	if err := syncDir(dir, seeds[:2], false); err == nil {
		t.Fatal("check passed with a seed that is not in the list")
	}
	if err := syncDir(dir, append(slices.Clone(seeds), []byte("new")), false); err == nil {
		t.Fatal("check passed with a seed missing")
	}
	name, _ := seedFile(seeds[0])
	if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n[]byte(\"b\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDir(dir, seeds, false); err == nil {
		t.Fatal("check passed with a changed seed")
	}
}

// FuzzSeedFile is a target that runs its own seed corpus, written by Seeds:
// the files must be in Go's corpus format, or go test fails to load them.
func FuzzSeedFile(f *testing.F) {
	Seeds(f, []string{"", "plain", "quote\" backslash\\ nul\x00 newline\n é \xff"})
	f.Fuzz(func(t *testing.T, s string) {
		// Linear: a byte may be quoted as four ("\xff"), and the content
		// is built at that size and copied into a string (about 14 bytes
		// per byte of input at worst).
		bound := uint64(16*len(s) + 1024)
		if n := Allocated(bound, func() { seedFile(s) }); n > bound {
			t.Fatalf("seedFile of %d bytes allocated %d bytes", len(s), n)
		}
	})
}

var sink []byte

// TestAllocated: an allocation is counted whole, and nothing is counted for
// a call that allocates nothing.
func TestAllocated(t *testing.T) {
	if n := Allocated(1<<30, func() { sink = make([]byte, 1<<20) }); n < 1<<20 || n > 1<<21 {
		t.Errorf("a 1 MiB allocation counted as %d bytes", n)
	}
	if n := Allocated(0, func() {}); n != 0 {
		t.Errorf("nothing counted as %d bytes", n)
	}
}
