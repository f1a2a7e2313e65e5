package lsd

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// Bounds on what Parse accepts. An announce for a handful of torrents is a
// few hundred bytes; BEP 14 keeps one message within one datagram.
const (
	// MaxMessageSize is the largest message read or written.
	MaxMessageSize = 1400
	// MaxInfoHashes is the most info-hashes one message carries.
	MaxInfoHashes = 20
	// maxCookie bounds the cookie kept from a message.
	maxCookie = 64
	// maxLines bounds the header lines read.
	maxLines = 64
)

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("lsd: malformed announce")

const requestLine = "BT-SEARCH * HTTP/1.1"

// Announce is one BEP 14 message: a peer listening on Port (of the sender's
// address) has the torrents InfoHashes. Cookie tells a sender its own
// messages apart when they loop back.
type Announce struct {
	Port       uint16
	InfoHashes [][20]byte
	Cookie     string
}

// Parse decodes a BT-SEARCH message. It needs the request line, a Port in
// 1..65535 and at least one Infohash of 40 hex digits; header names are
// case-insensitive, unknown headers are ignored, lines may end in CRLF or
// LF. At most MaxInfoHashes info-hashes are kept; a message longer than
// MaxMessageSize, more than maxLines lines or a bad Port or Infohash is an
// error wrapping ErrMalformed.
func Parse(b []byte) (Announce, error) {
	a, err := parse(b)
	if err != nil {
		return Announce{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return a, nil
}

func parse(b []byte) (Announce, error) {
	var a Announce
	if len(b) > MaxMessageSize {
		return a, fmt.Errorf("%d bytes, more than %d", len(b), MaxMessageSize)
	}
	line, rest, ok := cutLine(b)
	if !ok || string(line) != requestLine {
		return a, errors.New("not a BT-SEARCH request")
	}
	havePort := false
	for n := 0; len(rest) > 0; n++ {
		if n >= maxLines {
			return a, fmt.Errorf("more than %d lines", maxLines)
		}
		line, rest, _ = cutLine(rest)
		if len(line) == 0 {
			break // end of headers
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return a, fmt.Errorf("header line without a colon")
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("port")):
			p, err := strconv.ParseUint(string(val), 10, 16)
			if err != nil || p == 0 {
				return a, fmt.Errorf("bad port %q", truncate(val))
			}
			a.Port, havePort = uint16(p), true
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("infohash")):
			var ih [20]byte
			if len(val) != 40 {
				return a, fmt.Errorf("bad info-hash %q", truncate(val))
			}
			if _, err := hex.Decode(ih[:], val); err != nil {
				return a, fmt.Errorf("bad info-hash %q", truncate(val))
			}
			if len(a.InfoHashes) < MaxInfoHashes {
				a.InfoHashes = append(a.InfoHashes, ih)
			}
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("cookie")):
			if len(val) <= maxCookie {
				a.Cookie = string(val)
			}
		}
	}
	switch {
	case !havePort:
		return Announce{}, errors.New("no port")
	case len(a.InfoHashes) == 0:
		return Announce{}, errors.New("no info-hash")
	}
	return a, nil
}

// cutLine splits off the first line, without its CRLF or LF; ok is false
// if there was no line end.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

func truncate(b []byte) string {
	if len(b) > 48 {
		b = b[:48]
	}
	return string(b)
}

// Append appends a's message addressed to host (the group's "ip:port", as
// BEP 14 asks) to b. It writes at most MaxInfoHashes info-hashes; callers
// with more send several messages.
func (a Announce) Append(b []byte, host string) []byte {
	b = append(b, requestLine+"\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nPort: "...)
	b = strconv.AppendUint(b, uint64(a.Port), 10)
	b = append(b, "\r\n"...)
	for i, ih := range a.InfoHashes {
		if i >= MaxInfoHashes {
			break
		}
		b = append(b, "Infohash: "...)
		b = hex.AppendEncode(b, ih[:])
		b = append(b, "\r\n"...)
	}
	if a.Cookie != "" {
		b = append(b, "cookie: "...)
		b = append(b, a.Cookie...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n\r\n"...)
}
