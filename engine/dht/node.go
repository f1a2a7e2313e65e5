package dht

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBootstrap lists the well-known public routers used when
// Config.Bootstrap is nil.
var DefaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"router.utorrent.com:6881",
	"dht.libtorrent.org:25401",
}

// Defaults for zero Config fields.
const (
	DefaultMaxNodes            = bucketSize * maxBuckets
	DefaultMaxPeersPerInfoHash = 100
	DefaultMaxInfoHashes       = 1000
	DefaultQueryRate           = 25
	DefaultQueryTimeout        = 2 * time.Second
)

// Internal bounds.
const (
	maxOutstanding     = 256 // transactions awaiting an answer
	maxBackgroundPings = 8   // liveness pings in flight
	maxLimiterIPs      = 8192
	ampFactor          = 4 // reply size bound for unverified senders, times the query size
	maxValues          = 50
	maintainEvery      = 5 * time.Second
	saveEvery          = 5 * time.Minute
)

// Errors.
var (
	// ErrClosed is returned by operations on a closed Node.
	ErrClosed = errors.New("dht: node closed")
	// ErrNoNodes is returned when a lookup found no node that answered.
	ErrNoNodes = errors.New("dht: no node answered")
	// errTimeout is a query that got no answer in time.
	errTimeout = errors.New("dht: query timed out")
)

// Config configures a Node. The zero value of each field picks the
// documented default.
type Config struct {
	// Listen is the UDP address to bind, e.g. "0.0.0.0:6881" or
	// "127.0.0.1:0". Empty means "0.0.0.0:0". An IPv4 host makes an IPv4
	// node; a specific IPv6 host ("[::1]:0") an IPv6 node, which uses
	// "nodes6"; no host (":6881") or "[::]" a dual-stack socket and a node
	// of both families, with one routing table each (BEP 32).
	Listen string
	// StatePath is the file the node ID and routing table are saved to
	// (every 5 minutes and on Close) and loaded from at New. "" = none. A
	// missing file starts a new identity; an unreadable one is logged and
	// replaced at the next save.
	StatePath string
	// Bootstrap lists host:port entry points. nil means DefaultBootstrap;
	// an empty non-nil slice means none (tests, private networks).
	Bootstrap []string
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)
	// MaxNodes bounds the routing table (default DefaultMaxNodes, which is
	// also the most 160 buckets of 8 can hold).
	MaxNodes int
	// MaxPeersPerInfoHash and MaxInfoHashes bound the peers stored for
	// others' announce_peer (defaults DefaultMaxPeersPerInfoHash,
	// DefaultMaxInfoHashes).
	MaxPeersPerInfoHash, MaxInfoHashes int
	// QueryRate is how many queries per second one source IP may send us
	// before the rest are dropped (default DefaultQueryRate).
	QueryRate int
	// ReadOnly makes a BEP 43 read-only node: it answers no queries and
	// asks others to keep it out of their routing tables.
	ReadOnly bool
	// QueryTimeout is how long one query waits for its answer (default
	// DefaultQueryTimeout).
	QueryTimeout time.Duration
	// EnforceNodeID keeps nodes whose IDs do not match their public IP
	// (BEP 42) out of the routing table. Loopback, private and link-local
	// addresses are always exempt.
	EnforceNodeID bool
}

// packetConn is the part of *net.UDPConn the node uses; tests and the fuzz
// target substitute it.
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

var _ packetConn = (*net.UDPConn)(nil)

// Node is a BEP 5 DHT node: it answers other nodes' queries and runs
// lookups for its caller. All methods are safe for concurrent use.
//
// Lock order: Node.mu is a leaf; it is never held across I/O, a channel
// send that can block, or a callback.
type Node struct {
	// Read-only after construction.
	cfg     Config
	conn    packetConn
	addr    netip.AddrPort
	id      [idLen]byte
	version string
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	slots   chan struct{} // one token per outstanding transaction
	now     func() time.Time

	wg        sync.WaitGroup // the node's own goroutines
	closeOnce sync.Once
	closeErr  error

	queriesIn, queriesOut, dropped atomic.Uint64

	mu sync.Mutex // guards the following
	// tables are the routing tables by family (fam4, fam6); nil for a
	// family the socket does not serve. The pointers are read-only after
	// construction, the tables guarded by mu.
	tables       [2]*table
	tokens       *tokens
	store        *store
	limiter      *limiter
	txns         map[string]*txn
	pings        int     // background pings in flight
	refreshing   [2]bool // by family
	booting      bool
	bootBackoff  time.Duration
	nextBoot     time.Time
	lastSave     time.Time
	lastExpire   time.Time
	bootAddrs    []netip.AddrPort // resolved cfg.Bootstrap, cached
	bootResolved time.Time

	// resolving is held (a send) by the one resolveBootstrap resolving
	// names; concurrent lookups wait for its answer instead of asking
	// (and logging each failure) again.
	resolving chan struct{}
}

// txn is a query waiting for its answer.
type txn struct {
	addr netip.AddrPort
	ch   chan reply // buffered; receives exactly one reply
}

type reply struct {
	r   *msgReturn
	err error
}

// New binds the socket, loads the saved state and starts the node's
// goroutines. Close stops them.
func New(cfg Config) (*Node, error) {
	if cfg.Listen == "" {
		cfg.Listen = "0.0.0.0:0"
	}
	pc, err := net.ListenPacket(listenNetwork(cfg.Listen), cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("dht: listen: %w", err)
	}
	uc := pc.(*net.UDPConn)
	st, err := loadState(cfg.StatePath)
	if err != nil {
		logf(cfg.Logf, "dht: ignoring saved state: %v", err)
		st = nil
	}
	n := newNode(cfg, uc, uc.LocalAddr().(*net.UDPAddr).AddrPort(), st)
	n.wg.Add(2)
	go n.readLoop()
	go n.maintainLoop()
	return n, nil
}

// listenNetwork is the network New binds listen on: "udp4" for an IPv4
// host, "udp6" for a specific IPv6 one, "udp" (a dual-stack socket) for
// no host or "::".
func listenNetwork(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "udp4"
	}
	if host == "" {
		return "udp"
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		if ip.IsUnspecified() {
			return "udp"
		}
		return "udp6"
	}
	return "udp4"
}

// newNode builds a node around conn without starting goroutines.
func newNode(cfg Config, conn packetConn, local netip.AddrPort, st *state) *Node {
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = DefaultBootstrap
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = DefaultMaxNodes
	}
	if cfg.MaxPeersPerInfoHash <= 0 {
		cfg.MaxPeersPerInfoHash = DefaultMaxPeersPerInfoHash
	}
	if cfg.MaxInfoHashes <= 0 {
		cfg.MaxInfoHashes = DefaultMaxInfoHashes
	}
	if cfg.QueryRate <= 0 {
		cfg.QueryRate = DefaultQueryRate
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	now := time.Now
	id := randomID()
	if st != nil {
		id = st.id
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	var tables [2]*table
	for _, f := range familiesOf(local.Addr()) {
		tables[f] = newTable(id, cfg.MaxNodes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:         cfg,
		conn:        conn,
		addr:        local,
		id:          id,
		version:     "SW\x00\x01",
		ctx:         ctx,
		cancel:      cancel,
		slots:       make(chan struct{}, maxOutstanding),
		now:         now,
		tables:      tables,
		tokens:      newTokens(now()),
		store:       newStore(cfg.MaxInfoHashes, cfg.MaxPeersPerInfoHash),
		limiter:     newLimiter(cfg.QueryRate, maxLimiterIPs),
		txns:        make(map[string]*txn),
		resolving:   make(chan struct{}, 1),
		bootBackoff: 30 * time.Second,
		lastSave:    now(),
		lastExpire:  now(),
	}
	if st != nil {
		t := now()
		for _, ni := range st.nodes {
			if tb := n.tableFor(ni.Addr.Addr()); tb != nil && usableAddr(ni.Addr, netip.Addr{}) {
				for _, p := range tb.seen(ni, false, t) {
					// Saved nodes are pinged by maintenance, a few at a time.
					if c := tb.byAddr[p.Addr]; c != nil {
						c.pinging, c.lastPing = false, time.Time{}
					}
				}
			}
		}
	}
	return n
}

// family is an address family: the index of Node.tables.
type family uint8

const (
	fam4 family = iota
	fam6
)

func (f family) String() string {
	if f == fam6 {
		return "IPv6"
	}
	return "IPv4"
}

// famOf is a's family (an IPv4-mapped address is IPv4).
func famOf(a netip.Addr) family {
	if a.Unmap().Is4() {
		return fam4
	}
	return fam6
}

// familiesOf lists the families a socket bound to local serves: [::]
// is a dual-stack socket (Go's "udp" network with no host, as the
// engine's shared uTP socket), any other address its own family.
func familiesOf(local netip.Addr) []family {
	if local.Is6() && !local.Is4In6() && local.IsUnspecified() {
		return []family{fam4, fam6}
	}
	return []family{famOf(local)}
}

// tableFor is the routing table for a's family, nil if the node does not
// serve it. The pointer needs no lock; the table needs n.mu.
func (n *Node) tableFor(a netip.Addr) *table { return n.tables[famOf(a)] }

// families lists the families the node serves.
func (n *Node) families() []family {
	var out []family
	for f, tb := range n.tables {
		if tb != nil {
			out = append(out, family(f))
		}
	}
	return out
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}

func (n *Node) logf(format string, args ...any) { logf(n.cfg.Logf, format, args...) }

// Close stops the node's goroutines, waits for them, closes the socket and
// saves the state. Lookups in progress return ErrClosed. Close is
// idempotent; later calls return the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		// Cancel under mu: goroutines are only started (n.wg.Add) under mu
		// after checking n.ctx, so none starts once Wait may have begun.
		n.mu.Lock()
		n.cancel()
		n.mu.Unlock()
		err := n.conn.Close()
		n.wg.Wait()
		if serr := n.save(); serr != nil {
			err = serr
		}
		n.closeErr = err
	})
	return n.closeErr
}

// Addr returns the bound UDP address.
func (n *Node) Addr() netip.AddrPort { return n.addr }

// ID returns the node ID.
func (n *Node) ID() [20]byte { return n.id }

// Stats is a snapshot of a node's tables and counters.
type Stats struct {
	Nodes       int    // routing table entries (good, questionable and bad), both families
	Nodes6      int    // of which in the IPv6 table (BEP 32)
	GoodNodes   int    // entries that answered us within 15 minutes
	Buckets     int    // k-buckets in the routing table
	InfoHashes  int    // info-hashes others announced to us
	StoredPeers int    // peers stored for them
	QueriesIn   uint64 // well-formed queries received
	QueriesOut  uint64 // queries sent
	// Dropped counts datagrams thrown away: malformed, over the per-IP
	// query rate, or replies matching no outstanding transaction.
	Dropped uint64
}

// Stats returns a snapshot.
func (n *Node) Stats() Stats {
	now := n.now()
	n.mu.Lock()
	s := Stats{
		InfoHashes:  len(n.store.hashes),
		StoredPeers: n.store.peers,
	}
	for f, tb := range n.tables {
		if tb == nil {
			continue
		}
		s.Nodes += tb.count
		s.Buckets += len(tb.buckets)
		s.GoodNodes += tb.good(now)
		if family(f) == fam6 {
			s.Nodes6 = tb.count
		}
	}
	n.mu.Unlock()
	s.QueriesIn = n.queriesIn.Load()
	s.QueriesOut = n.queriesOut.Load()
	s.Dropped = n.dropped.Load()
	return s
}

// AddNode pings addr (a node learned elsewhere, e.g. from a peer's PORT
// message) and adds it to the routing table if it answers. It does not
// block; when too many pings are in flight the address is dropped.
func (n *Node) AddNode(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	tb := n.tableFor(addr.Addr())
	if !usableAddr(addr, netip.Addr{}) || tb == nil || n.ctx.Err() != nil {
		return
	}
	n.mu.Lock()
	known := tb.byAddr[addr] != nil
	n.mu.Unlock()
	if !known {
		n.pingAsync([]nodeInfo{{Addr: addr}})
	}
}

// readLoop receives datagrams until the socket is closed.
func (n *Node) readLoop() {
	defer n.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		k, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.logf("dht: read: %v", err)
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		n.handlePacket(from, buf[:k])
	}
}

// handlePacket processes one datagram from the socket. It is the single
// entry point for untrusted input and does not retain data.
func (n *Node) handlePacket(from netip.AddrPort, data []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if from.Port() == 0 {
		n.dropped.Add(1)
		return
	}
	m, err := decodeMsg(data)
	if err != nil {
		n.dropped.Add(1)
		return
	}
	switch m.Y {
	case "q":
		n.handleQuery(from, m, len(data))
	default:
		n.handleReply(from, m)
	}
}

// handleReply delivers a response or error to the transaction waiting for
// it. Replies that match no transaction from that address are dropped.
func (n *Node) handleReply(from netip.AddrPort, m *msg) {
	var rep reply
	var id [idLen]byte
	ok := true
	if m.Y == "e" {
		rep.err = m.remoteError()
	} else if id, ok = parseID(m.R.ID); ok {
		rep.r = m.R
	} else {
		rep.err = fmt.Errorf("%w: response without a valid id", errBadPacket)
	}
	now := n.now()
	var ping []nodeInfo
	n.mu.Lock()
	tx := n.txns[m.T]
	if tx == nil || tx.addr != from {
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	delete(n.txns, m.T)
	if tb := n.tableFor(from.Addr()); tb != nil && rep.r != nil && id != n.id && n.idAcceptable(id, from.Addr()) {
		ping = tb.seen(nodeInfo{ID: id, Addr: from}, true, now)
	}
	n.mu.Unlock()
	if !ok {
		n.dropped.Add(1)
	}
	tx.ch <- rep // buffered, and only the one who deleted tx sends
	n.pingAsync(ping)
}

// idAcceptable applies BEP 42 when enforcement is on. It reads only
// configuration and needs no lock.
func (n *Node) idAcceptable(id [idLen]byte, ip netip.Addr) bool {
	return !n.cfg.EnforceNodeID || bep42Valid(id, ip)
}

// send encodes and writes one message; errors are logged, not returned:
// UDP gives no delivery guarantee anyway.
func (n *Node) send(to netip.AddrPort, m *msg) {
	m.V = n.version
	if _, err := n.conn.WriteToUDPAddrPort(encodeMsg(m), to); err != nil && n.ctx.Err() == nil {
		n.logf("dht: send to %v: %v", to, err)
	}
}

// query sends one query and waits for its answer, the timeout, ctx or
// Close. At most maxOutstanding queries wait at once; more block here.
// A timeout counts against the node in the routing table.
func (n *Node) query(ctx context.Context, to netip.AddrPort, q string, a *msgArgs) (*msgReturn, error) {
	select {
	case n.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.ctx.Done():
		return nil, ErrClosed
	}
	defer func() { <-n.slots }()

	a.ID = string(n.id[:])
	tx := &txn{addr: to, ch: make(chan reply, 1)}
	var tid string
	n.mu.Lock()
	for {
		var b [4]byte
		v := rand.Uint32()
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		tid = string(b[:])
		if n.txns[tid] == nil {
			break
		}
	}
	n.txns[tid] = tx
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.txns[tid] == tx {
			delete(n.txns, tid)
		}
		n.mu.Unlock()
	}()

	m := &msg{T: tid, Y: "q", Q: q, A: a}
	if n.cfg.ReadOnly {
		m.RO = 1
	}
	n.queriesOut.Add(1)
	n.send(to, m)

	timer := time.NewTimer(n.cfg.QueryTimeout)
	defer timer.Stop()
	select {
	case rep := <-tx.ch:
		return rep.r, rep.err
	case <-timer.C:
		if tb := n.tableFor(to.Addr()); tb != nil {
			n.mu.Lock()
			tb.failed(to, n.now())
			n.mu.Unlock()
		}
		return nil, errTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.ctx.Done():
		return nil, ErrClosed
	}
}

// pingAsync pings nodes in the background, at most maxBackgroundPings at
// once; nodes beyond that are skipped (and unmarked, so they are retried
// on a later maintenance round). Answers and timeouts update the table
// through query and handleReply.
func (n *Node) pingAsync(nodes []nodeInfo) {
	for _, ni := range nodes {
		n.mu.Lock()
		if n.pings >= maxBackgroundPings || n.ctx.Err() != nil {
			if c := n.contactLocked(ni.Addr); c != nil {
				c.pinging = false
			}
			n.mu.Unlock()
			continue
		}
		n.pings++
		n.wg.Add(1)
		n.mu.Unlock()
		go func(addr netip.AddrPort) {
			defer n.wg.Done()
			_, _ = n.query(n.ctx, addr, qPing, &msgArgs{})
			n.mu.Lock()
			n.pings--
			if c := n.contactLocked(addr); c != nil {
				c.pinging = false
			}
			n.mu.Unlock()
		}(ni.Addr)
	}
}

// contactLocked is the table entry at addr, if any. n.mu must be held.
func (n *Node) contactLocked(addr netip.AddrPort) *contact {
	if tb := n.tableFor(addr.Addr()); tb != nil {
		return tb.byAddr[addr]
	}
	return nil
}

// goLocked starts f as one of the node's goroutines unless the node is
// closing. n.mu must be held, which orders it against Close.
func (n *Node) goLocked(f func()) bool {
	if n.ctx.Err() != nil {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}
