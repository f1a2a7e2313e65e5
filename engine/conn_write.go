package engine

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

// A connection's writer side: the send queue the loop fills without ever
// blocking (send, sendRequests, queueUpload) and the writer goroutine that
// drains it, reading upload blocks straight from storage.
//
// Lock order: c.out.mu guards the queue and is a leaf, never held across
// I/O, a channel send, or another lock. The one call made under it is
// into package peer's encoders (AppendMessage), which are pure and lock
// nothing, so that a message is encoded straight into the queue.

// sendQueue is what waits to be written to a peer. mu guards every field
// but queued and the channels; it is never held across I/O.
type sendQueue struct {
	mu       sync.Mutex
	buf      []byte     // encoded messages waiting for the writer
	writing  int        // bytes of the write in progress, piece payload included
	uploads  []blockReq // requests to serve, in order
	closed   bool       // close has run: sends are dropped
	closeErr error      // why the connection was closed

	wake chan struct{} // cap 1: poke the writer
	// queued mirrors len(buf)+writing for the reader, which pauses while
	// it is over sendPauseBytes; drained (cap 1) is poked after each write.
	queued  atomic.Int64
	drained chan struct{}
}

// errNotReading drops a peer that does not read what we send it.
var errNotReading = errors.New("peer is not reading")

// send queues a message for the writer. It never blocks (the loop calls
// it); a peer whose queue passes maxSendQueue is dropped.
func (c *conn) send(m peer.Message) {
	c.enqueue(func(wq []byte) []byte { return peer.AppendMessage(wq, &m) })
}

// sendRequests queues our requests for blocks, like send.
func (c *conn) sendRequests(reqs []picker.Request) {
	c.enqueue(func(wq []byte) []byte {
		for _, r := range reqs {
			wq = peer.AppendMessage(wq, &peer.Message{Type: peer.Request, Index: uint32(r.Piece), Begin: r.Begin, Length: r.Length})
		}
		return wq
	})
}

// enqueue appends encoded messages to the send queue and wakes the writer.
func (c *conn) enqueue(appendTo func([]byte) []byte) {
	c.out.mu.Lock()
	if c.out.closed {
		c.out.mu.Unlock()
		return
	}
	c.out.buf = appendTo(c.out.buf)
	n := c.setQueuedLocked()
	c.out.mu.Unlock()
	if n > maxSendQueue {
		c.drop(fmt.Errorf("%w: %d bytes wait to be sent", errNotReading, n))
		return
	}
	c.poke()
}

// setQueuedLocked publishes the bytes waiting to be written and returns them.
func (c *conn) setQueuedLocked() int {
	n := len(c.out.buf) + c.out.writing
	c.out.queued.Store(int64(n))
	return n
}

func (c *conn) poke() {
	select {
	case c.out.wake <- struct{}{}:
	default:
	}
}

// queueUpload adds a request to serve; false if the queue is full.
func (c *conn) queueUpload(m *peer.Message) bool {
	c.out.mu.Lock()
	if c.out.closed || len(c.out.uploads) >= maxUploadQueue {
		c.out.mu.Unlock()
		return false
	}
	c.out.uploads = append(c.out.uploads, blockReq{m.Index, m.Begin, m.Length})
	c.out.mu.Unlock()
	c.poke()
	return true
}

// cancelUpload drops a queued request that has not been sent yet.
func (c *conn) cancelUpload(index, begin, length uint32) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	for i, u := range c.out.uploads {
		if u == (blockReq{index, begin, length}) {
			c.out.uploads = append(c.out.uploads[:i], c.out.uploads[i+1:]...)
			return
		}
	}
}

// dropUploads forgets every queued request (we choked the peer); with the
// fast extension each is rejected explicitly. The rejects are bounded by
// the queue they replace.
func (c *conn) dropUploads() {
	c.out.mu.Lock()
	ups := c.out.uploads
	c.out.uploads = nil
	if c.fast && !c.out.closed {
		for _, u := range ups {
			c.out.buf = peer.AppendMessage(c.out.buf, &peer.Message{Type: peer.Reject, Index: u.index, Begin: u.begin, Length: u.length})
		}
	}
	c.setQueuedLocked()
	c.out.mu.Unlock()
	c.poke()
}

func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	var (
		buf []byte
		ups []blockReq
	)
	keepAlive := time.NewTimer(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.out.wake:
		case <-keepAlive.C:
			c.send(peer.Message{KeepAlive: true})
		}
		for {
			c.out.mu.Lock()
			// Take the queue and hand it our empty buffer: two buffers
			// take turns. Serve a bounded slice of uploads per round so
			// control messages (cancel, have) are never stuck behind
			// megabytes, and a round holds at most maxUploadBatch of
			// piece payload.
			buf, c.out.buf = c.out.buf, buf[:0]
			ups = ups[:0]
			payload := 0
			for _, u := range c.out.uploads {
				if len(ups) > 0 && payload+int(u.length) > maxUploadBatch {
					break
				}
				ups = append(ups, u)
				payload += int(u.length)
			}
			c.out.uploads = c.out.uploads[len(ups):]
			if len(c.out.uploads) == 0 {
				c.out.uploads = nil
			}
			c.out.writing = len(buf) + payload + len(ups)*peer.PieceHeaderLength
			c.setQueuedLocked()
			c.out.mu.Unlock()
			if len(buf) == 0 && len(ups) == 0 {
				break
			}
			for _, u := range ups {
				var err error
				buf, err = c.appendBlock(buf, u)
				if err != nil {
					c.close(err)
					return
				}
			}
			c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := c.nc.Write(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					c.drop(fmt.Errorf("%w: a write stalled for %v with %d bytes queued: %w", errNotReading, writeTimeout, c.out.queued.Load(), err))
				}
				c.close(err)
				return
			}
			c.out.mu.Lock()
			c.out.writing = 0
			c.setQueuedLocked()
			c.out.mu.Unlock()
			select {
			case c.out.drained <- struct{}{}:
			default:
			}
			if !keepAlive.Stop() {
				select {
				case <-keepAlive.C:
				default:
				}
			}
			keepAlive.Reset(keepAliveEvery)
			if cap(buf) > 4<<20 {
				buf = nil // do not pin a huge buffer for an idle peer
			}
		}
	}
}

// appendBlock appends a piece message for request u, read straight from
// storage; a block we no longer hold is rejected (fast) or skipped.
func (c *conn) appendBlock(buf []byte, u blockReq) ([]byte, error) {
	t := c.t
	if lim := t.client.upLim; lim != nil {
		if err := waitN(c.ctx, lim, int(u.length)); err != nil {
			return buf, err
		}
	}
	off := t.info.PieceOffset(int(u.index)) + int64(u.begin)
	start := len(buf)
	buf = peer.AppendPieceHeader(buf, u.index, u.begin, int(u.length))
	hdr := len(buf)
	buf = append(buf, make([]byte, u.length)...)
	// Past the end: the padding of a v2 torrent's last piece, zeros.
	var err error
	if n := min(int64(u.length), t.info.TotalLength-off); n > 0 {
		_, err = t.store.ReadAt(buf[hdr:hdr+int(n)], off)
	}
	if err != nil {
		buf = buf[:start]
		if errors.Is(err, storage.ErrNotStored) {
			if c.fast {
				buf = peer.AppendMessage(buf, &peer.Message{Type: peer.Reject, Index: u.index, Begin: u.begin, Length: u.length})
			}
			return buf, nil
		}
		t.client.logf("%s: read for upload: %v", t.name(), err)
		return buf, nil
	}
	c.uploaded.Add(int64(u.length))
	t.pub.uploaded.Add(int64(u.length))
	return buf, nil
}
