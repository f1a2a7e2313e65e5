package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/picker"
)

const (
	// keepAliveEvery is how often an otherwise silent writer sends a keep-alive.
	keepAliveEvery = 90 * time.Second
	// ourReqq is the request queue we advertise in the extension handshake
	// and keep per peer (maxUploadQueue). A request beyond it is refused,
	// and so is a request while we choke the peer; past maxRefusedRequests
	// such refusals (those it could not blame on a choke crossing its
	// requests on the wire, chokeGrace) the peer is dropped, as libtorrent
	// drops a peer that keeps requesting while choked. Without that a
	// peer that floods requests and never reads would make us queue a
	// REJECT for each.
	ourReqq            = 1000
	maxUploadQueue     = ourReqq
	maxRefusedRequests = ourReqq / 4
	chokeGrace         = 5 * time.Second
	// maxBlockRequest is the largest request we serve (BEP 3 allows up to 128 KiB).
	maxBlockRequest = 128 << 10
	// maxUploadBatch bounds the piece payload one write round reads from
	// storage: the bytes of a peer's uploads held in memory at once.
	maxUploadBatch = 256 << 10
	// sendPauseBytes: while this much waits to be written to a peer (its
	// send queue plus the write in progress), its reader stops reading, so
	// a peer that sends faster than it reads is slowed down by TCP instead
	// of growing our queue (libtorrent likewise stops reading a socket
	// whose send buffer is over its watermark). The largest message we
	// queue in one piece, a bitfield, stays well under it.
	sendPauseBytes = 1 << 20
	// maxSendQueue: a peer with this much waiting is dropped; only what the
	// loop sends on its own (haves, requests) can grow the queue while the
	// reader is paused, so only a peer that stopped reading gets there.
	maxSendQueue = 4 << 20
)

// Timeouts for peers that do not read or send nothing useful. Variables so
// that tests can shorten them.
var (
	// writeTimeout bounds one write: a peer that does not read what we
	// send it for this long is dropped.
	writeTimeout = 60 * time.Second
	// idleTimeout closes a connection that has sent no complete message,
	// not even a keep-alive, for this long (BEP 3 suggests two minutes).
	// The read deadline is set per message, so bytes that trickle in
	// without completing one do not extend it.
	idleTimeout = 3 * time.Minute
	// uselessTimeout drops, when connection slots are scarce, a peer that
	// for this long has neither sent us a block we asked for, nor taken
	// one from us, nor announced a piece that made it interesting (as
	// libtorrent's inactivity_timeout, shorter). Keep-alives do not count.
	uselessTimeout = 5 * time.Minute
	// evictGrace is how long a connection may be useless before a newcomer
	// that finds the torrent full may take its slot: newcomers do not evict
	// each other before they had a chance to prove themselves.
	evictGrace = 20 * time.Second
)

// conn is one peer connection. Fields under "loop-owned" belong to the
// torrent loop; the writer fields are guarded by wmu; the rest is read-only
// after construction or atomic.
type conn struct {
	// read-only after construction
	t        *Torrent
	nc       net.Conn
	addr     netip.AddrPort
	peerID   [20]byte
	reserved peer.Reserved
	id       picker.PeerID
	incoming bool
	fast     bool // both sides support BEP 6
	ext      bool // both sides support BEP 10
	dht      bool // both sides run a DHT node (BEP 5)
	done     chan struct{}
	ctx      context.Context // cancelled by close; for rate-limiter waits
	cancel   context.CancelFunc
	started  time.Time

	// encrypted: the connection is MSE/PE (RC4) encrypted (an *mse.Conn
	// that selected RC4); read-only.
	encrypted bool

	// atomic counters, read by statistics from any goroutine
	downloaded atomic.Int64 // piece payload bytes received
	uploaded   atomic.Int64 // piece payload bytes sent
	// maxMsg is the decoder's bound, raised by the loop once a magnet's
	// piece count is known; the reader goroutine applies it between
	// messages.
	maxMsg atomic.Int64

	// loop-owned
	amChoking, amInterested     bool
	peerChoking, peerInterested bool
	sentBitfield, gotFirst      bool
	peerExt                     *peer.ExtendedHandshake
	peerReqq                    int
	pipeline                    int // target outstanding requests
	down, up                    rateMeter
	lastPiece                   time.Time
	optimistic                  bool
	unchokedAt                  time.Time
	removed                     bool
	cand                        *candidate     // the candidate this connection reached, if any
	extIDs                      map[string]int // peer's extension message ids
	bits                        []byte         // pieces the peer announced
	numHave                     int            // set bits in bits (all, after HaveAll)
	gotPort                     bool           // a PORT message was handled

	// loop-owned, before the info is known: what the peer announced, kept
	// raw and applied once the piece count is known (torrent_meta.go)
	preHaveAll bool
	preHaves   []byte // bitset of Have indices, bounded by maxPreInfoHaveBytes

	// loop-owned: metadata exchange (torrent_meta.go)
	metaOut       int       // our ut_metadata requests in flight to this peer
	metaSkipUntil time.Time // rejected or timed out: ask others first
	metaServed    int       // ut_metadata requests answered in this window
	metaServedAt  time.Time // start of that window
	metaBad       int       // malformed ut_metadata messages received

	// loop-owned: peer exchange (torrent_pex.go)
	pexNext     time.Time                   // when we may send the next ut_pex
	pexSent     map[netip.AddrPort]struct{} // peers this peer has been told of
	pexLastRecv time.Time

	// loop-owned: how useful the peer is (torrent_peers.go) and how it
	// requests (choke.go)
	lastUseful  time.Time // last block in or out, or interest it raised; started at first
	upSeen      int64     // uploaded at the last review
	interesting bool      // amInterested at the last review
	chokedAt    time.Time // when we last choked it; zero while never unchoked
	refused     int       // requests refused that a well-behaved peer would not send

	// writer state
	wmu      sync.Mutex    // guards the fields below; never held across I/O
	wq       []byte        // encoded messages waiting for the writer
	writing  int           // bytes of the write in progress, piece payload included
	uploads  []blockReq    // requests to serve, in order
	closed   bool          // close has run: sends are dropped
	wake     chan struct{} // cap 1: poke the writer
	closeErr error

	// queued mirrors len(wq)+writing for the reader, which pauses while it
	// is over sendPauseBytes; drained (cap 1) is poked after each write.
	queued  atomic.Int64
	drained chan struct{}

	closeOnce sync.Once
	wg        sync.WaitGroup // reader and writer goroutines
}

// blockReq is a request a peer queued with us.
type blockReq struct{ index, begin, length uint32 }

func newConn(t *Torrent, nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool, id picker.PeerID) *conn {
	ours := ourReserved()
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	return &conn{
		ctx:         ctx,
		cancel:      cancel,
		t:           t,
		nc:          nc,
		addr:        addr,
		peerID:      pid,
		reserved:    rsv,
		id:          id,
		incoming:    incoming,
		encrypted:   rc4Conn(nc),
		fast:        rsv.Fast() && ours.Fast(),
		ext:         rsv.Extended() && ours.Extended(),
		dht:         rsv.DHT() && t.client.dht != nil,
		done:        make(chan struct{}),
		started:     now,
		lastUseful:  now,
		amChoking:   true,
		peerChoking: true,
		peerReqq:    250,
		pipeline:    minPipeline,
		wake:        make(chan struct{}, 1),
		drained:     make(chan struct{}, 1),
	}
}

// start launches the reader and writer goroutines.
func (c *conn) start(maxMsg int) {
	c.maxMsg.Store(int64(maxMsg))
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// close ends the connection; safe from any goroutine, any number of times.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.closeErr = err
		c.closed = true
		c.wq, c.uploads = nil, nil
		c.wmu.Unlock()
		close(c.done)
		c.cancel()
		c.nc.Close()
	})
}

// drop closes the connection for a reason worth a log line: the peer
// misbehaved or was not worth its slot.
func (c *conn) drop(err error) {
	c.t.client.droppedLog.logf(c.t.client, "%s: %s: dropped: %v", c.t.name(), c.addr, err)
	c.close(err)
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
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.wq = appendTo(c.wq)
	n := c.setQueuedLocked()
	c.wmu.Unlock()
	if n > maxSendQueue {
		c.drop(fmt.Errorf("%w: %d bytes wait to be sent", errNotReading, n))
		return
	}
	c.poke()
}

// setQueuedLocked publishes the bytes waiting to be written and returns them.
func (c *conn) setQueuedLocked() int {
	n := len(c.wq) + c.writing
	c.queued.Store(int64(n))
	return n
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// queueUpload adds a request to serve; false if the queue is full.
func (c *conn) queueUpload(m *peer.Message) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || len(c.uploads) >= maxUploadQueue {
		return false
	}
	c.uploads = append(c.uploads, blockReq{m.Index, m.Begin, m.Length})
	c.poke()
	return true
}

// cancelUpload drops a queued request that has not been sent yet.
func (c *conn) cancelUpload(index, begin, length uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, u := range c.uploads {
		if u == (blockReq{index, begin, length}) {
			c.uploads = append(c.uploads[:i], c.uploads[i+1:]...)
			return
		}
	}
}

// dropUploads forgets every queued request (we choked the peer); with the
// fast extension each is rejected explicitly. The rejects are bounded by
// the queue they replace.
func (c *conn) dropUploads() {
	c.wmu.Lock()
	ups := c.uploads
	c.uploads = nil
	if c.fast && !c.closed {
		for _, u := range ups {
			c.wq = peer.AppendMessage(c.wq, &peer.Message{Type: peer.Reject, Index: u.index, Begin: u.begin, Length: u.length})
		}
	}
	c.setQueuedLocked()
	c.wmu.Unlock()
	c.poke()
}

// waitDrained holds the reader while too much waits to be sent to the
// peer; false once the connection closed.
func (c *conn) waitDrained() bool {
	for c.queued.Load() > sendPauseBytes {
		select {
		case <-c.drained:
		case <-c.done:
			return false
		}
	}
	return true
}

func (c *conn) readLoop() {
	defer c.wg.Done()
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
			t.downloaded.Add(int64(len(buf)))
		case peer.Bitfield:
			ev.Bitfield = append([]byte(nil), m.Bitfield...)
		case peer.Extended:
			ev.Payload = append([]byte(nil), m.Payload...)
		}
		if !t.postConn(c, func() { t.onMessage(c, &ev) }) {
			if ev.Type == peer.Piece {
				putBlockBuf(ev.Block)
			}
			return
		}
	}
}

func (c *conn) writeLoop() {
	defer c.wg.Done()
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
		case <-c.wake:
		case <-keepAlive.C:
			c.send(peer.Message{KeepAlive: true})
		}
		for {
			c.wmu.Lock()
			// Take the queue and hand it our empty buffer: two buffers
			// take turns. Serve a bounded slice of uploads per round so
			// control messages (cancel, have) are never stuck behind
			// megabytes, and a round holds at most maxUploadBatch of
			// piece payload.
			buf, c.wq = c.wq, buf[:0]
			ups = ups[:0]
			payload := 0
			for _, u := range c.uploads {
				if len(ups) > 0 && payload+int(u.length) > maxUploadBatch {
					break
				}
				ups = append(ups, u)
				payload += int(u.length)
			}
			c.uploads = c.uploads[len(ups):]
			if len(c.uploads) == 0 {
				c.uploads = nil
			}
			c.writing = len(buf) + payload + len(ups)*peer.PieceHeaderLength
			c.setQueuedLocked()
			c.wmu.Unlock()
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
					c.drop(fmt.Errorf("%w: a write stalled for %v with %d bytes queued: %w", errNotReading, writeTimeout, c.queued.Load(), err))
				}
				c.close(err)
				return
			}
			c.wmu.Lock()
			c.writing = 0
			c.setQueuedLocked()
			c.wmu.Unlock()
			select {
			case c.drained <- struct{}{}:
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
	if _, err := t.store.ReadAt(buf[hdr:], off); err != nil {
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
	t.uploaded.Add(int64(u.length))
	return buf, nil
}

// waitN waits for n tokens, in chunks the limiter's burst allows.
func waitN(ctx context.Context, lim *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

var blockPool = sync.Pool{New: func() any { b := make([]byte, peer.BlockSize); return &b }}

// getBlockBuf returns a buffer of n bytes, pooled for the usual block size.
func getBlockBuf(n int) []byte {
	if n == peer.BlockSize {
		return *(blockPool.Get().(*[]byte))
	}
	return make([]byte, n)
}

func putBlockBuf(b []byte) {
	if cap(b) == peer.BlockSize {
		b = b[:peer.BlockSize]
		blockPool.Put(&b)
	}
}
