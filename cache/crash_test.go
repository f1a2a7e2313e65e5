package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a child (TestMain sees
// crashChildEnv) that writes pieces as fast as it can, evicting as it goes,
// while the parent kills it with SIGKILL at random moments.

const (
	crashChildEnv    = "SWARMFS_CACHE_CRASH_DIR"
	crashGenEnv      = "SWARMFS_CACHE_CRASH_GEN"
	crashCapacity    = 12 << 20
	crashWriters     = 2
	crashProgressLog = "progress.log"
)

// crashSize gives each test piece a size from 200 bytes to 300 KiB.
func crashSize(ih InfoHash, piece int) int {
	if piece%17 == 0 {
		return 200 + piece%500 // small: a slot of one block
	}
	return 16<<10 + (int(ih[0])*7919+piece*104729)%(284<<10)
}

// crashChild runs in the child process and never returns normally.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	gen, _ := strconv.Atoi(os.Getenv(crashGenEnv))
	flushInterval = 30 * time.Millisecond
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	c, err := Open(Options{Dir: filepath.Join(dir, "store"), Capacity: crashCapacity, Logf: logf})
	if err != nil {
		logf("child: open: %v", err)
		os.Exit(2)
	}
	progress, err := os.OpenFile(filepath.Join(dir, crashProgressLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		logf("child: %v", err)
		os.Exit(2)
	}
	var logMu sync.Mutex
	note := func(kind byte, ih InfoHash, piece int) {
		logMu.Lock()
		fmt.Fprintf(progress, "%c %d %d\n", kind, ih[0], piece)
		logMu.Unlock()
	}
	c.OnEvict(func(ih InfoHash, piece int) { note('E', ih, piece) })
	for w := 0; w < crashWriters; w++ {
		ih := ihOf(w + 1)
		go func() {
			if err := c.PutMeta(ih, []byte(fmt.Sprintf("meta %d", w))); err != nil {
				logf("child: PutMeta: %v", err)
				os.Exit(3)
			}
			for piece := gen * 100000; ; piece++ {
				d := pieceData(ih, piece, crashSize(ih, piece))
				if err := c.Put(ih, piece, d); err != nil {
					logf("child: Put: %v", err)
					os.Exit(3)
				}
				note('P', ih, piece)
			}
		}()
	}
	// A reader keeps first-read verification and recency flushes busy.
	go func() {
		r := rand.New(rand.NewPCG(uint64(gen), 1))
		buf := make([]byte, 300<<10)
		for {
			ih := ihOf(1 + r.IntN(crashWriters))
			ps := c.Pieces(ih)
			if len(ps) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			p := ps[r.IntN(len(ps))]
			size := crashSize(ih, p)
			n, err := c.ReadAt(ih, p, buf[:size], 0)
			if errors.Is(err, ErrNotFound) {
				continue // evicted meanwhile
			}
			if err != nil || n != size || !bytes.Equal(buf[:n], pieceData(ih, p, size)) {
				logf("child: CORRUPT read of piece %d: n=%d err=%v", p, n, err)
				os.Exit(4)
			}
		}
	}()
	select {}
}

type crashState struct {
	present map[[2]int]bool // (torrent byte, piece) believed stored
	puts    int
}

// replay reads the child's progress log. A torn last line is ignored.
func (s *crashState) replay(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		ih, err1 := strconv.Atoi(fields[1])
		p, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil {
			continue
		}
		switch fields[0] {
		case "P":
			s.present[[2]int{ih, p}] = true
			s.puts++
		case "E":
			delete(s.present, [2]int{ih, p})
		}
	}
	os.Remove(path)
}

func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	state := &crashState{present: map[[2]int]bool{}}
	rounds := 6
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < rounds; round++ {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashGenEnv+"="+strconv.Itoa(round))
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment once writing is under way.
		progress := filepath.Join(dir, crashProgressLog)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if st, err := os.Stat(progress); err == nil && st.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: child wrote nothing; stderr:\n%s", round, stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v); stderr:\n%s", round, err, stderr.String())
		}
		state.replay(t, progress)
		checkCrashStore(t, dir, state, round)
	}
	if state.puts < 50 {
		t.Errorf("only %d pieces written across %d rounds; the test exercised little", state.puts, rounds)
	}
}

// checkCrashStore reopens the store after a kill and reads back every piece.
func checkCrashStore(t *testing.T, dir string, state *crashState, round int) {
	t.Helper()
	c := openT(t, Options{Dir: filepath.Join(dir, "store"), Capacity: crashCapacity})
	defer c.Close()
	// A kill can land between an eviction's choice and its delete while
	// another writer's piece commits: over capacity by at most the victims
	// in flight, a piece or two per writer. The next Put evicts them.
	if limit := int64(crashCapacity + crashWriters*2*(300<<10)); c.Size() > limit {
		t.Errorf("round %d: Size %d over capacity + in-flight evictions (%d)", round, c.Size(), limit)
	}
	// Data a kill left without a record (a Put's write before its record
	// committed, an eviction's slot before its hole was punched) was
	// punched at Open: the piece files hold the stored pieces and no more
	// than block rounding.
	stored := 0
	for w := 0; w < crashWriters; w++ {
		stored += len(c.Pieces(ihOf(w + 1)))
	}
	if got, limit := pieceFilesUsage(t, filepath.Join(dir, "store")), c.Size()+int64(stored)*4096; got > limit {
		t.Errorf("round %d: the piece files hold %d bytes, %d pieces of %d bytes take at most %d", round, got, stored, c.Size(), limit)
	}
	found := map[[2]int]bool{}
	bad := 0
	for w := 0; w < crashWriters; w++ {
		ih := ihOf(w + 1)
		if m, err := c.Meta(ih); err != nil || string(m) != fmt.Sprintf("meta %d", w) {
			t.Errorf("round %d: Meta(%d) = %q, %v", round, w, m, err)
		}
		for _, p := range c.Pieces(ih) {
			size := crashSize(ih, p)
			buf := make([]byte, size+1)
			n, err := c.ReadAt(ih, p, buf, 0)
			switch {
			case errors.Is(err, ErrNotFound):
				bad++ // dropped by its checksum: allowed, never returned
				t.Logf("round %d: piece %d dropped: %v", round, p, err)
			case n != size || !bytes.Equal(buf[:n], pieceData(ih, p, size)):
				t.Errorf("round %d: piece %d of torrent %d read back wrong (n=%d, err=%v)", round, p, w+1, n, err)
			default:
				found[[2]int{int(ih[0]), p}] = true
			}
		}
	}
	missing := 0
	for k := range state.present {
		if !found[k] {
			missing++
		}
	}
	// What a kill may lose: the pieces being written (one per writer) and
	// the victims of an eviction that committed but was not yet logged.
	t.Logf("round %d: %d pieces verified, %d expected missing, %d dropped, %d puts so far",
		round, len(found), missing, bad, state.puts)
	if missing > 2*crashWriters+4 {
		t.Errorf("round %d: %d committed pieces missing after the kill", round, missing)
	}
	if bad > crashWriters {
		t.Errorf("round %d: %d pieces failed verification", round, bad)
	}
	// From now on the store's contents are the truth.
	clear(state.present)
	for k := range found {
		state.present[k] = true
	}
}

// pieceFilesUsage sums the blocks allocated to a store's piece files.
func pieceFilesUsage(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, piecesDir))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += info.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return n
}

// TestOpenAfterEmptyLogs: a crash between badger creating a memtable or
// value-log file and sizing it leaves the file empty, which badger refuses
// at Open (dgraph-io/badger#2207) with an error that only says so in its
// text. Open must remove such files first and keep every piece.
func TestOpenAfterEmptyLogs(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{Dir: dir, Capacity: 1 << 30})
	ih := ihOf(1)
	var want [][]byte
	for p := range 4 {
		want = append(want, mustPut(t, c, ih, p, 64<<10))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	empty := []string{
		filepath.Join(dir, "000099.vlog"), // badger's value-log name, %06d.vlog
		filepath.Join(dir, "00099.mem"),   // badger's memtable log name, %05d.mem
	}
	for _, name := range empty {
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c = openT(t, Options{Dir: dir, Capacity: 1 << 30})
	defer c.Close()
	for p, w := range want {
		if got := readAll(t, c, ih, p, len(w)); !bytes.Equal(got, w) {
			t.Fatalf("piece %d changed across the reopen", p)
		}
	}
}
