package fuzztest

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// update is the one flag that rewrites committed seed corpora, in every
// package whose tests import fuzztest.
var update = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpora under testdata/fuzz")

// seedPrefix names the files Seeds owns.
const seedPrefix = "seed-"

// Seeds checks that testdata/fuzz/<tb.Name()>/ holds exactly seeds as seed-*
// files, or with -update-corpus rewrites them. Call it from the fuzz target
// (tb is its *testing.F) before f.Fuzz; T is the target's one argument type.
func Seeds[T []byte | string](tb testing.TB, seeds []T) {
	tb.Helper()
	dir := filepath.Join("testdata", "fuzz", tb.Name())
	if err := syncDir(dir, seeds, *update); err != nil {
		tb.Fatalf("%v: run go test -run '^%s$' -update-corpus in this package", err, tb.Name())
	}
}

// syncDir compares dir's seed-* files with seeds, or makes them match when
// write is set.
func syncDir[T []byte | string](dir string, seeds []T, write bool) error {
	want := make(map[string]string, len(seeds)) // file name -> content
	for _, s := range seeds {
		name, content := seedFile(s)
		want[name] = content
	}
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("seed corpus: %w", err)
	}
	for _, e := range ents {
		if _, ok := want[e.Name()]; ok || !strings.HasPrefix(e.Name(), seedPrefix) {
			continue
		}
		if !write {
			return fmt.Errorf("%s is not a seed any more", filepath.Join(dir, e.Name()))
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	for name, content := range want {
		path := filepath.Join(dir, name)
		if write {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				return err
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("seed %s is not committed: %w", path, err)
		}
		if string(got) != content {
			return fmt.Errorf("seed %s has changed", path)
		}
	}
	return nil
}

// seedFile returns the file name and content of seed s in Go's corpus
// format: a header line, then the value as a Go literal.
func seedFile[T []byte | string](s T) (name, content string) {
	typ := "string"
	if _, ok := any(s).([]byte); ok {
		typ = "[]byte"
	}
	sum := sha256.Sum256([]byte(s))
	// Sized for the worst case, a byte written as four ("\xff"), so the
	// quoting never grows the buffer.
	const head = "go test fuzz v1\n"
	b := make([]byte, 0, len(head)+len(typ)+4*len(s)+4)
	b = append(b, head...)
	b = append(b, typ...)
	b = append(b, '(')
	b = strconv.AppendQuote(b, string(s))
	b = append(b, ")\n"...)
	return seedPrefix + hex.EncodeToString(sum[:8]), string(b)
}

// Allocated runs fn and returns the bytes the Go heap allocated meanwhile.
// Allocations by other goroutines (the fuzzing engine's own, a test's
// stragglers) count too and can only inflate the figure, so a run over limit
// is repeated, up to allocRuns runs, and the least figure is returned: fn
// must do the same work each time it is called. Each run costs two
// runtime.ReadMemStats, a brief stop of the world each.
func Allocated(limit uint64, fn func()) uint64 {
	least := uint64(math.MaxUint64)
	for range allocRuns {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
		if least <= limit {
			break
		}
	}
	return least
}

// allocRuns bounds the runs of Allocated.
const allocRuns = 5
