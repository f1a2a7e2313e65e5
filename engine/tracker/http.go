package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/compact"
)

// httpTimeout bounds one HTTP announce from dial to the last body byte.
const httpTimeout = 30 * time.Second

// defaultHTTPClient is shared by every HTTP announce so connections to a
// tracker are reused across torrents.
var defaultHTTPClient = newHTTPClient(netip.Addr{})

var (
	localClientsMu sync.Mutex // guards localClients
	localClients   = map[netip.Addr]*http.Client{}
)

// httpClientFor returns the shared client that dials from local (any
// address when local is unset or unspecified).
func httpClientFor(local netip.Addr) *http.Client {
	if !local.IsValid() || local.IsUnspecified() {
		return defaultHTTPClient
	}
	localClientsMu.Lock()
	defer localClientsMu.Unlock()
	c := localClients[local]
	if c == nil {
		c = newHTTPClient(local)
		localClients[local] = c
	}
	return c
}

func newHTTPClient(local netip.Addr) *http.Client {
	d := net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialFrom(ctx, d, network, addr, local)
	}
	return &http.Client{
		Timeout: httpTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dial,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("tracker: too many redirects")
			}
			return nil
		},
	}
}

// announceHTTP performs a BEP 3 announce with client.
func announceHTTP(ctx context.Context, client *http.Client, rawURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, httpAnnounceURL(rawURL, req), nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", redact(rawURL), err)
	}
	hreq.Header.Set("User-Agent", "swarmfs")
	resp, err := client.Do(hreq)
	if err != nil {
		// url.Error repeats the full URL, passkey included; keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("tracker: %s: %w", redact(rawURL), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: reading response: %w", redact(rawURL), err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("tracker: %s: response larger than %d bytes", redact(rawURL), MaxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		// Some trackers explain a refusal in a bencoded body.
		if _, perr := parseHTTPResponse(body); errors.Is(perr, ErrFailure) {
			return nil, fmt.Errorf("tracker: %s: http status %s: %w", redact(rawURL), resp.Status, perr)
		}
		return nil, fmt.Errorf("tracker: %s: http status %s", redact(rawURL), resp.Status)
	}
	r, err := parseHTTPResponse(body)
	if err != nil {
		return nil, fmt.Errorf("tracker: %s: %w", redact(rawURL), err)
	}
	return r, nil
}

// httpAnnounceURL appends the announce parameters to the tracker's URL,
// keeping whatever query it already has (private trackers put a passkey
// there). Binary values are percent-encoded byte by byte.
func httpAnnounceURL(rawURL string, req AnnounceRequest) string {
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		rawURL = rawURL[:i]
	}
	var b strings.Builder
	b.Grow(len(rawURL) + 256)
	b.WriteString(rawURL)
	switch {
	case !strings.Contains(rawURL, "?"):
		b.WriteByte('?')
	case !strings.HasSuffix(rawURL, "?") && !strings.HasSuffix(rawURL, "&"):
		b.WriteByte('&')
	}
	b.WriteString("info_hash=")
	escape(&b, req.InfoHash[:])
	b.WriteString("&peer_id=")
	escape(&b, req.PeerID[:])
	b.WriteString("&port=")
	b.WriteString(strconv.Itoa(int(req.Port)))
	b.WriteString("&uploaded=")
	b.WriteString(strconv.FormatInt(max(req.Uploaded, 0), 10))
	b.WriteString("&downloaded=")
	b.WriteString(strconv.FormatInt(max(req.Downloaded, 0), 10))
	b.WriteString("&left=")
	b.WriteString(strconv.FormatInt(max(req.Left, 0), 10))
	b.WriteString("&compact=1")
	if req.Event >= Started && req.Event <= Stopped {
		b.WriteString("&event=")
		b.WriteString(req.Event.String())
	}
	if req.NumWant >= 0 {
		b.WriteString("&numwant=")
		b.WriteString(strconv.Itoa(req.NumWant))
	}
	b.WriteString("&key=")
	b.WriteString(fmt.Sprintf("%08X", req.Key))
	if announceIPv6(req.IPv6) {
		b.WriteString("&ipv6=")
		escape(&b, []byte(req.IPv6.String()))
	}
	if req.TrackerID != "" {
		b.WriteString("&trackerid=")
		escape(&b, []byte(req.TrackerID))
	}
	return b.String()
}

// escape percent-encodes every byte outside RFC 3986's unreserved set.
func escape(b *strings.Builder, s []byte) {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

// httpResponse holds every field raw, so that one field of an unexpected type
// costs only that field, and a failure reason is found whatever else is there.
type httpResponse struct {
	FailureReason  bencode.RawMessage `bencode:"failure reason"`
	WarningMessage bencode.RawMessage `bencode:"warning message"`
	Interval       bencode.RawMessage `bencode:"interval"`
	MinInterval    bencode.RawMessage `bencode:"min interval"`
	TrackerID      bencode.RawMessage `bencode:"tracker id"`
	Complete       bencode.RawMessage `bencode:"complete"`
	Incomplete     bencode.RawMessage `bencode:"incomplete"`
	Peers          bencode.RawMessage `bencode:"peers"`
	Peers6         bencode.RawMessage `bencode:"peers6"`
}

// dictPeer is one entry of the original, non-compact peer list.
type dictPeer struct {
	IP   bencode.RawMessage `bencode:"ip"`
	Port bencode.RawMessage `bencode:"port"`
}

// parseHTTPResponse decodes an HTTP tracker's bencoded answer. A "failure
// reason" yields an error wrapping ErrFailure.
func parseHTTPResponse(body []byte) (*AnnounceResponse, error) {
	if len(body) == 0 || body[0] != 'd' {
		return nil, fmt.Errorf("response is not a bencoded dictionary (%s)", preview(body))
	}
	var hr httpResponse
	if err := bencode.Unmarshal(body, &hr); err != nil {
		return nil, fmt.Errorf("bad response: %w", err)
	}
	if hr.FailureReason != nil {
		reason, _ := rawString(hr.FailureReason)
		return nil, fmt.Errorf("%w: %s", ErrFailure, cleanMessage(reason))
	}
	r := &AnnounceResponse{}
	if n, ok := rawInt(hr.Interval); ok {
		r.Interval = seconds(n)
	}
	if n, ok := rawInt(hr.MinInterval); ok {
		r.MinInterval = seconds(n)
	}
	if n, ok := rawInt(hr.Complete); ok {
		r.Seeders = count(n)
	}
	if n, ok := rawInt(hr.Incomplete); ok {
		r.Leechers = count(n)
	}
	if s, ok := rawString(hr.TrackerID); ok && len(s) <= maxMessage {
		r.TrackerID = s
	}
	if s, ok := rawString(hr.WarningMessage); ok {
		r.Warning = cleanMessage(s)
	}
	var set peerSet
	if err := addHTTPPeers(&set, hr.Peers, false); err != nil {
		return nil, fmt.Errorf("bad peers: %w", err)
	}
	if err := addHTTPPeers(&set, hr.Peers6, true); err != nil {
		return nil, fmt.Errorf("bad peers6: %w", err)
	}
	r.Peers = set.peers
	return r, nil
}

// addHTTPPeers adds the peers of a "peers" (v6 false) or "peers6" (v6 true)
// value: a compact string (BEP 23, BEP 7) or a list of dictionaries (BEP 3).
func addHTTPPeers(set *peerSet, raw bencode.RawMessage, v6 bool) error {
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == 'l' {
		var list []dictPeer
		if err := bencode.Unmarshal(raw, &list); err != nil {
			return err
		}
		for _, p := range list {
			ip, _ := rawString(p.IP)
			port, ok := rawInt(p.Port)
			if !ok || port <= 0 || port > 65535 {
				continue
			}
			addr, err := netip.ParseAddr(ip)
			if err != nil || addr.Zone() != "" {
				continue // host names are not resolved: a tracker names peers by address
			}
			if !set.add(netip.AddrPortFrom(addr, uint16(port))) {
				break
			}
		}
		return nil
	}
	s, ok := rawString(raw)
	if !ok {
		return fmt.Errorf("neither a string nor a list")
	}
	parse := compact.ParsePeers
	if v6 {
		parse = compact.ParsePeers6
	}
	peers, err := parse([]byte(s), MaxPeers)
	if err != nil {
		return err
	}
	for _, p := range peers {
		if !set.add(p) {
			break
		}
	}
	return nil
}

// rawInt decodes a bencoded integer; ok is false for any other value.
func rawInt(raw bencode.RawMessage) (int64, bool) {
	if len(raw) < 3 || raw[0] != 'i' || raw[len(raw)-1] != 'e' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw[1:len(raw)-1]), 10, 64)
	return n, err == nil
}

// rawString decodes a bencoded string; ok is false for any other value.
// raw has passed bencode.Check, so the declared length fits.
func rawString(raw bencode.RawMessage) (string, bool) {
	colon := -1
	for i, c := range raw {
		if c == ':' {
			colon = i
			break
		}
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if colon <= 0 {
		return "", false
	}
	n, err := strconv.Atoi(string(raw[:colon]))
	if err != nil || n != len(raw)-colon-1 {
		return "", false
	}
	return string(raw[colon+1:]), true
}

// preview quotes the start of an unexpected body for an error message.
func preview(b []byte) string {
	const n = 64
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}
