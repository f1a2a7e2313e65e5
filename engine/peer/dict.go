package peer

import (
	"bytes"
	"strconv"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// eachKey calls fn with every key and raw value of the bencoded dictionary
// that data holds entirely. The input passes bencode.Check first, so
// nothing is allocated on a length it declares and fn never sees part of
// a malformed message. The value slices alias data.
func eachKey(data []byte, fn func(key string, val []byte) error) error {
	if err := bencode.Check(data); err != nil {
		return err
	}
	return bencode.Dict(data, func(k, v []byte) error { return fn(string(k), v) })
}

// rawInt decodes a bencoded integer that Scan has validated; ok is false if
// val is another kind of value or does not fit an int64.
func rawInt(val []byte) (int64, bool) {
	if len(val) < 3 || val[0] != 'i' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(val[1:len(val)-1]), 10, 64)
	return n, err == nil
}

// rawString returns the contents of a bencoded string that Scan has
// validated, aliasing val; ok is false for other kinds of value.
func rawString(val []byte) ([]byte, bool) {
	if len(val) < 2 || val[0] < '0' || val[0] > '9' {
		return nil, false
	}
	return val[bytes.IndexByte(val, ':')+1:], true
}

// appendInt appends the bencoding of n.
func appendInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}

// appendString appends the bencoding of s.
func appendString(b []byte, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
