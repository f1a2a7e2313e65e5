package fs

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// rootNames lists the root.
func rootNames(t *testing.T, mnt string) []string {
	t.Helper()
	es, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatalf("readdir %s: %v", mnt, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestMagnetFolderPopulated(t *testing.T) {
	ih := metainfo.Hash(sha1.Sum([]byte("late")))
	mag := newMagnetTorrent(ih, "")
	host := newFakeHost(mag)
	_, mnt, _ := mountT(t, host, Options{})
	hexName := ih.String()

	// The folder is there at once, named after the info-hash, and empty.
	if names := rootNames(t, mnt); !slices.Equal(names, []string{hexName}) {
		t.Fatalf("root %q, want [%s]", names, hexName)
	}
	if names := rootNames(t, filepath.Join(mnt, hexName)); len(names) != 0 {
		t.Fatalf("magnet folder lists %q before the metadata", names)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, hexName), &st); err != nil || st.Nlink != 2 {
		t.Fatalf("stat magnet folder: %v, nlink %d", err, st.Nlink)
	}

	// A program opening a path inside waits for the metadata.
	want := fileData(sampleFiles())["deep/a/b/c/d/leaf.txt"]
	got := make(chan []byte, 1)
	go func() {
		b, err := os.ReadFile(filepath.Join(mnt, hexName, "deep/a/b/c/d/leaf.txt"))
		if err != nil {
			t.Errorf("read inside magnet: %v", err)
		}
		got <- b
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("lookup did not wait for the metadata")
	default:
	}
	info, data := makeInfo("Late Arrival", samplePiece, sampleFiles())
	mag.setInfo(info, data, true)
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Errorf("content differs")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lookup still waiting after the metadata arrived")
	}

	// The folder takes the torrent's name and lists its files.
	eventually(t, 5*time.Second, "the folder to be renamed", func() bool {
		return slices.Equal(rootNames(t, mnt), []string{"Late Arrival"}) && !exists(filepath.Join(mnt, hexName))
	})
	readme, err := os.ReadFile(filepath.Join(mnt, "Late Arrival", "README.txt"))
	if err != nil || string(readme) != "hello, swarm\n" {
		t.Errorf("README: %q, %v", readme, err)
	}
	if err := syscall.Stat(filepath.Join(mnt, "Late Arrival"), &st); err != nil || st.Nlink != 5 {
		t.Errorf("stat populated folder: %v, nlink %d, want 5", err, st.Nlink)
	}
}

func TestMagnetLookupTimesOut(t *testing.T) {
	mag := newMagnetTorrent(metainfo.Hash(sha1.Sum([]byte("never"))), "Never Arrives")
	_, mnt, _ := mountT(t, newFakeHost(mag), Options{ReadTimeout: 200 * time.Millisecond})
	var err error
	within(t, 5*time.Second, "a lookup in a magnet folder", func() {
		_, err = os.Stat(filepath.Join(mnt, "Never Arrives", "file"))
	})
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("stat: %v, want EIO", err)
	}
}

func TestAddTorrentFile(t *testing.T) {
	host, _, _ := sampleHost()
	extra := newFakeTorrent("extra", 32<<10, fakeFile{path: "a/b.txt", data: []byte("added")})
	host.files["d8:announce...extra"] = extra
	second := newFakeTorrent("second", 32<<10, fakeFile{path: "c.txt", data: []byte("via cp")})
	host.files["d8:announce...second"] = second
	_, mnt, _ := mountT(t, host, Options{})

	if err := os.WriteFile(filepath.Join(mnt, "extra.torrent"), []byte("d8:announce...extra"), 0o644); err != nil {
		t.Fatalf("write extra.torrent: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "extra/a/b.txt")); err != nil || string(b) != "added" {
		t.Fatalf("added torrent: %q, %v", b, err)
	}
	if exists(filepath.Join(mnt, "extra.torrent")) || slices.Contains(rootNames(t, mnt), "extra.torrent") {
		t.Errorf("extra.torrent lingers")
	}

	// With cp, as a user would.
	src := filepath.Join(t.TempDir(), "second.torrent")
	os.WriteFile(src, []byte("d8:announce...second"), 0o644)
	if out, err := exec.Command("cp", src, mnt+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "second/c.txt")); err != nil || string(b) != "via cp" {
		t.Fatalf("torrent added by cp: %q, %v", b, err)
	}
	// Adding it again: already there.
	if out, err := exec.Command("cp", src, mnt+"/").CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("cp of a torrent already added: %v: %s", err, out)
	}
	names := rootNames(t, mnt)
	slices.Sort(names)
	if !slices.Equal(names, []string{"extra", "sample", "second", "single.iso"}) {
		t.Errorf("root %q", names)
	}
}

func TestAddMagnetFile(t *testing.T) {
	host, _, _ := sampleHost()
	ih := metainfo.Hash(sha1.Sum([]byte("magnet file")))
	uri := "magnet:?xt=urn:btih:" + ih.String() + "&dn=From+File"
	host.magnets[uri] = newMagnetTorrent(ih, "From File")
	_, mnt, _ := mountT(t, host, Options{})
	// The shell's way: open, dup, close, then write.
	cmd := exec.Command("sh", "-c", `echo "$URI" > "$DST"`)
	cmd.Env = append(os.Environ(), "URI="+uri, "DST="+filepath.Join(mnt, "x.magnet"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("echo > x.magnet: %v: %s", err, out)
	}
	if !exists(filepath.Join(mnt, "From File")) {
		t.Fatalf("magnet not added; root %q, host got %q", rootNames(t, mnt), host.addedInputs())
	}
	if got := host.addedInputs(); !slices.Equal(got, []string{uri}) {
		t.Errorf("AddMagnet got %q", got)
	}
	if exists(filepath.Join(mnt, "x.magnet")) {
		t.Errorf("x.magnet lingers")
	}
}

func TestAddBadTorrent(t *testing.T) {
	host, _, single := sampleHost()
	_, mnt, log := mountT(t, host, Options{})
	err := os.WriteFile(filepath.Join(mnt, "bad.torrent"), []byte("this is not bencode"), 0o644)
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("writing a bad torrent: %v, want EINVAL", err)
	}
	if !log.contains("bad.torrent") {
		t.Errorf("no log line names bad.torrent")
	}
	if exists(filepath.Join(mnt, "bad.torrent")) || slices.Contains(rootNames(t, mnt), "bad.torrent") {
		t.Errorf("bad.torrent lingers")
	}
	// Too big: the write fails.
	f, err := os.Create(filepath.Join(mnt, "huge.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	_, werr := f.WriteAt([]byte("x"), MaxTorrentFileSize)
	f.Close()
	if !errors.Is(werr, syscall.EFBIG) {
		t.Errorf("writing past the bound: %v, want EFBIG", werr)
	}
	// An empty magnet: close cannot fail (a shell closes before it writes),
	// but the log says it and the file goes.
	if err := os.WriteFile(filepath.Join(mnt, "empty.magnet"), nil, 0o644); err != nil {
		t.Errorf("empty magnet: %v", err)
	}
	eventually(t, 5*time.Second, "empty.magnet to go", func() bool {
		return log.contains("empty.magnet") && !exists(filepath.Join(mnt, "empty.magnet"))
	})
	// The mount goes on working.
	readAllFiles(t, mnt, single)
	names := rootNames(t, mnt)
	slices.Sort(names)
	if !slices.Equal(names, []string{"sample", "single.iso"}) {
		t.Errorf("root %q", names)
	}
}

func TestMkdirInfoHash(t *testing.T) {
	host, _, _ := sampleHost()
	_, mnt, _ := mountT(t, host, Options{})
	ih := metainfo.Hash(sha1.Sum([]byte("by hash")))
	if err := os.Mkdir(filepath.Join(mnt, ih.String()), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if got := host.addedInputs(); !slices.Equal(got, []string{"magnet:?xt=urn:btih:" + ih.String()}) {
		t.Errorf("AddMagnet got %q", got)
	}
	if fi, err := os.Stat(filepath.Join(mnt, ih.String())); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o555 {
		t.Errorf("stat: %v %v", fi, err)
	}
	if err := os.Mkdir(filepath.Join(mnt, ih.String()), 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second mkdir: %v, want EEXIST", err)
	}
	if err := os.Mkdir(filepath.Join(mnt, strings.Repeat("g", 40)), 0o755); !errors.Is(err, syscall.EPERM) {
		t.Errorf("mkdir of a non-hex name: %v, want EPERM", err)
	}
}

func TestRmdirRemoves(t *testing.T) {
	host, sample, _ := sampleHost()
	srv, mnt, _ := mountT(t, host, Options{})
	// A file open in the torrent does not stop the removal.
	f, err := os.Open(filepath.Join(mnt, "sample/README.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Rmdir(filepath.Join(mnt, "sample")); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	if got := host.removedHashes(); !slices.Equal(got, []metainfo.Hash{sample.ih}) {
		t.Errorf("Remove got %v", got)
	}
	if exists(filepath.Join(mnt, "sample")) || slices.Contains(rootNames(t, mnt), "sample") {
		t.Errorf("sample still there")
	}
	if err := syscall.Rmdir(filepath.Join(mnt, "nothing")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("rmdir of nothing: %v", err)
	}
	// Added again: a fresh folder.
	host.put(sample)
	refreshSync(srv)
	if b, err := os.ReadFile(filepath.Join(mnt, "sample/README.txt")); err != nil || string(b) != "hello, swarm\n" {
		t.Errorf("re-added: %q, %v", b, err)
	}
}

// refreshSync calls Refresh and waits for the kernel to have been told.
func refreshSync(srv *Server) {
	srv.Refresh()
	srv.notify.sync(srv.closing)
}

func TestRefresh(t *testing.T) {
	host, sample, _ := sampleHost()
	srv, mnt, _ := mountT(t, host, Options{})
	// Look up names first so the kernel has entries to invalidate.
	if !exists(filepath.Join(mnt, "sample")) || exists(filepath.Join(mnt, "later")) {
		t.Fatal("unexpected root")
	}
	later := newFakeTorrent("later", 32<<10, fakeFile{path: "later", data: []byte("late")})
	host.put(later)
	host.drop(sample.ih)
	refreshSync(srv)
	if b, err := os.ReadFile(filepath.Join(mnt, "later/later")); err != nil || string(b) != "late" {
		t.Errorf("refreshed-in torrent: %q, %v", b, err)
	}
	if exists(filepath.Join(mnt, "sample")) {
		t.Errorf("removed torrent still visible")
	}
	names := rootNames(t, mnt)
	slices.Sort(names)
	if !slices.Equal(names, []string{"later", "single.iso"}) {
		t.Errorf("root %q", names)
	}
}

func TestNameClash(t *testing.T) {
	a := newFakeTorrent("same", 32<<10, fakeFile{path: "a", data: []byte("a")})
	b := newFakeTorrent("same ", 32<<10, fakeFile{path: "b", data: []byte("b")})
	b.info.Name = "same" // two torrents, one name
	evil := newFakeTorrent("evil", 32<<10, fakeFile{path: "e", data: []byte("e")})
	evil.info.Name = "../x/y"
	_, mnt, _ := mountT(t, newFakeHost(a, b, evil), Options{})
	names := rootNames(t, mnt)
	slices.Sort(names)
	want := []string{".._x_y", "same", "same (" + b.ih.String()[:8] + ")"}
	if !slices.Equal(names, want) {
		t.Errorf("root %q, want %q", names, want)
	}
}
