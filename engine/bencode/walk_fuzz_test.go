package bencode

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// FuzzWalk holds the walks to the gate on any input: CheckUnique accepts
// only what Check accepts, and refuses it exactly when some dictionary
// repeats a key (found here with a map per dictionary); Dict and List
// accept exactly what Check accepts of their kind, and hand out every part
// of the input, in order.
func FuzzWalk(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		[]byte("d1:ai1e1:bi2ee"), []byte("d1:bi1e1:ai2e1:ci3ee"), []byte("d1:ai1e1:ai2ee"),
		[]byte("d4:name1:a6:lengthi1e4:name1:be"), []byte("d1:b0:1:a0:1:c0:1:a0:e"),
		[]byte("d1:xld1:ai1e1:bi1e1:ai2eeee"), []byte("d1:ad1:ai1ee1:bd1:ai1eee"),
		[]byte("li1e3:abcd1:ai1eelee"), []byte("le"), []byte("de"), []byte("d1:ai1eeX"),
		[]byte("l" + strings.Repeat("d1:a0:e", 8) + "e"), []byte("i3e"), nil,
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkErr := Check(data)
		uniqueErr := CheckUnique(data)
		if checkErr != nil {
			if uniqueErr == nil {
				t.Fatalf("CheckUnique accepts what Check refuses: %v", checkErr)
			}
		} else if repeats := repeatedKey(t, data); repeats != (uniqueErr != nil) {
			t.Fatalf("CheckUnique = %v, but a key repeats: %v", uniqueErr, repeats)
		}
		if uniqueErr != nil && !errors.Is(uniqueErr, ErrSyntax) {
			t.Fatalf("CheckUnique error %v does not wrap ErrSyntax", uniqueErr)
		}

		// Each key and value lie in data in order, a key's length prefix
		// (as written: the gate allows leading zeros) before it.
		pos := 1
		dictErr := Dict(data, func(k, v []byte) error {
			kOff, vOff := cap(data)-cap(k), cap(data)-cap(v)
			n, err := strconv.Atoi(string(data[pos : kOff-1]))
			if err != nil || n != len(k) || data[kOff-1] != ':' || vOff != kOff+len(k) {
				t.Fatalf("Dict's key %q at %d, value at %d, after %d", k, kOff, vOff, pos)
			}
			pos = vOff + len(v)
			return nil
		})
		isDict := len(data) > 0 && data[0] == 'd'
		if (dictErr == nil) != (checkErr == nil && isDict) {
			t.Fatalf("Dict = %v, Check = %v", dictErr, checkErr)
		}
		if dictErr == nil && pos != len(data)-1 {
			t.Fatalf("Dict's entries end at %d of %d bytes", pos, len(data))
		}
		var whole []byte
		listErr := List(data, func(v []byte) error { whole = append(whole, v...); return nil })
		isList := len(data) > 0 && data[0] == 'l'
		if (listErr == nil) != (checkErr == nil && isList) {
			t.Fatalf("List = %v, Check = %v", listErr, checkErr)
		}
		if listErr == nil && !bytes.Equal(append(append([]byte("l"), whole...), 'e'), data) {
			t.Fatalf("List's elements make %q", whole)
		}
	})
}

// repeatedKey reports whether any dictionary in v, a value Check accepts,
// holds a key twice.
func repeatedKey(t *testing.T, v []byte) bool {
	repeats := false
	switch v[0] {
	case 'd':
		seen := map[string]bool{}
		if err := Dict(v, func(k, val []byte) error {
			repeats = repeats || seen[string(k)] || repeatedKey(t, val)
			seen[string(k)] = true
			return nil
		}); err != nil {
			t.Fatalf("Dict of a checked value: %v", err)
		}
	case 'l':
		if err := List(v, func(val []byte) error {
			repeats = repeats || repeatedKey(t, val)
			return nil
		}); err != nil {
			t.Fatalf("List of a checked value: %v", err)
		}
	}
	return repeats
}
