// Package fuzztest keeps the committed seed corpora of swarmfs's fuzz
// targets, for every package's tests: testdata/fuzz/<FuzzTarget>/ in the
// package's folder, in Go's corpus format, which a plain go test (and so
// make test) runs through the target like a table of cases.
//
// # Seeds
//
// A target declares its seeds in code and hands them to Seeds first thing:
//
//	func FuzzParse(f *testing.F) {
//		fuzztest.Seeds(f, [][]byte{...})
//		f.Fuzz(func(t *testing.T, data []byte) { ... })
//	}
//
// Seeds checks that each seed is committed, as testdata/fuzz/FuzzParse/seed-
// followed by a hash of its content, and that no other seed-* file is there;
// a seed added in code but not written out fails the test. One flag, the same
// in every package, writes them:
//
//	go test ./engine/lsd/ -run '^FuzzParse$' -update-corpus
//
// Files not named seed-* are the fuzzer's finds (it names them by hash) and
// hand-written cases: Seeds leaves them alone. Commit a crasher the fuzzer
// found together with its fix, so the seed corpus replays it forever.
//
// # Allocation bounds
//
// Allocated measures the bytes a call allocates, so a target can hold a
// decoder of untrusted bytes to an allocation proportional to its input. It
// counts every goroutine's allocations, so it repeats a run that goes over
// the limit and keeps the least figure.
//
// The package imports only the standard library, so any package's tests may
// use it (cache's included). It starts no goroutines.
package fuzztest
