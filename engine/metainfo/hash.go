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

// HashV2 is a v2 info-hash (BEP 52): the SHA-256 of the bencoded info
// dictionary exactly as it appears in the .torrent file.
type HashV2 [32]byte

// String returns the 64 lowercase hex digits.
func (h HashV2) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash, which stands for "no v2".
func (h HashV2) IsZero() bool { return h == HashV2{} }

// Truncate returns the first 20 bytes of h: the form trackers, the DHT and
// the peer handshake name a v2 swarm by.
func (h HashV2) Truncate() Hash { return Hash(h[:20]) }

// Multihash returns the form magnet links carry after "urn:btmh:": the
// multihash prefix of a 32-byte SHA-256 ("1220") and the hex digits.
func (h HashV2) Multihash() string { return multihashSHA256 + h.String() }

// multihashSHA256 is the multihash code of SHA2-256 (0x12) and its length
// (0x20), in hex.
const multihashSHA256 = "1220"

// MarshalText makes a HashV2 encode as hex in JSON and other text formats.
func (h HashV2) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText accepts what ParseHashV2 accepts.
func (h *HashV2) UnmarshalText(b []byte) error {
	v, err := ParseHashV2(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHashV2 reads a v2 info-hash written as 64 hex digits (either case),
// or as a SHA2-256 multihash: "1220" followed by the 64 digits, the form of
// urn:btmh in magnet links.
func ParseHashV2(s string) (HashV2, error) {
	if len(s) == len(multihashSHA256)+64 && strings.HasPrefix(s, multihashSHA256) {
		s = s[len(multihashSHA256):]
	}
	var h HashV2
	if len(s) != 64 {
		return HashV2{}, fmt.Errorf("metainfo: v2 info-hash %q has %d characters, want 64 hex digits (or 1220 and 64 hex digits)", truncate(s, 80), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return HashV2{}, fmt.Errorf("metainfo: v2 info-hash %q is not 64 hex digits: %w", truncate(s, 80), err)
	}
	return h, nil
}
