//go:build linux && (amd64 || arm64)

package utp

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
