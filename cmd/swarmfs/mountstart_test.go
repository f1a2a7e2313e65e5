package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMountStoreFailsAfterLock: the cache's store fails to open after its
// data directory was locked: swarmfs mount says why, exits non-zero and
// leaves nothing mounted.
func TestMountStoreFailsAfterLock(t *testing.T) {
	dataDir := t.TempDir()
	cacheDir := filepath.Join(dataDir, "cache")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Not a badger manifest: the open fails after the lock is taken.
	if err := os.WriteFile(filepath.Join(cacheDir, "MANIFEST"), []byte("not a manifest at all, not even close"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMount(t, mountOpts{IP: "127.0.0.36", DataDir: dataDir, NoWait: true})
	if !m.c.wait(kernelSlack) {
		t.Fatalf("swarmfs mount still running %v after start:\n%s", kernelSlack, m.Output())
	}
	if m.c.exitCode() == 0 {
		t.Errorf("swarmfs mount exited 0 with a broken store:\n%s", m.Output())
	}
	if !strings.Contains(m.Output(), "open store") {
		t.Errorf("no word of the store in the output:\n%s", m.Output())
	}
	if isMounted(m.Dir) {
		t.Fatalf("%s left mounted:\n%s", m.Dir, m.Output())
	}
}

// TestMountDataDirInUse: a second mount of a data directory another mount
// holds fails with a clear message and leaves nothing mounted (it mounts
// while its cache opens, and unmounts when that fails).
func TestMountDataDirInUse(t *testing.T) {
	dataDir := t.TempDir()
	first := startMount(t, mountOpts{IP: "127.0.0.37", DataDir: dataDir})
	second := startMount(t, mountOpts{IP: "127.0.0.37", DataDir: dataDir, NoWait: true})
	if !second.c.wait(kernelSlack) {
		t.Fatalf("second swarmfs mount still running %v after start:\n%s", kernelSlack, second.Output())
	}
	if second.c.exitCode() == 0 || !strings.Contains(second.Output(), "in use by another swarmfs process") {
		t.Errorf("second mount of one data directory: exit %d:\n%s", second.c.exitCode(), second.Output())
	}
	if isMounted(second.Dir) {
		t.Fatalf("%s mounted by the second swarmfs:\n%s", second.Dir, second.Output())
	}
	if !isMounted(first.Dir) {
		t.Fatalf("the first mount went away")
	}
	first.StopClean(t)
}
