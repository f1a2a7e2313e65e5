package webseed

import (
	"errors"
	"slices"
	"testing"
)

// TestFileURL checks the BEP 19 URL rules: a URL ending in "/" gets the
// torrent's name (and, multi-file, the file's path) appended, each component
// percent-encoded as one segment from the torrent's raw names; a
// single-file URL without "/" names the file.
func TestFileURL(t *testing.T) {
	single := makeTorrent(t, "my file #1?.iso", 64, true, tfile{size: 100})
	multi := makeTorrent(t, "Ünï %d", 64, false,
		tfile{path: []string{"dir with space", "a#b?c%d.txt"}, size: 10},
		tfile{path: []string{"ctl\x01name", "x"}, size: 10}, // sanitised to ctl_name
		tfile{path: []string{"sl/ash"}, size: 10},           // sanitised to sl_ash
		tfile{path: []string{"ok.bin"}, size: 10},
	)
	tests := []struct {
		name string
		tt   *torrent
		url  string
		file int
		want string
	}{
		{"single, dir URL", single, "http://h/pub/", 0, "http://h/pub/my%20file%20%231%3F.iso"},
		{"single, file URL", single, "http://h/pub/other%20name.iso", 0, "http://h/pub/other%20name.iso"},
		{"single, file URL keeps query", single, "https://h/get?id=7&t=x#frag", 0, "https://h/get?id=7&t=x"},
		{"single, root dir", single, "http://h:8080/", 0, "http://h:8080/my%20file%20%231%3F.iso"},
		{"multi, odd names", multi, "http://h/m/", 0, "http://h/m/%C3%9Cn%C3%AF%20%25d/dir%20with%20space/a%23b%3Fc%25d.txt"},
		{"multi, raw control char", multi, "http://h/m/", 1, "http://h/m/%C3%9Cn%C3%AF%20%25d/ctl%01name/x"},
		{"multi, slash inside a component", multi, "http://h/m/", 2, "http://h/m/%C3%9Cn%C3%AF%20%25d/sl%2Fash"},
		{"multi, no trailing slash", multi, "http://h/m", 3, "http://h/m/%C3%9Cn%C3%AF%20%25d/ok.bin"},
		{"multi, escaped base kept", multi, "http://h/a%20b/", 3, "http://h/a%20b/%C3%9Cn%C3%AF%20%25d/ok.bin"},
		{"multi, query kept", multi, "http://h/m/?k=v", 3, "http://h/m/%C3%9Cn%C3%AF%20%25d/ok.bin?k=v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.tt.layout(t)
			su, err := parseSeedURL(tc.url, l)
			if err != nil {
				t.Fatal(err)
			}
			if got := su.fileURL(l, tc.file).String(); got != tc.want {
				t.Errorf("URL\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestNewLayoutRawNames checks that URLs use the torrent's names, not the
// sanitised ones, and that files with components no URL can carry are
// disabled, not requested under another name.
func TestNewLayoutRawNames(t *testing.T) {
	tt := makeTorrent(t, "t", 10, false, // piece i is file i
		tfile{path: []string{"a", "..", "b"}, size: 10},
		tfile{path: []string{"c\x7f"}, size: 10},
		tfile{path: []string{"d"}, size: 10},
	)
	l := tt.layout(t)
	if got := l.filePath(1); !slices.Equal(got, []string{"c\x7f"}) {
		t.Errorf("raw path of file 1 = %q", got)
	}
	if _, ok := l.rawPaths[2]; ok {
		t.Error("a path equal to the sanitised one is duplicated")
	}
	if !l.unaddressable[0] || l.unaddressable[1] || l.unaddressable[2] {
		t.Errorf("unaddressable = %v, want only file 0", l.unaddressable)
	}
	s := newSeed(t, "http://127.0.0.1:1/", l, Config{})
	if s.Has(0) || !s.Has(1) {
		t.Errorf("Has(0), Has(1) = %v, %v; want false, true (file 0 has a '..')", s.Has(0), s.Has(1))
	}
	_, _, err := fetch(t, s, 0, 1)
	if KindOf(err) != FileGone || !errors.Is(err, ErrFileDisabled) {
		t.Errorf("fetch of a piece of file 0: %v, want FileGone, ErrFileDisabled", err)
	}

	// Without info bytes, the sanitised names stand in.
	l2, err := NewLayout(tt.info, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.filePath(1); !slices.Equal(got, []string{"c_"}) {
		t.Errorf("sanitised path of file 1 = %q", got)
	}
}

func TestNewRejects(t *testing.T) {
	tt := makeTorrent(t, "t", 64, false, tfile{path: []string{"a"}, size: 10})
	l := tt.layout(t)
	for _, u := range []string{"ftp://h/x/", "file:///x/", "http:///x/", "mailto:a@b", "://x", "h/x/"} {
		if s, err := New(u, l, Config{}); err == nil {
			s.Close()
			t.Errorf("New(%q) accepted", u)
		}
	}
	other := makeTorrent(t, "u", 64, false, tfile{path: []string{"a"}, size: 10}, tfile{path: []string{"b"}, size: 10})
	if _, err := NewLayout(tt.info, other.infoBytes); err == nil {
		t.Error("NewLayout accepted info bytes with another number of files")
	}
}

func TestSegments(t *testing.T) {
	tt := makeTorrent(t, "t", 100, false,
		tfile{path: []string{"a"}, size: 150},
		tfile{path: []string{"empty"}, size: 0},
		tfile{path: []string{"b"}, size: 30},
		tfile{path: []string{"pad"}, size: 20, attr: "p"},
		tfile{path: []string{"c"}, size: 100},
	)
	l := tt.layout(t)
	got := l.segments(100, 200)
	want := []segment{
		{file: 0, sp: span{Off: 100, Len: 50, FileLen: 150}, bufOff: 0},
		{file: 2, sp: span{Off: 0, Len: 30, FileLen: 30}, bufOff: 50},
		{file: 3, sp: span{Off: 0, Len: 20, FileLen: 20}, bufOff: 80, pad: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("segments(100, 200)\n got %+v\nwant %+v", got, want)
	}
	if got := l.segments(200, 300); len(got) != 1 || got[0].file != 4 || got[0].sp.Len != 100 {
		t.Errorf("segments(200, 300) = %+v", got)
	}
}
