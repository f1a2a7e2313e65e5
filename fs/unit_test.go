package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

func TestToErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{syscall.ENOSPC, syscall.ENOSPC},
		{fmt.Errorf("wrapped: %w", syscall.EACCES), syscall.EACCES},
		{context.Canceled, syscall.EINTR},
		{fmt.Errorf("read: %w", context.Canceled), syscall.EINTR},
		{context.DeadlineExceeded, syscall.EIO},
		{errUnmounting, syscall.EIO},
		{errRemoved, syscall.EIO},
		{fmt.Errorf("x: %w", os.ErrNotExist), syscall.ENOENT},
		{fmt.Errorf("x: %w", os.ErrExist), syscall.EEXIST},
		{fmt.Errorf("x: %w", metainfo.ErrInvalid), syscall.EINVAL},
		{fmt.Errorf("x: %w", metainfo.ErrInvalidMagnet), syscall.EINVAL},
		{fmt.Errorf("x: %w", metainfo.ErrUnsupported), syscall.ENOTSUP},
		{errTooLarge, syscall.EFBIG},
		{io.ErrUnexpectedEOF, syscall.EIO},
		{errors.New("anything else"), syscall.EIO},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	ih := metainfo.Hash{0xab}
	long := strings.Repeat("x", 300)
	for _, c := range []struct{ in, want string }{
		{"Movie (2024)", "Movie (2024)"},
		{"a/b", "a_b"},
		{"nul\x00byte", "nul_byte"},
		{"", ih.String()},
		{".", ih.String()},
		{"..", ih.String()},
		{"../etc", ".._etc"},
		{long, strings.Repeat("x", nameMax)},
	} {
		if got := sanitizeName(c.in, ih); got != c.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// A cut never splits a UTF-8 sequence.
	name := ""
	for len(name) < 300 {
		name += "é"
	}
	if got := sanitizeName(name, ih); len(got) > nameMax || len(got)%2 != 0 {
		t.Errorf("cut inside a rune: %d bytes", len(got))
	}
}

func TestUploadKindAndMedia(t *testing.T) {
	for name, want := range map[string]string{
		"a.torrent": ".torrent", "A.TORRENT": ".torrent", "x.magnet": ".magnet",
		".torrent": "", "a.torrent.txt": "", "torrent": "",
	} {
		if got := uploadKind(name); got != want {
			t.Errorf("uploadKind(%q) = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]bool{
		"a.mp4": true, "B.MKV": true, "song.flac": true, "x.webm": true, "a.mp4.txt": false, "mp4": false, "a.iso": false,
	} {
		if got := IsMedia(name); got != want {
			t.Errorf("IsMedia(%q) = %v", name, got)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`: "/tmp/a b", `/plain`: "/plain", `/t\011ab\134`: "/t\tab\\", `/x\9`: `/x\9`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInoOf(t *testing.T) {
	ih := metainfo.Hash{1}
	seen := map[uint64]bool{}
	for _, parts := range [][]string{nil, {"a"}, {"b"}, {"a", "b"}, {"ab"}, {"b", "a"}} {
		ino := inoOf(ih, parts, 0)
		if ino < 2 || ino >= 1<<63 {
			t.Errorf("inoOf(%q) = %#x: outside [2, 2^63)", parts, ino)
		}
		if seen[ino] {
			t.Errorf("inoOf(%q) collides", parts)
		}
		seen[ino] = true
		if inoOf(ih, parts, 1) == ino {
			t.Errorf("salt changes nothing for %q", parts)
		}
	}
	if inoOf(metainfo.Hash{2}, []string{"a"}, 0) == inoOf(ih, []string{"a"}, 0) {
		t.Errorf("info-hash changes nothing")
	}
}
