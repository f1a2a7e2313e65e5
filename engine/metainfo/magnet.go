package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// MaxMagnetLength bounds the magnet URIs ParseMagnet reads. Browsers cap URLs
// near 2 KiB-64 KiB; a magnet with hundreds of trackers still fits.
const MaxMagnetLength = 64 << 10

// Magnet is a parsed magnet URI (BEP 9): enough to find peers and fetch the
// info dictionary from them.
type Magnet struct {
	// InfoHash names the swarm to trackers, the DHT and peers: the v1
	// info-hash (urn:btih), or for a magnet with only a v2 hash the v2
	// info-hash truncated to 20 bytes.
	InfoHash Hash
	// InfoHashV2 is the v2 info-hash (urn:btmh), zero when absent. A
	// magnet with both is a hybrid torrent's.
	InfoHashV2 HashV2
	// DisplayName is the dn parameter, untrusted: sanitise it
	// (SanitizeComponent) before using it as a file name.
	DisplayName string
	// Trackers holds every tr parameter, in order, without repeats.
	Trackers []string
	// WebSeeds holds every ws parameter (BEP 19), in order, without repeats.
	WebSeeds []string
	// Peers holds every x.pe parameter that is a valid host:port.
	Peers []string
}

// ParseMagnet parses a magnet URI. It needs an xt of urn:btih: with 40 hex
// digits or 32 base32 characters, or of urn:btmh: with a SHA2-256
// multihash ("1220" and 64 hex digits, BEP 52), or both (a hybrid
// torrent). A btmh with another hash function is ErrUnsupported when it is
// the only hash, and ignored beside a btih. Unknown parameters are ignored,
// and so are x.pe peers that are not host:port. Parameters may be numbered
// as in "tr.1"; "+" stands for a space as in any query string.
func ParseMagnet(uri string) (*Magnet, error) {
	if len(uri) > MaxMagnetLength {
		return nil, badMagnetf("%d bytes is longer than the %d-byte limit", len(uri), MaxMagnetLength)
	}
	const scheme = "magnet:"
	if len(uri) < len(scheme) || !strings.EqualFold(uri[:len(scheme)], scheme) {
		return nil, badMagnetf("%q does not start with magnet:", truncate(uri, 40))
	}
	rest := uri[len(scheme):]
	if !strings.HasPrefix(rest, "?") {
		return nil, badMagnetf("no query after magnet: (want magnet:?xt=urn:btih:...)")
	}
	rest = rest[1:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	m := &Magnet{}
	var haveBTIH, haveBTMH, otherBTMH bool
	seenTr, seenWS, seenPe := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, pair := range strings.Split(rest, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key := strings.ToLower(rawKey)
		if i := strings.IndexByte(key, '.'); i >= 0 && key != "x.pe" {
			if _, err := strconv.Atoi(key[i+1:]); err == nil {
				key = key[:i] // "tr.1" -> "tr"
			}
		}
		switch key {
		case "xt", "dn", "tr", "ws", "x.pe":
		default:
			continue
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, badMagnetf("parameter %s: bad escape in %q", key, truncate(rawVal, 80))
		}
		switch key {
		case "xt":
			lower := strings.ToLower(val)
			switch {
			case strings.HasPrefix(lower, "urn:btih:"):
				h, err := ParseHash(val[len("urn:btih:"):])
				if err != nil {
					return nil, badMagnetf("xt: %q is not an info-hash (want 40 hex digits or 32 base32 characters)", truncate(val, 80))
				}
				if haveBTIH && h != m.InfoHash {
					return nil, badMagnetf("two different btih info-hashes (%s and %s)", m.InfoHash, h)
				}
				m.InfoHash, haveBTIH = h, true
			case strings.HasPrefix(lower, "urn:btmh:"):
				mh := lower[len("urn:btmh:"):]
				if !strings.HasPrefix(mh, multihashSHA256) {
					otherBTMH = true // a hash function of a later meta version
					continue
				}
				h, err := ParseHashV2(mh)
				if err != nil {
					return nil, badMagnetf("xt: %q is not a v2 info-hash (want urn:btmh:1220 and 64 hex digits)", truncate(val, 100))
				}
				if haveBTMH && h != m.InfoHashV2 {
					return nil, badMagnetf("two different btmh info-hashes (%s and %s)", m.InfoHashV2, h)
				}
				m.InfoHashV2, haveBTMH = h, true
			}
		case "dn":
			if m.DisplayName == "" {
				m.DisplayName = val
			}
		case "tr":
			val = strings.TrimSpace(val)
			if val != "" && !seenTr[val] {
				seenTr[val] = true
				m.Trackers = append(m.Trackers, val)
			}
		case "ws":
			val = strings.TrimSpace(val)
			if val != "" && !seenWS[val] {
				seenWS[val] = true
				m.WebSeeds = append(m.WebSeeds, val)
			}
		case "x.pe":
			if validPeer(val) && !seenPe[val] {
				seenPe[val] = true
				m.Peers = append(m.Peers, val)
			}
		}
	}
	switch {
	case haveBTIH:
	case haveBTMH:
		m.InfoHash = m.InfoHashV2.Truncate()
	case otherBTMH:
		return nil, fmt.Errorf("metainfo: urn:btmh with a hash function other than SHA2-256 is %w", ErrUnsupported)
	default:
		return nil, badMagnetf("missing xt=urn:btih:<info-hash> or xt=urn:btmh:1220<v2 info-hash>")
	}
	return m, nil
}

// HasV1 reports whether m carries a v1 info-hash: it has no v2 one, or its
// InfoHash is not the v2 one truncated.
func (m *Magnet) HasV1() bool {
	return m.InfoHashV2.IsZero() || m.InfoHash != m.InfoHashV2.Truncate()
}

// Matches reports whether infoBytes, an info dictionary fetched from peers
// (ut_metadata), is the one m names: its SHA-1 equals the v1 info-hash and
// its SHA-256 the v2 one, for whichever m carries.
func (m *Magnet) Matches(infoBytes []byte) bool {
	if m.HasV1() && Hash(sha1.Sum(infoBytes)) != m.InfoHash {
		return false
	}
	return m.InfoHashV2.IsZero() || HashV2(sha256.Sum256(infoBytes)) == m.InfoHashV2
}

// validPeer reports whether s is host:port with a port in 1..65535.
func validPeer(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p > 0 && p <= 65535
}

// String formats m as a magnet URI: xt with the hex v1 info-hash and xt
// with the v2 one (whichever m carries), then dn, tr, ws and x.pe, each
// escaped as a query value (spaces as %20, which every client decodes).
func (m *Magnet) String() string {
	var b strings.Builder
	b.WriteString("magnet:?")
	if m.HasV1() {
		b.WriteString("xt=urn:btih:")
		b.WriteString(m.InfoHash.String())
		if !m.InfoHashV2.IsZero() {
			b.WriteByte('&')
		}
	}
	if !m.InfoHashV2.IsZero() {
		b.WriteString("xt=urn:btmh:")
		b.WriteString(m.InfoHashV2.Multihash())
	}
	add := func(k, v string) {
		b.WriteByte('&')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
	}
	if m.DisplayName != "" {
		add("dn", m.DisplayName)
	}
	for _, t := range m.Trackers {
		add("tr", t)
	}
	for _, w := range m.WebSeeds {
		add("ws", w)
	}
	for _, p := range m.Peers {
		add("x.pe", p)
	}
	return b.String()
}
