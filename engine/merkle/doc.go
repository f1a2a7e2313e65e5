// Package merkle computes and checks the per-file hash trees of BitTorrent v2
// (BEP 52): SHA-256 over 16 KiB blocks, a binary tree up to one root per
// file (the file's "pieces root"), and the proofs that let a peer check a
// layer of that tree, a piece or a single block without the rest of it.
//
// It is a leaf: it knows hashes and heights, not torrents, files on disk or
// the wire. engine/metainfo builds on it to check piece layers and v2
// pieces, engine/peer carries its requests and proofs in the hash request,
// hashes and hash reject messages.
//
// # Concepts
//
// A file of n bytes has NumBlocks(n) blocks of BlockSize bytes (the last one
// shorter); the hash of a block is a leaf. The tree over a file has
// 2^FileLevels(n) leaves: the real ones, then zero leaves (32 zero bytes,
// not the hash of anything) up to the next power of two. A node is
// addressed by its height above the leaves (0 for the leaves) and its index
// within that layer; its hash is SHA-256 of its two children's hashes. A
// node whose leaves are all zero leaves is a pad node: PadHash(height).
//
// The piece layer is the layer at height PieceLevels(pieceLength), where a
// node covers one piece. A file larger than one piece is checked piece by
// piece against its piece layer (metainfo's "piece layers"); a file of one
// piece or less has no piece layer: its tree is narrower than a piece and
// its root is the one hash its single piece is checked against. Both cases
// are one rule: piece k of a file hashes to DataRoot(piece, levels) with
// levels = min(PieceLevels, FileLevels), and the file's root is
// LayerRoot(those nodes, levels).
//
// # Requests and proofs
//
// A Request names Length nodes of one layer (Base) starting at Index, plus
// ProofLayers: how far up the tree the answer must reach. The answer, a
// Proof, holds the nodes and the uncle hashes: the sibling of the range's
// ancestor at each height from Base+log2(Length) to Base+ProofLayers (the
// siblings below that are inside the range and are left out). Folding them
// (Proof.Anchor) yields one ancestor node, which the receiver compares with
// a node it already trusts: the pieces root, or a piece-layer hash it has
// checked. Request.Check is what a serving side must check before
// answering; Tree answers.
//
// # Bounds and errors
//
// Everything is bounded by the tree's shape: MaxLevels (2^63 bytes in 16
// KiB blocks), MaxRequestLength hashes per request. Functions whose inputs
// can come from a peer (Request.Check, Proof.Anchor, NewTree, Tree.Answer,
// Split) return errors wrapping ErrInvalid; functions whose preconditions
// the caller controls (DataRoot with more data than its width, PadHash out
// of range) panic like an index out of range, and say so.
//
// Everything here is safe for concurrent use: functions keep no state and
// a Tree is not modified after NewTree returns it.
package merkle
