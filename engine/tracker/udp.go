package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/compact"
)

// BEP 15 constants.
const (
	udpProtocolID  = 0x41727101980
	actionConnect  = 0
	actionAnnounce = 1
	actionError    = 3

	udpConnectLen  = 16 // connect request and response
	udpAnnounceLen = 98 // announce request without BEP 41 options
	udpAnnounceMin = 20 // announce response before its peers
	udpErrorMin    = 8  // error response before its message

	// udpMaxPacket reads any datagram whole; peers past MaxPeers are dropped.
	udpMaxPacket = 64 << 10
	// udpMaxConns bounds the connection-ID cache.
	udpMaxConns = 256
)

// errTimeout marks a transaction that got no answer in time; the caller
// retransmits.
var errTimeout = errors.New("tracker: udp: no answer")

// udpClient speaks BEP 15. Its fields other than the cache are set at
// construction; tests shorten them.
type udpClient struct {
	baseTimeout time.Duration    // first retransmit timeout; BEP 15 says 15 s
	maxRetries  int              // n runs 0..maxRetries; BEP 15 says 8
	connTTL     time.Duration    // how long a connection ID is used; BEP 15 says 1 min
	now         func() time.Time // clock for connection-ID expiry

	mu    sync.Mutex // guards conns; a leaf lock, never held across I/O
	conns map[string]udpConn
}

// udpConn is a cached connection ID.
type udpConn struct {
	id      uint64
	expires time.Time
}

var defaultUDP = newUDPClient()

func newUDPClient() *udpClient {
	return &udpClient{
		baseTimeout: 15 * time.Second,
		maxRetries:  8,
		connTTL:     time.Minute,
		now:         time.Now,
		conns:       make(map[string]udpConn),
	}
}

func (c *udpClient) cachedID(key string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.conns[key]
	if !ok || !c.now().Before(e.expires) {
		delete(c.conns, key)
		return 0, false
	}
	return e.id, true
}

func (c *udpClient) storeID(key string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.conns) >= udpMaxConns {
		for k, e := range c.conns {
			if !now.Before(e.expires) {
				delete(c.conns, k)
			}
		}
		if len(c.conns) >= udpMaxConns {
			clear(c.conns)
		}
	}
	c.conns[key] = udpConn{id: id, expires: now.Add(c.connTTL)}
}

func (c *udpClient) forgetID(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.conns, key)
}

// announce performs a BEP 15 announce to the tracker named by u (see
// exchange).
func (c *udpClient) announce(ctx context.Context, u *url.URL, req AnnounceRequest) (*AnnounceResponse, error) {
	var r *AnnounceResponse
	err := c.exchange(ctx, u, req.LocalIP, "announce", appendUDPAnnounce(nil, req, urlData(u)), func(b []byte, v6 bool) (err error) {
		r, err = parseUDPAnnounce(b, v6)
		return err
	})
	return r, err
}

// exchange sends pkt (an announce or a scrape, its connection ID left to
// fill in) to the UDP tracker named by u, from local where it can (see
// dialFrom), and hands the answer to parse with whether the tracker was
// reached over IPv6. It retransmits on silence after baseTimeout·2ⁿ,
// reconnecting first when the connection ID has expired or the request
// went unanswered, until ctx ends or maxRetries is exhausted.
func (c *udpClient) exchange(ctx context.Context, u *url.URL, local netip.Addr, what string, pkt []byte, parse func(b []byte, v6 bool) error) error {
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("tracker: %s: udp tracker URL needs a host and a port", redact(u.String()))
	}
	name := "udp://" + u.Host
	key := strings.ToLower(u.Host)
	nc, err := dialFrom(ctx, net.Dialer{}, "udp", u.Host, local)
	if err != nil {
		return fmt.Errorf("tracker: %s: %w", name, err)
	}
	conn := nc.(*net.UDPConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	v6 := false
	if ra, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ra.IP); ok {
			v6 = !ip.Unmap().Is4()
		}
	}
	t := udpTransport{conn: conn, buf: make([]byte, udpMaxPacket)}
	for n := 0; n <= c.maxRetries; n++ {
		timeout := c.baseTimeout << n
		id, ok := c.cachedID(key)
		if !ok {
			var b []byte
			b, err = t.transact(ctx, connectRequest(), timeout)
			if errors.Is(err, errTimeout) {
				continue
			}
			if err != nil {
				return fmt.Errorf("tracker: %s: connect: %w", name, err)
			}
			if id, err = parseUDPConnect(b); err != nil {
				return fmt.Errorf("tracker: %s: connect: %w", name, err)
			}
			c.storeID(key, id)
		}
		binary.BigEndian.PutUint64(pkt[0:], id)
		var b []byte
		b, err = t.transact(ctx, pkt, timeout)
		if errors.Is(err, errTimeout) {
			// Perhaps the tracker no longer knows our connection ID.
			c.forgetID(key)
			continue
		}
		if err != nil {
			return fmt.Errorf("tracker: %s: %s: %w", name, what, err)
		}
		if err := parse(b, v6); err != nil {
			return fmt.Errorf("tracker: %s: %s: %w", name, what, err)
		}
		return nil
	}
	return fmt.Errorf("tracker: %s: no answer after %d attempts", name, c.maxRetries+1)
}

// udpTransport sends requests and matches answers on one connected socket.
type udpTransport struct {
	conn *net.UDPConn
	buf  []byte
}

// transact sets a fresh random transaction ID in req (bytes 12..16), sends it
// and waits up to timeout for a datagram carrying that ID; datagrams with any
// other ID are ignored. It returns errTimeout on silence and ctx.Err() once
// ctx is done. The returned slice is valid until the next call.
func (t *udpTransport) transact(ctx context.Context, req []byte, timeout time.Duration) ([]byte, error) {
	tid := rand.Uint32()
	binary.BigEndian.PutUint32(req[12:], tid)
	deadline := time.Now().Add(timeout)
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if hasCtxDeadline && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	}
	// fail names an I/O error: the socket deadline may pass an instant before
	// ctx notices its own.
	fail := func(err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			if hasCtxDeadline && !time.Now().Before(ctxDeadline) {
				return context.DeadlineExceeded
			}
			return errTimeout
		}
		return err
	}
	if err := t.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Checked after setting the deadline: a cancellation that raced with it
	// has either been seen here or will reset the deadline itself.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := t.conn.Write(req); err != nil {
		return nil, fail(err)
	}
	for {
		n, err := t.conn.Read(t.buf)
		if err != nil {
			return nil, fail(err)
		}
		b := t.buf[:n]
		if n < 8 || binary.BigEndian.Uint32(b[4:]) != tid {
			continue // not an answer to this request
		}
		return b, nil
	}
}

func connectRequest() []byte {
	b := make([]byte, udpConnectLen)
	binary.BigEndian.PutUint64(b[0:], udpProtocolID)
	binary.BigEndian.PutUint32(b[8:], actionConnect)
	return b
}

// appendUDPAnnounce appends an announce request with a zero connection and
// transaction ID, followed by BEP 41 URLData options carrying data.
func appendUDPAnnounce(b []byte, req AnnounceRequest, data string) []byte {
	b = binary.BigEndian.AppendUint64(b, 0) // connection ID, set per attempt
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, 0) // transaction ID, set per attempt
	b = append(b, req.InfoHash[:]...)
	b = append(b, req.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Downloaded, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Left, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Uploaded, 0)))
	b = binary.BigEndian.AppendUint32(b, req.Event.udpCode())
	b = binary.BigEndian.AppendUint32(b, 0) // IP address: the sender's
	b = binary.BigEndian.AppendUint32(b, req.Key)
	numWant := int32(-1)
	if req.NumWant >= 0 {
		numWant = int32(min(req.NumWant, MaxPeers))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(numWant))
	b = binary.BigEndian.AppendUint16(b, req.Port)
	for len(data) > 0 {
		chunk := data[:min(len(data), 255)]
		data = data[len(chunk):]
		b = append(b, 2, byte(len(chunk)))
		b = append(b, chunk...)
	}
	return b
}

// urlData is the path and query of a UDP tracker URL, sent as BEP 41 URLData
// (some trackers put a passkey or a torrent set there).
func urlData(u *url.URL) string {
	s := u.EscapedPath()
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s
}

// checkUDP checks an answer's action and length. An error action becomes an
// error wrapping ErrFailure with the tracker's message.
func checkUDP(b []byte, action uint32, minLen int) error {
	if len(b) < 8 {
		return fmt.Errorf("short packet of %d bytes", len(b))
	}
	switch got := binary.BigEndian.Uint32(b); {
	case got == actionError:
		return fmt.Errorf("%w: %s", ErrFailure, cleanMessage(string(b[udpErrorMin:])))
	case got != action:
		return fmt.Errorf("unexpected action %d (want %d)", got, action)
	}
	if len(b) < minLen {
		return fmt.Errorf("short packet of %d bytes (want at least %d)", len(b), minLen)
	}
	return nil
}

// parseUDPConnect returns the connection ID of a connect response.
func parseUDPConnect(b []byte) (uint64, error) {
	if err := checkUDP(b, actionConnect, udpConnectLen); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[8:]), nil
}

// parseUDPAnnounce decodes an announce response. Peers are 6 bytes each, or
// 18 when the tracker was reached over IPv6 (v6); a trailing partial entry is
// ignored, since BEP 15 lets packets grow.
func parseUDPAnnounce(b []byte, v6 bool) (*AnnounceResponse, error) {
	if err := checkUDP(b, actionAnnounce, udpAnnounceMin); err != nil {
		return nil, err
	}
	r := &AnnounceResponse{
		Interval: seconds(int64(int32(binary.BigEndian.Uint32(b[8:])))),
		Leechers: count(int64(int32(binary.BigEndian.Uint32(b[12:])))),
		Seeders:  count(int64(int32(binary.BigEndian.Uint32(b[16:])))),
	}
	parse, size := compact.ParsePeers, 6
	if v6 {
		parse, size = compact.ParsePeers6, 18
	}
	p := b[udpAnnounceMin:]
	peers, err := parse(p[:len(p)-len(p)%size], MaxPeers)
	if err != nil {
		return nil, err // cannot happen: the length is whole entries
	}
	var set peerSet
	for _, peer := range peers {
		if !set.add(peer) {
			break
		}
	}
	r.Peers = set.peers
	return r, nil
}
