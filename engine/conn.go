package engine

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/swarmfs/swarmfs/engine/peer"
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
// torrent loop; the send queue has its own mutex; the rest is read-only
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

	out       sendQueue // what waits for the writer; its own mutex (conn_write.go)
	closeOnce sync.Once

	// loop-owned, grouped by concern
	removed bool
	cand    *candidate // the candidate this connection reached, if any
	gotPort bool       // a PORT message was handled (torrent_msgs.go)
	choke   chokeState // choking and interest, both ways (choke.go)
	has     peerPieces // what the peer has (torrent_msgs.go)
	exts    extState   // its extension handshake (torrent_msgs.go)
	flow    flowState  // rates, requests in flight, usefulness
	meta    metaPeer   // ut_metadata both ways (torrent_meta.go)
	pex     pexPeer    // peer exchange (torrent_pex.go)
	super   superPeer  // what super-seeding showed it (superseed.go)
}

// peerPieces is what a peer announced it has. Loop-owned.
type peerPieces struct {
	bits  peer.Bits // nil after HaveAll, or before any announce
	count int       // pieces in bits (all of them, after HaveAll)

	// Before the info is known, what the peer announced is kept raw and
	// applied once the piece count is known (applyPreInfo): a Bitfield
	// goes to bits unchecked, HaveAll to preAll, Haves to pre (bounded by
	// the largest piece count an acceptable info could have).
	preAll bool
	pre    peer.Bits
}

// extState is what a peer's BEP 10 extension handshakes told us.
// Loop-owned.
type extState struct {
	hs  *peer.ExtendedHandshake // the latest, merged with earlier ones; nil before the first
	ids map[string]int          // the peer's extension message ids
}

// flowState is how data flows with a peer: rates, requests in flight and
// whether the peer is worth its slot (reviewPeers). Loop-owned.
type flowState struct {
	down, up  rateMeter
	peerReqq  int       // requests the peer accepts at once (its reqq, within ours)
	pipeline  int       // target of our requests outstanding with it
	lastPiece time.Time // a block we asked for arrived

	lastUseful  time.Time // last block in or out, or interest it raised; started at first
	upSeen      int64     // uploaded at the last review
	interesting bool      // amInterested at the last review
}

// blockReq is a request a peer queued with us.
type blockReq struct{ index, begin, length uint32 }

func newConn(t *Torrent, nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool, id picker.PeerID) *conn {
	ours := ourReserved()
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	return &conn{
		ctx:       ctx,
		cancel:    cancel,
		t:         t,
		nc:        nc,
		addr:      addr,
		peerID:    pid,
		reserved:  rsv,
		id:        id,
		incoming:  incoming,
		encrypted: rc4Conn(nc),
		fast:      rsv.Fast() && ours.Fast(),
		ext:       rsv.Extended() && ours.Extended(),
		dht:       rsv.DHT() && t.client.dht != nil,
		done:      make(chan struct{}),
		started:   now,
		choke:     chokeState{amChoking: true, peerChoking: true},
		flow:      flowState{lastUseful: now, peerReqq: 250, pipeline: minPipeline},
		out:       sendQueue{wake: make(chan struct{}, 1), drained: make(chan struct{}, 1)},
	}
}

// start launches the reader and writer goroutines. They belong to the
// torrent: its WaitGroup counts them, and its close waits for them. Loop
// only (the loop's own count keeps the WaitGroup from reaching zero).
func (c *conn) start(maxMsg int) {
	c.maxMsg.Store(int64(maxMsg))
	c.t.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// close ends the connection; safe from any goroutine, any number of times.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.out.mu.Lock()
		c.out.closeErr = err
		c.out.closed = true
		c.out.buf, c.out.uploads = nil, nil
		c.out.mu.Unlock()
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
