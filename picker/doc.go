// Package picker decides which blocks swarmfs asks which peer for.
//
// It is pure decision logic: state in (pieces we have, what peers have and
// how fast they are, where readers are reading), block requests out. It
// performs no I/O, starts no goroutines and imports no other swarmfs
// package. A Picker is not safe for concurrent use: the torrent's loop owns
// it.
//
// See the full notes below the package clause in the source of doc.go.
package picker
