package bencode

import (
	"bytes"
	"errors"
	"fmt"

	zb "github.com/zeebo/bencode"
)

// MaxDepth bounds the nesting of lists and dictionaries. Real torrents nest a
// handful of levels; a deep nest only exists to exhaust the decoder's stack.
const MaxDepth = 64

// ErrSyntax is wrapped by every error Scan returns for malformed input.
var ErrSyntax = errors.New("bencode: malformed input")

// RawMessage holds a bencoded value verbatim, to be decoded later or passed on.
type RawMessage = zb.RawMessage

// Scan checks that data starts with one well-formed bencoded value and returns
// the number of bytes that value spans. Nothing is allocated in proportion to
// lengths declared by the input.
func Scan(data []byte) (int, error) {
	s := scanner{data: data}
	if err := s.value(0); err != nil {
		return 0, err
	}
	return s.pos, nil
}

// Check is Scan that also insists the value spans the whole input.
func Check(data []byte) error {
	n, err := Scan(data)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("%w: %d bytes of trailing data after the value", ErrSyntax, len(data)-n)
	}
	return nil
}

// Unmarshal checks data with Check and then decodes it into v. Use it for
// every input that comes from a file or the network.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	if err := zb.DecodeBytes(data, v); err != nil {
		return fmt.Errorf("bencode: %w", err)
	}
	return nil
}

// UnmarshalPrefix decodes the first value of data into v and returns how many
// bytes it spanned; whatever follows is left to the caller (a ut_metadata
// message carries raw piece bytes after its dictionary).
func UnmarshalPrefix(data []byte, v any) (int, error) {
	n, err := Scan(data)
	if err != nil {
		return 0, err
	}
	if err := zb.DecodeBytes(data[:n], v); err != nil {
		return 0, fmt.Errorf("bencode: %w", err)
	}
	return n, nil
}

// Marshal encodes v. Dictionary keys come out sorted, as BEP 3 requires.
func Marshal(v any) ([]byte, error) {
	b, err := zb.EncodeBytes(v)
	if err != nil {
		return nil, fmt.Errorf("bencode: %w", err)
	}
	return b, nil
}

// Raw returns the exact bytes of the value stored under key in the top-level
// dictionary data, and whether the key was present. The returned slice aliases
// data.
func Raw(data []byte, key string) ([]byte, bool, error) {
	if err := Check(data); err != nil {
		return nil, false, err
	}
	if len(data) == 0 || data[0] != 'd' {
		return nil, false, fmt.Errorf("%w: top-level value is not a dictionary", ErrSyntax)
	}
	pos := 1
	for data[pos] != 'e' {
		// Check has validated the input, so keys are strings and values are whole.
		kn, err := Scan(data[pos:])
		if err != nil {
			return nil, false, err
		}
		k := data[pos : pos+kn]
		pos += kn
		vn, err := Scan(data[pos:])
		if err != nil {
			return nil, false, err
		}
		if colon := bytes.IndexByte(k, ':'); colon >= 0 && string(k[colon+1:]) == key {
			return data[pos : pos+vn], true, nil
		}
		pos += vn
	}
	return nil, false, nil
}

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) value(depth int) error {
	if depth > MaxDepth {
		return s.errorf("nesting deeper than %d", MaxDepth)
	}
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == 'i':
		return s.integer()
	case c >= '0' && c <= '9':
		return s.str()
	case c == 'l':
		s.pos++
		for {
			if s.pos >= len(s.data) {
				return s.errorf("unterminated list")
			}
			if s.data[s.pos] == 'e' {
				s.pos++
				return nil
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
		}
	case c == 'd':
		s.pos++
		var prev []byte
		first := true
		for {
			if s.pos >= len(s.data) {
				return s.errorf("unterminated dictionary")
			}
			if s.data[s.pos] == 'e' {
				s.pos++
				return nil
			}
			if c := s.data[s.pos]; c < '0' || c > '9' {
				return s.errorf("dictionary key is not a string")
			}
			start := s.pos
			if err := s.str(); err != nil {
				return err
			}
			key := s.data[start:s.pos]
			key = key[bytes.IndexByte(key, ':')+1:]
			if !first && bytes.Equal(key, prev) {
				return s.errorf("duplicate dictionary key %q", key)
			}
			prev, first = key, false
			if err := s.value(depth + 1); err != nil {
				return err
			}
		}
	default:
		return s.errorf("unexpected byte %q", c)
	}
}

func (s *scanner) integer() error {
	s.pos++ // 'i'
	start := s.pos
	if s.pos < len(s.data) && s.data[s.pos] == '-' {
		s.pos++
	}
	digits := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	if s.pos >= len(s.data) || s.data[s.pos] != 'e' {
		return s.errorf("unterminated integer")
	}
	n := s.pos - digits
	switch {
	case n == 0:
		return s.errorf("integer without digits")
	case n > 19:
		return s.errorf("integer too large")
	case n > 1 && s.data[digits] == '0':
		return s.errorf("integer with leading zero")
	case s.data[digits] == '0' && digits > start:
		return s.errorf("negative zero")
	}
	s.pos++ // 'e'
	return nil
}

func (s *scanner) str() error {
	var n int
	for s.pos < len(s.data) && s.data[s.pos] != ':' {
		c := s.data[s.pos]
		if c < '0' || c > '9' {
			return s.errorf("bad byte %q in string length", c)
		}
		if n > len(s.data) { // already longer than any input could hold
			return s.errorf("string length exceeds input")
		}
		n = n*10 + int(c-'0')
		s.pos++
	}
	if s.pos >= len(s.data) {
		return s.errorf("unterminated string length")
	}
	s.pos++ // ':'
	if n > len(s.data)-s.pos {
		return s.errorf("string of %d bytes exceeds the %d bytes left", n, len(s.data)-s.pos)
	}
	s.pos += n
	return nil
}
