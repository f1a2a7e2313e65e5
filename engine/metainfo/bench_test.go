package metainfo

import (
	"fmt"
	"path/filepath"
	"strings"
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

// BenchmarkCreateFormats hashes the same 64 MiB as BenchmarkCreate as a v1,
// v2 and hybrid torrent: v2 adds SHA-256 over every block, hybrid both.
func BenchmarkCreateFormats(b *testing.B) {
	root := b.TempDir()
	writeTree(b, root, []treeFile{{"a", 40 << 20}, {"b/c", 24<<20 - 5}, {"d", 5}})
	for _, f := range []Format{FormatV1, FormatV2, FormatHybrid} {
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(64 << 20)
			for b.Loop() {
				if _, err := Create(root, CreateOptions{PieceLength: 256 << 10, Format: f}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseInfoV2ManyFiles parses a v2 file tree of 100,000 files in
// nested folders, the v2 counterpart of BenchmarkParseInfoManyFiles.
func BenchmarkParseInfoV2ManyFiles(b *testing.B) {
	tree := map[string]any{}
	root := strings.Repeat("r", 32)
	for i := range 100_000 {
		d1 := fmt.Sprintf("dir%03d", i%500)
		d2 := fmt.Sprintf("sub%02d", i%37)
		sub, ok := tree[d1].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[d1] = sub
		}
		leaf, ok := sub[d2].(map[string]any)
		if !ok {
			leaf = map[string]any{}
			sub[d2] = leaf
		}
		props := d("length", int64(i%7))
		if i%7 > 0 {
			props["pieces root"] = root
		}
		leaf[fmt.Sprintf("file %06d.dat", i)] = d("", props)
	}
	data := mustMarshal(b, d("name", "many", "piece length", int64(1<<20), "meta version", int64(2), "file tree", tree))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseInfo(data); err != nil {
			b.Fatal(err)
		}
	}
}
