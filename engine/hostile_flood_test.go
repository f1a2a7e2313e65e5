package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// dialRaw connects to target from localIP (port 0: any) and completes a
// handshake for ih announcing the fast extension and BEP 10: the start of
// a peer written in a test, hostile or honest.
func dialRaw(localIP string, target netip.AddrPort, ih metainfo.Hash) (net.Conn, error) {
	return dialRawBuf(localIP, target, ih, 0)
}

// dialRawBuf is dialRaw with the socket's receive buffer set to rcvbuf
// bytes before it connects (0: the kernel's default). A small one makes a
// peer that never reads stall our writer after a few KiB instead of the
// megabytes loopback's autotuned buffers take, whatever the machine's load.
func dialRawBuf(localIP string, target netip.AddrPort, ih metainfo.Hash, rcvbuf int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	nc, err := d.Dial("tcp", target.String())
	if err != nil {
		return nil, err
	}
	var rsv peer.Reserved
	rsv.SetFast()
	rsv.SetExtended()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: ih, PeerID: peer.NewPeerID()}); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := peer.ReadHandshake(nc); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

// memPeak samples the process's heap in use and resident set while a test
// attacks a client in the same process.
type memPeak struct {
	heap, rss uint64 // peaks, bytes
}

func (p *memPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.heap = max(p.heap, ms.HeapInuse)
	p.rss = max(p.rss, procRSS())
}

// procRSS is VmRSS from /proc/self/status, in bytes (0 where unavailable).
func procRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// floodRequests writes REQUEST messages for every block of mi, over and
// over, to a connection whose incoming bytes it never reads. It returns
// the bytes written once a write fails (the client dropped the peer) or
// ctx ends.
func floodRequests(ctx context.Context, nc net.Conn, mi *metainfo.MetaInfo, interested bool) (int64, error) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var buf []byte
	if interested {
		buf = peer.AppendMessage(buf, &peer.Message{Type: peer.Interested})
	}
	info := mi.Info
	for len(buf) < 64<<10 {
		for i := 0; i < info.NumPieces() && len(buf) < 64<<10; i++ {
			for b := int64(0); b < info.PieceLen(i); b += peer.BlockSize {
				n := min(peer.BlockSize, info.PieceLen(i)-b)
				buf = peer.AppendMessage(buf, &peer.Message{Type: peer.Request, Index: uint32(i), Begin: uint32(b), Length: uint32(n)})
			}
		}
	}
	var sent int64
	for {
		n, err := nc.Write(buf)
		sent += int64(n)
		if err != nil {
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			return sent, nil
		}
	}
}

// TestRequestFlood: peers that send REQUESTs as fast as they can and never
// read their socket are dropped within seconds, and the client's memory
// stays bounded meanwhile. Choked, every request is refused; unchoked, the
// requests beyond the queue we advertise are; asking a leecher for pieces
// it lacks is refused without counting against the peer (a piece can be
// evicted after we announced it), so there the peer is dropped for not
// reading. Before the bounds every refused request queued a REJECT behind
// the blocked writer: about 1 GB per connection in 15 s.
func TestRequestFlood(t *testing.T) {
	f := newFixture(t, 256<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 4 << 20}})
	const (
		maxGrowth = 48 << 20 // heap growth allowed over the idle client
		deadline  = 30 * time.Second
	)
	cases := []struct {
		name       string
		interested bool
		conns      int
		leecher    bool // attack a client that has no piece
	}{
		{name: "choked", conns: 1},
		{name: "unchoked", interested: true, conns: 1},
		{name: "four connections", interested: true, conns: 4},
		{name: "missing pieces", interested: true, conns: 2, leecher: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var target netip.AddrPort
			if tc.leecher {
				old := writeTimeout
				writeTimeout = 2 * time.Second
				t.Cleanup(func() { writeTimeout = old })
				lc, _, _ := leecher(t, f, Config{ListenAddr: "127.0.0.3:0"})
				target = lc.Addr()
			} else {
				sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
				target = sc.Addr()
			}
			base := heapInuse()
			baseRSS := procRSS()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				sent int64
				errs []error
			)
			done := make(chan struct{})
			start := time.Now()
			for i := range tc.conns {
				nc, err := dialRawBuf(fmt.Sprintf("127.0.0.%d", 100+i%2), target, f.mi.InfoHash, 16<<10)
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer nc.Close()
					n, err := floodRequests(ctx, nc, f.mi, tc.interested)
					mu.Lock()
					sent += n
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}()
			}
			go func() { wg.Wait(); close(done) }()
			var peak memPeak
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
		sampling:
			for {
				select {
				case <-done:
					break sampling
				case <-tick.C:
					peak.sample()
					if peak.heap > base+maxGrowth {
						cancel() // fail before the flood eats the machine
						<-done
						break sampling
					}
				}
			}
			elapsed := time.Since(start)
			peak.sample()
			t.Logf("%d connection(s): %d MiB of requests sent in %v; heap in use %d -> peak %d MiB, RSS %d -> peak %d MiB",
				tc.conns, sent>>20, elapsed.Round(time.Millisecond), base>>20, peak.heap>>20, baseRSS>>20, peak.rss>>20)
			if peak.heap > base+maxGrowth {
				t.Errorf("heap in use grew from %d to %d MiB under the flood", base>>20, peak.heap>>20)
			}
			for _, err := range errs {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("a flooding peer was still connected after %v", deadline)
					break
				}
			}
		})
	}
}
