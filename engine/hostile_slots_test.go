package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// firstBlock is an honest peer: from localIP it says it is interested,
// waits to be unchoked and asks for the first block; it returns how long
// after it dialled the block arrived.
func firstBlock(localIP string, target netip.AddrPort, mi *metainfo.MetaInfo) (time.Duration, error) {
	start := time.Now()
	nc, err := dialRaw(localIP, target, mi.InfoHash)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	nc.SetDeadline(start.Add(15 * time.Second))
	if _, err := nc.Write(peer.AppendMessage(nil, &peer.Message{Type: peer.Interested})); err != nil {
		return 0, err
	}
	dec := peer.NewDecoder(nc, 1<<20)
	var m peer.Message
	for {
		if err := dec.Decode(&m); err != nil {
			return 0, fmt.Errorf("after %v: %w", time.Since(start).Round(time.Millisecond), err)
		}
		switch m.Type {
		case peer.Unchoke:
			req := peer.Message{Type: peer.Request, Length: uint32(min(peer.BlockSize, mi.Info.PieceLength))}
			if _, err := nc.Write(peer.AppendMessage(nil, &req)); err != nil {
				return 0, err
			}
		case peer.Piece:
			return time.Since(start), nil
		}
	}
}

// stillOpen reports whether the other side has not closed nc, reading
// (and discarding) what it sent for a moment.
func stillOpen(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// holdSlots opens n connections to target from localIP, each handshaken
// and then silent, as a peer that grabs connection slots does.
func holdSlots(t *testing.T, localIP string, n int, target netip.AddrPort, ih metainfo.Hash) []net.Conn {
	t.Helper()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
	})
	for range n {
		nc, err := dialRaw(localIP, target, ih)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	return conns
}

func countOpen(conns []net.Conn) int {
	n := 0
	for _, nc := range conns {
		if stillOpen(nc) {
			n++
		}
	}
	return n
}

// TestSlotGrabFromOneAddress: 60 connections from one address no longer
// hold all 50 slots of a torrent; an honest peer on another address gets
// its first block at once. Before the per-address limit it was closed
// right after its handshake.
func TestSlotGrabFromOneAddress(t *testing.T) {
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	hostile := holdSlots(t, "127.0.0.100", 60, sc.Addr(), f.mi.InfoHash)
	d, err := firstBlock("127.0.0.101", sc.Addr(), f.mi)
	if err != nil {
		t.Fatalf("honest peer, while 60 connections from one address are open: %v", err)
	}
	open := countOpen(hostile)
	t.Logf("honest peer's first block after %v; %d of the 60 connections from one address open", d.Round(time.Microsecond), open)
	if lim := sc.maxConnsPerIP(netip.MustParseAddr("127.0.0.100")); open > lim {
		t.Errorf("%d connections from one address open, want at most %d", open, lim)
	}
}

// TestFullTorrentAdmitsUsefulPeer: a torrent whose slots are all taken,
// by silent peers on many addresses and one peer downloading from us,
// gives a newcomer the slot of a silent one, never the downloader's.
func TestFullTorrentAdmitsUsefulPeer(t *testing.T) {
	old := evictGrace
	evictGrace = 1500 * time.Millisecond
	t.Cleanup(func() { evictGrace = old })
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	const slots = 10
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", MaxConnsPerTorrent: slots})

	// The downloader asks for block after block and reads every one.
	down, err := dialRaw("127.0.0.110", sc.Addr(), f.mi.InfoHash)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		blocks int
		derr   error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := func() error {
			if _, err := down.Write(peer.AppendMessage(nil, &peer.Message{Type: peer.Interested})); err != nil {
				return err
			}
			req := peer.AppendMessage(nil, &peer.Message{Type: peer.Request, Length: peer.BlockSize})
			dec := peer.NewDecoder(down, 1<<20)
			var m peer.Message
			for {
				if err := dec.Decode(&m); err != nil {
					return err
				}
				switch m.Type {
				case peer.Unchoke, peer.Piece:
					if m.Type == peer.Piece {
						mu.Lock()
						blocks++
						mu.Unlock()
						time.Sleep(50 * time.Millisecond)
					}
					if _, err := down.Write(req); err != nil {
						return err
					}
				}
			}
		}()
		mu.Lock()
		derr = err
		mu.Unlock()
	}()
	var silent []net.Conn
	for i := range slots - 1 {
		silent = append(silent, holdSlots(t, fmt.Sprintf("127.0.0.%d", 111+i), 1, sc.Addr(), f.mi.InfoHash)...)
	}
	time.Sleep(evictGrace + 1500*time.Millisecond)
	d, err := firstBlock("127.0.0.130", sc.Addr(), f.mi)
	if err != nil {
		t.Fatalf("newcomer to a full torrent: %v", err)
	}
	mu.Lock()
	before := blocks
	mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	down.SetReadDeadline(time.Now()) // end the downloader
	wg.Wait()
	open := countOpen(silent)
	t.Logf("newcomer's first block after %v; %d of %d silent peers still connected; the downloader got %d blocks", d.Round(time.Microsecond), open, len(silent), blocks)
	if open != len(silent)-1 {
		t.Errorf("%d of %d silent peers still connected, want one evicted", open, len(silent))
	}
	var ne net.Error
	if !errors.As(derr, &ne) || !ne.Timeout() {
		t.Errorf("the downloader lost its connection: %v", derr)
	}
	if blocks <= before {
		t.Errorf("the downloader got no block after the newcomer came (%d)", blocks)
	}
}

// TestDribblingPeers: peers that send bytes but nothing useful lose their
// slots. A handshake trickled in is cut at the handshake deadline and a
// message trickled in at the idle timeout, whatever the bytes; peers that
// complete a keep-alive now and then (one byte at a time) hold their slots
// only until uselessTimeout once slots are scarce. Before, keep-alives kept
// them for ever.
func TestDribblingPeers(t *testing.T) {
	oldHS, oldIdle, oldUseless := handshakeTimeout, idleTimeout, uselessTimeout
	handshakeTimeout, idleTimeout, uselessTimeout = time.Second, 2*time.Second, 2*time.Second
	t.Cleanup(func() { handshakeTimeout, idleTimeout, uselessTimeout = oldHS, oldIdle, oldUseless })
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	const slots = 4
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", MaxConnsPerTorrent: slots})

	// dribble writes b one byte every 100 ms until a write fails (the
	// client closed the connection, and reset it once we wrote again) or
	// 15 s pass; it returns how long that took.
	dribble := func(nc net.Conn, b []byte) (time.Duration, error) {
		start := time.Now()
		for i := 0; time.Since(start) < 15*time.Second; i++ {
			if _, err := nc.Write(b[i%len(b) : i%len(b)+1]); err != nil {
				return time.Since(start), nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0, errors.New("still connected after 15 s")
	}
	t.Run("handshake", func(t *testing.T) {
		nc, err := net.Dial("tcp", sc.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		hs := peer.AppendHandshake(nil, peer.Handshake{InfoHash: f.mi.InfoHash, PeerID: peer.NewPeerID()})
		d, err := dribble(nc, hs)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dropped after %v", d.Round(time.Millisecond))
	})
	t.Run("message", func(t *testing.T) {
		nc, err := dialRaw("127.0.0.100", sc.Addr(), f.mi.InfoHash)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// An extended message that would take 10 s to arrive.
		msg := peer.AppendMessage(nil, &peer.Message{Type: peer.Extended, ExtendedID: 99, Payload: make([]byte, 100)})
		d, err := dribble(nc, msg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dropped after %v", d.Round(time.Millisecond))
	})
	t.Run("keep-alives", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, slots)
		took := make([]time.Duration, slots)
		for i := range slots {
			nc, err := dialRaw(fmt.Sprintf("127.0.0.%d", 100+i), sc.Addr(), f.mi.InfoHash)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				took[i], errs[i] = dribble(nc, make([]byte, 4)) // a keep-alive is four zero bytes
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("peer %d: %v", i, err)
			} else {
				t.Logf("peer %d dropped after %v", i, took[i].Round(time.Millisecond))
			}
		}
	})
}

// TestMaxConnsPerIPDials: with MaxConnsPerIP 1, of two candidates on one
// address (two ports) only one is dialled.
func TestMaxConnsPerIPDials(t *testing.T) {
	f := newFixture(t, 64<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 256 << 10}})
	var mu sync.Mutex
	accepted := 0
	serve := func(nc net.Conn) {
		mu.Lock()
		accepted++
		mu.Unlock()
		if _, err := peer.ReadHandshake(nc); err != nil {
			return
		}
		var rsv peer.Reserved
		rsv.SetFast()
		if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: f.mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
			return
		}
		io.Copy(io.Discard, nc)
	}
	a := listenFake(t, "127.0.0.7", serve)
	b := listenFake(t, "127.0.0.7", serve)
	// Plain handshakes only: the fakes speak no MSE, and an MSE attempt
	// followed by a plain retry would count as two accepts.
	_, tor, _ := leecher(t, f, Config{ListenAddr: "127.0.0.3:0", MaxConnsPerIP: 1, Encryption: mse.Off}, a.addr(), b.addr())
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		n := accepted
		mu.Unlock()
		if n > 1 {
			t.Fatalf("%d connections to one address with MaxConnsPerIP 1", n)
		}
	}
	if s := tor.Stats(); s.Peers != 1 {
		t.Errorf("%d peers, want 1", s.Peers)
	}
}
