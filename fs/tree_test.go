package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

const samplePiece = 256 << 10

func sampleHost() (*fakeHost, *fakeTorrent, *fakeTorrent) {
	sample := newFakeTorrent("sample", samplePiece, sampleFiles()...)
	single := newFakeTorrent("single.iso", 64<<10, fakeFile{path: "single.iso", data: randomBytes(9, 1<<20+7)})
	return newFakeHost(sample, single), sample, single
}

// walkTree returns every path under root (relative, "/"-separated) with its
// stat.
func walkTree(t *testing.T, root string) map[string]*syscall.Stat_t {
	t.Helper()
	out := map[string]*syscall.Stat_t{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fi.Sys().(*syscall.Stat_t)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func TestTreeAndAttributes(t *testing.T) {
	host, sample, single := sampleHost()
	// Half of big.bin is missing: st_blocks shows it.
	bigFile := sample.Info().Files[13]
	if bigFile.Path[0] != "big.bin" {
		t.Fatalf("sample layout changed: %v", bigFile.Path)
	}
	firstBig := int(bigFile.Offset/samplePiece) + 1
	sample.setHave(firstBig, firstBig+5, false)
	_, mnt, _ := mountT(t, host, Options{})

	tree := walkTree(t, mnt)
	var got []string
	for p := range tree {
		got = append(got, p)
	}
	sort.Strings(got)
	want := []string{".", "sample", "single.iso", "single.iso/single.iso"}
	dirs := map[string]int{"sample": 0}
	for p := range fileData(sampleFiles()) {
		want = append(want, "sample/"+p)
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			dirs["sample/"+strings.Join(parts[:i], "/")] = 0
		}
	}
	for d := range dirs {
		if d != "sample" {
			want = append(want, d)
		}
	}
	sort.Strings(want)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Fatalf("tree:\n got %q\nwant %q", got, want)
	}
	for _, p := range got {
		if strings.Contains(p, ".pad") {
			t.Errorf("pad file shown: %s", p)
		}
	}

	data := fileData(sampleFiles())
	inos := map[uint64]string{}
	for p, st := range tree {
		if other, dup := inos[st.Ino]; dup {
			t.Errorf("inode %d shared by %s and %s", st.Ino, p, other)
		}
		inos[st.Ino] = p
		if p != "." && st.Mtim != (syscall.Timespec{Sec: fakeTime.Unix()}) {
			t.Errorf("%s: mtime %v, want %v", p, time.Unix(st.Mtim.Unix()), fakeTime)
		}
		if p != "." && st.Ino == 1 {
			t.Errorf("%s has the root's inode number", p)
		}
		if st.Uid != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d", p, st.Uid)
		}
		switch {
		case p == ".":
			if st.Mode != syscall.S_IFDIR|0o755 || st.Nlink != 4 {
				t.Errorf("root: mode %o nlink %d", st.Mode, st.Nlink)
			}
		case st.Mode&syscall.S_IFMT == syscall.S_IFDIR:
			if st.Mode != syscall.S_IFDIR|0o555 {
				t.Errorf("%s: mode %o", p, st.Mode)
			}
			subdirs := 0
			for q, qst := range tree {
				if qst.Mode&syscall.S_IFMT == syscall.S_IFDIR && filepath.Dir(q) == p {
					subdirs++
				}
			}
			if int(st.Nlink) != 2+subdirs {
				t.Errorf("%s: nlink %d, want %d", p, st.Nlink, 2+subdirs)
			}
		default:
			if st.Mode != syscall.S_IFREG|0o444 || st.Nlink != 1 {
				t.Errorf("%s: mode %o nlink %d", p, st.Mode, st.Nlink)
			}
			var size int64
			if p == "single.iso/single.iso" {
				size = int64(len(single.data))
			} else {
				size = int64(len(data[strings.TrimPrefix(p, "sample/")]))
			}
			if st.Size != size {
				t.Errorf("%s: size %d, want %d", p, st.Size, size)
			}
			wantBlocks := (size + 511) / 512
			if p == "sample/big.bin" {
				wantBlocks = (size - 5*samplePiece + 511) / 512
			}
			if st.Blocks != wantBlocks {
				t.Errorf("%s: blocks %d, want %d", p, st.Blocks, wantBlocks)
			}
		}
	}
	if sample.opened.Load() != 0 {
		t.Errorf("listing opened %d readers", sample.opened.Load())
	}
}

// readAllFiles compares every file of the sample torrents through the mount.
func readAllFiles(t *testing.T, mnt string, single *fakeTorrent) {
	t.Helper()
	for p, want := range fileData(sampleFiles()) {
		got, err := os.ReadFile(filepath.Join(mnt, "sample", p))
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(got), len(want))
		}
	}
	got, err := os.ReadFile(filepath.Join(mnt, "single.iso", "single.iso"))
	if err != nil || !bytes.Equal(got, single.data) {
		t.Errorf("single.iso: %d bytes, err %v", len(got), err)
	}
}

func TestReadEveryFile(t *testing.T) {
	host, sample, single := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	readAllFiles(t, mnt, single)
	// Every open made one reader, and every reader is closed.
	eventually(t, 5*time.Second, "readers closed", func() bool {
		return sample.closed.Load() == sample.opened.Load()
	})
	// Empty files get no reader.
	if n, want := sample.opened.Load(), int32(len(fileData(sampleFiles()))-1); n != want {
		t.Errorf("%d readers opened, want %d", n, want)
	}
	if sample.media.Load() != 1 {
		t.Errorf("%d media readers, want 1 (clip.mp4)", sample.media.Load())
	}
}

func TestRandomPreads(t *testing.T) {
	host, _, _ := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	rng := rand.New(rand.NewPCG(7, 7))
	for p, want := range fileData(sampleFiles()) {
		f, err := os.Open(filepath.Join(mnt, "sample", p))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			off := rng.Int64N(int64(len(want)) + 100)
			if i%10 == 0 {
				off = max(0, int64(len(want))-rng.Int64N(50)) // near the end
			}
			buf := make([]byte, 1+rng.IntN(300<<10))
			n, err := f.ReadAt(buf, off)
			wantN := max(0, min(int64(len(buf)), int64(len(want))-off))
			if int64(n) != wantN {
				t.Fatalf("%s: ReadAt(%d, %d) = %d, %v; want %d bytes", p, len(buf), off, n, err, wantN)
			}
			if err != nil && !(err == io.EOF && int64(n) < int64(len(buf))) {
				t.Fatalf("%s: ReadAt(%d, %d): %v", p, len(buf), off, err)
			}
			if n > 0 && !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
				t.Fatalf("%s: ReadAt(%d, %d): content differs", p, len(buf), off)
			}
		}
		f.Close()
	}
}

func TestConcurrentReaders(t *testing.T) {
	host, _, single := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		go func() {
			defer func() { errs <- nil }()
			readAllFiles(t, mnt, single)
		}()
	}
	within(t, 60*time.Second, "concurrent reads", func() {
		for i := 0; i < 4; i++ {
			<-errs
		}
	})
}

func TestStableInodes(t *testing.T) {
	inodes := func() map[string]uint64 {
		host, _, _ := sampleHost()
		srv, mnt, _ := mountT(t, host, Options{})
		m := map[string]uint64{}
		for p, st := range walkTree(t, mnt) {
			m[p] = st.Ino
		}
		unmountT(t, srv)
		return m
	}
	a, b := inodes(), inodes()
	if len(a) < 10 {
		t.Fatalf("only %d entries", len(a))
	}
	for p, ino := range a {
		if b[p] != ino {
			t.Errorf("%s: inode %d, then %d", p, ino, b[p])
		}
	}
	// And they do not depend on this code's version.
	if got := inoOf([20]byte{1, 2, 3}, []string{"a", "b"}, 0); got != 0x54f63196131074d8 {
		t.Errorf("inoOf changed: %#x; inode numbers would change across upgrades", got)
	}
}

func TestXattrs(t *testing.T) {
	host, sample, _ := sampleHost()
	sample.setPeers(7)
	sample.setSwarm("seeders 0 leechers 3 completed 5 (no seeders)")
	clip := sample.Info().Files[12]
	// The first piece of clip.mp4 is missing.
	sample.setHave(int(clip.Offset/samplePiece), int(clip.Offset/samplePiece)+1, false)
	_, mnt, _ := mountT(t, host, Options{})

	get := func(path, attr string) string {
		t.Helper()
		buf := make([]byte, 256)
		n, err := unix.Getxattr(path, attr, buf)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", path, attr, err)
		}
		return string(buf[:n])
	}
	for _, p := range []string{"sample", "sample/video", "sample/video/clip.mp4", "sample/empty.bin"} {
		path := filepath.Join(mnt, p)
		if got := get(path, "user.swarmfs.infohash"); got != sample.ih.String() {
			t.Errorf("%s: infohash %q", p, got)
		}
		if got := get(path, "user.swarmfs.peers"); got != "7" {
			t.Errorf("%s: peers %q", p, got)
		}
		if got := get(path, "user.swarmfs.swarm"); got != "seeders 0 leechers 3 completed 5 (no seeders)" {
			t.Errorf("%s: swarm %q", p, got)
		}
		buf := make([]byte, 256)
		n, err := unix.Listxattr(path, buf)
		if err != nil {
			t.Fatalf("listxattr %s: %v", p, err)
		}
		names := strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00")
		if !slices.Equal(names, []string{"user.swarmfs.infohash", "user.swarmfs.progress", "user.swarmfs.peers", "user.swarmfs.swarm", "user.swarmfs.waiting"}) {
			t.Errorf("%s: listxattr %q", p, names)
		}
		if _, err := unix.Getxattr(path, "user.nope", buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s: unknown attribute: %v", p, err)
		}
		// The size query and a short buffer.
		if n, err := unix.Getxattr(path, "user.swarmfs.infohash", nil); err != nil || n != 40 {
			t.Errorf("%s: size query = %d, %v", p, n, err)
		}
		if _, err := unix.Getxattr(path, "user.swarmfs.infohash", make([]byte, 5)); !errors.Is(err, unix.ERANGE) {
			t.Errorf("%s: short buffer: %v", p, err)
		}
	}
	wantClip := float64(clip.Length-(samplePiece-clip.Offset%samplePiece)) / float64(clip.Length)
	if got := get(filepath.Join(mnt, "sample/video/clip.mp4"), "user.swarmfs.progress"); got != formatProgress(wantClip) {
		t.Errorf("clip progress %s, want %s", got, formatProgress(wantClip))
	}
	if got := get(filepath.Join(mnt, "sample/empty.bin"), "user.swarmfs.progress"); got != "1.0000" {
		t.Errorf("empty file progress %s", got)
	}
	if got, want := get(filepath.Join(mnt, "sample"), "user.swarmfs.progress"), formatProgress(sample.Stats().Progress); got != want {
		t.Errorf("torrent progress %s, want %s", got, want)
	}
}

func formatProgress(f float64) string {
	b, _ := xattrValue(nil, xattrProgress, nil, func() float64 { return f })
	return string(b)
}

func TestMutationsRejected(t *testing.T) {
	host, _, _ := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	in := func(p string) string { return filepath.Join(mnt, p) }
	cases := []struct {
		name string
		op   func() error
		want syscall.Errno
	}{
		{"write a file", func() error { return os.WriteFile(in("sample/README.txt"), []byte("x"), 0o644) }, syscall.EROFS},
		{"open for append", func() error {
			f, err := os.OpenFile(in("sample/README.txt"), os.O_RDONLY|os.O_TRUNC, 0)
			if err == nil {
				f.Close()
			}
			return err
		}, syscall.EROFS},
		{"create in torrent", func() error { return os.WriteFile(in("sample/new"), []byte("x"), 0o644) }, syscall.EROFS},
		{"mkdir in torrent", func() error { return os.Mkdir(in("sample/newdir"), 0o755) }, syscall.EROFS},
		{"unlink in torrent", func() error { return syscall.Unlink(in("sample/README.txt")) }, syscall.EROFS},
		{"rmdir in torrent", func() error { return syscall.Rmdir(in("sample/video")) }, syscall.EROFS},
		{"rename in torrent", func() error { return os.Rename(in("sample/README.txt"), in("sample/R")) }, syscall.EROFS},
		{"chmod", func() error { return os.Chmod(in("sample/README.txt"), 0o777) }, syscall.EROFS},
		{"truncate", func() error { return os.Truncate(in("sample/big.bin"), 0) }, syscall.EROFS},
		{"symlink in torrent", func() error { return os.Symlink("x", in("sample/link")) }, syscall.EROFS},
		{"setxattr", func() error { return unix.Setxattr(in("sample/README.txt"), "user.x", []byte("1"), 0) }, syscall.EROFS},
		{"create other file in root", func() error { return os.WriteFile(in("notes.txt"), []byte("x"), 0o644) }, syscall.EPERM},
		{"mkdir other name in root", func() error { return os.Mkdir(in("folder"), 0o755) }, syscall.EPERM},
		{"rename torrent folder", func() error { return os.Rename(in("sample"), in("other")) }, syscall.EPERM},
		{"unlink torrent folder", func() error { return syscall.Unlink(in("sample")) }, syscall.EISDIR},
		{"symlink in root", func() error { return os.Symlink("x", in("link")) }, syscall.EPERM},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.op(); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	// Nothing changed.
	readAllFiles(t, mnt, host.torrents[1])
}

func TestMountErrors(t *testing.T) {
	requireFUSE(t)
	host, _, _ := sampleHost()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{file, "not a folder"},
	} {
		if _, err := Mount(c.dir, host, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Mount(%s) = %v, want %q", c.dir, err, c.want)
		}
	}
	_, mnt, _ := mountT(t, host, Options{})
	if srv, err := Mount(mnt, host, Options{}); err == nil || !strings.Contains(err.Error(), "already mounted") {
		if err == nil {
			srv.Unmount()
		}
		t.Errorf("second Mount = %v, want already mounted", err)
	}
}

// TestTools runs the programs people point at a mount.
func TestTools(t *testing.T) {
	host, sample, _ := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v: %s", name, args, err, out)
		}
		return string(out)
	}
	files := strings.Count(run("find", mnt, "-type", "f", "-print0"), "\x00")
	if want := len(fileData(sampleFiles())) + 1; files != want {
		t.Errorf("find: %d files, want %d", files, want)
	}
	run("ls", "-lR", mnt)
	run("stat", filepath.Join(mnt, "sample", "big.bin"))
	var total int64
	for _, d := range fileData(sampleFiles()) {
		total += (int64(len(d)) + 511) / 512 * 512
	}
	du := strings.Fields(run("du", "-s", "-B1", filepath.Join(mnt, "sample")))[0]
	if du != strconv.FormatInt(total, 10) {
		t.Errorf("du: %s bytes, want %d", du, total)
	}
	df := run("df", "-B1", mnt)
	if !strings.Contains(df, "swarmfs") {
		t.Errorf("df does not show swarmfs:\n%s", df)
	}
	if sample.opened.Load() != 0 {
		t.Errorf("tools opened %d readers", sample.opened.Load())
	}
}

// TestManyFiles: a torrent of tens of thousands of files lists at once and
// never touches the swarm.
func TestManyFiles(t *testing.T) {
	const dirs, perDir = 100, 300
	var files []fakeFile
	for d := 0; d < dirs; d++ {
		for f := 0; f < perDir; f++ {
			files = append(files, fakeFile{path: fmt.Sprintf("d%03d/f%04d.txt", d, f), data: []byte{byte(f)}})
		}
	}
	start := time.Now()
	many := newFakeTorrent("many", 16<<10, files...)
	_, mnt, _ := mountT(t, newFakeHost(many), Options{})
	t.Logf("mount with %d files: %v", len(files), time.Since(start))
	start = time.Now()
	out, err := exec.Command("find", mnt, "-type", "f", "-printf", "%s %n\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "1 1\n"); n != len(files) {
		t.Errorf("find saw %d files of size 1, want %d", n, len(files))
	}
	t.Logf("find -printf over %d files: %v", len(files), time.Since(start))
	if many.opened.Load() != 0 {
		t.Errorf("listing opened readers")
	}
}

// TestXattrInfoHashV2: a v2 or hybrid torrent shows its SHA-256 info-hash
// in user.swarmfs.infohash_v2 and lists it; a v1 torrent has no such
// attribute.
func TestXattrInfoHashV2(t *testing.T) {
	v1 := newFakeTorrent("v1", 16, fakeFile{path: "v1", data: []byte("hello")})
	v2 := newFakeTorrent("v2", 16, fakeFile{path: "v2", data: []byte("hello")})
	info := *v2.Info()
	info.MetaVersion = 2
	info.InfoHashV2 = metainfo.HashV2(sha256.Sum256([]byte("v2 info")))
	v2.setInfo(&info, []byte("hello"), true)
	progress := func() float64 { return 1 }
	for _, tc := range []struct {
		name string
		t    *fakeTorrent
		want string // "" for none
	}{
		{"v1", v1, ""},
		{"v2", v2, info.InfoHashV2.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 256)
			n, errno := torrentXattr(xattrInfoHashV2, buf, tc.t, progress)
			listed := make([]byte, 256)
			ln, _ := torrentListxattr(listed, tc.t)
			hasName := strings.Contains(string(listed[:ln]), xattrInfoHashV2+"\x00")
			if tc.want == "" {
				if errno != syscall.ENODATA || hasName {
					t.Fatalf("v1 torrent: infohash_v2 %q (%v), listed %v", buf[:n], errno, hasName)
				}
				return
			}
			if errno != 0 || string(buf[:n]) != tc.want || !hasName {
				t.Fatalf("infohash_v2 = %q (%v), want %q; listed %v", buf[:n], errno, tc.want, hasName)
			}
		})
	}
}

// TestBlocksFollowProgress: a file's st_blocks (what du shows) follows its
// pieces as they arrive with nothing read, in a subfolder as at the top:
// an incomplete file's attributes are cached for a second, not an hour.
func TestBlocksFollowProgress(t *testing.T) {
	host, sample, _ := sampleHost()
	files := sample.Info().Files
	for _, i := range []int{12, 13} { // video/clip.mp4, big.bin
		f := files[i]
		sample.setHave(int(f.Offset/samplePiece), int((f.Offset+f.Length)/samplePiece)+1, false)
	}
	_, mnt, _ := mountT(t, host, Options{})
	for _, i := range []int{12, 13} {
		var st syscall.Stat_t
		if p := filepath.Join(mnt, "sample", files[i].DisplayPath()); syscall.Stat(p, &st) != nil || st.Blocks != 0 {
			t.Fatalf("%s: %d blocks before any piece", p, st.Blocks)
		}
	}
	for _, i := range []int{12, 13} {
		f := files[i]
		p := filepath.Join(mnt, "sample", f.DisplayPath())
		var st syscall.Stat_t
		sample.setHave(int(f.Offset/samplePiece), int((f.Offset+f.Length)/samplePiece)+1, true)
		deadline := time.Now().Add(5 * time.Second)
		for want := (f.Length + 511) / 512; st.Blocks != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d blocks 5 s after its pieces came, want %d", p, st.Blocks, want)
			}
			time.Sleep(50 * time.Millisecond)
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
		}
	}
}
