package engine

import (
	"context"
	"errors"
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
	// idleTimeout closes a connection that has sent nothing, not even a
	// keep-alive, for this long (BEP 3 suggests two minutes).
	idleTimeout = 3 * time.Minute
	// keepAliveEvery is how often an otherwise silent writer sends a keep-alive.
	keepAliveEvery = 90 * time.Second
	// writeTimeout bounds one write to a peer that stopped reading.
	writeTimeout = 60 * time.Second
	// maxUploadQueue bounds the requests a peer may have queued with us; we
	// advertise ourReqq in the extension handshake and tolerate some slack.
	ourReqq        = 1000
	maxUploadQueue = 2 * ourReqq
	// maxBlockRequest is the largest request we serve (BEP 3 allows up to 128 KiB).
	maxBlockRequest = 128 << 10
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

	// encrypted: the connection is MSE/PE (RC4) encrypted. Set before
	// start by whoever made the connection (plain TCP for now); read-only.
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

	// writer state
	wmu      sync.Mutex // guards the fields below; never held across I/O
	wq       []peer.Message
	uploads  []peer.Message // Request messages to serve, in order
	wake     chan struct{}  // cap 1: poke the writer
	closeErr error

	closeOnce sync.Once
	wg        sync.WaitGroup // reader and writer goroutines
}

func newConn(t *Torrent, nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool, id picker.PeerID) *conn {
	ours := ourReserved()
	ctx, cancel := context.WithCancel(context.Background())
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
		fast:        rsv.Fast() && ours.Fast(),
		ext:         rsv.Extended() && ours.Extended(),
		dht:         rsv.DHT() && t.client.dht != nil,
		done:        make(chan struct{}),
		started:     time.Now(),
		amChoking:   true,
		peerChoking: true,
		peerReqq:    250,
		pipeline:    minPipeline,
		wake:        make(chan struct{}, 1),
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
		c.wmu.Unlock()
		close(c.done)
		c.cancel()
		c.nc.Close()
	})
}

// send queues a message for the writer. Loop only (it never blocks).
func (c *conn) send(m peer.Message) {
	c.wmu.Lock()
	c.wq = append(c.wq, m)
	c.wmu.Unlock()
	c.poke()
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// queueUpload adds a request to serve; false if the queue is full.
func (c *conn) queueUpload(m peer.Message) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.uploads) >= maxUploadQueue {
		return false
	}
	c.uploads = append(c.uploads, m)
	c.poke()
	return true
}

// cancelUpload drops a queued request that has not been sent yet.
func (c *conn) cancelUpload(index, begin, length uint32) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for i, u := range c.uploads {
		if u.Index == index && u.Begin == begin && u.Length == length {
			c.uploads = append(c.uploads[:i], c.uploads[i+1:]...)
			return
		}
	}
}

// dropUploads forgets every queued request (we choked the peer); with the
// fast extension each is rejected explicitly.
func (c *conn) dropUploads() {
	c.wmu.Lock()
	ups := c.uploads
	c.uploads = nil
	if c.fast {
		for _, u := range ups {
			c.wq = append(c.wq, peer.Message{Type: peer.Reject, Index: u.Index, Begin: u.Begin, Length: u.Length})
		}
	}
	c.wmu.Unlock()
	c.poke()
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
		c.nc.SetReadDeadline(time.Now().Add(idleTimeout))
		if err := dec.Decode(&m); err != nil {
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
		buf   []byte
		batch []peer.Message
		ups   []peer.Message
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
			batch, c.wq = c.wq, batch[:0]
			// Serve a bounded slice of uploads per round so control
			// messages (cancel, have) are never stuck behind megabytes.
			n := min(len(c.uploads), 16)
			ups = append(ups[:0], c.uploads[:n]...)
			c.uploads = c.uploads[n:]
			if len(c.uploads) == 0 {
				c.uploads = nil
			}
			c.wmu.Unlock()
			if len(batch) == 0 && len(ups) == 0 {
				break
			}
			buf = buf[:0]
			for i := range batch {
				buf = peer.AppendMessage(buf, &batch[i])
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
				c.close(err)
				return
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
func (c *conn) appendBlock(buf []byte, u peer.Message) ([]byte, error) {
	t := c.t
	if lim := t.client.upLim; lim != nil {
		if err := waitN(c.ctx, lim, int(u.Length)); err != nil {
			return buf, err
		}
	}
	off := t.info.PieceOffset(int(u.Index)) + int64(u.Begin)
	start := len(buf)
	buf = peer.AppendPieceHeader(buf, u.Index, u.Begin, int(u.Length))
	hdr := len(buf)
	buf = append(buf, make([]byte, u.Length)...)
	if _, err := t.store.ReadAt(buf[hdr:], off); err != nil {
		buf = buf[:start]
		if errors.Is(err, storage.ErrNotStored) {
			if c.fast {
				buf = peer.AppendMessage(buf, &peer.Message{Type: peer.Reject, Index: u.Index, Begin: u.Begin, Length: u.Length})
			}
			return buf, nil
		}
		t.client.logf("%s: read for upload: %v", t.name(), err)
		return buf, nil
	}
	c.uploaded.Add(int64(u.Length))
	t.uploaded.Add(int64(u.Length))
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
