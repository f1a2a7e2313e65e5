package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// Scrape (BEP 48 over HTTP, action 2 of BEP 15 over UDP): how many seeders,
// leechers and completed downloads a tracker counts for a torrent, without
// announcing. One torrent per request: swarmfs scrapes each torrent on its
// own schedule.

// ScrapeResult is a tracker's counts for one torrent.
type ScrapeResult struct {
	Seeders   int `json:"seeders"`
	Leechers  int `json:"leechers"`
	Completed int `json:"completed"` // downloads the tracker saw finish
}

// ErrNoScrape means a tracker offers no scrape: an HTTP announce URL whose
// last path segment does not start with "announce" (BEP 48), or an answer
// that does not mention the torrent.
var ErrNoScrape = errors.New("tracker: no scrape")

const (
	actionScrape    = 2
	udpScrapeReqLen = 36 // connection ID, action, transaction ID, one info-hash
	udpScrapeMin    = 20 // action, transaction ID, one torrent's three counts
)

// ScrapeURL derives an HTTP tracker's scrape URL from its announce URL
// (BEP 48: "announce" in the last path segment becomes "scrape").
func ScrapeURL(announce string) (string, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return "", fmt.Errorf("tracker: bad URL: %w", err)
	}
	i := strings.LastIndexByte(u.Path, '/')
	if i < 0 || !strings.HasPrefix(u.Path[i+1:], "announce") {
		return "", fmt.Errorf("%w: %s", ErrNoScrape, redact(announce))
	}
	u.Path = u.Path[:i+1] + "scrape" + strings.TrimPrefix(u.Path[i+1:], "announce")
	u.RawPath = ""
	u.Fragment = ""
	return u.String(), nil
}

// Scrape asks the tracker whose announce URL is rawURL for its counts of
// infoHash, from local when it is a specific address. The context bounds
// the exchange, as for Announce. Scrape is safe for concurrent use.
func Scrape(ctx context.Context, rawURL string, infoHash [20]byte, local netip.Addr) (ScrapeResult, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("tracker: bad URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return scrapeHTTP(ctx, httpClientFor(local), rawURL, infoHash)
	case "udp":
		return defaultUDP.scrape(ctx, u, infoHash, local)
	}
	return ScrapeResult{}, fmt.Errorf("%w %q in %q", ErrUnsupportedScheme, u.Scheme, redact(rawURL))
}

func scrapeHTTP(ctx context.Context, client *http.Client, rawURL string, ih [20]byte) (ScrapeResult, error) {
	su, err := ScrapeURL(rawURL)
	if err != nil {
		return ScrapeResult{}, err
	}
	var b strings.Builder
	b.WriteString(su)
	if strings.Contains(su, "?") {
		b.WriteByte('&')
	} else {
		b.WriteByte('?')
	}
	b.WriteString("info_hash=")
	escape(&b, ih[:])
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, b.String(), nil)
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: %w", redact(su), err)
	}
	hreq.Header.Set("User-Agent", "swarmfs")
	resp, err := client.Do(hreq)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return ScrapeResult{}, fmt.Errorf("tracker: %s: %w", redact(su), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: reading response: %w", redact(su), err)
	}
	if len(body) > MaxResponseSize {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: response larger than %d bytes", redact(su), MaxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: http status %s", redact(su), resp.Status)
	}
	r, err := parseHTTPScrape(body, ih)
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: %w", redact(su), err)
	}
	return r, nil
}

type httpScrape struct {
	FailureReason bencode.RawMessage            `bencode:"failure reason"`
	Files         map[string]bencode.RawMessage `bencode:"files"`
}

type httpScrapeFile struct {
	Complete   bencode.RawMessage `bencode:"complete"`
	Incomplete bencode.RawMessage `bencode:"incomplete"`
	Downloaded bencode.RawMessage `bencode:"downloaded"`
}

// parseHTTPScrape decodes a BEP 48 answer and picks infoHash's counts.
func parseHTTPScrape(body []byte, ih [20]byte) (ScrapeResult, error) {
	if len(body) == 0 || body[0] != 'd' {
		return ScrapeResult{}, fmt.Errorf("response is not a bencoded dictionary (%s)", preview(body))
	}
	var hs httpScrape
	if err := bencode.Unmarshal(body, &hs); err != nil {
		return ScrapeResult{}, fmt.Errorf("bad response: %w", err)
	}
	if hs.FailureReason != nil {
		reason, _ := rawString(hs.FailureReason)
		return ScrapeResult{}, fmt.Errorf("%w: %s", ErrFailure, cleanMessage(reason))
	}
	raw, ok := hs.Files[string(ih[:])]
	if !ok {
		return ScrapeResult{}, fmt.Errorf("%w: the answer does not list the torrent", ErrNoScrape)
	}
	var f httpScrapeFile
	if len(raw) == 0 || raw[0] != 'd' {
		return ScrapeResult{}, errors.New("bad response: the torrent's entry is not a dictionary")
	}
	if err := bencode.Unmarshal(raw, &f); err != nil {
		return ScrapeResult{}, fmt.Errorf("bad response: %w", err)
	}
	var r ScrapeResult
	if n, ok := rawInt(f.Complete); ok {
		r.Seeders = count(n)
	}
	if n, ok := rawInt(f.Incomplete); ok {
		r.Leechers = count(n)
	}
	if n, ok := rawInt(f.Downloaded); ok {
		r.Completed = count(n)
	}
	return r, nil
}

// scrape performs a BEP 15 scrape of one info-hash, with the same
// connection IDs and retransmit schedule as announce.
func (c *udpClient) scrape(ctx context.Context, u *url.URL, ih [20]byte, local netip.Addr) (ScrapeResult, error) {
	if u.Hostname() == "" || u.Port() == "" {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: udp tracker URL needs a host and a port", redact(u.String()))
	}
	name := "udp://" + u.Host
	key := strings.ToLower(u.Host)
	var d net.Dialer
	if local.IsValid() && !local.IsUnspecified() {
		d.LocalAddr = &net.UDPAddr{IP: local.AsSlice()}
	}
	nc, err := d.DialContext(ctx, "udp", u.Host)
	if err != nil {
		return ScrapeResult{}, fmt.Errorf("tracker: %s: %w", name, err)
	}
	conn := nc.(*net.UDPConn)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	t := udpTransport{conn: conn, buf: make([]byte, udpMaxPacket)}
	pkt := make([]byte, udpScrapeReqLen)
	binary.BigEndian.PutUint32(pkt[8:], actionScrape)
	copy(pkt[16:], ih[:])
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
				return ScrapeResult{}, fmt.Errorf("tracker: %s: connect: %w", name, err)
			}
			if id, err = parseUDPConnect(b); err != nil {
				return ScrapeResult{}, fmt.Errorf("tracker: %s: connect: %w", name, err)
			}
			c.storeID(key, id)
		}
		binary.BigEndian.PutUint64(pkt[0:], id)
		var b []byte
		b, err = t.transact(ctx, pkt, timeout)
		if errors.Is(err, errTimeout) {
			c.forgetID(key)
			continue
		}
		if err != nil {
			return ScrapeResult{}, fmt.Errorf("tracker: %s: scrape: %w", name, err)
		}
		r, err := parseUDPScrape(b)
		if err != nil {
			return ScrapeResult{}, fmt.Errorf("tracker: %s: scrape: %w", name, err)
		}
		return r, nil
	}
	return ScrapeResult{}, fmt.Errorf("tracker: %s: no answer after %d attempts", name, c.maxRetries+1)
}

// parseUDPScrape decodes a scrape response for one info-hash: seeders,
// completed, leechers.
func parseUDPScrape(b []byte) (ScrapeResult, error) {
	if err := checkUDP(b, actionScrape, udpScrapeMin); err != nil {
		return ScrapeResult{}, err
	}
	return ScrapeResult{
		Seeders:   count(int64(int32(binary.BigEndian.Uint32(b[8:])))),
		Completed: count(int64(int32(binary.BigEndian.Uint32(b[12:])))),
		Leechers:  count(int64(int32(binary.BigEndian.Uint32(b[16:])))),
	}, nil
}
