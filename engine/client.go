package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/swarmfs/swarmfs/engine/dht"
	"github.com/swarmfs/swarmfs/engine/lsd"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/utp"
	"github.com/swarmfs/swarmfs/engine/webseed"
)

// Lock order (see the package doc): c.mu (the torrent map), c.hsMu
// (incoming handshakes in progress) and each logLimiter's mu are leaves,
// held for a few memory operations, never while another lock is taken,
// and never across I/O, a channel send or a call into a torrent (insert,
// RemoveTorrent and Close release c.mu before they start or close one).

// Config configures a Client. The zero value is usable: it listens on all
// addresses (port 6881, else the first free of 6882-6889, else any) and
// keeps pieces in memory.
type Config struct {
	// ListenAddr is the TCP address for incoming peers, e.g. ":6881",
	// "127.0.0.2:0" or "[::1]:6881"; it must bind. No host (":6881", and
	// the default) is every address of both families: TCP, uTP and the
	// DHT (one routing table per family, BEP 32) are then dual-stack.
	// Default "": port 6881 on all addresses,
	// else the first free of 6882-6889, else one the kernel picks (the
	// log says which; Client.Addr tells, trackers are told).
	ListenAddr string
	// PeerID defaults to a fresh random "-SF0001-" id.
	PeerID [20]byte
	// Storage holds verified pieces. Default: storage.Memory.
	Storage storage.Provider
	// MaxConnsPerTorrent bounds established connections per torrent. Default 50.
	// When a torrent is full, a newcomer takes the slot of the connection
	// that has been useless longest (no block either way, no interest it
	// raised, for at least 20 s); when none has, it is refused.
	MaxConnsPerTorrent int
	// MaxConnsPerIP bounds a torrent's connections with one IP address
	// (from it and to it), so that one host cannot take every slot.
	// Default (0): 1, as libtorrent, except on loopback addresses, where
	// it is 8 so that tests can run several peers on one address.
	// A positive value applies to every address.
	MaxConnsPerIP int
	// MaxWindowBytes bounds each torrent's readahead windows and pinned
	// pieces; set it from the cache's capacity. 0 is the picker's default.
	MaxWindowBytes int64
	// MaxHalfOpen bounds dials in progress across all torrents. Default 25.
	MaxHalfOpen int
	// UploadSlots is how many peers are unchoked by rate, plus one optimistic.
	// Default (0): 4, fewer (at least 2) under an UploadRate too low to give
	// each 40 KiB/s.
	UploadSlots int
	// DownloadRate and UploadRate cap bytes per second; 0 means unlimited.
	DownloadRate, UploadRate int64
	// NoTrackers disables announcing (tests that connect peers directly).
	NoTrackers bool

	// DHT runs a BEP 5 node on UDP and finds peers for every torrent that
	// is not private through it. Off in the zero Config (tests stay off the
	// network); the command line turns it on.
	DHT bool
	// DHTListen is the node's UDP address. Default: the host of ListenAddr
	// and the TCP port actually bound (falling back to a free port when
	// that UDP port is taken).
	DHTListen string
	// DHTBootstrap lists host:port entry points; nil means
	// dht.DefaultBootstrap (the public routers), an empty non-nil slice none.
	DHTBootstrap []string
	// DHTStatePath is where the node keeps its ID and routing table
	// between runs; "" keeps nothing.
	DHTStatePath string
	// NoPEX turns peer exchange (BEP 11) off. Private torrents never use it.
	NoPEX bool
	// LSD announces torrents on the local network and listens for others'
	// announces (BEP 14). Off in the zero Config; the command line turns it
	// on. Private torrents never use it.
	LSD bool
	// LSDGroup is where LSD announces go and are heard: the BEP 14
	// multicast groups by default (lsd.DefaultGroup and, where the host
	// has IPv6 multicast, lsd.DefaultGroup6); a unicast address serves
	// tests and networks without multicast.
	LSDGroup netip.AddrPort
	// LSDListen is the address LSD listens on; default the group's port on
	// all addresses. Only needed with a unicast LSDGroup.
	LSDListen netip.AddrPort
	// MaxMetadataSize bounds the info dictionary a magnet accepts from peers
	// (default peer.DefaultMaxMetadataSize, 32 MiB).
	MaxMetadataSize int
	// Encryption is the MSE/PE (protocol encryption) policy, --encryption.
	// Prefer (the zero value) accepts MSE and plain handshakes and dials
	// with MSE offering RC4 and plaintext, falling back to a plain
	// handshake when the peer hangs up on it; Require speaks RC4 only;
	// Off speaks plain BitTorrent only. See engine/mse's doc for why MSE
	// goes first.
	Encryption mse.Policy
	// NoUTP turns uTP (BEP 29) off: no UDP socket besides the DHT's, TCP
	// only. By default the client listens for uTP on the UDP port with the
	// TCP port's number, shared with the DHT, and dials uTP where a peer
	// is known to speak it, TCP first otherwise, each falling back to the
	// other.
	NoUTP bool
	// NoTCP dials peers over uTP only and drops incoming TCP connections
	// (the TCP port stays bound: it picks the port number both share).
	NoTCP bool
	// NoWebSeeds ignores the torrents' url-list web seeds (BEP 19,
	// --no-webseeds). By default every url-list URL is a source with every
	// piece (torrent_webseed.go).
	NoWebSeeds bool
	// webSeed tunes the web seeds (back-off, strikes); tests shorten it.
	webSeed webseed.Config
	// Logf receives diagnostic lines; nil discards them.
	Logf func(format string, args ...any)
}

// Client is a BitTorrent client: a listening port and a set of torrents.
// It is safe for concurrent use.
type Client struct {
	cfg      Config // read-only after New
	peerID   [20]byte
	ln       net.Listener
	port     uint16
	ipv6     netip.Addr    // told to trackers (ownIPv6); zero when none
	halfOpen chan struct{} // semaphore of dials in progress
	downLim  *rate.Limiter // nil when unlimited
	upLim    *rate.Limiter
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // accept loop, incoming handshakes, DHT bootstrap
	dht      *dht.Node      // nil when Config.DHT is off
	utp      *utp.Socket    // nil when Config.NoUTP or its port could not be bound; shared with dht
	lsd      *lsd.Service   // nil when Config.LSD is off or failed to start
	web      *http.Client   // shared by every web seed; nil with Config.NoWebSeeds
	// preconnected holds when each web seed origin was last connected to
	// ahead of a request (see Torrent.preconnectWebSeeds).
	preconnected struct {
		sync.Mutex
		at map[string]time.Time
	}

	// hashSem bounds the SHA-1 work of all torrents to the number of
	// cores: hashing is CPU bound, and more at once would only add memory.
	hashSem chan struct{}

	mu       sync.Mutex // guards torrents, aliases, req2 and closed
	torrents map[metainfo.Hash]*Torrent
	aliases  map[metainfo.Hash]metainfo.Hash // a hybrid's truncated v2 hash -> its name (torrent_v2.go)
	req2     map[[20]byte][20]byte           // mse.Req2(info-hash) -> info-hash, for incoming MSE
	closed   bool

	// Lines that peers can provoke at will (refused and dropped
	// connections) are rate-limited.
	refusedLog, droppedLog logLimiter

	hsMu       sync.Mutex         // guards the two fields below; never held across I/O
	handshakes map[netip.Addr]int // incoming handshakes in progress, by address
	hsTotal    int                // the sum of handshakes
}

// logLimiter passes at most one line per logLimitEvery to a Client's log
// and counts the rest, so that a peer cannot flood the log; the zero value
// is ready. Safe for concurrent use.
type logLimiter struct {
	mu      sync.Mutex // guards next and skipped; not held while logging
	next    time.Time
	skipped int
}

const logLimitEvery = time.Second

func (l *logLimiter) logf(c *Client, format string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Before(l.next) {
		l.skipped++
		l.mu.Unlock()
		return
	}
	l.next = now.Add(logLimitEvery)
	skipped := l.skipped
	l.skipped = 0
	l.mu.Unlock()
	if skipped > 0 {
		format += " (%d more like it not logged before this one)"
		args = append(args, skipped)
	}
	c.logf(format, args...)
}

// maxIncomingHandshakes bounds incoming handshakes in progress, from all
// addresses: each costs a goroutine and a socket for up to handshakeTimeout.
const maxIncomingHandshakes = 128

// maxConnsPerIP is how many connections a torrent keeps with address a.
func (c *Client) maxConnsPerIP(a netip.Addr) int {
	switch {
	case c.cfg.MaxConnsPerIP > 0:
		return c.cfg.MaxConnsPerIP
	case a.IsLoopback():
		return 8
	}
	return 1
}

// beginHandshake reserves room for an incoming handshake from a, within
// maxIncomingHandshakes and twice the address's connection limit; false
// when there is none. endHandshake releases it.
func (c *Client) beginHandshake(a netip.Addr) bool {
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsTotal >= maxIncomingHandshakes || c.handshakes[a] >= 2*c.maxConnsPerIP(a) {
		return false
	}
	c.handshakes[a]++
	c.hsTotal++
	return true
}

func (c *Client) endHandshake(a netip.Addr) {
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.handshakes[a]--; c.handshakes[a] <= 0 {
		delete(c.handshakes, a)
	}
	c.hsTotal--
}

// ErrClosed is returned by operations on a closed Client or Torrent.
var ErrClosed = errors.New("engine: closed")

// ErrNoInfo is returned (wrapped) by operations that need the torrent's info
// dictionary before a magnet's metadata has arrived; wait for InfoReady.
var ErrNoInfo = errors.New("engine: metadata not known yet")

// New starts a client listening on cfg.ListenAddr.
func New(cfg Config) (*Client, error) {
	if cfg.PeerID == ([20]byte{}) {
		cfg.PeerID = peer.NewPeerID()
	}
	if cfg.Storage == nil {
		cfg.Storage = &storage.Memory{}
	}
	if cfg.MaxConnsPerTorrent <= 0 {
		cfg.MaxConnsPerTorrent = 50
	}
	if cfg.MaxHalfOpen <= 0 {
		cfg.MaxHalfOpen = 25
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.MaxMetadataSize <= 0 {
		cfg.MaxMetadataSize = peer.DefaultMaxMetadataSize
	}
	ln, err := listen(cfg.ListenAddr, defaultPorts, cfg.Logf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:        cfg,
		peerID:     cfg.PeerID,
		ln:         ln,
		port:       uint16(ln.Addr().(*net.TCPAddr).Port),
		ipv6:       ownIPv6(ln.Addr().(*net.TCPAddr).AddrPort()),
		halfOpen:   make(chan struct{}, cfg.MaxHalfOpen),
		hashSem:    make(chan struct{}, max(2, runtime.NumCPU())),
		ctx:        ctx,
		cancel:     cancel,
		torrents:   make(map[metainfo.Hash]*Torrent),
		req2:       make(map[[20]byte][20]byte),
		aliases:    make(map[metainfo.Hash]metainfo.Hash),
		handshakes: make(map[netip.Addr]int),
	}
	if !cfg.NoWebSeeds {
		c.web = webseed.NewClient(webseed.ClientConfig{})
	}
	if cfg.DownloadRate > 0 {
		c.downLim = rate.NewLimiter(rate.Limit(cfg.DownloadRate), int(max(cfg.DownloadRate/4, 256<<10)))
	}
	if cfg.UploadRate > 0 {
		c.upLim = rate.NewLimiter(rate.Limit(cfg.UploadRate), int(max(cfg.UploadRate/4, 256<<10)))
	}
	if cfg.NoUTP && cfg.NoTCP {
		cancel()
		ln.Close()
		return nil, errors.New("engine: NoTCP and NoUTP leave no transport")
	}
	if !cfg.NoUTP {
		if err := c.listenUTP(); err != nil {
			cancel()
			ln.Close()
			return nil, err
		}
	}
	if cfg.DHT {
		if err := c.startDHT(); err != nil {
			cancel()
			ln.Close()
			if c.utp != nil {
				c.utp.Close()
			}
			c.wg.Wait()
			return nil, err
		}
	}
	if cfg.LSD {
		c.startLSD()
	}
	c.wg.Add(1)
	go c.acceptLoop()
	return c, nil
}

// startDHT binds the DHT node next to the TCP port and bootstraps it in
// the background.
func (c *Client) startDHT() error {
	listen := c.cfg.DHTListen
	fallback := ""
	if listen == "" {
		host, _, err := net.SplitHostPort(c.cfg.ListenAddr)
		if err != nil {
			host = ""
		}
		listen = net.JoinHostPort(host, fmt.Sprint(c.port))
		fallback = net.JoinHostPort(host, "0")
	}
	dcfg := dht.Config{
		Listen:    listen,
		StatePath: c.cfg.DHTStatePath,
		Bootstrap: c.cfg.DHTBootstrap,
		Logf:      c.cfg.Logf,
	}
	var n *dht.Node
	var err error
	if c.utp != nil && c.cfg.DHTListen == "" {
		// One UDP port for uTP and the DHT, as libtorrent.
		n, err = dht.NewOn(dcfg, c.utp.Others(), c.utp.Addr().(*net.UDPAddr).AddrPort())
	} else {
		n, err = dht.New(dcfg)
	}
	if err != nil && fallback != "" {
		c.logf("dht: %v; trying a free port", err)
		dcfg.Listen = fallback
		n, err = dht.New(dcfg)
	}
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	c.dht = n
	if c.cfg.DHTBootstrap != nil && len(c.cfg.DHTBootstrap) == 0 {
		return nil // no entry point: others will find us
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := n.Bootstrap(c.ctx); err != nil && c.ctx.Err() == nil {
			c.logf("%v", err)
		}
	}()
	return nil
}

// startLSD starts local service discovery; a network without multicast
// only costs a log line.
func (c *Client) startLSD() {
	cfg := lsdConfig(c.Addr().Addr(), c.cfg.LSDGroup)
	cfg.Listen = c.cfg.LSDListen
	cfg.Port = c.port
	cfg.OnPeer = c.lsdPeer
	cfg.Logf = c.cfg.Logf
	s, err := lsd.New(cfg)
	if err != nil {
		c.logf("lsd: %v", err)
		return
	}
	c.lsd = s
}

// lsdConfig is where LSD announces go and come from for a client
// listening on listen: group where set, else both families' groups; but a
// client listening on one address announces from it (peers dial an
// announce's source, BEP 14) and only in its family (an announce in the
// other would name an address where nobody listens).
func lsdConfig(listen netip.Addr, group netip.AddrPort) lsd.Config {
	cfg := lsd.Config{Group: group}
	a := listen.Unmap()
	if !a.IsValid() || a.IsUnspecified() {
		return cfg
	}
	if a.Is4() {
		cfg.Source = a
		if !group.IsValid() {
			cfg.Group = lsd.DefaultGroup
		}
	} else {
		cfg.Source6 = a
		if !group.IsValid() {
			cfg.Group = lsd.DefaultGroup6
		}
	}
	return cfg
}

// lsdPeer receives a peer announced on the local network.
func (c *Client) lsdPeer(ih [20]byte, addr netip.AddrPort) {
	if t, ok := c.Torrent(ih); ok && t.publicSources() {
		t.post(func() { t.addCandidates([]netip.AddrPort{addr}) })
	}
}

// DHT returns the client's DHT node, or nil if Config.DHT is off.
func (c *Client) DHT() *dht.Node { return c.dht }

// reserved are the extension bits we announce: fast (BEP 6), the
// extension protocol (BEP 10) and, with a DHT node, DHT (BEP 5).
func (c *Client) reserved() peer.Reserved {
	r := ourReserved()
	if c.dht != nil {
		r.SetDHT()
	}
	return r
}

// Addr is the address the client listens on.
func (c *Client) Addr() netip.AddrPort {
	return c.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Port is the TCP port announced to trackers and peers.
func (c *Client) Port() uint16 { return c.port }

// PeerID is the client's peer id.
func (c *Client) PeerID() [20]byte { return c.peerID }

func (c *Client) logf(format string, args ...any) { c.cfg.Logf(format, args...) }

// Close stops every torrent and the listener, and waits for all goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ts := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		ts = append(ts, t)
	}
	c.torrents = map[metainfo.Hash]*Torrent{}
	c.req2 = map[[20]byte][20]byte{}
	c.aliases = map[metainfo.Hash]metainfo.Hash{}
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); t.close() }()
	}
	wg.Wait()
	c.cancel()
	err := c.ln.Close()
	if c.utp != nil {
		// Ends acceptUTPLoop and the DHT's share of the socket.
		c.utp.Close()
	}
	c.wg.Wait()
	if c.web != nil {
		c.web.CloseIdleConnections() // every torrent, and so every fetch, has ended
	}
	if c.lsd != nil {
		c.lsd.Close()
	}
	if c.dht != nil {
		if derr := c.dht.Close(); derr != nil {
			c.logf("dht: %v", derr)
		}
	}
	return err
}

func (c *Client) acceptLoop() {
	defer c.wg.Done()
	var backoff time.Duration
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.logf("accept: %v", err)
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if c.cfg.NoTCP {
			nc.Close()
			continue
		}
		c.serve(nc)
	}
}
