package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Bounds applied to everything a tracker sends back.
const (
	// MaxPeers bounds the peers kept from one response, IPv4 and IPv6 together.
	MaxPeers = 2000
	// MaxResponseSize bounds an HTTP tracker's response body.
	MaxResponseSize = 4 << 20
	// MaxInterval bounds the announce intervals a tracker may ask for.
	MaxInterval = 24 * time.Hour
	// maxMessage bounds failure and warning texts kept from a tracker.
	maxMessage = 1024
)

// ErrFailure is wrapped by the error Announce returns when the tracker answered
// with a refusal ("failure reason" over HTTP, action 3 over UDP); the error's
// text includes the tracker's reason. Such a tracker is reachable but unwilling,
// which callers may treat differently from a network failure.
var ErrFailure = errors.New("tracker: failure")

// ErrUnsupportedScheme is wrapped by the error Announce returns for a URL that
// is neither http, https nor udp (for example a WebTorrent wss:// tracker).
var ErrUnsupportedScheme = errors.New("tracker: unsupported URL scheme")

// Event is the announce event of BEP 3. The zero value, None, is a regular
// periodic announce.
type Event int

// The announce events.
const (
	None Event = iota
	Started
	Completed
	Stopped
)

// String returns the event's name as an HTTP tracker expects it ("" for None).
func (e Event) String() string {
	switch e {
	case Started:
		return "started"
	case Completed:
		return "completed"
	case Stopped:
		return "stopped"
	case None:
		return ""
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// udpCode returns the event's number in BEP 15, which orders them differently.
func (e Event) udpCode() uint32 {
	switch e {
	case Completed:
		return 1
	case Started:
		return 2
	case Stopped:
		return 3
	}
	return 0
}

// AnnounceRequest is what a client tells a tracker about itself.
type AnnounceRequest struct {
	InfoHash, PeerID           [20]byte
	Port                       uint16
	Uploaded, Downloaded, Left int64
	Event                      Event
	// NumWant is how many peers we ask for; -1 lets the tracker decide.
	NumWant int
	// Key identifies this client across IP address changes; trackers that
	// support it use it to recognise us.
	Key uint32
	// TrackerID is echoed to HTTP trackers that gave one ("tracker id"); the
	// Announcer keeps it per tracker.
	TrackerID string
	// LocalIP, if set, is the source address of the announce. Trackers
	// record the address an announce comes from, so a client listening on
	// one specific address must announce from it to be reachable.
	LocalIP netip.Addr
	// IPv6, if set, is our IPv6 address, sent to HTTP trackers as BEP 7's
	// "ipv6=": a tracker reached over IPv4 then hands it out too. Only an
	// address peers can reach belongs here (a global one, or one the user
	// configured); a link-local or IPv4-mapped one is never sent. A
	// tracker that does not know the parameter ignores it.
	IPv6 netip.Addr
}

// AnnounceResponse is a tracker's successful answer, already bounded and
// cleaned: peers are unique, at most MaxPeers, with IPv4-mapped addresses
// unmapped; intervals are within [0, MaxInterval].
type AnnounceResponse struct {
	Interval, MinInterval time.Duration
	Peers                 []netip.AddrPort
	Seeders, Leechers     int
	TrackerID             string
	// Warning is a message the tracker wants shown; the announce succeeded.
	Warning string
}

// Announce sends one announce to the tracker at rawURL and returns its answer.
// It dispatches on the URL scheme: http and https use the HTTP protocol of
// BEP 3 (compact, BEP 23; IPv6 peers, BEP 7), udp the protocol of BEP 15.
// The context bounds the whole exchange, retransmissions included; without
// a deadline the HTTP client's own timeout and BEP 15's schedule still apply.
// Announce is safe for concurrent use.
func Announce(ctx context.Context, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tracker: bad URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return announceHTTP(ctx, httpClientFor(req.LocalIP), rawURL, req)
	case "udp":
		return defaultUDP.announce(ctx, u, req)
	}
	return nil, fmt.Errorf("%w %q in %q", ErrUnsupportedScheme, u.Scheme, redact(rawURL))
}

// peerSet collects peers without duplicates, up to MaxPeers.
type peerSet struct {
	seen  map[netip.AddrPort]struct{}
	peers []netip.AddrPort
}

// add adds p if it is a usable address and there is room; it reports whether
// the set can take more.
func (s *peerSet) add(p netip.AddrPort) bool {
	if len(s.peers) >= MaxPeers {
		return false
	}
	p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
	if !p.Addr().IsValid() || p.Addr().IsUnspecified() || p.Port() == 0 {
		return true
	}
	if s.seen == nil {
		s.seen = make(map[netip.AddrPort]struct{})
	}
	if _, dup := s.seen[p]; dup {
		return true
	}
	s.seen[p] = struct{}{}
	s.peers = append(s.peers, p)
	return true
}

// seconds converts a tracker's interval to a Duration within [0, MaxInterval].
func seconds(n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	if n >= int64(MaxInterval/time.Second) {
		return MaxInterval
	}
	return time.Duration(n) * time.Second
}

// count converts a tracker's peer count to a non-negative int.
func count(n int64) int {
	if n < 0 {
		return 0
	}
	if n > 1<<31-1 {
		return 1<<31 - 1
	}
	return int(n)
}

// cleanMessage makes a tracker's text safe to log and show: valid UTF-8, no
// control characters, at most maxMessage bytes.
func cleanMessage(s string) string {
	if len(s) > maxMessage {
		s = s[:maxMessage]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(strings.ToValidUTF8(s, "?")))
	// Neither step lengthens s: runs of invalid bytes become one '?', and
	// control characters (one or two bytes) become a one-byte space.
	return s
}

// redact removes the query (which often holds a private tracker's passkey)
// and any user info from a URL before it goes into an error or a log.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.IndexAny(rawURL, "?#"); i >= 0 {
			return rawURL[:i]
		}
		return rawURL
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}
