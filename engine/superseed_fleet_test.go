package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// fleetFiles is a small dataset shaped like the fleet bench's: a few large
// files, some medium, many small, one empty.
func fleetFiles() []swarmtest.FileSpec {
	files := []swarmtest.FileSpec{
		{Path: "big/a.bin", Size: 1 << 20},
		{Path: "big/b.bin", Size: 768 << 10},
		{Path: "empty", Size: 0},
	}
	for i := range 6 {
		files = append(files, swarmtest.FileSpec{Path: fmt.Sprintf("mid/%d.bin", i), Size: 96<<10 + int64(i)*7001})
	}
	for i := range 24 {
		files = append(files, swarmtest.FileSpec{Path: fmt.Sprintf("small/%02d.txt", i), Size: 1000 + int64(i)*1777})
	}
	return files
}

// TestSuperSeedFleetOfReaders: four hosts download a dataset from a
// super-seeding origin with DownloadAll while one reader per file reads
// every file at once, as `swarmfs mount --download all` with sha256sum on
// each file does. The readers want pieces the origin has shown nobody yet;
// that must not stop the hosts from fetching the pieces they were offered
// and trading them, so every host completes and every read returns the
// dataset's bytes. The origin's upload stays near the dataset's size.
func TestSuperSeedFleetOfReaders(t *testing.T) {
	files := fleetFiles()
	f := newFixture(t, 32<<10, files)
	size := swarmtest.TotalSize(files)
	origin := newClient(t, Config{ListenAddr: "127.0.0.6:0", Storage: storage.File{Dir: f.dir}, UploadRate: 2 << 20})
	otor, err := origin.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, SuperSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, otor, 5*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	const hosts = 4
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // guards errs
		errs   []string
		peers  = []netip.AddrPort{origin.Addr()}
		leechs []*Torrent
	)
	start := time.Now()
	for h := range hosts {
		c := newClient(t, Config{ListenAddr: fmt.Sprintf("127.0.0.%d:0", 2+h), Storage: storage.File{Dir: t.TempDir()}})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: append([]netip.AddrPort(nil), peers...)})
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, c.Addr())
		leechs = append(leechs, tor)
		for i, fi := range f.mi.Info.Files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := readWhole(ctx, tor, i, filepath.Join(append([]string{f.root}, fi.Path...)...)); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("host %d: %s: %v", h, strings.Join(fi.Path, "/"), err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	took := time.Since(start)
	if len(errs) > 0 {
		for h, tor := range leechs {
			s := tor.Stats()
			t.Logf("host %d: %d/%d pieces, %d peers", h, s.PiecesHave, s.Pieces, s.Peers)
		}
		t.Fatalf("%d of %d reads failed, first: %s", len(errs), hosts*len(files), errs[0])
	}
	for _, tor := range leechs {
		waitComplete(t, tor, 10*time.Second)
	}
	up := otor.Stats().Uploaded
	t.Logf("%d hosts read %d files (%d bytes) in %v; the origin uploaded %.2fx the dataset", hosts, len(files), size, took.Round(time.Millisecond), float64(up)/float64(size))
	if up > 3*size {
		t.Errorf("the origin uploaded %d bytes, %.2fx the dataset; want at most 3x", up, float64(up)/float64(size))
	}
}

// readWhole reads file i of tor in 128 KiB reads, as sha256sum does, and
// compares it with the file at want.
func readWhole(ctx context.Context, tor *Torrent, i int, want string) error {
	r, err := tor.NewReader(i, false)
	if err != nil {
		return err
	}
	defer r.Close()
	var got bytes.Buffer
	buf := make([]byte, 128<<10)
	for off := int64(0); ; {
		n, err := r.ReadAt(ctx, buf, off)
		got.Write(buf[:n])
		off += int64(n)
		if err == io.EOF || n == 0 && err == nil {
			break
		}
		if err != nil {
			return fmt.Errorf("at %d: %w", off, err)
		}
	}
	exp, err := os.ReadFile(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), exp) {
		return fmt.Errorf("read %d bytes that differ from the %d of the dataset", got.Len(), len(exp))
	}
	return nil
}

// TestSuperSeedReadersOnly: two hosts that download only what their
// readers want (a mount without --download all) read a file from a
// super-seeding origin. The pieces it offers are not the ones they read,
// so they stay uninterested; after superUnwanted the origin shows them
// every piece and the reads complete, instead of waiting for one offer
// after another to go stale.
func TestSuperSeedReadersOnly(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "a.bin", Size: 24 << 14}, {Path: "b.bin", Size: 24 << 14}}
	f := newFixture(t, 16<<10, files)
	origin := newClient(t, Config{ListenAddr: "127.0.0.6:0", Storage: storage.File{Dir: f.dir}})
	otor, err := origin.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, SuperSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, otor, 5*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), superUnwanted+15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for h := range 2 {
		c := newClient(t, Config{ListenAddr: fmt.Sprintf("127.0.0.%d:0", 2+h), Storage: storage.File{Dir: t.TempDir()}})
		tor, err := c.AddTorrent(f.mi, TorrentOptions{Peers: []netip.AddrPort{origin.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[h] = readWhole(ctx, tor, h, filepath.Join(f.root, files[h].Path))
		}()
	}
	wg.Wait()
	for h, err := range errs {
		if err != nil {
			t.Errorf("host %d reading %s: %v", h, files[h].Path, err)
		}
	}
}
