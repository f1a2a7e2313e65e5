// Package bencode is the gate every untrusted bencoded input passes through.
//
// It wraps github.com/zeebo/bencode, which allocates a string's declared length
// before reading it (sixteen bytes of input can ask for gigabytes). Scan walks
// the input first and rejects any string, list or dictionary whose declared
// size exceeds what is left of the input, any nesting deeper than MaxDepth, and
// any syntax error, naming the offset. Only then is the input handed to the
// reflective decoder, which can no longer be tricked into a large allocation.
//
// One walker does all of it (the scanner in bencode.go): the gate (Scan,
// Check), the stricter CheckUnique, which also rejects a dictionary key
// repeated anywhere in its dictionary (the gate only catches adjacent
// repeats; metainfo insists, so that the info-hash and the decoder agree on
// the info dictionary), and the walks over raw values that packages use
// instead of decoding (Dict, List: peer's extension messages, metainfo's
// file lists and v2 file trees). A dictionary key repeated is always
// reported as "dictionary key ... appears twice".
//
// Raw finds the exact bytes of a top-level dictionary key's value, which is
// how an info-hash is taken over the info dictionary as it appears in the file
// rather than over a re-encoding.
//
// All functions are safe for concurrent use; they keep no state.
package bencode
