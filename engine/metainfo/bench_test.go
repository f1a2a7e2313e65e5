package metainfo

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkParseInfoManyFiles parses an info dictionary of 100,000 files in
// nested folders, the shape of large collections.
func BenchmarkParseInfoManyFiles(b *testing.B) {
	files := make([]map[string]any, 100_000)
	for i := range files {
		files[i] = fileEntry(int64(i%7), fmt.Sprintf("dir%03d", i%500), fmt.Sprintf("sub%02d", i%37), fmt.Sprintf("file %06d.dat", i))
	}
	data := multiInfo(b, "many", 1<<20, files...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseInfo(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate hashes 64 MiB in 256 KiB pieces; compare with the
// machine's single-core SHA-1 rate to see the concurrency pay off.
func BenchmarkCreate(b *testing.B) {
	root := b.TempDir()
	writeTree(b, root, []treeFile{{"a", 40 << 20}, {"b/c", 24<<20 - 5}, {"d", 5}})
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := Create(filepath.Join(root), CreateOptions{PieceLength: 256 << 10}); err != nil {
			b.Fatal(err)
		}
	}
}
