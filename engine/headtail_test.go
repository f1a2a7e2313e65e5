package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestAwaitHeadTail: a media reader's AwaitHeadTail returns once the pieces
// under its file's head and tail are verified, having read nothing and
// fetched nothing else; a plain reader has no head and tail to wait for;
// with no peer the wait ends with its context.
func TestAwaitHeadTail(t *testing.T) {
	const pl = 256 << 10
	f := newFixture(t, pl, []swarmtest.FileSpec{
		{Path: "a.bin", Size: 3*pl + 5000, Seed: 1},
		{Path: "movie.mkv", Size: 40 * pl, Seed: 2},
	})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	c := newClient(t, Config{ListenAddr: "127.0.0.3:0", Storage: &storage.Memory{}})
	tor, err := c.AddTorrent(f.mi, TorrentOptions{Peers: peersOf(sc)})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := tor.NewReader(1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := plain.AwaitHeadTail(ctx); !errors.Is(err, ErrNoHeadTail) {
		t.Fatalf("plain reader: %v, want ErrNoHeadTail", err)
	}

	r, err := tor.NewReader(1, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AwaitHeadTail(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// movie.mkv starts 5000 bytes into piece 3 and ends at 43 pieces plus
	// 5000 bytes: its first MiB is under pieces 3..7, its last 39..43.
	var want, got []int
	for i := 3; i <= 7; i++ {
		want = append(want, i)
	}
	for i := 39; i <= 43; i++ {
		want = append(want, i)
	}
	// A piece verified may be served from memory a moment before it is
	// stored (and has its bit).
	waitDone(t, "leecher", 10*time.Second, tor, func() bool {
		for _, i := range want {
			if !tor.HavePiece(i) {
				return false
			}
		}
		return true
	})
	for i := range f.mi.Info.NumPieces() {
		if tor.HavePiece(i) {
			got = append(got, i)
		}
	}
	for _, i := range want {
		if !tor.HavePiece(i) {
			t.Errorf("piece %d of the head or tail is missing (have %v)", i, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("have pieces %v, want the head and tail only, %v", got, want)
	}

	// No peer: the wait ends with the context.
	lone := newClient(t, Config{ListenAddr: "127.0.0.4:0", Storage: &storage.Memory{}})
	ltor, err := lone.AddTorrent(f.mi, TorrentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := ltor.NewReader(1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if err := lr.AwaitHeadTail(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with no peer: %v, want the context's deadline", err)
	}
}
