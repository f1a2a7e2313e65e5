package storage

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// TestFileFullDisk: a file store on a full disk refuses a piece with
// ErrNoSpace (so the engine parks it rather than fetching it again at
// once), which reads as ENOSPC.
func TestFileFullDisk(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("mount tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	info := fakeInfo("big", 4, 1<<20)
	st, _, err := File{Dir: dir}.Open(metainfo.Hash{6}, info)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.WritePiece(2, make([]byte, 1<<20))
	var errno syscall.Errno
	if !errors.Is(err, ErrNoSpace) || !errors.As(err, &errno) || errno != syscall.ENOSPC {
		t.Fatalf("WritePiece on a full disk: %v", err)
	}
	t.Log(err)
}
