package fs

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// callerCtx is the context of a FUSE request sent by uid.
func callerCtx(uid uint32) context.Context {
	return fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uid, Gid: uid}})
}

// otherUID is a uid that is neither root nor the mounting user.
func otherUID(s *Server) uint32 {
	if s.owner == 65534 {
		return 65533
	}
	return 65534
}

func TestMayChange(t *testing.T) {
	s := &Server{owner: 1000}
	for _, c := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"mounting user", callerCtx(1000), true},
		{"root", callerCtx(0), true},
		{"other user", callerCtx(1001), false},
		{"nobody", callerCtx(65534), false},
		{"no caller", context.Background(), false},
	} {
		if got := s.mayChange(c.ctx); got != c.want {
			t.Errorf("%s: mayChange %v, want %v", c.name, got, c.want)
		}
	}
}

// TestChangeHandlersCheckCaller calls the root's handlers as another user,
// as a mount without default_permissions would let the kernel do: each
// refuses before it changes anything.
func TestChangeHandlersCheckCaller(t *testing.T) {
	host, _, _ := sampleHost()
	host.files["d8:announce...extra"] = newFakeTorrent("extra", 32<<10, fakeFile{path: "e.txt", data: []byte("e")})
	srv, mnt, _ := mountT(t, host, Options{})
	r := srv.root
	ih := metainfo.Hash(sha1.Sum([]byte("mkdir by another user")))
	u := &uploadNode{srv: srv, root: r, name: "pending.torrent", kind: ".torrent", buf: []byte("d8:announce...extra")}
	size0 := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_SIZE}}

	for _, who := range []struct {
		name string
		ctx  context.Context
	}{
		{"other user", callerCtx(otherUID(srv))},
		{"no caller", context.Background()},
	} {
		ctx := who.ctx
		for _, c := range []struct {
			name string
			call func() syscall.Errno
		}{
			{"mkdir an info-hash", func() syscall.Errno {
				_, e := r.Mkdir(ctx, ih.String(), 0o755, &fuse.EntryOut{})
				return e
			}},
			{"rmdir a torrent", func() syscall.Errno { return r.Rmdir(ctx, "sample") }},
			{"create a .torrent", func() syscall.Errno {
				_, _, _, e := r.Create(ctx, "extra.torrent", syscall.O_WRONLY|syscall.O_CREAT, 0o644, &fuse.EntryOut{})
				return e
			}},
			{"create a .magnet", func() syscall.Errno {
				_, _, _, e := r.Create(ctx, "x.magnet", syscall.O_WRONLY|syscall.O_CREAT, 0o644, &fuse.EntryOut{})
				return e
			}},
			{"unlink", func() syscall.Errno { return r.Unlink(ctx, "sample") }},
			{"rename", func() syscall.Errno { return r.Rename(ctx, "sample", r, "renamed", 0) }},
			{"mknod", func() syscall.Errno {
				_, e := r.Mknod(ctx, "x.torrent", syscall.S_IFREG|0o644, 0, &fuse.EntryOut{})
				return e
			}},
			{"link", func() syscall.Errno {
				_, e := r.Link(ctx, r, "x.torrent", &fuse.EntryOut{})
				return e
			}},
			{"symlink", func() syscall.Errno {
				_, e := r.Symlink(ctx, "/tmp/x.torrent", "x.torrent", &fuse.EntryOut{})
				return e
			}},
			{"tmpfile", func() syscall.Errno {
				_, _, _, e := r.Tmpfile(ctx, syscall.O_WRONLY, 0o644, &fuse.EntryOut{})
				return e
			}},
			{"truncate a .torrent being written", func() syscall.Errno {
				return u.Setattr(ctx, nil, size0, &fuse.AttrOut{})
			}},
		} {
			t.Run(who.name+"/"+c.name, func(t *testing.T) {
				if errno := c.call(); errno != syscall.EACCES {
					t.Errorf("errno %v, want EACCES", errno)
				}
			})
		}
	}

	// Nothing changed.
	if got := host.addedInputs(); len(got) != 0 {
		t.Errorf("the host was asked to add %q", got)
	}
	if got := host.removedHashes(); len(got) != 0 {
		t.Errorf("the host was asked to remove %v", got)
	}
	if string(u.buf) != "d8:announce...extra" {
		t.Errorf("the .torrent being written now holds %q", u.buf)
	}
	if names := rootNames(t, mnt); !slices.Equal(names, []string{"sample", "single.iso"}) {
		t.Errorf("root %q", names)
	}

	// Through a handle, truncation is the handle's business (the kernel
	// sends one only for a file its caller has open).
	if errno := u.Setattr(callerCtx(otherUID(srv)), &uploadHandle{u: u}, size0, &fuse.AttrOut{}); errno != 0 || len(u.buf) != 0 {
		t.Errorf("ftruncate through the writer's handle: %v, %d bytes left", errno, len(u.buf))
	}
}

// requireSetpriv skips the test unless commands can be run as nobody (root
// and setpriv), or fails it when CI=true says they must.
func requireSetpriv(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"setpriv", "getfattr"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to run commands as nobody)")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("cannot run commands as another user (missing %s)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runAs runs a command, as user nobody if asNobody is set, with its working
// directory in dir (never on the mount: see go-fuse's fs/api.go), and
// returns its output and error output.
func runAs(t testing.TB, asNobody bool, dir string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if asNobody {
		args = append([]string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish within 30s", args)
	}
	return stdout.String(), stderr.String(), err
}

// TestAllowOtherReadOnlyForOthers mounts with AllowOther and works on it as
// user nobody, the way issue 17 found the hole: nobody reads everything, but
// every command that adds or removes a torrent is refused and changes
// nothing; the mounting user (root here) still can.
func TestAllowOtherReadOnlyForOthers(t *testing.T) {
	requireFUSE(t)
	requireSetpriv(t)
	host, sample, _ := sampleHost()
	host.files["d8:announce...extra"] = newFakeTorrent("extra", 32<<10, fakeFile{path: "e.txt", data: []byte("extra")})
	host.files["d8:announce...pending"] = newFakeTorrent("pending", 32<<10, fakeFile{path: "p.txt", data: []byte("pending")})
	magIH := metainfo.Hash(sha1.Sum([]byte("magnet copied in")))
	magURI := "magnet:?xt=urn:btih:" + magIH.String() + "&dn=By+Magnet"
	host.magnets[magURI] = newMagnetTorrent(magIH, "By Magnet")
	mkdirIH := metainfo.Hash(sha1.Sum([]byte("mkdir of an info-hash")))

	// A folder nobody can reach, holding the mountpoint and the files to
	// copy in.
	shared := t.TempDir()
	for _, d := range []string{filepath.Dir(shared), shared} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	torrentFile := filepath.Join(shared, "extra.torrent")
	magnetFile := filepath.Join(shared, "x.magnet")
	mountpoint := filepath.Join(shared, "mnt")
	for p, data := range map[string]string{torrentFile: "d8:announce...extra", magnetFile: magURI + "\n"} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(mountpoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runAs(t, true, shared, "cat", torrentFile); err != nil {
		t.Fatalf("nobody cannot read %s (a private TMPDIR?): %v: %s", torrentFile, err, stderr)
	}
	srv, mnt, _ := mountAtT(t, mountpoint, host, Options{AllowOther: true})
	in := func(p string) string { return filepath.Join(mnt, p) }

	// Reads work.
	leaf := fileData(sampleFiles())["deep/a/b/c/d/leaf.txt"]
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"list the root", []string{"ls", "-1", mnt}, "sample\nsingle.iso\n"},
		{"list a torrent", []string{"ls", "-1", in("sample/deep/a/b/c/d")}, "leaf.txt\n"},
		{"stat the root", []string{"stat", "-c", "%a %u", mnt}, fmt.Sprintf("755 %d\n", srv.owner)},
		{"stat a folder", []string{"stat", "-c", "%a %u", in("sample")}, fmt.Sprintf("555 %d\n", srv.owner)},
		{"stat a file", []string{"stat", "-c", "%a %u", in("sample/README.txt")}, fmt.Sprintf("444 %d\n", srv.owner)},
		{"read a file", []string{"cat", in("sample/README.txt")}, "hello, swarm\n"},
		{"read a deep file", []string{"cat", in("sample/deep/a/b/c/d/leaf.txt")}, string(leaf)},
		{"get an xattr", []string{"getfattr", "--only-values", "-n", xattrInfoHash, in("sample")}, sample.ih.String()},
		{"list xattrs", []string{"getfattr", "--absolute-names", "-d", "-m", "-", in("sample/README.txt")}, ""},
	} {
		t.Run("nobody/"+c.name, func(t *testing.T) {
			out, stderr, err := runAs(t, true, shared, c.args...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if c.want != "" && out != c.want {
				t.Errorf("got %q, want %q", out, c.want)
			}
			if c.want == "" && !strings.Contains(out, xattrProgress) {
				t.Errorf("got %q, want the swarmfs attributes", out)
			}
		})
	}

	// The mounting user starts writing a .torrent and keeps it open;
	// nobody may not change it under them. cat writes it, and holds the
	// only descriptor: the torrent is added at the first close(2) of any
	// descriptor of the file after a write, and a descriptor of ours would
	// be closed by every fork that runs a command below.
	writer := exec.Command("sh", "-c", `exec cat > "$0"`, in("pending.torrent"))
	writer.Dir = shared
	feed, err := writer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	startChild(t, writer)
	if _, err := io.WriteString(feed, "d8:announce...pending"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "cat to write pending.torrent", func() bool {
		fi, err := os.Stat(in("pending.torrent"))
		return err == nil && fi.Size() == 21
	})

	// Every change is refused. The first four are the commands the
	// mounting user gives below.
	changes := []struct {
		name string
		args []string
	}{
		{"mkdir an info-hash", []string{"mkdir", in(mkdirIH.String())}},
		{"rmdir a torrent", []string{"rmdir", in("sample")}},
		{"copy a .torrent in", []string{"cp", torrentFile, mnt + "/"}},
		{"copy a .magnet in", []string{"cp", magnetFile, mnt + "/"}},
		{"rm -r a torrent", []string{"rm", "-rf", in("single.iso")}},
		{"rename a torrent", []string{"mv", in("sample"), in("renamed")}},
		{"truncate a .torrent being written", []string{"truncate", "-s", "0", in("pending.torrent")}},
	}
	for _, c := range changes {
		t.Run("nobody/"+c.name, func(t *testing.T) {
			_, stderr, err := runAs(t, true, shared, c.args...)
			if err == nil {
				t.Fatalf("succeeded")
			}
			if !strings.Contains(stderr, "Permission denied") {
				t.Errorf("%v: %q, want Permission denied (EACCES)", err, stderr)
			}
		})
	}
	if fi, err := os.Stat(in("pending.torrent")); err != nil || fi.Size() != 21 {
		t.Errorf("pending.torrent after nobody's attempts: %v, %v", fi, err)
	}
	feed.Close()
	if err := writer.Wait(); err != nil {
		t.Fatalf("writing pending.torrent: %v", err)
	}
	if got := host.addedInputs(); !slices.Equal(got, []string{"torrent:21 bytes"}) {
		t.Errorf("the host was asked to add %q, want only the mounting user's pending.torrent", got)
	}
	if got := host.removedHashes(); len(got) != 0 {
		t.Errorf("the host was asked to remove %v", got)
	}
	if names := rootNames(t, mnt); !slices.Equal(names, []string{"pending", "sample", "single.iso"}) {
		t.Errorf("root %q after nobody's attempts", names)
	}

	// The mounting user can do all of it.
	for _, c := range changes[:4] {
		if _, stderr, err := runAs(t, false, shared, c.args...); err != nil {
			t.Errorf("%s as the mounting user: %v: %s", c.name, err, stderr)
		}
	}
	names := rootNames(t, mnt)
	slices.Sort(names)
	want := []string{"By Magnet", "extra", "pending", "single.iso", mkdirIH.String()}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("root %q after the mounting user's commands, want %q", names, want)
	}
	if got := host.removedHashes(); !slices.Equal(got, []metainfo.Hash{sample.ih}) {
		t.Errorf("the host removed %v, want only sample", got)
	}
	if _, err := os.Stat(in("sample")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat of the removed torrent: %v", err)
	}
}
