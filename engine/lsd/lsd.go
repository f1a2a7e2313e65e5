package lsd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultGroup is BEP 14's IPv4 multicast group and port.
var DefaultGroup = netip.MustParseAddrPort("239.192.152.143:6771")

// Defaults and bounds.
const (
	// DefaultInterval is how often each torrent is announced (BEP 14: at
	// most once a minute per torrent; we use five).
	DefaultInterval = 5 * time.Minute
	// maxPerSource is how many messages one source address may have acted
	// on per window; maxSources how many sources a window tracks.
	maxPerSource = 8
	maxSources   = 256
	sourceWindow = 10 * time.Second
	// tickEvery paces the announcer's check for due torrents.
	tickEvery = time.Second
)

// Config configures a Service. Zero fields take the documented defaults.
type Config struct {
	// Group is where announces are sent and heard: DefaultGroup when zero.
	// A multicast group is joined; a unicast address (for tests, or
	// networks without multicast) is simply sent to.
	Group netip.AddrPort
	// Listen is the address to receive on. Default: 0.0.0.0 and the
	// group's port. With a multicast group, only its port is used.
	Listen netip.AddrPort
	// Port is our BitTorrent TCP port, announced to others.
	Port uint16
	// OnPeer receives each peer announced for a torrent we Added, on the
	// Service's reader goroutine: it must not block for long.
	OnPeer func(infoHash [20]byte, addr netip.AddrPort)
	// Interval between two announces of a torrent (default DefaultInterval).
	Interval time.Duration
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// Service announces torrents on the local network and hears other peers'
// announces (BEP 14). Its methods are safe for concurrent use.
//
// It owns two goroutines, a reader and an announcer, which Close waits for.
// mu is a leaf lock, never held across I/O or a callback.
type Service struct {
	// read-only after New
	cfg    Config
	recv   *net.UDPConn
	send   *net.UDPConn
	cookie string
	done   chan struct{}
	wake   chan struct{} // cap 1: a torrent was added
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex             // guards the fields below
	want    map[[20]byte]time.Time // announced torrents -> last announce (zero: never)
	recent  map[[20]byte]time.Time // removed torrents' last announce, so a re-Add waits its turn
	sources map[netip.Addr]int     // messages acted on per source in this window
	window  time.Time
	sendErr bool // a send failure was logged
}

// New opens the sockets (joining the multicast group) and starts the
// Service. It fails where multicast is not available.
func New(cfg Config) (*Service, error) {
	if !cfg.Group.IsValid() {
		cfg.Group = DefaultGroup
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if !cfg.Group.Addr().Is4() {
		return nil, fmt.Errorf("lsd: group %v: only IPv4 is supported", cfg.Group)
	}
	var (
		recv *net.UDPConn
		err  error
	)
	if cfg.Group.Addr().IsMulticast() {
		recv, err = net.ListenMulticastUDP("udp4", nil, net.UDPAddrFromAddrPort(cfg.Group))
	} else {
		listen := cfg.Listen
		if !listen.IsValid() {
			listen = netip.AddrPortFrom(netip.IPv4Unspecified(), cfg.Group.Port())
		}
		recv, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(listen))
	}
	if err != nil {
		return nil, fmt.Errorf("lsd: listen: %w", err)
	}
	send, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		recv.Close()
		return nil, fmt.Errorf("lsd: %w", err)
	}
	var c [8]byte
	rand.Read(c[:])
	s := &Service{
		cfg:     cfg,
		recv:    recv,
		send:    send,
		cookie:  hex.EncodeToString(c[:]),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		want:    make(map[[20]byte]time.Time),
		recent:  make(map[[20]byte]time.Time),
		sources: make(map[netip.Addr]int),
	}
	s.wg.Add(2)
	go s.readLoop()
	go s.announceLoop()
	return s, nil
}

// Addr is the address the Service receives on.
func (s *Service) Addr() netip.AddrPort {
	return s.recv.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Add announces a torrent now (unless it was announced less than Interval
// ago) and then every Interval, and makes announces of it by others reach
// OnPeer.
func (s *Service) Add(ih [20]byte) {
	s.mu.Lock()
	if _, ok := s.want[ih]; !ok {
		s.want[ih] = s.recent[ih]
		delete(s.recent, ih)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Remove stops announcing a torrent and reporting its peers.
func (s *Service) Remove(ih [20]byte) {
	s.mu.Lock()
	if last, ok := s.want[ih]; ok {
		delete(s.want, ih)
		if !last.IsZero() {
			s.recent[ih] = last
		}
	}
	s.mu.Unlock()
}

// Close stops the Service and waits for its goroutines.
func (s *Service) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.recv.Close()
		s.send.Close()
	})
	s.wg.Wait()
	return nil
}

func (s *Service) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Service) readLoop() {
	defer s.wg.Done()
	buf := make([]byte, MaxMessageSize+1)
	for {
		n, from, err := s.recv.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // transient (ICMP errors and the like)
			continue
		}
		s.handle(buf[:n], from, time.Now())
	}
}

// handle acts on one datagram: our own, malformed ones, floods and
// torrents we do not have are dropped.
func (s *Service) handle(b []byte, from netip.AddrPort, now time.Time) {
	a, err := Parse(b)
	if err != nil || a.Cookie == s.cookie {
		return
	}
	ip := from.Addr().Unmap()
	s.mu.Lock()
	if now.Sub(s.window) >= sourceWindow {
		clear(s.sources)
		s.window = now
	}
	n, seen := s.sources[ip]
	if n >= maxPerSource || !seen && len(s.sources) >= maxSources {
		s.mu.Unlock()
		return
	}
	s.sources[ip] = n + 1
	var ours [][20]byte
	for _, ih := range a.InfoHashes {
		if _, ok := s.want[ih]; ok {
			ours = append(ours, ih)
		}
	}
	s.mu.Unlock()
	if s.cfg.OnPeer == nil {
		return
	}
	peer := netip.AddrPortFrom(ip, a.Port)
	for _, ih := range ours {
		s.cfg.OnPeer(ih, peer)
	}
}

func (s *Service) announceLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		s.announceDue(time.Now())
		select {
		case <-s.done:
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// announceDue sends the torrents whose turn has come, MaxInfoHashes per
// message.
func (s *Service) announceDue(now time.Time) {
	var due [][20]byte
	s.mu.Lock()
	for ih, last := range s.want {
		if last.IsZero() || now.Sub(last) >= s.cfg.Interval {
			due = append(due, ih)
			s.want[ih] = now
		}
	}
	for ih, last := range s.recent {
		if now.Sub(last) >= s.cfg.Interval {
			delete(s.recent, ih)
		}
	}
	s.mu.Unlock()
	host := s.cfg.Group.String()
	var buf []byte
	for len(due) > 0 {
		k := min(len(due), MaxInfoHashes)
		a := Announce{Port: s.cfg.Port, InfoHashes: due[:k], Cookie: s.cookie}
		due = due[k:]
		buf = a.Append(buf[:0], host)
		if _, err := s.send.WriteToUDPAddrPort(buf, s.cfg.Group); err != nil {
			s.mu.Lock()
			logged := s.sendErr
			s.sendErr = true
			s.mu.Unlock()
			if !logged {
				s.logf("lsd: announce: %v", err)
			}
		}
	}
}
