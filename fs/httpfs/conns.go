package httpfs

// Lock order: connReaders.mu is a leaf: no call into a Reader, a timer's
// callback or another package is made under it.

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// ReaderLinger is how long a connection keeps the torrent's Reader of its
// last file request for its next one (see connReaders).
const ReaderLinger = 5 * time.Second

// readerLinger is ReaderLinger; tests shorten it.
var readerLinger = ReaderLinger

// connKey is the context key of a connection's connReaders.
type connKey struct{}

// connReaders keeps, for one client connection, the torrent's Reader of
// its last file request, for a moment after the request ends: players
// that stream by consecutive ranges on one keep-alive connection (TVs,
// Chromecast, Safari, Kodi) then read through one Reader, whose position
// and readahead window carry over from range to range as for one open(2)
// on the mount, rather than through a new Reader per range whose window
// starts closed every time. The Reader is closed when the next request
// wants another file, after ReaderLinger without a request, when the
// connection closes, or when its request ended because the client went
// away (readSeeker.Close does not keep it then).
type connReaders struct {
	mu     sync.Mutex // guards the following
	closed bool
	idle   *idleReader

	timers sync.WaitGroup // expiry callbacks that may still run
}

// idleReader is a Reader between two requests of a connection, with the
// buffer its last fill left.
type idleReader struct {
	ih     metainfo.Hash
	file   int
	r      Reader
	buf    *[]byte
	bufOff int64
	bufN   int
	timer  *time.Timer
}

// release closes the Reader and returns the buffer.
func (ir *idleReader) release() {
	ir.r.Close()
	putBuf(ir.buf)
}

// take returns the idle Reader of file of ih, or nil. An idle Reader of
// another file is closed: the client moved on.
func (c *connReaders) take(ih metainfo.Hash, file int) *idleReader {
	c.mu.Lock()
	ir := c.idle
	c.idle = nil
	c.mu.Unlock()
	if ir == nil {
		return nil
	}
	c.stopTimer(ir)
	if ir.ih != ih || ir.file != file {
		ir.release()
		return nil
	}
	return ir
}

// park keeps ir for the connection's next request, or closes it if the
// connection is gone.
func (c *connReaders) park(ir *idleReader) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ir.release()
		return
	}
	old := c.idle
	c.idle = ir
	c.timers.Add(1)
	ir.timer = time.AfterFunc(readerLinger, func() {
		defer c.timers.Done()
		c.mu.Lock()
		mine := c.idle == ir
		if mine {
			c.idle = nil
		}
		c.mu.Unlock()
		if mine {
			ir.release()
		}
	})
	c.mu.Unlock()
	if old != nil {
		// Not expected (one request at a time per connection), but
		// whoever takes an idleReader out of c.idle closes it.
		c.stopTimer(old)
		old.release()
	}
}

// stopTimer stops the expiry of ir, which the caller took out of c.idle
// (so a callback that runs anyway finds nothing to close).
func (c *connReaders) stopTimer(ir *idleReader) {
	if ir.timer.Stop() {
		c.timers.Done()
	}
}

// close closes the idle Reader, if any, and any later parked one at once;
// it waits for expiry callbacks to end.
func (c *connReaders) close() {
	c.mu.Lock()
	c.closed = true
	ir := c.idle
	c.idle = nil
	c.mu.Unlock()
	if ir != nil {
		c.stopTimer(ir)
		ir.release()
	}
	c.timers.Wait()
}

// SendBuffer is each client connection's socket send buffer (SO_SNDBUF;
// Linux doubles it). Small, so a response runs ahead of what its client
// has read by little: a player that reads the head of a file and then
// seeks to its index (ffprobe, ffmpeg) would otherwise have the head's
// response keep reading the next pieces into a buffer of megabytes, and
// those pieces, urgent to the engine, go before the index it waits for.
const SendBuffer = 128 << 10

// ConfigureServer makes hs give each connection a place to keep the
// Reader of its last file request for the next (see ReaderLinger), and
// close it with the connection. NewHTTPServer calls it; without it, each
// request opens a Reader of its own. It wraps hs's ConnContext and
// ConnState hooks, if set, and must be called before hs serves.
func (s *Server) ConfigureServer(hs *http.Server) {
	connContext, connState := hs.ConnContext, hs.ConnState
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(SendBuffer)
		}
		cr := &connReaders{}
		s.conns.Store(c, cr)
		return context.WithValue(ctx, connKey{}, cr)
	}
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			if cr, ok := s.conns.LoadAndDelete(c); ok {
				cr.(*connReaders).close()
			}
		}
		if connState != nil {
			connState(c, st)
		}
	}
}

// Close closes the Readers connections keep between requests. Call it
// after the http.Server has shut down: a connection that still serves
// afterwards opens a Reader per request.
func (s *Server) Close() {
	s.conns.Range(func(c, cr any) bool {
		s.conns.Delete(c)
		cr.(*connReaders).close()
		return true
	})
}

// connReadersOf returns the connReaders of r's connection, or nil.
func connReadersOf(r *http.Request) *connReaders {
	cr, _ := r.Context().Value(connKey{}).(*connReaders)
	return cr
}
