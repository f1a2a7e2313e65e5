package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
	"github.com/swarmfs/swarmfs/picker"
)

// TestWebSeedHashesAsItArrives: a v1 torrent's pieces from a web seed are
// hashed while their bytes arrive, not queued for the hashing pool after
// the transfer: with every hashing slot held, a read from a web seed still
// completes (before, it waited for a slot).
func TestWebSeedHashesAsItArrives(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 3<<20 + 4321}}
	root, mi := wsFixture(t, files, true, 256<<10)
	srv := newWSServer(t, filepath.Dir(root))
	c, tor := webSeedClient(t, mi, Config{}, srv.URL+"/data/big.bin")
	for range cap(c.hashSem) {
		c.hashSem <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(c.hashSem) {
			<-c.hashSem
		}
	})
	readAll(t, tor, root, true, 10*time.Second)
}

// stallRange answers r, a request for data[first:last+1], with a 206 that
// carries its first n bytes (n < last+1-first: a response sent whole has
// nothing left to stall) and then nothing until the client gives up
// (counted in cancelled) or hold passes (timedOut).
func stallRange(w http.ResponseWriter, r *http.Request, data []byte, first, last, n int64, hold time.Duration, cancelled, timedOut *atomic.Int64) {
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(data)))
	w.Header().Set("Content-Length", fmt.Sprint(last-first+1))
	w.WriteHeader(http.StatusPartialContent)
	w.Write(data[first : first+n])
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
		cancelled.Add(1)
	case <-time.After(hold):
		timedOut.Add(1)
	}
}

// TestWebSeedSeekCutsRuns: after a seek, the web seed's runs for the old
// window, which the picker withdraws, are cut short (their requests
// cancelled) instead of holding the seed's connections and link while the
// read at the new offset waits. The server stalls every request for the
// old window after its first piece (until the client gives up or 5 s
// pass) and serves the rest.
func TestWebSeedSeekCutsRuns(t *testing.T) {
	const pieceLen = 256 << 10
	const size = 32 << 20
	const seekTo = 30 << 20
	const served = 2 << 20 // read in order before the seek
	mi, srv, data := wsServedFile(t, size, pieceLen)
	var stalled, cancelled, timedOut atomic.Int64
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		var first, last int64
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last)
		if first < served || first >= seekTo-pieceLen || last < first || last >= size {
			return false // served
		}
		// The run's first piece (half of it, when it is the only one),
		// then nothing: the run frees room in the seed's pipeline, so
		// the picker asks for more and the next run starts, and stalls
		// likewise.
		n := last + 1 - first
		if n > pieceLen {
			n = pieceLen
		} else {
			n /= 2
		}
		stalled.Add(1)
		stallRange(w, r, data, first, last, n, 5*time.Second, &cancelled, &timedOut)
		return true
	})
	_, r := webSeedReader(t, mi, srv.URL+"/data/big.bin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	buf := make([]byte, 64<<10)
	// Read the start in order: the reader's window opens and grows, and
	// the seed's runs for it stall.
	for off := int64(0); off < served; off += int64(len(buf)) {
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(8 * time.Second)
	for stalled.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests for the window, want 2 or more", stalled.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	if _, err := r.ReadAt(ctx, buf[:1], seekTo); err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0)
	// The picker keeps the few oldest blocks asked (probably on the
	// wire): all runs but one are cut.
	deadline = time.Now().Add(3 * time.Second)
	for cancelled.Load() < stalled.Load()-1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n, c := stalled.Load(), cancelled.Load(); c < n-1 || timedOut.Load() > 0 {
		t.Fatalf("%d stalled requests for the old window, %d cancelled by the client, %d ran to the server's timeout (the read after the seek took %v)", n, c, timedOut.Load(), el)
	}
	t.Logf("%d stalled, %d cancelled; read after the seek %v", stalled.Load(), cancelled.Load(), el)
	if el > 4*time.Second {
		t.Errorf("the read after the seek took %v", el)
	}
}

// TestWebSeedPreemptsForUrgentRead: while players' readahead windows hold
// a web seed's four run slots and another reader's read waits for a piece
// nobody was asked for, the seed makes room at once: a run is cut and the
// read's piece is fetched. Four players each read the first MiB of their
// eighth of the file, which the server serves; it stalls every request
// for their windows after half a piece, until the client gives up, and
// serves the range holding the other read's piece. Before, that read
// waited for the picker's request timeout (about 3 s), as did a player's
// first reads when the earlier players' windows filled the seed.
func TestWebSeedPreemptsForUrgentRead(t *testing.T) {
	// Small pieces: the window's runs take the seed's four run slots
	// before its pipeline (64 blocks while it has no rate) is full.
	const pieceLen = 64 << 10
	const size = 48 << 20
	const served = 1 << 20 // each player's start
	const part = size / 8  // player k starts at k*part
	mi, srv, data := wsServedFile(t, size, pieceLen)
	var mu sync.Mutex
	var ranges [][2]int64 // the stalled requests' ranges
	var readAt atomic.Int64
	readAt.Store(-1)
	var cancelled, timedOut atomic.Int64
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		var first, last int64
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last)
		if at := readAt.Load(); first%part < served || at >= first && at <= last || last < first || last >= size {
			return false // served
		}
		mu.Lock()
		ranges = append(ranges, [2]int64{first, last})
		mu.Unlock()
		// Half a piece: the run holds its slot.
		stallRange(w, r, data, first, last, pieceLen/2, time.Minute, &cancelled, &timedOut)
		return true
	})
	stalled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ranges)
	}
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/data/big.bin")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	buf := make([]byte, 64<<10)
	// slowest is the longest any read waited: a later player's first
	// reads, too, find the seed full of the earlier players' windows.
	var slowest time.Duration
	read := func(r *Reader, off int64) {
		t0 := time.Now()
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	for k := range int64(maxWebSeedRuns) {
		player, err := tor.NewReader(0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer player.Close()
		for off := k * part; off < k*part+served; off += int64(len(buf)) {
			read(player, off)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for stalled() < maxWebSeedRuns {
		if time.Now().After(deadline) {
			t.Fatalf("%d stalled runs for the players' windows after 10 s, want %d", stalled(), maxWebSeedRuns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	at := int64(maxWebSeedRuns*part + part/2) // past every player's window
	readAt.Store(at)
	r, err := tor.NewReader(0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t0 := time.Now()
	read(r, at)
	el := time.Since(t0)
	t.Logf("%d stalled runs, %d cut by the client; the last read took %v, the slowest %v", stalled(), cancelled.Load(), el, slowest)
	if slowest > 2*time.Second {
		t.Fatalf("a read waited %v while the players' windows held the web seed", slowest)
	}
	if !bytes.Equal(buf, data[at:at+int64(len(buf))]) {
		t.Fatal("wrong data")
	}
}

// TestWebSeedOnlyDownloadsWithoutStalls: a torrent whose only source is a
// web seed downloads all of its 512 small pieces at the seed's pace. The
// requests that do not fit in its runs go back to the picker, which must
// not hold them from the seed for the back-off it gives a peer's REJECT:
// then the download stalled 3 s at a time (19 s here, 1.3 s without).
func TestWebSeedOnlyDownloadsWithoutStalls(t *testing.T) {
	files := []swarmtest.FileSpec{{Path: "big.bin", Size: 32 << 20}}
	root, mi := wsFixture(t, files, true, 64<<10)
	srv := newWSServer(t, filepath.Dir(root))
	mi.URLList = []string{srv.URL + "/data/big.bin"}
	c := newClient(t, Config{})
	t0 := time.Now()
	tor, err := c.AddTorrent(mi, TorrentOptions{DownloadAll: true})
	if err != nil {
		t.Fatal(err)
	}
	waitComplete(t, tor, 60*time.Second)
	el := time.Since(t0)
	t.Logf("32 MiB from the web seed in %v", el)
	if el > 10*time.Second {
		t.Fatalf("32 MiB from a loopback web seed took %v: the download stalled", el)
	}
}

// TestGoodPieceReadableAtOnce: a piece already verified as it arrived (a
// web seed's) is in memory for its readers when the loop hands it on, not
// after the goroutine that writes it to the store got a thread.
func TestGoodPieceReadableAtOnce(t *testing.T) {
	const pl = 256 << 10
	f := newFixture(t, pl, []swarmtest.FileSpec{{Path: "a.bin", Size: 4 * pl}})
	_, tor, _ := leecher(t, f, Config{ListenAddr: "127.0.0.3:0", NoTrackers: true})
	data, err := os.ReadFile(filepath.Join(f.root, "a.bin"))
	if err != nil {
		t.Fatal(err)
	}
	inMem := make(chan bool, 1)
	ok := tor.post(func() {
		nb := pl / peer.BlockSize
		buf := getPieceBuf(pl)
		copy(buf, data[:pl])
		tor.hashPiece(0, &partialPiece{buf: buf, from: make([]netip.Addr, nb), count: nb, good: true})
		inMem <- tor.mem.has(0) || tor.HavePiece(0)
	})
	if !ok {
		t.Fatal("the torrent's loop is gone")
	}
	if !<-inMem {
		t.Error("a verified piece was not readable when hashPiece returned")
	}
	waitComplete := time.Now().Add(10 * time.Second)
	for !tor.HavePiece(0) {
		if time.Now().After(waitComplete) {
			t.Fatal("piece 0 not stored after 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWebSeedPreconnect: a torrent with pieces to fetch opens a connection
// to its web seed as it starts, before any read, and the first read's
// request goes over it.
func TestWebSeedPreconnect(t *testing.T) {
	mi, srv, data := wsServedFile(t, 3<<20, 1<<20)
	var mu sync.Mutex
	var methods, remotes []string
	srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		methods = append(methods, r.Method)
		remotes = append(remotes, r.RemoteAddr)
		mu.Unlock()
		return false
	})
	tor, r := webSeedReader(t, mi, srv.URL+"/data/big.bin")
	deadline := time.Now().Add(10 * time.Second)
	for srv.idle.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no request reached the web seed within 10 s of the torrent's start")
		}
		time.Sleep(time.Millisecond)
	}
	// The server has answered; a read now must not race the answer on
	// its way back into the client's pool of idle connections (net/http
	// pools a body-less response's connection before handing it over, so
	// this is only the time for the answer to cross loopback, with room
	// for a loaded CI machine).
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	first := methods[0]
	mu.Unlock()
	if first != http.MethodHead {
		t.Fatalf("first request %s, want the HEAD that opens the connection", first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	off := int64(2 << 20)
	got := make([]byte, 100)
	if _, err := r.ReadAt(ctx, got, off); err != nil {
		t.Fatalf("read: %v (status %+v)", err, tor.Stats())
	}
	if !bytes.Equal(got, data[off:off+100]) {
		t.Fatal("read bytes differ from the file's")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, m := range methods {
		if m == http.MethodGet {
			if remotes[i] != remotes[0] {
				t.Errorf("first GET from %s, the HEAD's connection was from %s", remotes[i], remotes[0])
			}
			return
		}
	}
	t.Errorf("no GET reached the web seed (requests %q)", methods)
}

// TestWebSeedPreconnectBounded: a torrent connects ahead to at most
// maxPreconnect of its web seeds, and to an origin once a minute for the
// whole client.
func TestWebSeedPreconnectBounded(t *testing.T) {
	root, mi := wsFixture(t, []swarmtest.FileSpec{{Path: "big.bin", Size: 1 << 20}}, true, 256<<10)
	var heads atomic.Int64
	var urls []string
	for range maxPreconnect + 2 {
		srv := newWSServer(t, filepath.Dir(root))
		srv.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodHead {
				heads.Add(1)
			}
			return false
		})
		urls = append(urls, srv.URL+"/data/big.bin")
	}
	c, _ := webSeedClient(t, mi, Config{}, urls...)
	deadline := time.Now().Add(10 * time.Second)
	for heads.Load() < maxPreconnect {
		if time.Now().After(deadline) {
			t.Fatalf("%d web seeds connected to ahead, want %d", heads.Load(), maxPreconnect)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := heads.Load(); n != maxPreconnect {
		t.Errorf("%d web seeds of %d connected to ahead, want %d", n, len(urls), maxPreconnect)
	}

	now := time.Now()
	if c.preconnectOrigin(webseedOrigin(t, urls[0]), now) {
		t.Error("an origin connected to ahead a moment ago may be again")
	}
	if !c.preconnectOrigin(webseedOrigin(t, urls[0]), now.Add(preconnectEvery)) {
		t.Errorf("an origin connected to ahead %v ago may not be again", preconnectEvery)
	}
}

func webseedOrigin(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// TestWebSeedPieceTakenWhole: a web seed's piece is taken whole whatever
// share of its blocks the picker had asked of the seed (none, or a few, as
// it hands out an urgent piece's blocks to share them among sources), and
// what the picker had asked of it is settled: a v1 piece, verified as it
// arrived, is readable at once; a hybrid's is checked whole and stored.
// Before, only the blocks asked were taken and the rest waited for the
// picker's next fill; the piece was then assembled and hashed again.
func TestWebSeedPieceTakenWhole(t *testing.T) {
	for _, format := range []metainfo.Format{metainfo.FormatV1, metainfo.FormatHybrid} {
		t.Run(format.String(), func(t *testing.T) { testWebSeedPieceTakenWhole(t, format) })
	}
}

func testWebSeedPieceTakenWhole(t *testing.T, format metainfo.Format) {
	const pl = 1 << 20
	root, mi := wsFixtureFormat(t, []swarmtest.FileSpec{{Path: "big.bin", Size: 4 * pl}}, true, pl, format)
	srv := newWSServer(t, filepath.Dir(root))
	data, err := os.ReadFile(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_, tor := webSeedClient(t, mi, Config{}, srv.URL+"/data/big.bin")
	// What the web seed's run decides as the bytes arrive.
	verified := format == metainfo.FormatV1
	for _, tc := range []struct {
		piece, asked int
	}{{1, 0}, {2, 3}} {
		type result struct {
			asked, outstanding int
			readable           bool
		}
		res := make(chan result, 1)
		if !tor.post(func() {
			ws := tor.ws.list[0]
			var r result
			if tc.asked > 0 {
				// What a read of the piece makes the picker do.
				now := time.Now()
				rd := tor.picker.AddReader(picker.ReaderOptions{Start: 0, End: 4 * pl}, now)
				defer tor.picker.RemoveReader(rd)
				tor.picker.ReaderRead(rd, int64(tc.piece)*pl, 4096, now)
				for _, q := range tor.picker.Next(ws.id, now, tc.asked) {
					if q.Piece == tc.piece {
						r.asked++
					}
				}
			}
			buf := getPieceBuf(pl)
			copy(buf, data[tc.piece*pl:])
			tor.takeWebSeedPiece(ws, tc.piece, buf, verified)
			r.readable = tor.mem.has(tc.piece) || tor.HavePiece(tc.piece)
			r.outstanding = tor.picker.Outstanding(ws.id)
			res <- r
		}) {
			t.Fatal("the torrent's loop is gone")
		}
		r := <-res
		if r.asked != tc.asked {
			t.Fatalf("piece %d: the picker asked the seed for %d of its blocks, want %d", tc.piece, r.asked, tc.asked)
		}
		if verified && !r.readable {
			t.Errorf("piece %d, %d blocks asked: a verified piece from the web seed was not readable at once", tc.piece, tc.asked)
		}
		if r.outstanding != 0 {
			t.Errorf("piece %d: %d requests still outstanding on the seed after its whole piece arrived", tc.piece, r.outstanding)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !tor.HavePiece(tc.piece) {
			if time.Now().After(deadline) {
				t.Fatalf("piece %d not stored after 10 s", tc.piece)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
