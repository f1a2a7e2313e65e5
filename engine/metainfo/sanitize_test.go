package metainfo

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeComponent(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, in, want string
	}{
		{"plain", "movie.mkv", "movie.mkv"},
		{"empty dropped", "", ""},
		{"dot dropped", ".", ""},
		{"dotdot", "..", "_"},
		{"three dots kept", "...", "..."},
		{"hidden kept", ".hidden", ".hidden"},
		{"slash", "a/b", "a_b"},
		{"absolute", "/etc/passwd", "_etc_passwd"},
		{"dotdot slash", "../../x", ".._.._x"},
		{"backslash", `..\..\win`, ".._.._win"},
		{"nul", "a\x00b", "a_b"},
		{"newline", "line\nbreak", "line_break"},
		{"del", "a\x7fb", "a_b"},
		{"unicode kept", "日本語 ファイル 🎬.txt", "日本語 ファイル 🎬.txt"},
		{"combining kept", "e\u0301te\u0301", "e\u0301te\u0301"},
		{"rtl override kept", "abc\u202etxt.exe", "abc\u202etxt.exe"},
		{"invalid utf8", "caf\xe9", "caf\uFFFD"},
		{"long cut keeps ext", strings.Repeat("a", 300) + ".mkv", strings.Repeat("a", 251) + ".mkv"},
		{"long multibyte cut on boundary", long, strings.Repeat("é", 127)},
		{"long ext not kept", "a." + strings.Repeat("b", 300), "a." + strings.Repeat("b", 253)},
		{"exactly 255", strings.Repeat("z", 255), strings.Repeat("z", 255)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SanitizeComponent(tc.in)
			if got != tc.want {
				t.Fatalf("SanitizeComponent(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > MaxComponentBytes || !utf8.ValidString(got) {
				t.Fatalf("result %q too long or invalid UTF-8", got)
			}
			if SanitizeComponent(got) != got {
				t.Fatalf("not idempotent: %q -> %q", got, SanitizeComponent(got))
			}
		})
	}
}

func TestSanitizePath(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"plain", []string{"a", "b.txt"}, "a/b.txt"},
		{"escape", []string{"..", "..", "etc", "passwd"}, "_/_/etc/passwd"},
		{"absolute", []string{"", "etc", "passwd"}, "etc/passwd"},
		{"dots and empties", []string{".", "", "x", ".", ""}, "x"},
		{"nothing left", []string{".", ""}, "_"},
		{"deep", strings.Split("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20", "/"), "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(sanitizePath(tc.in), "/"); got != tc.want {
				t.Fatalf("sanitizePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestUniquePaths(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"distinct", []string{"a", "b", "c/d"}, []string{"a", "b", "c/d"}},
		{"duplicate", []string{"x.txt", "x.txt", "x.txt"}, []string{"x.txt", "x.1.txt", "x.2.txt"}},
		{"duplicate avoids existing name", []string{"x.txt", "x.txt", "x.1.txt"}, []string{"x.txt", "x.2.txt", "x.1.txt"}},
		{"file then folder", []string{"a", "a/b"}, []string{"a.1", "a/b"}},
		{"folder then file", []string{"a/b", "a"}, []string{"a/b", "a.1"}},
		{"deep prefix", []string{"a/b", "a/b/c/d"}, []string{"a/b.1", "a/b/c/d"}},
		{"renamed name is a folder", []string{"a", "a/x", "a.1/y"}, []string{"a.2", "a/x", "a.1/y"}},
		{"hidden file", []string{".pad/16", ".pad/16", ".pad/16"}, []string{".pad/16", ".pad/16.1", ".pad/16.2"}},
		{"dotfile no ext", []string{".env", ".env"}, []string{".env", ".env.1"}},
		{"long name stays short", []string{strings.Repeat("n", 255), strings.Repeat("n", 255)},
			[]string{strings.Repeat("n", 255), strings.Repeat("n", 253) + ".1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := make([]File, len(tc.in))
			for i, p := range tc.in {
				files[i].Path = strings.Split(p, "/")
			}
			uniquePaths(files)
			for i, f := range files {
				if got := f.DisplayPath(); got != tc.want[i] {
					t.Errorf("file %d: %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

// TestUniquePathsManyCollisions makes sure renaming stays linear when a
// torrent repeats one path many times (pad files often do).
func TestUniquePathsManyCollisions(t *testing.T) {
	files := make([]File, 50_000)
	for i := range files {
		files[i].Path = []string{".pad", "16384"}
	}
	uniquePaths(files)
	seen := make(map[string]bool)
	for _, f := range files {
		if seen[f.DisplayPath()] {
			t.Fatalf("%q repeats", f.DisplayPath())
		}
		seen[f.DisplayPath()] = true
	}
}
