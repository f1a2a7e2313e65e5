package webseed

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Layout is what every web seed of one torrent shares: the info and the
// names, as the torrent spells them, that URLs are built from. Build it once
// per torrent with NewLayout; it is immutable and safe for concurrent use.
type Layout struct {
	info *metainfo.Info
	// rawName is the torrent's name as in the info dictionary (name.utf-8
	// when present and valid, as metainfo chooses).
	rawName string
	// rawPaths holds, for the files whose raw path differs from the
	// sanitised metainfo.File.Path, the raw components; typical torrents
	// have none, so nothing is duplicated.
	rawPaths map[int][]string
	// unaddressable lists the files whose raw path holds a component no URL
	// segment can carry ("", ".", ".."): servers resolve dot segments, so
	// the request would name another file.
	unaddressable map[int]bool
}

// NewLayout prepares the URL names of info's files. infoBytes is the info
// dictionary info was parsed from (metainfo.MetaInfo.InfoBytes): URLs use
// the torrent's own names, which metainfo sanitises for the file system. With
// nil infoBytes the sanitised names are used, which differ only for names
// with control characters, separators, dot components, over 255 bytes, or
// colliding after sanitising.
func NewLayout(info *metainfo.Info, infoBytes []byte) (*Layout, error) {
	if info == nil || len(info.Files) == 0 {
		return nil, errors.New("webseed: no info")
	}
	l := &Layout{info: info, rawName: info.Name}
	if infoBytes == nil {
		return l, nil
	}
	name, paths, err := rawNames(infoBytes)
	if err != nil {
		return nil, err
	}
	l.rawName = name
	if info.SingleFile {
		if paths != nil {
			return nil, errors.New("webseed: info bytes are multi-file, info is single-file")
		}
		return l, nil
	}
	if len(paths) != len(info.Files) {
		return nil, fmt.Errorf("webseed: info bytes list %d files, info %d", len(paths), len(info.Files))
	}
	for i, p := range paths {
		for _, c := range p {
			if c == "" || c == "." || c == ".." {
				if l.unaddressable == nil {
					l.unaddressable = make(map[int]bool)
				}
				l.unaddressable[i] = true
			}
		}
		if !slices.Equal(p, info.Files[i].Path) {
			if l.rawPaths == nil {
				l.rawPaths = make(map[int][]string)
			}
			l.rawPaths[i] = p
		}
	}
	return l, nil
}

// Info returns the info the layout was built from.
func (l *Layout) Info() *metainfo.Info { return l.info }

// rawInfoNames receives only the names of an info dictionary.
type rawInfoNames struct {
	Name     bencode.RawMessage `bencode:"name"`
	NameUTF8 bencode.RawMessage `bencode:"name.utf-8"`
	Files    []struct {
		Path     []string `bencode:"path"`
		PathUTF8 []string `bencode:"path.utf-8"`
	} `bencode:"files"`
}

// rawNames decodes the torrent's name and file paths without sanitising,
// choosing the .utf-8 variants exactly when metainfo does. paths is nil for
// a single-file torrent.
func rawNames(infoBytes []byte) (name string, paths [][]string, err error) {
	var raw rawInfoNames
	if err := bencode.Unmarshal(infoBytes, &raw); err != nil {
		return "", nil, fmt.Errorf("webseed: info names: %w", err)
	}
	name, ok := utf8String(raw.NameUTF8)
	if !ok && raw.Name != nil {
		if err := bencode.Unmarshal(raw.Name, &name); err != nil {
			return "", nil, fmt.Errorf("webseed: info name: %w", err)
		}
	}
	if raw.Files == nil {
		return name, nil, nil
	}
	paths = make([][]string, len(raw.Files))
	for i, f := range raw.Files {
		paths[i] = f.Path
		if len(f.PathUTF8) > 0 && allUTF8(f.PathUTF8) {
			paths[i] = f.PathUTF8
		}
	}
	return name, paths, nil
}

func utf8String(raw []byte) (string, bool) {
	if raw == nil {
		return "", false
	}
	var s string
	if err := bencode.Unmarshal(raw, &s); err != nil || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}

func allUTF8(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// filePath returns file i's raw path components.
func (l *Layout) filePath(i int) []string {
	if p, ok := l.rawPaths[i]; ok {
		return p
	}
	if l.info.SingleFile {
		return []string{l.rawName}
	}
	return l.info.Files[i].Path
}

// seedURL is one url-list entry, parsed, with the BEP 19 rule that applies.
type seedURL struct {
	base *url.URL
	// dir is set when file names are appended to base (the URL ends in "/",
	// or the torrent has several files); otherwise base names the single
	// file itself.
	dir bool
}

// parseSeedURL checks a url-list entry: http or https, a host, no
// fragment kept.
func parseSeedURL(raw string, l *Layout) (seedURL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return seedURL{}, fmt.Errorf("webseed: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return seedURL{}, fmt.Errorf("webseed: url %s: scheme %q is not http or https", redact(u), u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" {
		return seedURL{}, fmt.Errorf("webseed: url %s: no host", redact(u))
	}
	u.Fragment, u.RawFragment = "", ""
	su := seedURL{base: u, dir: strings.HasSuffix(u.EscapedPath(), "/")}
	if !l.info.SingleFile && !su.dir {
		// BEP 19 writes multi-file URLs with a trailing slash; like
		// libtorrent, treat one without as if it had it.
		su.dir = true
		u.RawPath = u.EscapedPath() + "/"
		u.Path += "/"
	}
	if su.dir && !addressable(l.rawName) {
		return seedURL{}, fmt.Errorf("webseed: url %s: torrent name %q cannot be a URL segment", redact(u), l.rawName)
	}
	return su, nil
}

func addressable(c string) bool { return c != "" && c != "." && c != ".." }

// fileURL returns the URL of file i: for a directory URL, the base followed
// by the torrent's name and the file's path, each component percent-encoded
// as one segment (so '/', '?', '#', '%' and spaces inside a name stay in
// it); otherwise the base itself.
func (su seedURL) fileURL(l *Layout, i int) *url.URL {
	u := *su.base
	if u.User != nil {
		uu := *u.User
		u.User = &uu
	}
	if !su.dir {
		return &u
	}
	var b strings.Builder
	b.WriteString(su.base.EscapedPath())
	b.WriteString(url.PathEscape(l.rawName))
	if !l.info.SingleFile {
		for _, c := range l.filePath(i) {
			b.WriteByte('/')
			b.WriteString(url.PathEscape(c))
		}
	}
	u.RawPath = b.String()
	// Always valid: every component was escaped by PathEscape.
	u.Path, _ = url.PathUnescape(u.RawPath)
	return &u
}

// redact returns u as text without its query and user info, which may hold
// a token: errors and status lines show this.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.User = "", false, nil
	return c.String()
}

// segment is the part of a run of pieces that lies in one file.
type segment struct {
	file   int
	sp     span
	bufOff int64 // where the bytes go in the run's buffer
	pad    bool
}

// segments cuts the torrent bytes [start, end) into per-file segments, in
// order, skipping empty files.
func (l *Layout) segments(start, end int64) []segment {
	files := l.info.Files
	i := sort.Search(len(files), func(i int) bool { return files[i].Offset+files[i].Length > start })
	var segs []segment
	for ; i < len(files) && files[i].Offset < end; i++ {
		f := files[i]
		if f.Length == 0 {
			continue
		}
		lo, hi := max(start, f.Offset), min(end, f.Offset+f.Length)
		segs = append(segs, segment{
			file:   i,
			sp:     span{Off: lo - f.Offset, Len: hi - lo, FileLen: f.Length},
			bufOff: lo - start,
			pad:    f.Pad,
		})
	}
	return segs
}
