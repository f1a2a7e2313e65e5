package utp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// testSocket is a socket on 127.0.0.1 closed at the end of the test.
func testSocket(t testing.TB, cfg Config) *Socket {
	t.Helper()
	s, err := Listen("udp4", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pair dials b from a (to addr, b's address unless a relay sits
// between) and returns both ends.
func pair(t testing.TB, a, b *Socket, addr string) (*Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := b.AcceptUTP()
		ch <- res{c, err}
	}()
	ca, err := a.Dial(ctx, addr)
	if err != nil {
		b.Close()
		<-ch
		t.Fatalf("dial: %v", err)
	}
	// The acceptor sees the connection once the dialler sends something.
	if _, err := ca.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var r res
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		b.Close()
		<-ch
		t.Fatal("accept timed out")
	}
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r.c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("greeting: %q %v", buf, err)
	}
	t.Cleanup(func() { ca.Close(); r.c.Close() })
	return ca, r.c
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// sendAll writes data then closes the writing direction; it reports
// into errc.
func sendAll(c *Conn, data []byte, errc chan<- error) {
	// Odd write sizes exercise the packetizer.
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+(off*7919)%40000)
		if _, err := c.Write(data[off : off+n]); err != nil {
			errc <- err
			return
		}
		off += n
	}
	errc <- c.CloseWrite()
}

func checkRecv(t *testing.T, c *Conn, want []byte, timeout time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes (sha1 %x), want %d (sha1 %x)", len(got), sha1.Sum(got), len(want), sha1.Sum(want))
	}
}

func TestTransferLoopback(t *testing.T) {
	a := testSocket(t, Config{})
	b := testSocket(t, Config{})
	ca, cb := pair(t, a, b, b.Addr().String())
	data := randomBytes(8<<20, 1)
	errc := make(chan error, 1)
	go sendAll(ca, data, errc)
	checkRecv(t, cb, data, 20*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestBothDirectionsAtOnce(t *testing.T) {
	a := testSocket(t, Config{RecvBuffer: 64 << 10, SendBuffer: 64 << 10})
	b := testSocket(t, Config{RecvBuffer: 64 << 10, SendBuffer: 64 << 10})
	ca, cb := pair(t, a, b, b.Addr().String())
	d1, d2 := randomBytes(3<<20, 2), randomBytes(3<<20+777, 3)
	e1, e2 := make(chan error, 1), make(chan error, 1)
	go sendAll(ca, d1, e1)
	go sendAll(cb, d2, e2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		checkRecv(t, ca, d2, 20*time.Second)
	}()
	checkRecv(t, cb, d1, 20*time.Second)
	wg.Wait()
	for _, e := range []chan error{e1, e2} {
		if err := <-e; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadlines(t *testing.T) {
	a := testSocket(t, Config{})
	b := testSocket(t, Config{})
	ca, _ := pair(t, a, b, b.Addr().String())
	ca.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := ca.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want deadline exceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a timeout net.Error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline took %v", d)
	}
}
