package swarmtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// FileSpec describes one file of test data.
type FileSpec struct {
	// Path is slash-separated and relative to the folder given to
	// WriteFiles.
	Path string
	// Size is the file's length. When Content is set, Size is ignored
	// (len(Content) is used).
	Size int64
	// Content, if not nil, is the file's bytes. Otherwise the bytes are
	// pseudo-random, determined by Seed (or, if Seed is 0, by Path), and can
	// be read without writing the file through ReadAt.
	Content []byte
	// Seed selects the pseudo-random content; 0 derives it from Path.
	Seed uint64
}

// Len is the file's length.
func (f FileSpec) Len() int64 {
	if f.Content != nil {
		return int64(len(f.Content))
	}
	return f.Size
}

// genBlock is the unit of pseudo-random generation: block i of a file is a
// ChaCha8 stream keyed by (seed, i), so any offset can be produced without
// generating what comes before it.
const genBlock = 64 << 10

func (f FileSpec) seed() uint64 {
	if f.Seed != 0 {
		return f.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(f.Path))
	return h.Sum64()
}

func fillBlock(dst []byte, seed uint64, block int64) {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], seed)
	binary.LittleEndian.PutUint64(k[8:], uint64(block))
	key := sha256.Sum256(k[:])
	_, _ = rand.NewChaCha8(key).Read(dst)
}

// ReadAt fills p with the file's bytes at off, as WriteFiles writes them.
// It follows io.ReaderAt.
func (f FileSpec) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("swarmtest: negative offset %d", off)
	}
	size := f.Len()
	if off >= size {
		return 0, io.EOF
	}
	n := len(p)
	if rest := size - off; int64(n) > rest {
		n = int(rest)
	}
	if f.Content != nil {
		copy(p, f.Content[off:off+int64(n)])
	} else {
		seed := f.seed()
		var buf []byte
		for done := 0; done < n; {
			pos := off + int64(done)
			b, in := pos/genBlock, int(pos%genBlock)
			if in == 0 {
				// A block's stream is a prefix of itself: generate
				// straight into p.
				m := min(genBlock, n-done)
				fillBlock(p[done:done+m], seed, b)
				done += m
				continue
			}
			if buf == nil {
				buf = make([]byte, genBlock)
			}
			fillBlock(buf, seed, b)
			done += copy(p[done:n], buf[in:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns the whole content; meant for small files.
func (f FileSpec) Bytes() []byte {
	p := make([]byte, f.Len())
	_, _ = f.ReadAt(p, 0)
	return p
}

// WriteFiles creates files under dir, making folders as needed. It fails the
// test on any error, including a Path that is absolute or leaves dir.
func WriteFiles(tb testing.TB, dir string, files []FileSpec) {
	tb.Helper()
	for _, f := range files {
		if err := writeFile(dir, f); err != nil {
			tb.Fatalf("swarmtest.WriteFiles: %v", err)
		}
	}
}

func writeFile(dir string, f FileSpec) error {
	if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
		return fmt.Errorf("path %q is not local", f.Path)
	}
	name := filepath.Join(dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	out, err := os.Create(name)
	if err != nil {
		return err
	}
	buf := make([]byte, min(f.Len(), 1<<20))
	for off := int64(0); off < f.Len() && err == nil; {
		n, _ := f.ReadAt(buf, off)
		_, err = out.Write(buf[:n])
		off += int64(n)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// StandardFiles is a small multi-file set (about 3.2 MiB) with the shapes
// that break torrent code: a file of a few MiB, empty files (also last in
// their folder and in a deep folder), a file full of NUL bytes and one
// with NULs inside text, a one-byte file, deep folders, names with spaces,
// unicode, a leading dash and a leading dot, and sizes that are not multiples of any power
// of two piece length.
func StandardFiles() []FileSpec {
	nul := []byte("before\x00\x00\x00after\x00middle\x00\x00end\n")
	return []FileSpec{
		{Path: "big.bin", Size: 3<<20 + 12345},
		{Path: "empty", Size: 0},
		{Path: "nul.txt", Content: nul},
		{Path: "zeros.bin", Content: make([]byte, 70001)},
		{Path: "one.byte", Content: []byte{'x'}},
		{Path: "a/b/c/d.bin", Size: 100003},
		{Path: "a/b/c/empty-deep", Size: 0},
		{Path: "a/b/mid.bin", Size: 16385},
		{Path: "a/.hidden", Size: 33},
		{Path: "with space/file name.txt", Size: 777},
		{Path: "unicode-é漢字/ünï.dat", Size: 4099},
		{Path: "-leading-dash.bin", Size: 65537},
		{Path: "z/last-empty", Size: 0},
	}
}

// InteropFiles is test data that every mainstream client can seed and
// fetch: a big file whose name has spaces and non-ASCII letters, an empty
// file, small files in folders. No name Windows reserves: transmission
// renames "nul.txt" to "nul_.txt" on every system (and then cannot find it
// to seed), and ends no name with a dot or a space.
func InteropFiles(big int64) []FileSpec {
	return []FileSpec{
		{Path: "Vidéo de l'été 漢字.bin", Size: big},
		{Path: "empty", Size: 0},
		{Path: "docs/read me.txt", Size: 777},
		{Path: "docs/ünï/dåta 2.bin", Size: 100003},
		{Path: "a/b/c/deep.bin", Size: 65537},
	}
}

// TotalSize is the sum of the files' lengths.
func TotalSize(files []FileSpec) int64 {
	var n int64
	for _, f := range files {
		n += f.Len()
	}
	return n
}

// VerifyTree compares two folders like cmp -r: the same names, the same
// kinds (file, folder, symlink target), the same bytes. It fails the test
// with the first difference, in lexical path order.
func VerifyTree(tb testing.TB, want, got string) {
	tb.Helper()
	if err := compareTrees(want, got); err != nil {
		tb.Fatalf("swarmtest.VerifyTree(%s, %s): %v", want, got, err)
	}
}

func listTree(root string) (map[string]fs.FileMode, []string, error) {
	modes := make(map[string]fs.FileMode)
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		modes[rel] = d.Type()
		names = append(names, rel)
		return nil
	})
	return modes, names, err
}

func compareTrees(want, got string) error {
	wm, wn, err := listTree(want)
	if err != nil {
		return err
	}
	gm, gn, err := listTree(got)
	if err != nil {
		return err
	}
	all := append(append([]string(nil), wn...), gn...)
	sort.Strings(all)
	for i, name := range all {
		if i > 0 && all[i-1] == name {
			continue
		}
		wt, inWant := wm[name]
		gt, inGot := gm[name]
		switch {
		case !inGot:
			return fmt.Errorf("%s: missing", name)
		case !inWant:
			return fmt.Errorf("%s: unexpected (not in %s)", name, want)
		case wt != gt:
			return fmt.Errorf("%s: kind %v, want %v", name, gt, wt)
		}
		switch {
		case wt.IsRegular():
			if err := compareFiles(filepath.Join(want, name), filepath.Join(got, name)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case wt&fs.ModeSymlink != 0:
			wl, err1 := os.Readlink(filepath.Join(want, name))
			gl, err2 := os.Readlink(filepath.Join(got, name))
			if err1 != nil || err2 != nil || wl != gl {
				return fmt.Errorf("%s: symlink to %q, want %q", name, gl, wl)
			}
		}
	}
	return nil
}

// compareFiles reports the first differing byte, like cmp.
func compareFiles(want, got string) error {
	wf, err := os.Open(want)
	if err != nil {
		return err
	}
	defer wf.Close()
	gf, err := os.Open(got)
	if err != nil {
		return err
	}
	defer gf.Close()
	wr := bufio.NewReaderSize(wf, 1<<20)
	gr := bufio.NewReaderSize(gf, 1<<20)
	wb := make([]byte, 64<<10)
	gb := make([]byte, 64<<10)
	var off int64
	for {
		wn, werr := io.ReadFull(wr, wb)
		gn, gerr := io.ReadFull(gr, gb)
		n := min(wn, gn)
		if !bytes.Equal(wb[:n], gb[:n]) {
			for i := range n {
				if wb[i] != gb[i] {
					return fmt.Errorf("differ at byte %d: got %#02x, want %#02x", off+int64(i), gb[i], wb[i])
				}
			}
		}
		off += int64(n)
		if wn != gn {
			if wn < gn {
				return fmt.Errorf("longer than want: EOF of want at byte %d", off)
			}
			return fmt.Errorf("shorter than want: EOF at byte %d", off)
		}
		if werr == io.EOF || werr == io.ErrUnexpectedEOF {
			return nil
		}
		if werr != nil {
			return werr
		}
		if gerr != nil && gerr != io.EOF && gerr != io.ErrUnexpectedEOF {
			return gerr
		}
	}
}
