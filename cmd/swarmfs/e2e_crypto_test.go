package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestE2EMountEncryptedSeeder: `swarmfs mount` (default --encryption
// prefer) reads a file byte-exact from a libtorrent seeder that requires
// encryption, and its -v log says the connection is RC4.
func TestE2EMountEncryptedSeeder(t *testing.T) {
	swarmtest.RequireTools(t, "libtorrent", "fuse")
	root := t.TempDir()
	spec := swarmtest.FileSpec{Path: "crypto.bin", Size: 3<<20 + 12345}
	swarmtest.WriteFiles(t, root, []swarmtest.FileSpec{spec})
	ti := swarmtest.MakeTorrentInfo(t, filepath.Join(root, spec.Path), nil, 256<<10)
	lt := swarmtest.StartLibtorrent(t, swarmtest.LTOptions{IP: "127.0.6.1", Encryption: swarmtest.EncryptionRequired})
	lt.AddTorrent(ti.Path, root, true)
	lt.WaitSeeding(t, ti.InfoHash, 30*time.Second)

	m := startMount(t, mountOpts{IP: "127.0.6.2", Sources: []string{ti.Path},
		Flags: []string{"-v", "--no-trackers", "--read-timeout", "30s", "--peer", lt.Addr()}})
	path := filepath.Join(m.Dir, spec.Path, spec.Path) // a torrent is a folder, even of one file
	waitPath(t, path, time.Minute)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read through the mount: %v\n%s", err, m.Output())
	}
	if !bytes.Equal(got, spec.Bytes()) {
		t.Fatalf("read %d bytes through the mount, not the seeder's %d", len(got), spec.Len())
	}
	if out := m.Output(); !strings.Contains(out, lt.Addr()+": connected (outgoing, tcp, rc4") {
		t.Errorf("the log does not say the connection to %s is RC4:\n%s", lt.Addr(), out)
	}
	m.StopClean(t)
}
