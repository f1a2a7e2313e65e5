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
func Check(data []byte) error { return check(data, false) }

// CheckUnique is Check that also rejects any dictionary, at any depth, that
// holds a key twice, adjacent or not. Scan catches adjacent repeats only; an
// unsorted dictionary can hide one further apart, and then a decoder (last
// wins) and Raw (first wins) would disagree about its value. Unlike Scan it
// may allocate, in proportion to the keys of a dictionary whose keys are not
// sorted.
func CheckUnique(data []byte) error { return check(data, true) }

func check(data []byte, unique bool) error {
	s := scanner{data: data, unique: unique}
	if err := s.value(0); err != nil {
		return err
	}
	return s.end()
}

// Dict calls fn with each key (its bytes, without the length) and raw value
// of the dictionary that data holds entirely, in order, until fn returns an
// error, which Dict returns. It is the gate's own walk (Check's rules, no
// allocation), run as it goes: fn may see the first entries of a value
// found malformed further on, and Dict then returns that error. Callers
// that must not act on such entries run Check first. The slices alias
// data.
func Dict(data []byte, fn func(key, val []byte) error) error {
	if len(data) == 0 || data[0] != 'd' {
		return fmt.Errorf("%w: not a dictionary", ErrSyntax)
	}
	s := scanner{data: data}
	if err := s.dict(0, fn); err != nil {
		return err
	}
	return s.end()
}

// List is Dict for the elements of a list.
func List(data []byte, fn func(val []byte) error) error {
	if len(data) == 0 || data[0] != 'l' {
		return fmt.Errorf("%w: not a list", ErrSyntax)
	}
	s := scanner{data: data}
	if err := s.list(0, fn); err != nil {
		return err
	}
	return s.end()
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
	var val []byte
	err := Dict(data, func(k, v []byte) error {
		if string(k) == key {
			val = v
			return errFound
		}
		return nil
	})
	switch {
	case err == errFound:
		return val, true, nil
	case err != nil:
		return nil, false, err
	}
	return nil, false, nil
}

// errFound stops Raw's walk at the key.
var errFound = errors.New("found")

// scanner walks bencoded values: the gate (Scan, Check, CheckUnique) and
// the walks over what the gate passed (Dict, List). It allocates nothing
// unless unique is set.
type scanner struct {
	data   []byte
	pos    int
	unique bool // reject every repeated key of a dictionary, not only adjacent ones
}

// maxKeyInError bounds how much of an untrusted key an error quotes.
const maxKeyInError = 80

func (s *scanner) repeatedKey(key []byte) error {
	if len(key) > maxKeyInError {
		return s.errorf("dictionary key %q... appears twice", key[:maxKeyInError])
	}
	return s.errorf("dictionary key %q appears twice", key)
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
		return s.list(depth, nil)
	case c == 'd':
		return s.dict(depth, nil)
	default:
		return s.errorf("unexpected byte %q", c)
	}
}

// end insists the value scanned spans the whole input.
func (s *scanner) end() error {
	if s.pos != len(s.data) {
		return fmt.Errorf("%w: %d bytes of trailing data after the value", ErrSyntax, len(s.data)-s.pos)
	}
	return nil
}

// list scans the list at s.pos, calling fn, if not nil, with each element
// once it is scanned.
func (s *scanner) list(depth int, fn func(val []byte) error) error {
	s.pos++ // 'l'
	for {
		if s.pos >= len(s.data) {
			return s.errorf("unterminated list")
		}
		if s.data[s.pos] == 'e' {
			s.pos++
			return nil
		}
		v := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(s.data[v:s.pos]); err != nil {
				return err
			}
		}
	}
}

// dict scans the dictionary at s.pos, calling fn, if not nil, with each
// key and value once the value is scanned.
func (s *scanner) dict(depth int, fn func(key, val []byte) error) error {
	s.pos++ // 'd'
	var prev []byte
	first := true
	var (
		keys [][]byte            // unique: the keys so far, while sorted
		seen map[string]struct{} // unique: once keys went out of order
	)
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
		switch {
		case !first && bytes.Equal(key, prev):
			return s.repeatedKey(key)
		case !s.unique:
		case seen != nil:
			if _, dup := seen[string(key)]; dup {
				return s.repeatedKey(key)
			}
			seen[string(key)] = struct{}{}
		case first || bytes.Compare(key, prev) > 0:
			// Sorted so far, as BEP 3 asks: a key greater than the
			// last cannot repeat an earlier one.
			keys = append(keys, key)
		default:
			seen = make(map[string]struct{}, len(keys)+1)
			for _, k := range keys {
				seen[string(k)] = struct{}{}
			}
			if _, dup := seen[string(key)]; dup {
				return s.repeatedKey(key)
			}
			seen[string(key)] = struct{}{}
		}
		prev, first = key, false
		v := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(key, s.data[v:s.pos]); err != nil {
				return err
			}
		}
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
