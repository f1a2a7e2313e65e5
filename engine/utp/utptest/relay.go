// Package utptest emulates network paths for uTP tests and benchmarks:
// a UDP relay on loopback that delays, drops, duplicates, reorders and
// rate-limits datagrams, since this machine's kernel has no netem. It
// imports nothing of swarmfs, so any package's tests (the engine's, the
// benchmarks against libtorrent) can put it between two peers.
//
// A Relay forwards between one client, which sends to Relay.Addr, and a
// fixed target: what the client sends leaves from a second socket of the
// relay towards the target, and what the target answers there goes back
// to the client. So the target sees the relay's address as the peer's.
// Each direction has its own Link. The relay owns four goroutines (a
// reader and a scheduler per direction); Close stops and waits for them.
//
// Pitfalls: the client is whoever sent to Relay.Addr last (one client
// per relay); a Bottleneck shared by several relays models one
// congested link.
package utptest

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Link is one direction of an emulated path. The zero value forwards at
// once.
type Link struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter adds a uniform random [0, Jitter) delay to each datagram,
	// which reorders datagrams closer together than that.
	Jitter time.Duration
	// Loss and Duplicate are the probabilities that a datagram is
	// dropped or sent twice.
	Loss, Duplicate float64
	// Bottleneck, if not nil, serialises datagrams at its rate behind a
	// drop-tail queue (shared with whatever else uses it).
	Bottleneck *Bottleneck
	// Seed makes the random choices repeatable (0: a fixed default).
	Seed uint64
}

// Bottleneck is a link of limited rate with a drop-tail queue: a
// datagram leaves when those queued before it have, and is dropped when
// the queue holds more than QueueBytes. Safe for concurrent use.
type Bottleneck struct {
	rate  float64 // bytes per second
	queue int     // bytes

	mu   sync.Mutex // guards next
	next time.Time  // when the link is free again
}

// NewBottleneck makes a link of rate bytes/s with a queue of queueBytes.
func NewBottleneck(rate, queueBytes int) *Bottleneck {
	return &Bottleneck{rate: float64(rate), queue: queueBytes}
}

// admit reserves the link for size bytes: it returns when they will
// have left, or false if the queue is full.
func (b *Bottleneck) admit(size int, now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := b.next
	if start.Before(now) {
		start = now
	}
	if float64(start.Sub(now))*b.rate/float64(time.Second) > float64(b.queue) {
		return time.Time{}, false
	}
	b.next = start.Add(time.Duration(float64(size) / b.rate * float64(time.Second)))
	return b.next, true
}

// Wait blocks until size bytes fit in the queue and reserves them,
// returning when they will have left: for a reliable stream (a TCP
// proxy) that must not drop but competes for the same queue.
func (b *Bottleneck) Wait(size int, stop <-chan struct{}) (time.Time, bool) {
	for {
		if t, ok := b.admit(size, time.Now()); ok {
			return t, true
		}
		select {
		case <-stop:
			return time.Time{}, false
		case <-time.After(time.Millisecond):
		}
	}
}

// Stats counts a relay's datagrams.
type Stats struct {
	Forwarded, Dropped, Duplicated, QueueDrops uint64
}

// Relay is a UDP relay between one client and a target.
type Relay struct {
	front, back *net.UDPConn
	target      netip.AddrPort
	client      atomic.Pointer[netip.AddrPort]
	up, down    *direction
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

// NewRelay listens on 127.0.0.1 (or the host of listen, e.g.
// "127.0.0.5:0") and relays to target. up applies to what the client
// sends, down to what the target answers.
func NewRelay(listen, target string, up, down Link) (*Relay, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ta, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, fmt.Errorf("utptest: target: %w", err)
	}
	if !ta.Addr().IsLoopback() {
		return nil, fmt.Errorf("utptest: target %s is not loopback", target)
	}
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, err
	}
	front, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: la.IP})
	if err != nil {
		front.Close()
		return nil, err
	}
	r := &Relay{front: front, back: back, target: ta}
	r.up = newDirection(up, front, back, func() (netip.AddrPort, bool) { return ta, true }, func(from netip.AddrPort) { r.client.Store(&from) })
	r.down = newDirection(down, back, front, func() (netip.AddrPort, bool) {
		if c := r.client.Load(); c != nil {
			return *c, true
		}
		return netip.AddrPort{}, false
	}, nil)
	for _, d := range []*direction{r.up, r.down} {
		r.wg.Add(2)
		go func() { defer r.wg.Done(); d.read() }()
		go func() { defer r.wg.Done(); d.schedule() }()
	}
	return r, nil
}

// Addr is where the client sends.
func (r *Relay) Addr() string { return r.front.LocalAddr().String() }

// BackAddr is the address the target sees the client at.
func (r *Relay) BackAddr() string { return r.back.LocalAddr().String() }

// Stats returns the counters of each direction.
func (r *Relay) Stats() (up, down Stats) { return r.up.stats(), r.down.stats() }

// SetLinks changes both directions' links (datagrams already scheduled
// keep their times).
func (r *Relay) SetLinks(up, down Link) {
	r.up.setLink(up)
	r.down.setLink(down)
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.front.Close()
		r.back.Close()
		r.up.stop()
		r.down.stop()
		r.wg.Wait()
	})
	return nil
}

// direction moves datagrams from in to out.
type direction struct {
	in, out *net.UDPConn
	dst     func() (netip.AddrPort, bool)
	seen    func(netip.AddrPort)

	fwd, drop, dup, qdrop atomic.Uint64

	mu    sync.Mutex // guards link, rng, q
	link  Link
	rng   *rand.Rand
	q     datagramHeap
	wake  chan struct{} // cap 1
	done  chan struct{}
	order uint64
}

type datagram struct {
	at    time.Time
	order uint64
	b     []byte
}

type datagramHeap []datagram

func (h datagramHeap) Len() int { return len(h) }
func (h datagramHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].order < h[j].order
	}
	return h[i].at.Before(h[j].at)
}
func (h datagramHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *datagramHeap) Push(x any)   { *h = append(*h, x.(datagram)) }
func (h *datagramHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newDirection(l Link, in, out *net.UDPConn, dst func() (netip.AddrPort, bool), seen func(netip.AddrPort)) *direction {
	d := &direction{in: in, out: out, dst: dst, seen: seen, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.setLink(l)
	return d
}

func (d *direction) setLink(l Link) {
	seed := l.Seed
	if seed == 0 {
		seed = 1
	}
	d.mu.Lock()
	d.link = l
	d.rng = rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	d.mu.Unlock()
}

func (d *direction) stop() { close(d.done) }

func (d *direction) stats() Stats {
	return Stats{Forwarded: d.fwd.Load(), Dropped: d.drop.Load(), Duplicated: d.dup.Load(), QueueDrops: d.qdrop.Load()}
}

// maxQueued bounds datagrams held by one direction.
const maxQueued = 1 << 16

func (d *direction) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := d.in.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if d.seen != nil {
			d.seen(from)
		}
		now := time.Now()
		d.mu.Lock()
		l := d.link
		copies := 1
		if l.Loss > 0 && d.rng.Float64() < l.Loss {
			copies = 0
			d.drop.Add(1)
		} else if l.Duplicate > 0 && d.rng.Float64() < l.Duplicate {
			copies = 2
			d.dup.Add(1)
		}
		for range copies {
			at := now
			if l.Bottleneck != nil {
				t, ok := l.Bottleneck.admit(n+28, now)
				if !ok {
					d.qdrop.Add(1)
					continue
				}
				at = t
			}
			at = at.Add(l.Delay)
			if l.Jitter > 0 {
				at = at.Add(time.Duration(d.rng.Int64N(int64(l.Jitter))))
			}
			if len(d.q) < maxQueued {
				d.order++
				heap.Push(&d.q, datagram{at: at, order: d.order, b: append([]byte(nil), buf[:n]...)})
			}
		}
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

func (d *direction) schedule() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		var due []datagram
		now := time.Now()
		for len(d.q) > 0 && !d.q[0].at.After(now) {
			due = append(due, heap.Pop(&d.q).(datagram))
		}
		wait := time.Hour
		if len(d.q) > 0 {
			wait = d.q[0].at.Sub(now)
		}
		d.mu.Unlock()
		if dst, ok := d.dst(); ok {
			for _, g := range due {
				if _, err := d.out.WriteToUDPAddrPort(g.b, dst); err == nil {
					d.fwd.Add(1)
				}
			}
		}
		t.Reset(wait)
		select {
		case <-d.done:
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}
