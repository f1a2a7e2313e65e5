package engine

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// scriptSeed is a fake seeder written for a test, to reproduce what real
// clients send: after the handshake it sends its extension handshake (when
// ext), the scripted intro and an unchoke, then serves requests from the
// torrent's only file. Fields are read-only once started.
type scriptSeed struct {
	fast, ext bool
	reqq      int                // advertised in the extension handshake; 0 leaves it out
	intro     []peer.Message     // after the handshake; nil sends HAVE ALL (fast) or a full bitfield
	pulse     time.Duration      // serve in batches at this period (transmission: 500 ms); 0 at once
	file      swarmtest.FileSpec // the torrent's only file, at offset 0

	maxBatch atomic.Int64 // most requests served in one batch
	served   atomic.Int64 // blocks sent
}

func startScriptSeed(t *testing.T, ip string, mi *metainfo.MetaInfo, s *scriptSeed) *fakePeer {
	t.Helper()
	return listenFake(t, ip, func(nc net.Conn) { s.serve(nc, mi) })
}

func (s *scriptSeed) serve(nc net.Conn, mi *metainfo.MetaInfo) {
	if _, err := peer.ReadHandshake(nc); err != nil {
		return
	}
	var rsv peer.Reserved
	if s.fast {
		rsv.SetFast()
	}
	if s.ext {
		rsv.SetExtended()
	}
	if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
		return
	}
	var out []byte
	if s.ext {
		h := peer.ExtendedHandshake{M: map[string]int{}, V: "scriptSeed 1.0", Reqq: s.reqq}
		b, err := h.Marshal()
		if err != nil {
			panic(err)
		}
		out = peer.AppendMessage(out, &peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: b})
	}
	intro := s.intro
	if intro == nil {
		n := mi.Info.NumPieces()
		intro = []peer.Message{{Type: peer.Bitfield, Bitfield: fullBitfield(n)}}
		if s.fast {
			intro = []peer.Message{{Type: peer.HaveAll}}
		}
	}
	for i := range intro {
		out = peer.AppendMessage(out, &intro[i])
	}
	out = peer.AppendMessage(out, &peer.Message{Type: peer.Unchoke})
	if _, err := nc.Write(out); err != nil {
		return
	}

	var (
		mu    sync.Mutex // guards queue
		queue []peer.Message
	)
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer: serves what is queued, at once or at each pulse
		defer wg.Done()
		var tick <-chan time.Time
		if s.pulse > 0 {
			tk := time.NewTicker(s.pulse)
			defer tk.Stop()
			tick = tk.C
		}
		buf := make([]byte, 0, 1<<20)
		for {
			if tick != nil {
				select {
				case <-tick:
				case <-done:
					return
				}
			} else {
				select {
				case <-wake:
				case <-done:
					return
				}
			}
			mu.Lock()
			batch := queue
			queue = nil
			mu.Unlock()
			if int64(len(batch)) > s.maxBatch.Load() {
				s.maxBatch.Store(int64(len(batch)))
			}
			for _, r := range batch {
				block := make([]byte, r.Length)
				off := mi.Info.PieceOffset(int(r.Index)) + int64(r.Begin)
				s.file.ReadAt(block, off)
				buf = peer.AppendMessage(buf[:0], &peer.Message{Type: peer.Piece, Index: r.Index, Begin: r.Begin, Block: block})
				if _, err := nc.Write(buf); err != nil {
					return
				}
				s.served.Add(1)
			}
		}
	}()
	defer wg.Wait()
	defer close(done)
	dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
	var m peer.Message
	for {
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.KeepAlive || m.Type != peer.Request {
			continue
		}
		mu.Lock()
		queue = append(queue, m)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

func fullBitfield(n int) []byte {
	b := make([]byte, (n+7)/8)
	for i := 0; i < n; i++ {
		b[i/8] |= 0x80 >> (uint(i) % 8)
	}
	return b
}
