package metainfo

import (
	"errors"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// checkKeys rejects any dictionary in b, at any depth, that holds the same
// key twice (bencode.CheckUnique). The gate catches adjacent duplicates; an
// unsorted dictionary can hide one further apart, and then the decoder
// (last wins) and bencode.Raw (first wins) would disagree about which bytes
// are the info dictionary.
func checkKeys(where string, b []byte) error {
	if err := bencode.CheckUnique(b); err != nil {
		return invalidf("%s: %w", where, err)
	}
	return nil
}

// countDicts returns the number of elements of the list b, stopping early
// once it passes limit, and insists each is a dictionary.
func countDicts(where string, b []byte, limit int) (int, error) {
	if len(b) == 0 || b[0] != 'l' {
		return 0, invalidf("%s is not a list", where)
	}
	count := 0
	err := bencode.List(b, func(v []byte) error {
		if v[0] != 'd' {
			return invalidf("%s: entry %d is not a dictionary", where, count)
		}
		if count++; count > limit {
			return errEnough
		}
		return nil
	})
	switch {
	case err == errEnough:
	case errors.Is(err, ErrInvalid):
		return 0, err
	case err != nil:
		return 0, invalidf("%s: %w", where, err)
	}
	return count, nil
}

// errEnough stops a walk that has seen enough.
var errEnough = errors.New("enough")

// entries calls fn for each key and value of the dictionary b, in order;
// its own errors name the file tree.
func entries(b []byte, fn func(key, val []byte) error) error {
	var ferr error
	err := bencode.Dict(b, func(k, v []byte) error {
		ferr = fn(k, v)
		return ferr
	})
	if err != nil && ferr == nil {
		return invalidf("info: file tree: %w", err)
	}
	return err
}
