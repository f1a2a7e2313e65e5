package peer

import (
	"fmt"
	"net/netip"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// ExtHandshakeID is the extended message id of the BEP 10 handshake. Every
// other extended id is chosen by the receiver and announced in its "m".
const ExtHandshakeID = 0

// MaxExtensions bounds the entries of an extended handshake's "m"
// dictionary; real clients list a dozen at most.
const MaxExtensions = 64

// Extension names this package has codecs for, as they appear in "m".
const (
	ExtMetadata = "ut_metadata" // BEP 9
	ExtPex      = "ut_pex"      // BEP 11
)

// ExtendedHandshake is the dictionary of a BEP 10 handshake (extended
// message 0).
//
// M maps extension names to the extended message id the sender wants to
// receive them under; 0 means the sender disables (or does not support)
// that extension. A peer may send the handshake again: a later M lists only
// changes, and is nil if the message had no "m".
type ExtendedHandshake struct {
	M            map[string]int `bencode:"m"`
	V            string         `bencode:"v,omitempty"`             // client name and version
	Reqq         int            `bencode:"reqq,omitempty"`          // request queue depth the sender serves
	YourIP       string         `bencode:"yourip,omitempty"`        // our address as the sender sees it: 4 or 16 bytes
	Port         int            `bencode:"p,omitempty"`             // the sender's listening port
	MetadataSize int            `bencode:"metadata_size,omitempty"` // BEP 9: size of the info dictionary
	IPv4         string         `bencode:"ipv4,omitempty"`          // sender's own IPv4 address, 4 bytes
	IPv6         string         `bencode:"ipv6,omitempty"`          // sender's own IPv6 address, 16 bytes
	UploadOnly   int            `bencode:"upload_only,omitempty"`   // BEP 21: 1 when the sender wants nothing more (a partial seed)
}

// ParseExtendedHandshake decodes the payload of an extended handshake (the
// bytes after the extended id).
//
// It is strict where a mistake would corrupt what we do next and tolerant
// where real clients differ: an error (wrapping ErrProtocol) for a payload
// that is not a bencoded dictionary, an "m" that is not a dictionary, has
// more than MaxExtensions entries or an id outside 0..255, and a negative
// metadata_size; unknown keys are ignored, as are optional fields of the
// wrong type or out of range (a "p" over 65535, a "yourip" that is not 4 or
// 16 bytes, a non-positive "reqq"), which are left zero.
func ParseExtendedHandshake(payload []byte) (*ExtendedHandshake, error) {
	h := &ExtendedHandshake{}
	err := eachKey(payload, func(key string, val []byte) error {
		switch key {
		case "m":
			return h.parseM(val)
		case "v":
			if s, ok := rawString(val); ok {
				h.V = string(s)
			}
		case "reqq":
			if n, ok := rawInt(val); ok && n > 0 && n <= maxReqq {
				h.Reqq = int(n)
			}
		case "p":
			if n, ok := rawInt(val); ok && n > 0 && n <= 65535 {
				h.Port = int(n)
			}
		case "metadata_size":
			n, ok := rawInt(val)
			if !ok {
				return nil
			}
			if n < 0 || n > maxMetadataSizeField {
				return fmt.Errorf("metadata_size %d out of range", n)
			}
			h.MetadataSize = int(n)
		case "yourip":
			if s, ok := rawString(val); ok && (len(s) == 4 || len(s) == 16) {
				h.YourIP = string(s)
			}
		case "ipv4":
			if s, ok := rawString(val); ok && len(s) == 4 {
				h.IPv4 = string(s)
			}
		case "ipv6":
			if s, ok := rawString(val); ok && len(s) == 16 {
				h.IPv6 = string(s)
			}
		case "upload_only":
			if n, ok := rawInt(val); ok && n != 0 {
				h.UploadOnly = 1
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: extended handshake: %w", ErrProtocol, err)
	}
	return h, nil
}

// maxReqq is the largest reqq we believe; libtorrent's default is 500.
const maxReqq = 1 << 16

// maxMetadataSizeField keeps metadata_size within an int on every platform;
// the size a caller accepts is its own bound (ParseMetadataMessage).
const maxMetadataSizeField = 1<<31 - 1

func (h *ExtendedHandshake) parseM(val []byte) error {
	if val[0] != 'd' {
		return fmt.Errorf(`"m" is not a dictionary`)
	}
	n := 0
	if err := eachKey(val, func(string, []byte) error { n++; return nil }); err != nil {
		return err
	}
	if n > MaxExtensions {
		return fmt.Errorf(`"m" lists %d extensions, more than %d`, n, MaxExtensions)
	}
	h.M = make(map[string]int, n)
	return eachKey(val, func(name string, v []byte) error {
		id, ok := rawInt(v)
		if !ok {
			return fmt.Errorf(`"m" entry %q is not an integer`, name)
		}
		if id < 0 || id > 255 {
			return fmt.Errorf(`"m" entry %q has id %d, outside 0..255`, name, id)
		}
		h.M[name] = int(id)
		return nil
	})
}

// YourIPAddr returns YourIP as an address, if the peer sent a valid one.
func (h *ExtendedHandshake) YourIPAddr() (netip.Addr, bool) {
	return netip.AddrFromSlice([]byte(h.YourIP))
}

// Marshal encodes h as an extended handshake payload. An M with an id
// outside 0..255 is an error; a nil M is sent as an empty dictionary.
func (h *ExtendedHandshake) Marshal() ([]byte, error) {
	for name, id := range h.M {
		if id < 0 || id > 255 {
			return nil, fmt.Errorf("peer: extension %q has id %d, outside 0..255", name, id)
		}
	}
	if len(h.M) > MaxExtensions {
		return nil, fmt.Errorf("peer: %d extensions, more than %d", len(h.M), MaxExtensions)
	}
	v := *h
	if v.M == nil {
		v.M = map[string]int{}
	}
	b, err := bencode.Marshal(&v)
	if err != nil {
		return nil, fmt.Errorf("peer: extended handshake: %w", err)
	}
	return b, nil
}
