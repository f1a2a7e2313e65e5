package cache

import (
	"errors"
	"testing"
)

// TestPeers: peers are kept beside a torrent's metainfo across a restart,
// refused without metainfo or past MaxPeersLen, and dropped with the
// torrent.
func TestPeers(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir, Capacity: 1 << 20})
	a, b := ihOf(1), ihOf(2)
	if err := c.PutPeers(a, []byte("peers")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PutPeers without metainfo: %v, want ErrNotFound", err)
	}
	for _, ih := range []InfoHash{a, b} {
		if err := c.PutMeta(ih, []byte("meta")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Peers(a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Peers before PutPeers: %v, want ErrNotFound", err)
	}
	if err := c.PutPeers(a, make([]byte, MaxPeersLen+1)); err == nil {
		t.Fatal("PutPeers took more than MaxPeersLen")
	}
	for _, p := range []string{"first", "second"} {
		if err := c.PutPeers(a, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutPeers(b, []byte("b's")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = openT(t, Options{Dir: dir, Capacity: 1 << 20})
	defer c.Close()
	if got, err := c.Peers(a); err != nil || string(got) != "second" {
		t.Fatalf("Peers after restart = %q, %v; want the last put", got, err)
	}
	if err := c.DropTorrent(a); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Peers(a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Peers after DropTorrent: %v, want ErrNotFound", err)
	}
	if got, err := c.Peers(b); err != nil || string(got) != "b's" {
		t.Fatalf("another torrent's peers after DropTorrent = %q, %v", got, err)
	}
	if err := c.PutMeta(a, []byte("meta again")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Peers(a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("peers came back with the metainfo: %v", err)
	}
}
