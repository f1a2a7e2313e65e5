package metainfo

import (
	"bytes"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// This file walks bencoded structure without decoding it, on bytes the gate
// (bencode.Check) has already accepted: every length is known to fit the
// input, so nothing here allocates in proportion to a declared size.

// checkKeys walks the value at the start of b and rejects any dictionary that
// holds the same key twice. The gate catches adjacent duplicates; an unsorted
// dictionary can hide one further apart, and then the decoder (last wins) and
// bencode.Raw (first wins) would disagree about which bytes are the info
// dictionary. It returns the number of bytes the value spans.
func checkKeys(where string, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, invalidf("%s: truncated bencoded value", where)
	}
	switch b[0] {
	case 'l':
		pos := 1
		for pos < len(b) && b[pos] != 'e' {
			n, err := checkKeys(where, b[pos:])
			if err != nil {
				return 0, err
			}
			pos += n
		}
		if pos >= len(b) {
			return 0, invalidf("%s: unterminated list", where)
		}
		return pos + 1, nil
	case 'd':
		pos := 1
		var prev []byte
		var seen map[string]struct{} // only built once keys go out of order
		var keys [][]byte
		for pos < len(b) && b[pos] != 'e' {
			kn, err := bencode.Scan(b[pos:])
			if err != nil {
				return 0, invalidf("%s: %w", where, err)
			}
			raw := b[pos : pos+kn]
			key := raw[bytes.IndexByte(raw, ':')+1:]
			pos += kn
			switch {
			case seen != nil:
				if _, dup := seen[string(key)]; dup {
					return 0, invalidf("%s: dictionary key %q appears twice", where, truncate(string(key), 80))
				}
				seen[string(key)] = struct{}{}
			case prev == nil || bytes.Compare(key, prev) > 0:
				// Sorted so far, as BEP 3 asks: a new key greater than the
				// last cannot repeat an earlier one.
				keys = append(keys, key)
			default:
				seen = make(map[string]struct{}, len(keys)+1)
				for _, k := range keys {
					seen[string(k)] = struct{}{}
				}
				if _, dup := seen[string(key)]; dup {
					return 0, invalidf("%s: dictionary key %q appears twice", where, truncate(string(key), 80))
				}
				seen[string(key)] = struct{}{}
			}
			prev = key
			if pos >= len(b) {
				return 0, invalidf("%s: dictionary key without a value", where)
			}
			n, err := checkKeys(where, b[pos:])
			if err != nil {
				return 0, err
			}
			pos += n
		}
		if pos >= len(b) {
			return 0, invalidf("%s: unterminated dictionary", where)
		}
		return pos + 1, nil
	default:
		n, err := bencode.Scan(b)
		if err != nil {
			return 0, invalidf("%s: %w", where, err)
		}
		return n, nil
	}
}

// countDicts returns the number of elements of the list at the start of b,
// stopping early once it passes limit, and insists each is a dictionary.
func countDicts(where string, b []byte, limit int) (int, error) {
	if len(b) == 0 || b[0] != 'l' {
		return 0, invalidf("%s is not a list", where)
	}
	pos, count := 1, 0
	for pos < len(b) && b[pos] != 'e' {
		if b[pos] != 'd' {
			return 0, invalidf("%s: entry %d is not a dictionary", where, count)
		}
		n, err := bencode.Scan(b[pos:])
		if err != nil {
			return 0, invalidf("%s: %w", where, err)
		}
		pos += n
		count++
		if count > limit {
			return count, nil
		}
	}
	return count, nil
}
