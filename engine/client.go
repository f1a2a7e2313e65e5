package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
)

// Config configures a Client. The zero value is usable: it listens on a random
// port on all addresses and keeps pieces in memory.
type Config struct {
	// ListenAddr is the TCP address for incoming peers, e.g. ":6881" or
	// "127.0.0.2:0". Default ":0".
	ListenAddr string
	// PeerID defaults to a fresh random "-SF0001-" id.
	PeerID [20]byte
	// Storage holds verified pieces. Default: storage.Memory.
	Storage storage.Provider
	// MaxConnsPerTorrent bounds established connections per torrent. Default 50.
	MaxConnsPerTorrent int
	// MaxHalfOpen bounds dials in progress across all torrents. Default 25.
	MaxHalfOpen int
	// UploadSlots is how many peers are unchoked by rate, plus one optimistic.
	// Default 4.
	UploadSlots int
	// DownloadRate and UploadRate cap bytes per second; 0 means unlimited.
	DownloadRate, UploadRate int64
	// NoTrackers disables announcing (tests that connect peers directly).
	NoTrackers bool
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
	halfOpen chan struct{} // semaphore of dials in progress
	downLim  *rate.Limiter // nil when unlimited
	upLim    *rate.Limiter
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // accept loop and incoming handshakes

	mu       sync.Mutex // guards torrents and closed
	torrents map[metainfo.Hash]*Torrent
	closed   bool
}

// ErrClosed is returned by operations on a closed Client or Torrent.
var ErrClosed = errors.New("engine: closed")

// New starts a client listening on cfg.ListenAddr.
func New(cfg Config) (*Client, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":0"
	}
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
	if cfg.UploadSlots <= 0 {
		cfg.UploadSlots = 4
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("engine: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:      cfg,
		peerID:   cfg.PeerID,
		ln:       ln,
		port:     uint16(ln.Addr().(*net.TCPAddr).Port),
		halfOpen: make(chan struct{}, cfg.MaxHalfOpen),
		ctx:      ctx,
		cancel:   cancel,
		torrents: make(map[metainfo.Hash]*Torrent),
	}
	if cfg.DownloadRate > 0 {
		c.downLim = rate.NewLimiter(rate.Limit(cfg.DownloadRate), int(max(cfg.DownloadRate/4, 256<<10)))
	}
	if cfg.UploadRate > 0 {
		c.upLim = rate.NewLimiter(rate.Limit(cfg.UploadRate), int(max(cfg.UploadRate/4, 256<<10)))
	}
	c.wg.Add(1)
	go c.acceptLoop()
	return c, nil
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

// TorrentOptions tunes one torrent.
type TorrentOptions struct {
	// Storage overrides the client's provider for this torrent.
	Storage storage.Provider
	// DownloadAll completes the torrent in the background (rarest first);
	// otherwise only what readers ask for is downloaded. A torrent added
	// for downloading or seeding wants DownloadAll.
	DownloadAll bool
	// Peers are dialled directly, besides what trackers return.
	Peers []netip.AddrPort
	// Trackers overrides the metainfo's tiers.
	Trackers [][]string
}

// AddTorrent adds a torrent with known metainfo and starts it. Adding a
// torrent twice returns the existing one.
func (c *Client) AddTorrent(mi *metainfo.MetaInfo, opts TorrentOptions) (*Torrent, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if t, ok := c.torrents[mi.InfoHash]; ok {
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()

	t, err := newTorrent(c, mi, opts)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		t.close()
		return nil, ErrClosed
	}
	if old, ok := c.torrents[mi.InfoHash]; ok {
		c.mu.Unlock()
		t.close()
		return old, nil
	}
	c.torrents[mi.InfoHash] = t
	c.mu.Unlock()
	t.start()
	return t, nil
}

// Torrent returns the torrent with the given info-hash.
func (c *Client) Torrent(ih metainfo.Hash) (*Torrent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.torrents[ih]
	return t, ok
}

// Torrents lists the client's torrents.
func (c *Client) Torrents() []*Torrent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		out = append(out, t)
	}
	return out
}

// RemoveTorrent stops a torrent: it announces "stopped", closes its
// connections and its store. Cached pieces stay in storage.
func (c *Client) RemoveTorrent(ih metainfo.Hash) error {
	c.mu.Lock()
	t, ok := c.torrents[ih]
	delete(c.torrents, ih)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("engine: no torrent %s", ih)
	}
	t.close()
	return nil
}

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
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); t.close() }()
	}
	wg.Wait()
	c.cancel()
	err := c.ln.Close()
	c.wg.Wait()
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
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.handleIncoming(nc)
		}()
	}
}
