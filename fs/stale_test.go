package fs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStaleMountCleared kills -9 a process serving a mount, which leaves a
// dead mount behind (stat gives ENOTCONN), and mounts again on the same folder.
func TestStaleMountCleared(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	liveMounts.Store(dir, true)
	t.Cleanup(func() {
		if _, mounted := mountedOn(dir); mounted {
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
		liveMounts.Delete(dir)
	})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childMountEnv+"="+dir)
	out := startChild(t, cmd)
	var line string
	within(t, 20*time.Second, "the child to mount", func() { line, _ = out.ReadString('\n') })
	if line != "ready\n" {
		t.Fatalf("child: %q", line)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sample/README.txt")); err != nil || string(b) != "hello, swarm\n" {
		t.Fatalf("child's mount: %q, %v", b, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := statfs(dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after kill -9, statfs: %v, want ENOTCONN", err)
	}

	host, _, single := sampleHost()
	log := newTestLog(t)
	srv, err := Mount(dir, host, Options{Logf: log.logf})
	if err != nil {
		t.Fatalf("Mount over a stale mount: %v", err)
	}
	t.Cleanup(func() { unmountT(t, srv) })
	readAllFiles(t, dir, single)
}
