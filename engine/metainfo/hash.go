package metainfo

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
)

// Hash is a v1 info-hash: the SHA-1 of the bencoded info dictionary exactly
// as it appears in the .torrent file. Peers, trackers and the DHT all name a
// torrent by it.
type Hash [20]byte

// String returns the 40 lowercase hex digits trackers and magnet links use.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HexString is String, for callers that want to say which form they mean.
func (h Hash) HexString() string { return h.String() }

// IsZero reports whether h is the zero hash, which no real torrent has and
// which callers use for "unknown".
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText makes a Hash encode as hex in JSON and other text formats.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText accepts what ParseHash accepts.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash reads an info-hash written as 40 hex digits (either case) or as
// 32 base32 characters (RFC 4648 alphabet, either case), the two forms magnet
// links use.
func ParseHash(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return Hash{}, fmt.Errorf("metainfo: info-hash %q is not 40 hex digits: %w", s, err)
		}
	case 32:
		n, err := base32.StdEncoding.Decode(h[:], []byte(strings.ToUpper(s)))
		if err != nil || n != len(h) {
			return Hash{}, fmt.Errorf("metainfo: info-hash %q is not 32 base32 characters", s)
		}
	default:
		return Hash{}, fmt.Errorf("metainfo: info-hash %q has %d characters, want 40 hex or 32 base32", truncate(s, 80), len(s))
	}
	return h, nil
}

// truncate shortens untrusted text before it goes into an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
