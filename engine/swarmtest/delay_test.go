package swarmtest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// echoServer echoes every connection on 127.0.0.1 until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDelayRelay: a round trip through the relay takes twice its delay,
// the bytes come back exact, and a stream of many small writes keeps its
// throughput (a relay that slept once per read would take
// writes × delay).
func TestDelayRelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	r := StartDelayRelay(t, "127.0.0.1:0", echoServer(t), delay)
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))

	// Latency: one byte out and back, a few times.
	one := []byte{7}
	for range 3 {
		t0 := time.Now()
		if _, err := c.Write(one); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(t0); rtt < 2*delay || rtt > 2*delay+time.Second {
			t.Fatalf("round trip %v through the relay, want 2 × %v (plus a little)", rtt, delay)
		}
	}

	// Bytes exact and throughput: 8 MiB of random bytes in 4 KiB writes
	// (a relay that slept once per read, 64 KiB at most, would move
	// 640 KB/s: 13 s).
	data := make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for p := data; len(p) > 0; p = p[min(len(p), 4096):] {
			if _, werr = c.Write(p[:min(len(p), 4096)]); werr != nil {
				return
			}
		}
		werr = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	wg.Wait()
	el := time.Since(t0)
	if err != nil || werr != nil {
		t.Fatalf("read: %v, write: %v", err, werr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes (sha256 %x), want %d (sha256 %x)", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
	if el > 8*time.Second {
		t.Fatalf("8 MiB in 4 KiB writes took %v through the relay: the delay is paid per read", el)
	}
	t.Logf("round trip of 8 MiB in 4 KiB writes: %v", el)
}

// TestDelayRelayChargeConnect: with ChargeConnect, the first round trip of
// a connection written at once takes four delays (the handshake's round
// trip, then its own), later ones two; a connection opened ahead and
// written after the handshake's round trip pays only its own.
func TestDelayRelayChargeConnect(t *testing.T) {
	const delay = 50 * time.Millisecond
	r := StartDelayRelay(t, "127.0.0.1:0", echoServer(t), delay)
	r.ChargeConnect()
	// rtt is the time from t0 (zero: now) to the echo of one byte.
	rtt := func(c net.Conn, t0 time.Time) time.Duration {
		t.Helper()
		one := []byte{7}
		if t0.IsZero() {
			t0 = time.Now()
		}
		if _, err := c.Write(one); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	within := func(what string, got, want time.Duration) {
		t.Helper()
		if got < want || got > want+time.Second {
			t.Errorf("%s: %v, want %v (plus a little)", what, got, want)
		}
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute))
		return c
	}
	// The first round trip is timed from before the dial: the relay
	// charges the handshake from its accept, which a loaded machine may
	// run before the dial returns to the test (CI: 199.95 ms against 200
	// timed from after the dial).
	start := time.Now()
	c := dial()
	within("first round trip", rtt(c, start), 4*delay)
	within("second round trip", rtt(c, time.Time{}), 2*delay)
	ahead := dial()
	time.Sleep(3 * delay)
	within("first round trip of a connection opened ahead", rtt(ahead, time.Time{}), 2*delay)
}

// TestDelayRelayClose: Close ends open connections and the relay's
// goroutines (TestMain's goleak checks the latter).
func TestDelayRelayClose(t *testing.T) {
	r, err := NewDelayRelay("127.0.0.1:0", echoServer(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("stuck for an hour"))
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a read through a closed relay returned data")
	}
}

// TestStaticTracker: an announce gets the compact peers it was started
// with.
func TestStaticTracker(t *testing.T) {
	tr := StartStaticTracker(t, "127.0.0.12:6881", "127.0.0.13:258")
	resp, err := http.Get(tr.URL + "?info_hash=%01%02&port=1&compact=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got struct {
		Interval int    `bencode:"interval"`
		Peers    string `bencode:"peers"`
	}
	if err := bencode.Unmarshal(body, &got); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if want := "\x7f\x00\x00\x0c\x1a\xe1\x7f\x00\x00\x0d\x01\x02"; got.Peers != want || got.Interval <= 0 {
		t.Fatalf("announce answered %q, want peers %q and an interval", body, want)
	}
}
