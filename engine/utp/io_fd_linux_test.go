//go:build linux && (amd64 || arm64)

package utp

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSocketOutsidePoller: the socket's descriptor is in no epoll set of
// the process (Go's poller has one), so a datagram wakes the socket's
// reader alone rather than an idle scheduler thread, which then hands
// the reader a goroutine switch later the same datagram. Through the
// poller that round cost about a third of swarmfs's CPU per uTP
// download from a libtorrent seeder on loopback. The socket still
// closes promptly with its reader waiting.
func TestSocketOutsidePoller(t *testing.T) {
	s := testSocket(t, Config{})
	m, ok := s.io.(*mmsgIO)
	if !ok {
		t.Fatalf("a UDP socket got %T, want *mmsgIO", s.io)
	}
	a := testSocket(t, Config{})
	pair(t, a, s, s.Addr().String()) // traffic through both
	fd := m.fd.fd
	for epfd, tfds := range epollSets(t) {
		for _, tfd := range tfds {
			if tfd == fd {
				t.Fatalf("socket descriptor %d is in epoll set %d", fd, epfd)
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with the reader waiting for datagrams")
	}
	if _, err := m.readBatch([]msg{{buf: make([]byte, readBufSize)}}, time.Time{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
}

// TestReadDeadline: a read with a deadline and nothing to read returns
// os.ErrDeadlineExceeded about on time (the reader's bound for deferred
// ACKs), and a datagram sent meanwhile is read.
func TestReadDeadline(t *testing.T) {
	rxc, rx := openMmsg(t, nil)
	_, tx := openMmsg(t, nil)
	count, size := rx.readShape()
	in := make([]msg, count)
	for i := range in {
		in[i].buf = make([]byte, size)
	}
	start := time.Now()
	if _, err := rx.readBatch(in, start.Add(2*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 2*time.Millisecond || d > time.Second {
		t.Fatalf("a 2 ms deadline returned after %v", d)
	}
	to := rxc.LocalAddr().(*net.UDPAddr).AddrPort() // known after its Close
	if err := tx.writeBatch([]msg{{buf: []byte("hello"), n: 5, addr: to}}); err != nil {
		t.Fatal(err)
	}
	n, err := rx.readBatch(in, time.Now().Add(5*time.Second))
	if err != nil || n != 1 || string(in[0].buf[:in[0].n]) != "hello" {
		t.Fatalf("read: %d datagrams, %v", n, err)
	}
}

// epollSets lists, for each epoll descriptor of this process, the
// descriptors it watches (from /proc/self/fdinfo).
func epollSets(t *testing.T) map[int][]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int][]int{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		epfd, _ := strconv.Atoi(e.Name())
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		sets[epfd] = []int{}
		for _, line := range strings.Split(string(info), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "tfd:" {
				n, _ := strconv.Atoi(f[1])
				sets[epfd] = append(sets[epfd], n)
			}
		}
	}
	if len(sets) == 0 {
		t.Fatal("no epoll descriptor in this process: Go's poller should have one")
	}
	return sets
}

// TestReadNap: a read after one that emptied the socket yet took
// several datagrams (they come faster than the reader handles them)
// waits readNap for more to gather; after a lone datagram, or a full
// batch, it reads at once.
func TestReadNap(t *testing.T) {
	rxc, rx := openMmsg(t, nil)
	_, tx := openMmsg(t, nil)
	to := rxc.LocalAddr().(*net.UDPAddr).AddrPort()
	count, size := rx.readShape()
	in := make([]msg, count)
	for i := range in {
		in[i].buf = make([]byte, size)
	}
	send := func(k int) {
		t.Helper()
		ms := make([]msg, k)
		for i := range ms {
			ms[i] = msg{buf: []byte("datagram"), n: 8, addr: to}
		}
		if err := tx.writeBatch(ms); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (int, time.Duration) {
		t.Helper()
		start := time.Now()
		n, err := rx.readBatch(in, start.Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return n, time.Since(start)
	}
	send(1)
	if n, _ := read(); n != 1 || rx.napFor() != 0 {
		t.Fatalf("after a lone datagram (%d read): nap %v, want none", n, rx.napFor())
	}
	send(3) // maybe one GRO run: it counts as 3
	if _, _ = read(); rx.napFor() != readNap {
		t.Fatalf("after a read of 3 datagrams that emptied the socket: nap %v, want %v", rx.napFor(), readNap)
	}
	send(1)
	if n, d := read(); n != 1 || d < readNap {
		t.Fatalf("read %d datagrams after %v, want a nap of %v first", n, d, readNap)
	}
	// More than one read takes (sent one by one, not as one GSO run
	// that a GRO read would take whole): the first does not empty the
	// socket.
	for range count + 1 {
		if err := tx.writeBatch([]msg{{buf: []byte("datagram"), n: 8, addr: to}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := read(); n != count || rx.napFor() != 0 {
		t.Fatalf("after a full read (%d): nap %v, want none", n, rx.napFor())
	}
}

// TestReaderYieldsToWoken: after a read batch that woke a connection's
// reader, the socket's reader yields its thread, so the woken reader runs
// there rather than on another thread woken for it; with Config.noYield it
// does not. (BenchmarkReaderYield measures what that saves.)
func TestReaderYieldsToWoken(t *testing.T) {
	for _, no := range []bool{false, true} {
		s := testSocket(t, Config{noYield: no})
		batchesWith(t, s, 20)
		y, w := s.readerYields.Load(), s.Stats().ReaderWakeups
		switch {
		case no && y != 0:
			t.Errorf("noYield: the reader yielded after %d batches", y)
		case !no && (w == 0 || y == 0 || y > w):
			t.Errorf("the reader yielded after %d batches, having woken readers %d times", y, w)
		}
	}
}

// BenchmarkReaderYield reports the process's voluntary context switches
// per read batch with the socket's reader yielding to the readers it woke
// and without (Config.noYield), alternating (4.3-5.2 against 6.6-8.4 on a
// quiet 2-core VM; under load the two come closer).
func BenchmarkReaderYield(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var yield, noYield []float64
	for i := 0; i < 3*b.N; i++ {
		for _, no := range []bool{i%2 == 0, i%2 == 1} { // alternating which goes first
			sw := switchesPerBatch(b, Config{noYield: no})
			if no {
				noYield = append(noYield, sw)
			} else {
				yield = append(yield, sw)
			}
		}
	}
	slices.Sort(yield)
	slices.Sort(noYield)
	b.ReportMetric(yield[len(yield)/2], "switches/batch-yield")
	b.ReportMetric(noYield[len(noYield)/2], "switches/batch-noyield")
}

// batchesWith streams n batches of 3 data packets from a raw peer to
// s and waits for a connection to read them.
func batchesWith(tb testing.TB, s *Socket, n int) {
	tb.Helper()
	r, c := dialRaw(tb, s)
	tx := newPacketIO(r.uc, true)
	defer tx.close()
	defer c.Close()
	to := r.to.AddrPort()
	const per = 3
	payload := make([]byte, 1000)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, n*per*len(payload))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadFull(c, buf)
		done <- err
	}()
	for range n {
		if err := tx.writeBatch(r.dataBatch(per, payload, to)); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

// switchesPerBatch streams 300 batches of 3 data packets to a socket
// of cfg and returns the process's voluntary context switches per read
// batch (the handshake's few included).
func switchesPerBatch(t testing.TB, cfg Config) float64 {
	t.Helper()
	s := testSocket(t, cfg)
	// The sender's own thread (its sleeps) is not counted.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()
	before, st0 := ctxSwitches(t, self), s.Stats()
	batchesWith(t, s, 300)
	sw, reads := ctxSwitches(t, self)-before, s.Stats().ReadBatches-st0.ReadBatches
	return float64(sw) / float64(max(reads, 1))
}

// ctxSwitches sums the voluntary context switches of this process's
// threads but one.
func ctxSwitches(t testing.TB, except int) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(except) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "voluntary_ctxt_switches:" {
				n, _ := strconv.Atoi(f[1])
				total += n
			}
		}
	}
	return total
}

// TestAckRidesReply: when the connection's reader, woken by a batch of
// data, answers at once (a peer-wire request for each block that came),
// the ACK the batch made due leaves in its answer, not as a datagram of
// its own before it: the socket's reader yields to the woken reader
// before it sends ACKs. Against a libtorrent seeder on loopback that cut
// the datagrams it takes from us per 128 MiB from about 10k to 7k, each
// a pass through its uTP stack on the core it is short of.
func TestAckRidesReply(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the yield decides who runs first
	s := testSocket(t, Config{})
	r, c := dialRaw(t, s)
	tx := newPacketIO(r.uc, true) // it takes r.uc: reads too go through it
	t.Cleanup(func() { tx.close() })
	to := r.to.AddrPort()
	payload := make([]byte, 1000)
	const rounds = 10
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, ackEvery*len(payload))
		for range rounds {
			if _, err := io.ReadFull(c, buf); err != nil {
				done <- err
				return
			}
			if _, err := c.Write([]byte("x")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	in := make([]msg, 8)
	for i := range in {
		in[i].buf = make([]byte, readBufSize)
	}
	pureAcks := 0
	for range rounds {
		ms := r.dataBatch(ackEvery, payload, to)
		if err := tx.writeBatch(ms); err != nil {
			t.Fatal(err)
		}
		// Packets until the reply, which acknowledges the whole batch.
		for reply := false; !reply; {
			n, err := tx.readBatch(in, time.Now().Add(5*time.Second))
			if err != nil {
				t.Fatalf("waiting for the reply: %v", err)
			}
			for _, m := range in[:n] {
				var p packet
				if err := parsePacket(m.buf[:m.n], &p); err != nil {
					t.Fatal(err)
				}
				switch {
				case p.typ == stData:
					if p.ack != r.seq-1 {
						t.Fatalf("the reply acknowledges %d, want %d", p.ack, r.seq-1)
					}
					r.ackFor = p.seq // keep it acknowledged: no resends
					reply = true
				case p.typ == stState:
					pureAcks++
				}
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ACKs of their own ahead of %d replies", pureAcks, rounds)
	if pureAcks > rounds/2 {
		t.Fatalf("%d ACKs of their own ahead of %d replies that could carry them, want at most %d", pureAcks, rounds, rounds/2)
	}
}
