// Package compact encodes and decodes the compact peer format that trackers
// (BEP 23; IPv6 per BEP 7), the DHT (BEP 5 values and, behind a 20-byte ID,
// nodes; IPv6 per BEP 32) and peer exchange (BEP 11) share: 6 bytes per IPv4
// peer and 18 per IPv6 peer, the address then the port, big-endian.
//
// # Concepts
//
//   - A list is a run of entries of one width, with no separator and no
//     count: its family is known from where it was found (peers or peers6,
//     nodes or nodes6, added or added6), never from its bytes.
//   - ParsePeers and ParsePeers6 decode a list; AppendPeer encodes one
//     entry. Decoded addresses are whatever the bytes say: port 0,
//     unspecified, multicast or IPv4-mapped addresses come back as they are,
//     and each caller filters them by its own rules.
//
// The package is leaf code: it imports nothing of ours, keeps no state and
// starts no goroutines; every function is safe for concurrent use.
//
// # Pitfalls
//
//   - Lists arrive from the network. Pass a cap (max) where the list's
//     length is not already bounded: the peers are allocated before they
//     are filtered, 32 bytes of memory for each 6 bytes of input.
//   - A list that is not a whole number of entries is refused whole
//     (ErrLength), not truncated: a torn list says the sender or the
//     framing is wrong, and half an entry is no peer.
//   - AppendPeer writes an IPv4-mapped IPv6 address (::ffff:a.b.c.d) in the
//     6-byte IPv4 form. A writer of two lists must sort peers by
//     Addr().Unmap().Is4(), as ut_pex does, or an 18-byte list gets a
//     6-byte entry and its readers lose the whole list; a reader of an IPv6
//     list that keeps mapped entries must expect them back as IPv4 (the
//     DHT skips them in nodes6).
package compact
