package swarmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// SHA256Tree returns the SHA-256 (hex) of every regular file under root,
// by slash-separated path relative to root.
func SHA256Tree(tb testing.TB, root string) map[string]string {
	tb.Helper()
	sums, err := sha256Tree(root)
	if err != nil {
		tb.Fatalf("swarmtest.SHA256Tree(%s): %v", root, err)
	}
	return sums
}

func sha256Tree(root string) (map[string]string, error) {
	sums := make(map[string]string)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		sums[filepath.ToSlash(rel)] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return sums, err
}

// emptySHA256 is the SHA-256 of no bytes.
var emptySHA256 = hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())

// CompareSHA256 checks that every file under want is under got with the
// same SHA-256, and that got has no other file. With emptyOptional, a
// missing empty file is not an error: transmission 3.00 never creates
// zero-length files. It fails tb with every difference, and returns the
// number of files checked.
func CompareSHA256(tb testing.TB, want, got string, emptyOptional bool) int {
	tb.Helper()
	ws := SHA256Tree(tb, want)
	gs := SHA256Tree(tb, got)
	var errs []string
	names := make([]string, 0, len(ws))
	for name := range ws {
		names = append(names, name)
	}
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		g, ok := gs[name]
		switch {
		case !ok && emptyOptional && ws[name] == emptySHA256:
			continue
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: missing", name))
		case g != ws[name]:
			errs = append(errs, fmt.Sprintf("%s: sha256 %s, want %s", name, g, ws[name]))
		default:
			checked++
		}
	}
	for name := range gs {
		if _, ok := ws[name]; !ok {
			errs = append(errs, fmt.Sprintf("%s: unexpected (not in %s)", name, want))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		tb.Fatalf("swarmtest.CompareSHA256(%s, %s):\n\t%s", want, got, strings.Join(errs, "\n\t"))
	}
	return checked
}
