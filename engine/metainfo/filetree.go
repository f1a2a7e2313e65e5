package metainfo

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// treeLimits bound what a v2 file tree may expand into. The tree names each
// folder once for all the files inside it, so the paths it spells out can
// be far longer than the input: components and pathBytes keep them to what
// a v1 "files" list of the same torrent would hold within MaxTorrentSize.
type treeLimits struct {
	files      int // MaxFiles
	components int // path components of all files together (a string header each)
	pathBytes  int // bytes of all files' paths together
}

var defaultTreeLimits = treeLimits{files: MaxFiles, components: 1 << 22, pathBytes: MaxTorrentSize}

// v2File is one file of a v2 file tree, in tree order.
type v2File struct {
	path   []string // sanitised as File.Path is
	length int64
	root   [32]byte
	attr   string
}

// fileTree is a parsed "file tree": the files in the order the tree lists
// them (depth first, keys in the order of the dictionary, which BEP 52
// sorts), and whether the root holds exactly one entry that is a file (the
// v2 form of a single-file torrent).
type fileTree struct {
	files      []v2File
	rootSingle bool
	rootName   string // that file's sanitised name
}

// parseFileTree walks the raw "file tree" dictionary, which the gate has
// checked (every length fits the input, nesting is bounded by
// bencode.MaxDepth, no key repeats). A directory is a dictionary of names;
// a file is a dictionary whose only key is "" and whose value holds the
// file's properties. Nothing is allocated before the bounds on files and
// path sizes allow it.
func parseFileTree(b []byte, lim treeLimits) (*fileTree, error) {
	if len(b) == 0 || b[0] != 'd' {
		return nil, invalidf("info: file tree is not a dictionary")
	}
	n, err := countTreeFiles(b, lim.files)
	if err != nil {
		return nil, err
	}
	if n > lim.files {
		return nil, invalidf("info: more than %d files", lim.files)
	}
	w := &treeWalker{lim: lim, tree: fileTree{files: make([]v2File, 0, n)}}
	if err := w.dir(b, nil, true); err != nil {
		return nil, err
	}
	if len(w.tree.files) == 0 {
		return nil, invalidf("info: file tree holds no files")
	}
	w.tree.rootSingle = w.rootEntries == 1 && w.rootFiles == 1
	return &w.tree, nil
}

type treeWalker struct {
	lim         treeLimits
	tree        fileTree
	rootEntries int // entries of the root dictionary
	rootFiles   int // of which files
	components  int
	pathBytes   int
}

// countTreeFiles counts the file entries of a file tree without decoding
// anything, stopping once it passes limit, so that the files are allocated
// once and only when their number is allowed.
func countTreeFiles(b []byte, limit int) (int, error) {
	n := 0
	var walk func(b []byte) error
	walk = func(b []byte) error {
		return entries(b, func(_, val []byte) error {
			switch {
			case n > limit:
				return nil
			case fileNode(val) != nil:
				n++
				return nil
			case len(val) > 0 && val[0] == 'd':
				return walk(val)
			}
			return nil // the second walk names the problem
		})
	}
	err := walk(b)
	return n, err
}

// fileNode returns the properties of a file entry, a dictionary whose only
// key is "" ("d0:" props "e"), or nil if val is not one.
func fileNode(val []byte) []byte {
	if len(val) < 5 || val[0] != 'd' || val[1] != '0' || val[2] != ':' {
		return nil
	}
	n, err := bencode.Scan(val[3:])
	if err != nil || 3+n != len(val)-1 {
		return nil
	}
	return val[3 : 3+n]
}

// dir walks one directory dictionary; prefix holds the sanitised components
// of its path.
func (w *treeWalker) dir(b []byte, prefix []string, root bool) error {
	return entries(b, func(key, val []byte) error {
		if root {
			w.rootEntries++
		}
		name := SanitizeComponent(string(key))
		where := func() string { return truncate(strings.Join(append(prefix[:len(prefix):len(prefix)], name), "/"), 200) }
		if len(key) == 0 {
			if root {
				return invalidf("info: file tree: the root is a file, not a folder")
			}
			return invalidf("info: file tree: %q holds a file entry beside other names", where())
		}
		if len(val) == 0 || val[0] != 'd' {
			return invalidf("info: file tree: %q is not a dictionary", where())
		}
		if props := fileNode(val); props != nil {
			if err := w.file(props, prefix, name, where); err != nil {
				return err
			}
			if root {
				w.rootFiles++
				w.tree.rootName = name
			}
			return nil
		}
		sub := prefix
		if name != "" {
			sub = append(prefix[:len(prefix):len(prefix)], name)
		}
		return w.dir(val, sub, false)
	})
}

// file records one file whose properties dictionary is props.
func (w *treeWalker) file(props []byte, prefix []string, name string, where func() string) error {
	if len(w.tree.files) >= w.lim.files {
		return invalidf("info: more than %d files", w.lim.files)
	}
	if props[0] != 'd' {
		return invalidf("info: file tree: %q: file properties are not a dictionary", where())
	}
	f := v2File{length: -1}
	var haveRoot bool
	err := entries(props, func(key, val []byte) error {
		switch string(key) {
		case "length":
			n, ok := bencodeInt(val)
			if !ok {
				return invalidf("info: file tree: %q: length is not a 64-bit integer", where())
			}
			if n < 0 {
				return invalidf("info: file tree: %q: negative length %d", where(), n)
			}
			f.length = n
		case "pieces root":
			s, ok := bencodeString(val)
			if !ok || len(s) != 32 {
				return invalidf("info: file tree: %q: pieces root is not a 32-byte string", where())
			}
			copy(f.root[:], s)
			haveRoot = f.root != [32]byte{}
		case "attr":
			s, ok := bencodeString(val)
			if !ok {
				return invalidf("info: file tree: %q: attr is not a string", where())
			}
			f.attr = string(s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if strings.ContainsRune(f.attr, 'p') {
		return invalidf("info: file tree: %q is a pad file, which a v2 file tree must not list", where())
	}
	if strings.ContainsRune(f.attr, 'l') {
		f.length, f.root, haveRoot = 0, [32]byte{}, false // a symlink takes no bytes (BEP 47)
	}
	switch {
	case f.length < 0:
		return invalidf("info: file tree: %q: missing length", where())
	case f.length > 0 && !haveRoot:
		return invalidf("info: file tree: %q: %d bytes without a pieces root", where(), f.length)
	case f.length == 0:
		f.root = [32]byte{}
	}

	n := len(prefix) + 1
	bytes := len(name)
	for _, c := range prefix {
		bytes += len(c) + 1
	}
	w.components += n
	w.pathBytes += bytes
	if w.components > w.lim.components || w.pathBytes > w.lim.pathBytes {
		return invalidf("info: file tree: the files' paths hold more than %d components or %d bytes in all", w.lim.components, w.lim.pathBytes)
	}
	f.path = make([]string, len(prefix), n)
	copy(f.path, prefix)
	if name != "" {
		f.path = append(f.path, name)
	}
	if len(f.path) == 0 {
		f.path = append(f.path, "_")
	}
	w.tree.files = append(w.tree.files, f)
	return nil
}

// bencodeInt reads a bencoded integer that fits int64.
func bencodeInt(val []byte) (int64, bool) {
	if len(val) < 3 || val[0] != 'i' || val[len(val)-1] != 'e' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(val[1:len(val)-1]), 10, 64)
	return n, err == nil
}

// bencodeString returns the bytes of a bencoded string (aliasing val).
func bencodeString(val []byte) ([]byte, bool) {
	colon := bytes.IndexByte(val, ':')
	if len(val) == 0 || val[0] < '0' || val[0] > '9' || colon < 0 {
		return nil, false
	}
	return val[colon+1:], true
}
