package engine

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
)

// A connection's reader goroutine: it decodes messages, copies what must
// outlive the decoder's buffer (blocks, bitfields, extension payloads) and
// posts them to the loop. It stops reading while more than sendPauseBytes
// wait to be sent to the peer, so a peer that does not read is slowed down
// by TCP rather than growing our queue.

// waitDrained holds the reader while too much waits to be sent to the
// peer; false once the connection closed.
func (c *conn) waitDrained() bool {
	for c.out.queued.Load() > sendPauseBytes {
		select {
		case <-c.out.drained:
		case <-c.done:
			return false
		}
	}
	return true
}

func (c *conn) readLoop() {
	defer c.t.wg.Done()
	t := c.t
	dec := peer.NewDecoder(newQuickAckReader(c.nc), int(c.maxMsg.Load()))
	var m peer.Message
	for {
		if n := int(c.maxMsg.Load()); n != dec.MaxLength() {
			dec.SetMaxLength(n)
		}
		if !c.waitDrained() {
			t.post(func() { t.removeConn(c) })
			return
		}
		// One deadline per message: bytes that trickle in without
		// completing a message do not extend it.
		c.nc.SetReadDeadline(time.Now().Add(idleTimeout))
		if err := dec.Decode(&m); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("no complete message for %v: %w", idleTimeout, err)
				c.drop(err)
			}
			c.close(err)
			t.post(func() { t.removeConn(c) })
			return
		}
		if m.KeepAlive {
			continue
		}
		ev := m // copy the header; slices below are re-pointed at copies
		switch m.Type {
		case peer.Piece:
			if lim := t.client.downLim; lim != nil {
				if err := waitN(c.ctx, lim, len(m.Block)); err != nil {
					return
				}
			}
			buf := getBlockBuf(len(m.Block))
			copy(buf, m.Block)
			ev.Block = buf
			c.downloaded.Add(int64(len(buf)))
			t.pub.downloaded.Add(int64(len(buf)))
		case peer.Bitfield:
			ev.Bitfield = append([]byte(nil), m.Bitfield...)
		case peer.Extended:
			ev.Payload = append([]byte(nil), m.Payload...)
		case peer.Hashes:
			ev.Hashes = append([]byte(nil), m.Hashes...)
		}
		if !t.postConn(c, func() { t.onMessage(c, &ev) }) {
			if ev.Type == peer.Piece {
				putBlockBuf(ev.Block)
			}
			return
		}
	}
}

// blockBufs keeps received blocks' buffers for the next blocks. Each
// block is copied into its piece's buffer as soon as the loop takes it, so
// few are held at once: 64 blocks are plenty.
var blockBufs = newBufList(1 << 20)

// getBlockBuf returns a buffer of n bytes, pooled for the usual block size.
func getBlockBuf(n int) []byte {
	held.add(int64(n))
	if n == peer.BlockSize {
		return blockBufs.get(n)
	}
	return make([]byte, n)
}

func putBlockBuf(b []byte) {
	held.add(-int64(len(b)))
	if cap(b) == peer.BlockSize {
		blockBufs.put(b[:peer.BlockSize])
	}
}
