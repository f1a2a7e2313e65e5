package utp

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/utp/utptest"
)

// tcpThrough is a bulk TCP flow on loopback whose bytes cross b: a proxy
// reserves each chunk in b's queue (blocking while it is full) and
// forwards it when b says it has left. At most window bytes are in the
// queue at once, as a TCP flow with that window (its receiver's or its
// congestion window) would keep there: without that bound a reliable
// proxy, which never drops, would hold a drop-tail queue full and starve
// any other flow, delay-based or not. Received counts what reached the
// far end.
type tcpThrough struct {
	Received atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
	closers  []io.Closer
}

func startTCPThrough(t testing.TB, b *utptest.Bottleneck, window int) *tcpThrough {
	t.Helper()
	f := &tcpThrough{stop: make(chan struct{})}
	listen := func() net.Listener {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.closers = append(f.closers, l)
		return l
	}
	sink, front := listen(), listen()
	accept := func(l net.Listener) <-chan net.Conn {
		ch := make(chan net.Conn, 1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c, _ := l.Accept()
			ch <- c
		}()
		return ch
	}
	dial := func(l net.Listener) net.Conn {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		f.closers = append(f.closers, c)
		return c
	}
	sinkCh, frontCh := accept(sink), accept(front)
	src := dial(front)   // the sender's end
	toSink := dial(sink) // the proxy's end towards the receiver
	in, out := <-frontCh, <-sinkCh
	if in == nil || out == nil {
		t.Fatal("accept failed")
	}
	f.closers = append(f.closers, in, out)

	type chunk struct {
		b     []byte
		leave time.Time
	}
	const chunkSize = 16 << 10
	q := make(chan chunk, 4096)
	tokens := make(chan struct{}, max(1, window/chunkSize)) // a token per chunk in the queue
	f.wg.Add(4)
	go func() { // the sender: as fast as TCP lets it
		defer f.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			if _, err := src.Write(buf); err != nil {
				return
			}
		}
	}()
	go func() { // the proxy's queue
		defer f.wg.Done()
		defer close(q)
		for {
			select {
			case tokens <- struct{}{}:
			case <-f.stop:
				return
			}
			buf := make([]byte, chunkSize)
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			leave, ok := b.Wait(n, f.stop)
			if !ok {
				return
			}
			select {
			case q <- chunk{buf[:n], leave}:
			case <-f.stop:
				return
			}
		}
	}()
	go func() { // the link's far end
		defer f.wg.Done()
		for c := range q {
			if d := time.Until(c.leave); d > 0 {
				select {
				case <-time.After(d):
				case <-f.stop:
					return
				}
			}
			<-tokens
			if _, err := toSink.Write(c.b); err != nil {
				return
			}
		}
	}()
	go func() { // the receiver
		defer f.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := out.Read(buf)
			f.Received.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *tcpThrough) close() {
	select {
	case <-f.stop:
		return
	default:
	}
	close(f.stop)
	for _, c := range f.closers {
		c.Close()
	}
	f.wg.Wait()
}

// TestLEDBATYieldsToTCP: a bulk uTP flow alone fills a 2 MB/s link with
// a 300 ms drop-tail queue; when a bulk TCP flow (320 KiB window: 150 ms
// of that queue) joins through the same queue, the queuing delay passes
// LEDBAT's 100 ms target and the uTP flow backs off, leaving most of
// the link to TCP. A uTP flow deaf to delay would fill the rest of the
// queue and keep about half the link (checked: with a 10 s target, TCP
// gets ~50%). Both flows' rates over time are in the test log.
func TestLEDBATYieldsToTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	const rate = 2 << 20
	bn := utptest.NewBottleneck(rate, rate*3/10)
	s1 := testSocket(t, Config{})
	s2 := testSocket(t, Config{})
	r := relay(t, s2.Addr().String(),
		utptest.Link{Delay: 10 * time.Millisecond, Bottleneck: bn},
		utptest.Link{Delay: 10 * time.Millisecond})
	c1, c2 := pair(t, s1, s2, r.Addr())
	var utpGot atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			if _, err := c1.Write(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := c2.Read(buf)
			utpGot.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		c1.Close()
		c2.Close()
		wg.Wait()
	}()

	const step = 500 * time.Millisecond
	var tcp *tcpThrough
	var lastU, lastT int64
	var aloneU, sharedU, sharedT int64
	for i := range 20 { // 10 s: uTP alone for 4, then both
		time.Sleep(step)
		if i == 8 {
			tcp = startTCPThrough(t, bn, 320<<10)
		}
		u := utpGot.Load()
		var tc int64
		if tcp != nil {
			tc = tcp.Received.Load()
		}
		du, dt := u-lastU, tc-lastT
		lastU, lastT = u, tc
		t.Logf("t=%4.1fs  uTP %5.2f MB/s  TCP %5.2f MB/s  (uTP cwnd %d B, queuing delay %v)",
			float64(i+1)*step.Seconds(), float64(du)/step.Seconds()/1e6, float64(dt)/step.Seconds()/1e6,
			c1.Stats().Cwnd, time.Duration(c1.Stats().QueueDelay)*time.Microsecond)
		switch {
		case i >= 2 && i < 8:
			aloneU += du
		case i >= 12: // after 2 s of settling
			sharedU += du
			sharedT += dt
		}
	}
	tcp.close()
	aloneRate := float64(aloneU) / (6 * step.Seconds())
	share := float64(sharedT) / float64(sharedT+sharedU)
	t.Logf("uTP alone: %.2f MB/s of %.2f; with TCP: TCP's share %.0f%% (uTP %.2f MB/s, TCP %.2f MB/s)",
		aloneRate/1e6, float64(rate)/1e6, 100*share,
		float64(sharedU)/(8*step.Seconds())/1e6, float64(sharedT)/(8*step.Seconds())/1e6)
	if aloneRate < 0.5*rate {
		t.Errorf("uTP alone used %.2f MB/s of a %.2f MB/s link", aloneRate/1e6, float64(rate)/1e6)
	}
	if share < 0.85 {
		t.Errorf("TCP got %.0f%% of the link beside uTP, want at least 85%%: LEDBAT did not yield", 100*share)
	}
}
