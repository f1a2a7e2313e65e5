package utp

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// benchPayload is how much one benchmark iteration moves.
const benchPayload = 32 << 20

// streamBench moves b.N × benchPayload bytes from w to r and reports
// MB/s.
func streamBench(b *testing.B, w, r net.Conn) {
	buf := make([]byte, 128<<10)
	done := make(chan error, 1)
	go func() {
		for range b.N {
			for sent := 0; sent < benchPayload; sent += len(buf) {
				if _, err := w.Write(buf); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	rbuf := make([]byte, 128<<10)
	b.SetBytes(benchPayload)
	b.ResetTimer()
	start := time.Now()
	if _, err := io.ReadFull(r, make([]byte, 0)); err != nil {
		b.Fatal(err)
	}
	total := int64(b.N) * benchPayload
	for got := int64(0); got < total; {
		n, err := r.Read(rbuf)
		if err != nil {
			b.Fatal(err)
		}
		got += int64(n)
	}
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(total)/1e6/time.Since(start).Seconds(), "MB/s")
}

// BenchmarkLoopbackUTP is uTP throughput on loopback (1400-byte
// packets, as on a real path).
func BenchmarkLoopbackUTP(b *testing.B) {
	s1 := testSocket(b, Config{})
	s2 := testSocket(b, Config{})
	c1, c2 := pair(b, s1, s2, s2.Addr().String())
	streamBench(b, c1, c2)
	b.Logf("sender %+v", c1.Stats())
}

// BenchmarkLoopbackUTPNoOffload is BenchmarkLoopbackUTP without UDP
// segmentation offload (GSO/GRO): the A of the A/B.
func BenchmarkLoopbackUTPNoOffload(b *testing.B) {
	s1 := testSocket(b, Config{NoOffload: true})
	s2 := testSocket(b, Config{NoOffload: true})
	c1, c2 := pair(b, s1, s2, s2.Addr().String())
	streamBench(b, c1, c2)
	b.Logf("sender %+v", c1.Stats())
}

// BenchmarkLoopbackTCP is the same over TCP, for comparison.
func BenchmarkLoopbackTCP(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	c1, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c1.Close()
	c2 := <-ch
	if c2 == nil {
		b.Fatal("accept failed")
	}
	defer c2.Close()
	streamBench(b, c1, c2)
}

// BenchmarkLossyLinkUTP is uTP over the emulated path of the figures:
// 20 ms each way, 1% loss each way.
func BenchmarkLossyLinkUTP(b *testing.B) {
	s1 := testSocket(b, Config{})
	s2 := testSocket(b, Config{})
	link := func(seed uint64) utptest.Link {
		return utptest.Link{Delay: 20 * time.Millisecond, Loss: 0.01, Seed: seed}
	}
	r := relay(b, s2.Addr().String(), link(1), link(2))
	c1, c2 := pair(b, s1, s2, r.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = ctx
	const n = 4 << 20
	buf := make([]byte, 64<<10)
	b.SetBytes(n)
	b.ResetTimer()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		for range b.N {
			for sent := 0; sent < n; sent += len(buf) {
				if _, err := c1.Write(buf); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	if _, err := io.CopyN(io.Discard, c2, int64(b.N)*n); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(int64(b.N)*n)/1e6/time.Since(start).Seconds(), "MB/s")
}
