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

// DefaultGroup6 is BEP 14's IPv6 multicast group (site-local scope) and
// port.
var DefaultGroup6 = netip.MustParseAddrPort("[ff15::efc0:988f]:6771")

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
	// Listen is the address to receive on. Default: the unspecified
	// address of the group's family and the group's port. With a
	// multicast group, only its port is used.
	Listen netip.AddrPort
	// Group6 and Listen6 are a second group, of the other family, served
	// beside Group the same way: DefaultGroup6 when both Group and Group6
	// are zero (the BEP 14 groups of both families), none when only Group
	// is set. Where one family's sockets cannot be opened (a host without
	// IPv6 multicast), the Service runs on the other and logs why.
	Group6, Listen6 netip.AddrPort
	// Source and Source6 are the addresses announces leave from, one per
	// family; where unset, the kernel picks (the route's source). A
	// client listening on one address only must set it: peers take an
	// announce's source as the announcer's address (BEP 14), so one sent
	// from another address would be dialled where nobody listens.
	Source, Source6 netip.Addr
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
	links  []*link // one per group, at least one
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
}

// link is one group's sockets: a receiving one (joined to the group when
// it is multicast) and a sending one, of the group's family.
type link struct {
	group      netip.AddrPort
	recv, send *net.UDPConn
	sendErr    bool // a send failure was logged; guarded by Service.mu
}

// openLink opens the sockets of one group; announces leave from source
// when it is valid.
func openLink(group, listen netip.AddrPort, source netip.Addr) (*link, error) {
	network, unspec := "udp4", netip.IPv4Unspecified()
	if !group.Addr().Is4() {
		network, unspec = "udp6", netip.IPv6Unspecified()
	}
	var (
		recv *net.UDPConn
		err  error
	)
	if group.Addr().IsMulticast() {
		at := group
		if listen.IsValid() && listen.Port() != 0 {
			at = netip.AddrPortFrom(group.Addr(), listen.Port()) // heard on another port than the one announced to
		}
		recv, err = net.ListenMulticastUDP(network, nil, net.UDPAddrFromAddrPort(at))
	} else {
		if !listen.IsValid() {
			listen = netip.AddrPortFrom(unspec, group.Port())
		}
		recv, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(listen))
	}
	if err != nil {
		return nil, fmt.Errorf("lsd: listen on %v: %w", group, err)
	}
	from := &net.UDPAddr{}
	if source.IsValid() {
		from = net.UDPAddrFromAddrPort(netip.AddrPortFrom(source, 0))
	}
	send, err := net.ListenUDP(network, from)
	if err != nil {
		recv.Close()
		return nil, fmt.Errorf("lsd: %v: %w", group, err)
	}
	return &link{group: group, recv: recv, send: send}, nil
}

// New opens the sockets (joining the multicast groups) and starts the
// Service. It fails where no group's sockets can be opened (multicast is
// not available).
func New(cfg Config) (*Service, error) {
	if !cfg.Group.IsValid() {
		cfg.Group = DefaultGroup
		if !cfg.Group6.IsValid() {
			cfg.Group6 = DefaultGroup6
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	var links []*link
	var firstErr error
	source := func(group netip.AddrPort) netip.Addr {
		for _, a := range []netip.Addr{cfg.Source.Unmap(), cfg.Source6} {
			if a.IsValid() && a.Is4() == group.Addr().Is4() {
				return a
			}
		}
		return netip.Addr{}
	}
	for _, g := range []struct{ group, listen netip.AddrPort }{{cfg.Group, cfg.Listen}, {cfg.Group6, cfg.Listen6}} {
		if !g.group.IsValid() {
			continue
		}
		l, err := openLink(g.group, g.listen, source(g.group))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		links = append(links, l)
	}
	if len(links) == 0 {
		return nil, firstErr
	}
	if firstErr != nil && cfg.Logf != nil {
		cfg.Logf("%v; carrying on with %v", firstErr, links[0].group)
	}
	var c [8]byte
	rand.Read(c[:])
	s := &Service{
		cfg:     cfg,
		links:   links,
		cookie:  hex.EncodeToString(c[:]),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		want:    make(map[[20]byte]time.Time),
		recent:  make(map[[20]byte]time.Time),
		sources: make(map[netip.Addr]int),
	}
	s.wg.Add(1 + len(links))
	for _, l := range links {
		go s.readLoop(l)
	}
	go s.announceLoop()
	return s, nil
}

// Addr is the address the Service receives on (its first group's).
func (s *Service) Addr() netip.AddrPort {
	return s.links[0].recv.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Groups lists the groups the Service announces to and hears.
func (s *Service) Groups() []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range s.links {
		out = append(out, l.group)
	}
	return out
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
		for _, l := range s.links {
			l.recv.Close()
			l.send.Close()
		}
	})
	s.wg.Wait()
	return nil
}

func (s *Service) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

func (s *Service) readLoop(l *link) {
	defer s.wg.Done()
	buf := make([]byte, MaxMessageSize+1)
	for {
		n, from, err := l.recv.ReadFromUDPAddrPort(buf)
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
	var buf []byte
	for _, l := range s.links {
		host := l.group.String() // "[ff15::efc0:988f]:6771" for IPv6
		for rest := due; len(rest) > 0; {
			k := min(len(rest), MaxInfoHashes)
			a := Announce{Port: s.cfg.Port, InfoHashes: rest[:k], Cookie: s.cookie}
			rest = rest[k:]
			buf = a.Append(buf[:0], host)
			if _, err := l.send.WriteToUDPAddrPort(buf, l.group); err != nil {
				s.mu.Lock()
				logged := l.sendErr
				l.sendErr = true
				s.mu.Unlock()
				if !logged {
					s.logf("lsd: announce to %v: %v", l.group, err)
				}
			}
		}
	}
}
