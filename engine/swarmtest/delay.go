package swarmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DelayRelay is a TCP relay that adds a fixed latency to each direction of
// every connection it forwards, for benchmarks and tests that need round
// trips on loopback (this kernel has no sch_netem). Each direction is a
// reader that stamps every chunk it reads with the time it is due and
// queues it, and a writer that waits for a chunk's due time and writes it:
// the stream keeps its throughput (up to delayQueue chunks of at most
// delayChunk bytes in flight per direction, so 8 MiB per delay period at
// most) instead of paying the delay once per read. Close ends it; it is safe for concurrent use.
type DelayRelay struct {
	// Read-only after construction.
	ln     net.Listener
	target string
	delay  time.Duration
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool

	chargeConnect atomic.Bool
}

// ChargeConnect makes each new connection pay the round trip of TCP's
// handshake, as over a real link: a client's first bytes reach the target
// three one-way delays after its connect (SYN, SYN-ACK, then the data)
// instead of one. The client's connect itself still returns at once, so a
// connection opened ahead of its first request gains that round trip, as
// it would on a real link.
func (r *DelayRelay) ChargeConnect() { r.chargeConnect.Store(true) }

// delayChunk is the largest chunk read at once; delayQueue is how many
// chunks a direction holds in flight, so delayQueueBytes bounds its memory.
const (
	delayChunk      = 64 << 10
	delayQueue      = 128
	delayQueueBytes = delayChunk * delayQueue
)

// NewDelayRelay listens on listen ("IP:port", port 0 for a free one) and
// forwards every connection to target, each direction delayed by delay.
func NewDelayRelay(listen, target string, delay time.Duration) (*DelayRelay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("delay relay: %w", err)
	}
	r := &DelayRelay{ln: ln, target: target, delay: delay, conns: make(map[net.Conn]struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// StartDelayRelay is NewDelayRelay that fails tb on error and closes the
// relay in tb.Cleanup.
func StartDelayRelay(tb testing.TB, listen, target string, delay time.Duration) *DelayRelay {
	tb.Helper()
	r, err := NewDelayRelay(listen, target, delay)
	if err != nil {
		tb.Fatalf("swarmtest.StartDelayRelay: %v", err)
	}
	tb.Cleanup(r.Close)
	return r
}

// Addr is the address the relay listens on.
func (r *DelayRelay) Addr() string { return r.ln.Addr().String() }

// Close stops listening, closes every forwarded connection and waits for
// the relay's goroutines.
func (r *DelayRelay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	r.cancel()
	r.ln.Close()
	for c := range conns {
		c.Close()
	}
	r.wg.Wait()
}

// track registers c to be closed by Close; false when the relay is closed.
func (r *DelayRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *DelayRelay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *DelayRelay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		if !r.track(in) {
			in.Close()
			return
		}
		r.wg.Add(1)
		go r.serve(in)
	}
}

// serve forwards one connection both ways, then closes both sides.
func (r *DelayRelay) serve(in net.Conn) {
	defer r.wg.Done()
	var notBefore time.Time
	if r.chargeConnect.Load() {
		notBefore = time.Now().Add(3 * r.delay)
	}
	defer func() { r.untrack(in); in.Close() }()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	// Dial from the relay's own address: a seeder that dials back the
	// address a connection came from (with the port its peer listens on)
	// finds nothing there, rather than reaching the peer round the relay.
	var d net.Dialer
	if a, ok := r.ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: a.IP}
	}
	out, err := d.DialContext(ctx, "tcp", r.target)
	cancel()
	if err != nil {
		return
	}
	if !r.track(out) {
		out.Close()
		return
	}
	defer func() { r.untrack(out); out.Close() }()
	var dirs sync.WaitGroup
	dirs.Add(2)
	go func() { defer dirs.Done(); r.pipe(out, in, notBefore) }()
	go func() { defer dirs.Done(); r.pipe(in, out, time.Time{}) }()
	dirs.Wait()
}

// delayed is a chunk of a stream and the time it may go out.
type delayed struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each byte delay after it was read and not before
// notBefore. At src's end it half-closes dst once everything queued is
// written; on an error either way it closes both, which ends the other
// direction too.
func (r *DelayRelay) pipe(dst, src net.Conn, notBefore time.Time) {
	q := make(chan delayed, delayQueue)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		for ch := range q {
			if wait := time.Until(ch.due); wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-r.ctx.Done():
					return
				}
			}
			if _, err := dst.Write(ch.b); err != nil {
				src.Close()
				dst.Close()
				// Drain, so the reader is never stuck on a full queue.
				for range q {
				}
				return
			}
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	defer writer.Wait()
	defer close(q)
	buf := make([]byte, delayChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			due := time.Now().Add(r.delay)
			if due.Before(notBefore) {
				due = notBefore
			}
			select {
			case q <- delayed{b: append([]byte(nil), buf[:n]...), due: due}:
			case <-r.ctx.Done():
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}
