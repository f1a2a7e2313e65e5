package utp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// relay puts an emulated path between a socket and target.
func relay(t testing.TB, target string, up, down utptest.Link) *utptest.Relay {
	t.Helper()
	r, err := utptest.NewRelay("127.0.0.1:0", target, up, down)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func nearWrap() uint16 { return 65535 - 40 }

// TestLossyLinkBothWays moves data both ways at once over a path that
// drops, duplicates, delays and reorders, with sequence numbers that
// wrap around early in the transfer: every byte must arrive, in order.
func TestLossyLinkBothWays(t *testing.T) {
	cfg := Config{initSeq: nearWrap, RecvBuffer: 256 << 10, SendBuffer: 256 << 10}
	a := testSocket(t, cfg)
	b := testSocket(t, cfg)
	link := func(seed uint64) utptest.Link {
		return utptest.Link{Delay: 5 * time.Millisecond, Jitter: 4 * time.Millisecond, Loss: 0.03, Duplicate: 0.02, Seed: seed}
	}
	r := relay(t, b.Addr().String(), link(1), link(2))
	ca, cb := pair(t, a, b, r.Addr())
	d1, d2 := randomBytes(1<<20+123, 4), randomBytes(1<<20-1, 5)
	e1, e2 := make(chan error, 1), make(chan error, 1)
	go sendAll(ca, d1, e1)
	go sendAll(cb, d2, e2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		checkRecv(t, ca, d2, 60*time.Second)
	}()
	checkRecv(t, cb, d1, 60*time.Second)
	wg.Wait()
	for _, e := range []chan error{e1, e2} {
		if err := <-e; err != nil {
			t.Fatal(err)
		}
	}
	up, down := r.Stats()
	if up.Dropped == 0 || down.Dropped == 0 || up.Duplicated == 0 {
		t.Fatalf("the link did not misbehave: up %+v down %+v", up, down)
	}
	t.Logf("relay up %+v down %+v; a %+v", up, down, ca.Stats())
}

// TestWrapAround crosses 65535 -> 0 in both directions on a clean path.
func TestWrapAround(t *testing.T) {
	cfg := Config{initSeq: func() uint16 { return 65530 }}
	a := testSocket(t, cfg)
	b := testSocket(t, cfg)
	ca, cb := pair(t, a, b, b.Addr().String())
	data := randomBytes(4<<20, 6) // ~3000 packets: past the wrap
	errc := make(chan error, 1)
	go sendAll(ca, data, errc)
	checkRecv(t, cb, data, 20*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	back := randomBytes(200<<10, 7)
	go sendAll(cb, back, errc)
	checkRecv(t, ca, back, 20*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestCloseFlushes: Close right after Write still delivers everything
// and the FIN; both sockets then forget the connection.
func TestCloseFlushes(t *testing.T) {
	cfg := Config{timeWait: 100 * time.Millisecond}
	a := testSocket(t, cfg)
	b := testSocket(t, cfg)
	link := utptest.Link{Delay: 2 * time.Millisecond, Loss: 0.02, Seed: 9}
	r := relay(t, b.Addr().String(), link, link)
	ca, cb := pair(t, a, b, r.Addr())
	data := randomBytes(600<<10, 8)
	if _, err := ca.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	checkRecv(t, cb, data, 30*time.Second)
	if _, err := cb.Write([]byte("late")); err != nil {
		t.Fatalf("the other direction is still open: %v", err)
	}
	cb.Close()
	waitFor(t, 10*time.Second, "both sockets free the connection", func() bool {
		return a.Stats().Conns == 0 && b.Stats().Conns == 0
	})
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPeerVanishes: a peer that stops answering costs a bounded time;
// then the connection fails with ErrTimeout and is freed.
func TestPeerVanishes(t *testing.T) {
	cfg := Config{IdleTimeout: 2 * time.Second, MaxRetransmits: 3}
	a := testSocket(t, cfg)
	b := testSocket(t, cfg)
	r := relay(t, b.Addr().String(), utptest.Link{}, utptest.Link{})
	ca, cb := pair(t, a, b, r.Addr())
	r.SetLinks(utptest.Link{Loss: 1}, utptest.Link{Loss: 1})
	start := time.Now()
	ca.SetWriteDeadline(time.Now().Add(20 * time.Second))
	var err error
	buf := make([]byte, 64<<10)
	for err == nil {
		_, err = ca.Write(buf)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("write to a vanished peer: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to notice", d)
	}
	cb.SetReadDeadline(time.Now().Add(20 * time.Second))
	for err = nil; err == nil; {
		_, err = cb.Read(buf)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("read from a vanished peer: %v, want ErrTimeout", err)
	}
	waitFor(t, 5*time.Second, "both sockets free the connection", func() bool {
		return a.Stats().Conns == 0 && b.Stats().Conns == 0
	})
}

// TestBackpressure: Write blocks once the peer's window and our send
// buffer are full, and resumes when the peer reads.
func TestBackpressure(t *testing.T) {
	cfg := Config{RecvBuffer: 64 << 10, SendBuffer: 64 << 10}
	a := testSocket(t, cfg)
	b := testSocket(t, cfg)
	ca, cb := pair(t, a, b, b.Addr().String())
	ca.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	total := 0
	buf := make([]byte, 16<<10)
	var err error
	for err == nil {
		var n int
		n, err = ca.Write(buf)
		total += n
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write: %v", err)
	}
	if total > 64<<10+64<<10+2*DefaultPacketSize {
		t.Fatalf("wrote %d bytes to a peer that reads nothing", total)
	}
	ca.SetWriteDeadline(time.Time{})
	go func() {
		ca.Write(buf)
		ca.CloseWrite()
	}()
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(cb)
	if err != nil || len(got) != total+len(buf) {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, total+len(buf))
	}
}

// TestReset: closing a socket resets its connections; the peer's Read
// and Write fail with ErrReset.
func TestReset(t *testing.T) {
	a := testSocket(t, Config{})
	b := testSocket(t, Config{})
	ca, cb := pair(t, a, b, b.Addr().String())
	_ = ca
	a.Close()
	cb.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cb.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("read: %v, want ErrReset", err)
	}
	if _, err := cb.Write([]byte("x")); !errors.Is(err, ErrReset) {
		t.Fatalf("write: %v, want ErrReset", err)
	}
}
