package engine

import (
	"errors"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/merkle"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
)

// Block-level blame in v2 (BEP 52): when a piece assembled from several
// peers fails its check (SHA-256, or a hybrid's SHA-1) and a peer speaks v2, the leaf hashes of its blocks are asked for, with
// a proof up to the piece's node; each block is then checked on its own
// and whoever sent a bad one is banned at once, instead of waiting for the
// piece to verify from other senders (smart ban, torrent_pieces.go, which
// still runs).

// maxServingBlocks bounds the block-hash answers being read and hashed
// for one peer at a time.
const maxServingBlocks = 2

// blockCheck is a failed piece whose blocks' leaf hashes were asked for.
type blockCheck struct {
	file int
	root [32]byte
	req  merkle.Request
	sums []merkle.Hash  // the leaf of each block as received
	from []netip.Addr   // who sent each block
	by   *conn          // asked of
	at   time.Time      // when
	nope map[*conn]bool // peers that rejected or did not answer
}

// checkBlocksV2 asks for the leaves of failed piece idx when its blocks
// came from several peers; pp's buffer is read here, before it is reused.
// It reports whether it did.
func (t *Torrent) checkBlocksV2(idx int, pp *partialPiece) bool {
	if t.v2.info == nil || len(t.conns) == 0 {
		return false
	}
	pv, ok := t.v2.info.PieceV2(idx)
	if !ok || !pv.Known {
		return false
	}
	req, ok := pv.BlockRequest()
	if !ok {
		return false // one block: its sender is known already
	}
	n := int(merkle.NumBlocks(pv.Length))
	bc := &blockCheck{file: pv.File, root: t.v2.info.Files[pv.File].V2.PiecesRoot, req: req,
		sums: make([]merkle.Hash, n), from: make([]netip.Addr, n)}
	for b := 0; b < n && b < len(pp.from); b++ {
		s := int64(b) * merkle.BlockSize
		bc.sums[b] = merkle.BlockHash(pp.buf[s:min(s+merkle.BlockSize, pv.Length)])
		bc.from[b] = pp.from[b]
	}
	if t.askBlocks(bc, time.Now()); bc.by == nil {
		return false // no peer speaks v2 (a hybrid's v1 peers)
	}
	t.v2.blocks[idx] = bc
	return true
}

// askBlocks sends bc's request to a peer that did not contribute to the
// piece if there is one (an answer is proved, so anyone will do).
func (t *Torrent) askBlocks(bc *blockCheck, now time.Time) {
	var best *conn
	for c := range t.conns {
		if c.removed || bc.nope[c] || !t.peerV2(c) {
			continue
		}
		contributed := false
		for _, a := range bc.from {
			if a == c.addr.Addr() {
				contributed = true
				break
			}
		}
		if best == nil || !contributed {
			best = c
			if !contributed {
				break
			}
		}
	}
	bc.by, bc.at = best, now
	if best == nil {
		return
	}
	best.send(peer.Message{Type: peer.HashRequest, PiecesRoot: bc.root, BaseLayer: uint32(bc.req.Base),
		Index: uint32(bc.req.Index), Length: uint32(bc.req.Length), ProofLayers: uint32(bc.req.ProofLayers)})
}

// blockTick re-asks block checks whose peer left, refused or is slow;
// checks no peer can answer are dropped (smart ban remains).
func (t *Torrent) blockTick(now time.Time) {
	for idx, bc := range t.v2.blocks {
		if bc.by != nil && !bc.by.removed && now.Sub(bc.at) < layerTimeout {
			continue
		}
		if bc.by != nil {
			if bc.nope == nil {
				bc.nope = map[*conn]bool{}
			}
			bc.nope[bc.by] = true
		}
		if t.askBlocks(bc, now); bc.by == nil {
			delete(t.v2.blocks, idx)
		}
	}
}

// onBlockReject moves a block check c refused to another peer at once,
// rather than after layerTimeout (blockTick); with nobody left to ask it
// is dropped (smart ban remains).
func (t *Torrent) onBlockReject(c *conn, m *peer.Message, now time.Time) {
	for idx, bc := range t.v2.blocks {
		if bc.by != c || bc.root != m.PiecesRoot || bc.req.Base != int(m.BaseLayer) || bc.req.Index != int(m.Index) ||
			bc.req.Length != int(m.Length) || bc.req.ProofLayers != int(m.ProofLayers) {
			continue
		}
		if bc.nope == nil {
			bc.nope = map[*conn]bool{}
		}
		bc.nope[c] = true
		if t.askBlocks(bc, now); bc.by == nil {
			delete(t.v2.blocks, idx)
		}
		return
	}
}

// onBlockHashes takes the leaves of a failed piece: proved against the
// piece's node, each names the sender of a bad block.
func (t *Torrent) onBlockHashes(c *conn, m *peer.Message) {
	for idx, bc := range t.v2.blocks {
		if bc.root != m.PiecesRoot || bc.req.Base != int(m.BaseLayer) || bc.req.Index != int(m.Index) ||
			bc.req.Length != int(m.Length) || bc.req.ProofLayers != int(m.ProofLayers) {
			continue
		}
		hs, err := merkle.Split(m.Hashes)
		if err != nil || len(hs) < bc.req.Length {
			t.violation(c, "malformed hashes message")
			return
		}
		p := &merkle.Proof{Request: bc.req, Nodes: hs[:bc.req.Length], Uncles: hs[bc.req.Length:]}
		if err := t.v2.info.CheckProof(bc.file, p); err != nil {
			if errors.Is(err, metainfo.ErrPieceHash) {
				t.ban(c.addr.Addr(), "sent block hashes that do not lead to piece %d's hash", idx)
			}
			return
		}
		delete(t.v2.blocks, idx)
		var liars []netip.Addr
		for b, sum := range bc.sums {
			if sum != p.Nodes[b] && bc.from[b].IsValid() {
				liars = append(liars, bc.from[b])
				t.ban(bc.from[b], "sent block %d of piece %d, which does not match its Merkle proof", b, idx)
			}
		}
		// Said even when smart ban got there first.
		t.client.logf("%s: piece %d: its blocks' Merkle proof names the senders of %d bad blocks: %v", t.name(), idx, len(liars), liars)
		return
	}
}

// serveBlockHashes answers a request for block hashes (below the piece
// layer) off the loop, from the piece's data in storage: it reports
// whether it took the request (and will answer it).
func (t *Torrent) serveBlockHashes(c *conn, m *peer.Message) bool {
	if t.v2.info == nil || m.BaseLayer != 0 || m.Length > maxServedHashes || t.v2.serving[c] >= maxServingBlocks {
		return false
	}
	j, ok := t.v2.byRoot[m.PiecesRoot]
	if !ok {
		return false
	}
	f := t.v2.info.Files[j]
	pl := int64(merkle.PieceNodeLevels(f.Length, t.info.PieceLength))
	r := merkle.Request{Base: 0, Index: int(m.Index), Length: int(m.Length), ProofLayers: int(m.ProofLayers)}
	if r.Check(f.Length) != nil || int64(r.Length) > 1<<pl || pl == 0 {
		return false
	}
	tree := t.fileTree(j)
	if tree == nil || tree.Base() == 0 {
		return false
	}
	k := int64(r.Index) >> pl // the piece of the file, whose leaves are asked
	idx := int((f.Offset + k*t.info.PieceLength) / t.info.PieceLength)
	if !t.HavePiece(idx) {
		return false
	}
	off := f.Offset + k*t.info.PieceLength
	n := min(t.info.PieceLength, f.Length-k*t.info.PieceLength)
	t.v2.serving[c]++
	store := t.store
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		reply := *m
		reply.Type = peer.HashReject
		reply.Hashes = nil
		buf := make([]byte, n)
		if _, err := store.ReadAt(buf, off); err == nil {
			var leaves []merkle.Hash
			for s := int64(0); s < n; s += merkle.BlockSize {
				leaves = append(leaves, merkle.BlockHash(buf[s:min(s+merkle.BlockSize, n)]))
			}
			if p, err := tree.Answer(r, leaves); err == nil {
				reply.Type = peer.Hashes
				reply.Hashes = merkle.Join(append(append([]merkle.Hash(nil), p.Nodes...), p.Uncles...))
			}
		}
		t.post(func() {
			if t.v2.serving[c]--; t.v2.serving[c] <= 0 {
				delete(t.v2.serving, c)
			}
			if !c.removed {
				c.send(reply)
			}
		})
	}()
	return true
}
