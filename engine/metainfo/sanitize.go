package metainfo

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxComponentBytes is the longest file or folder name we produce, the limit
// of Linux file systems (NAME_MAX). Longer names are cut at a UTF-8 boundary,
// keeping a short extension.
const MaxComponentBytes = 255

// maxExtBytes is the longest extension kept when a long name is cut: enough
// for ".mkv" or ".tar.gz", short enough that a name made only of "extension"
// is still cut like any other.
const maxExtBytes = 16

// SanitizeComponent turns one untrusted path component into a safe file name,
// or "" when the component must be dropped. See the package documentation for
// the policy.
func SanitizeComponent(c string) string {
	if !utf8.ValidString(c) {
		c = strings.ToValidUTF8(c, "\uFFFD")
	}
	if strings.IndexFunc(c, unsafeRune) >= 0 {
		c = strings.Map(func(r rune) rune {
			if unsafeRune(r) {
				return '_'
			}
			return r
		}, c)
	}
	switch c {
	case "", ".":
		return ""
	case "..":
		return "_"
	}
	return trimName(c, MaxComponentBytes)
}

// unsafeRune reports the runes replaced by '_': separators (both kinds, so a
// torrent made on Windows cannot smuggle a folder), NUL and the other control
// characters, which terminals and shell scripts mishandle.
func unsafeRune(r rune) bool {
	return r == '/' || r == '\\' || r < 0x20 || r == 0x7f
}

// trimName cuts s to at most max bytes without splitting a UTF-8 sequence,
// keeping a short extension so "video.mkv" stays playable.
func trimName(s string, max int) string {
	if len(s) <= max {
		return s
	}
	ext := path.Ext(s)
	if len(ext) > maxExtBytes || len(ext) == len(s) {
		ext = ""
	}
	stem := s[:len(s)-len(ext)]
	return cutUTF8(stem, max-len(ext)) + ext
}

// cutUTF8 returns the longest prefix of s of at most n bytes that ends on a
// rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sanitizePath sanitises every component and drops the empty ones. A path
// with nothing left becomes "_", so a file never loses its place.
func sanitizePath(raw []string) []string {
	out := make([]string, 0, len(raw))
	for _, c := range raw {
		if s := SanitizeComponent(c); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = append(out, "_")
	}
	return out
}

// uniquePaths renames files whose sanitised path collides with an earlier
// file's path or with a folder that holds other files, so every file keeps
// its own name. Only the last component changes: "a/b.txt" becomes
// "a/b.1.txt" (then .2, ...), never a name another file already has. Pad
// files, which nobody sees, come after all other files, so a real file is
// never renamed for a pad's sake.
func uniquePaths(files []File) {
	dirs := make(map[string]struct{})
	wanted := make(map[string]struct{}, len(files))
	for _, f := range files {
		p := f.Path
		for i := 1; i < len(p); i++ {
			dirs[strings.Join(p[:i], "/")] = struct{}{}
		}
		wanted[strings.Join(p, "/")] = struct{}{}
	}
	taken := make(map[string]struct{}, len(files))
	next := make(map[string]int) // per colliding path, the next number to try
	order := make([]int, 0, len(files))
	for i, f := range files {
		if !f.Pad {
			order = append(order, i)
		}
	}
	for i, f := range files {
		if f.Pad {
			order = append(order, i)
		}
	}
	for _, i := range order {
		p := files[i].Path
		key := strings.Join(p, "/")
		_, isDir := dirs[key]
		_, isTaken := taken[key]
		if !isDir && !isTaken {
			taken[key] = struct{}{}
			continue
		}
		last := p[len(p)-1]
		parent := strings.Join(p[:len(p)-1], "/")
		n := next[key]
		for {
			n++
			name := numbered(last, n)
			cand := name
			if parent != "" {
				cand = parent + "/" + name
			}
			_, d := dirs[cand]
			_, t := taken[cand]
			_, w := wanted[cand]
			if !d && !t && !w {
				np := append(append([]string(nil), p[:len(p)-1]...), name)
				files[i].Path = np
				taken[cand] = struct{}{}
				next[key] = n
				break
			}
		}
	}
}

// numbered inserts ".n" before the extension of name, trimming the name so
// the result still fits MaxComponentBytes.
func numbered(name string, n int) string {
	suffix := "." + strconv.Itoa(n)
	ext := path.Ext(name)
	if len(ext) > maxExtBytes || len(ext) == len(name) {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	stem = cutUTF8(stem, MaxComponentBytes-len(suffix)-len(ext))
	return stem + suffix + ext
}
