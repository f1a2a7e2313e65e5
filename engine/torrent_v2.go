package engine

import (
	"crypto/sha1"
	"errors"
	"sync/atomic"
	"time"

	"github.com/swarmfs/swarmfs/engine/merkle"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
)

// BitTorrent v2 (BEP 52) on the loop: pieces of a v2-only torrent are
// checked against their file's Merkle tree; a magnet's info comes without
// the piece layers, which are fetched from peers with hash requests (each
// answer proved up to the file's pieces root); hash requests from peers
// are answered from the layers we hold.

const (
	// layerTimeout is how long a hash request may go unanswered before
	// another peer is asked.
	layerTimeout = 10 * time.Second
	// maxLayerAsks bounds the hash requests outstanding with one peer.
	maxLayerAsks = 8
	// maxServedHashes bounds the nodes of a hash request we answer: BEP 52
	// asks requesters for 512 at most; more is rejected.
	maxServedHashes = metainfo.MaxLayerRequestLength
)

// v2State is a torrent's BEP 52 state. Loop-owned (before start: set by
// setInfo).
type v2State struct {
	// info is t.info plus the piece layers fetched so far: pieces are
	// checked against it. nil for a torrent without v2 hashes.
	info *metainfo.Info
	// byRoot finds a file by its pieces root, for hash messages.
	byRoot map[[32]byte]int
	// trees are the files' trees built to answer hash requests.
	trees map[int]*merkle.Tree
	// asks are the layer requests not answered yet (nil: nothing to fetch).
	asks []*layerAsk
	// got holds the checked nodes of each file's layer requests.
	got map[int]map[int][]merkle.Hash // file -> request index -> nodes
	// waiting are complete pieces whose file's layer is not known yet;
	// they count in t.hashing, which bounds them (maxHashBacklog).
	waiting map[int]*partialPiece
	// blocks are failed pieces whose blocks' hashes we asked for, to
	// tell which sender lied (torrent_v2_blocks.go).
	blocks map[int]*blockCheck
	// serving counts the block-hash answers being prepared for each peer.
	serving map[*conn]int
}

// layerAsk is one hash request for a part of a file's piece layer.
type layerAsk struct {
	file    int
	root    [32]byte
	req     merkle.Request
	n       int // index of req among the file's LayerRequests
	by      *conn
	at      time.Time
	refused map[*conn]bool
}

// isV2Only reports whether the torrent is named by its v2 info-hash
// (truncated): a v2-only torrent, or a btmh-only magnet.
func isV2Only(mi *metainfo.MetaInfo, m *metainfo.Magnet) bool {
	if mi != nil {
		return mi.Info != nil && !mi.Info.HasV1()
	}
	return m != nil && !m.HasV1()
}

// initV2 prepares v2 checking once the info is known. A v2-only torrent
// whose info lacks piece layers (a magnet's) starts fetching them.
func (t *Torrent) initV2(info *metainfo.Info) {
	defer t.layersFetched()
	if !info.HasV2() {
		return
	}
	t.nameHybrid()
	v := &t.v2
	v.info = info
	v.byRoot = make(map[[32]byte]int)
	v.trees = make(map[int]*merkle.Tree)
	v.waiting = make(map[int]*partialPiece)
	v.got = make(map[int]map[int][]merkle.Hash)
	v.blocks = make(map[int]*blockCheck)
	v.serving = make(map[*conn]int)
	for j, f := range info.Files {
		if f.V2 == nil || f.Length == 0 {
			continue
		}
		if _, dup := v.byRoot[f.V2.PiecesRoot]; !dup {
			v.byRoot[f.V2.PiecesRoot] = j
		}
		if info.HasV1() || f.V2.Layer != nil {
			continue // SHA-1 checks a hybrid's pieces
		}
		for n, r := range info.LayerRequests(j) {
			v.asks = append(v.asks, &layerAsk{file: j, root: f.V2.PiecesRoot, req: r, n: n})
		}
	}
	if len(v.asks) > 0 {
		t.client.logf("%s: fetching the piece layers of v2 files: %d hash requests", t.name(), len(v.asks))
	}
}

// v2Checks reports whether pieces are checked with v2 hashes only.
func (t *Torrent) v2Checks() bool { return t.v2.info != nil && !t.info.HasV1() }

// hashCheck returns the check of piece idx to run off the loop, or nil when
// the piece cannot be checked yet (its file's layer is still being fetched).
//
// A hybrid's piece is checked against both its hashes where its layer is
// known, as BEP 52 recommends: a torrent whose two views disagree is
// broken, and a piece that passes one check only is not served.
func (t *Torrent) hashCheck(idx int) func([]byte) bool {
	if !t.v2Checks() {
		want := t.info.PieceHash(idx)
		if vi := t.v2.info; vi != nil {
			if p, ok := vi.PieceV2(idx); ok && p.Known {
				return func(b []byte) bool { return sha1.Sum(b) == want && vi.VerifyPieceV2(idx, b) == nil }
			}
		}
		return func(b []byte) bool { return sha1.Sum(b) == want }
	}
	vi := t.v2.info
	if p, ok := vi.PieceV2(idx); !ok || !p.Known {
		return nil
	}
	return func(b []byte) bool { return vi.VerifyPieceV2(idx, b) == nil }
}

// requestLayers sends the hash requests not yet out, or out too long,
// to peers that can answer them. Every peer of a v2-only torrent speaks v2
// (the handshake named its v2 info-hash).
func (t *Torrent) requestLayers(now time.Time) {
	if len(t.v2.asks) == 0 || t.picker == nil {
		return
	}
	load := map[*conn]int{}
	for _, a := range t.v2.asks {
		if a.by != nil {
			load[a.by]++
		}
	}
	room := 0 // requests the peers can still take: stop looking at none
	for c := range t.conns {
		room += max(0, maxLayerAsks-load[c])
	}
	for _, a := range t.v2.asks {
		if room <= 0 {
			break
		}
		if a.by != nil && !a.by.removed && now.Sub(a.at) < layerTimeout {
			continue
		}
		if a.by != nil {
			load[a.by]--
			room++
			if a.refused == nil {
				a.refused = map[*conn]bool{}
			}
			a.refused[a.by] = true // slow: try another first
			a.by = nil
		}
		var best *conn
		for c := range t.conns {
			if c.removed || a.refused[c] || load[c] >= maxLayerAsks {
				continue
			}
			if best == nil || load[c] < load[best] {
				best = c
			}
		}
		if best == nil && len(a.refused) > 0 {
			a.refused = nil // everyone failed once: try them again next time
			continue
		}
		if best == nil {
			continue
		}
		a.by, a.at = best, now
		load[best]++
		room--
		best.send(peer.Message{Type: peer.HashRequest, PiecesRoot: a.root, BaseLayer: uint32(a.req.Base),
			Index: uint32(a.req.Index), Length: uint32(a.req.Length), ProofLayers: uint32(a.req.ProofLayers)})
	}
}

// layersFetched closes layersDone once no piece layer is left to fetch,
// publishing the metainfo with the layers fetched, if any, so the caller
// can keep them with the torrent (a restart then need not ask peers, who
// may not answer). Called when the info is set and when a layer arrives.
func (t *Torrent) layersFetched() {
	if len(t.v2.asks) > 0 {
		return
	}
	if vi := t.v2.info; vi != nil && vi != t.info && vi.HasPieceLayers() {
		mi := *t.mi
		mi.Info = vi
		t.withLayers.Store(&mi)
	}
	close(t.layersDone)
}

// LayersReady is closed once MetaInfo is final: when the info is known,
// or for a v2 torrent whose info came without its piece layers (a
// magnet's), once they are all fetched from peers and proved.
func (t *Torrent) LayersReady() <-chan struct{} { return t.layersDone }

// findAsk returns the outstanding request a hash message answers.
func (t *Torrent) findAsk(m *peer.Message) (int, *layerAsk) {
	for i, a := range t.v2.asks {
		if a.root == m.PiecesRoot && a.req.Base == int(m.BaseLayer) && a.req.Index == int(m.Index) &&
			a.req.Length == int(m.Length) && a.req.ProofLayers == int(m.ProofLayers) {
			return i, a
		}
	}
	return -1, nil
}

// onHashes takes an answer to one of our layer requests: proved against the
// file's pieces root, its nodes become part of the layer; a proof that
// does not lead there came from a liar.
func (t *Torrent) onHashes(c *conn, m *peer.Message, now time.Time) {
	i, a := t.findAsk(m)
	if a == nil {
		t.onBlockHashes(c, m) // or answered already, or never asked
		return
	}
	hs, err := merkle.Split(m.Hashes)
	if err != nil || len(hs) < a.req.Length {
		t.violation(c, "malformed hashes message")
		return
	}
	p := &merkle.Proof{Request: a.req, Nodes: hs[:a.req.Length], Uncles: hs[a.req.Length:]}
	if err := t.v2.info.CheckProof(a.file, p); err != nil {
		if errors.Is(err, metainfo.ErrPieceHash) {
			t.ban(c.addr.Addr(), "sent piece-layer hashes that do not lead to the pieces root: %v", err)
		} else {
			t.violation(c, "hashes: %v", err)
		}
		return
	}
	t.v2.asks = append(t.v2.asks[:i], t.v2.asks[i+1:]...)
	got := t.v2.got[a.file]
	if got == nil {
		got = map[int][]merkle.Hash{}
		t.v2.got[a.file] = got
	}
	got[a.n] = append([]merkle.Hash(nil), p.Nodes...)
	if len(got) < len(t.v2.info.LayerRequests(a.file)) {
		t.requestLayers(now)
		return
	}
	f := t.v2.info.Files[a.file]
	n := int((f.Length-1)/t.info.PieceLength + 1)
	layer := make([]merkle.Hash, 0, n)
	for k := 0; k < len(got); k++ {
		layer = append(layer, got[k]...)
	}
	layer = layer[:min(n, len(layer))]
	delete(t.v2.got, a.file)
	vi, err := t.v2.info.WithPieceLayers(map[[32]byte][]byte{a.root: merkle.Join(layer)})
	if err != nil {
		// Every part was proved on its own: this cannot happen unless the
		// info is broken; say so rather than stall silently.
		t.client.logf("%s: piece layer of %q: %v", t.name(), f.DisplayPath(), err)
		return
	}
	t.v2.info = vi
	t.client.logf("%s: piece layer of %q received (%d hashes)", t.name(), f.DisplayPath(), n)
	t.layersFetched()
	for idx, pp := range t.v2.waiting {
		if t.hashCheck(idx) != nil {
			delete(t.v2.waiting, idx)
			t.hashing--
			t.hashPiece(idx, pp)
		}
	}
	t.requestLayers(now)
}

// onHashReject moves a refused layer (or block-hash) request to another
// peer.
func (t *Torrent) onHashReject(c *conn, m *peer.Message, now time.Time) {
	_, a := t.findAsk(m)
	if a == nil {
		t.onBlockReject(c, m, now)
		return
	}
	if a.by != c {
		return
	}
	a.by = nil
	if a.refused == nil {
		a.refused = map[*conn]bool{}
	}
	a.refused[c] = true
	t.requestLayers(now)
}

// onHashRequest answers a peer's hash request from the piece layers we
// hold (requests below the piece layer, for block hashes, need the data
// and are rejected, as are requests we cannot answer).
func (t *Torrent) onHashRequest(c *conn, m *peer.Message) {
	reply := *m
	reply.Type = peer.HashReject
	if t.serveBlockHashes(c, m) {
		return
	}
	if p := t.answerHashes(m); p != nil {
		reply.Type = peer.Hashes
		reply.Hashes = merkle.Join(append(append([]merkle.Hash(nil), p.Nodes...), p.Uncles...))
	}
	c.send(reply)
}

func (t *Torrent) answerHashes(m *peer.Message) *merkle.Proof {
	if t.v2.info == nil || m.Length > maxServedHashes {
		return nil
	}
	j, ok := t.v2.byRoot[m.PiecesRoot]
	if !ok {
		return nil
	}
	f := t.v2.info.Files[j]
	r := merkle.Request{Base: int(m.BaseLayer), Index: int(m.Index), Length: int(m.Length), ProofLayers: int(m.ProofLayers)}
	if r.Check(f.Length) != nil {
		return nil
	}
	tree := t.fileTree(j)
	if tree == nil || r.Base < tree.Base() {
		return nil
	}
	p, err := tree.Answer(r, nil)
	if err != nil {
		return nil
	}
	return p
}

// fileTree returns file j's tree from its piece layer up (for a file of
// one piece, its root alone), built on first use; nil while the layer is
// not known.
func (t *Torrent) fileTree(j int) *merkle.Tree {
	if tree := t.v2.trees[j]; tree != nil {
		return tree
	}
	f := t.v2.info.Files[j]
	levels := merkle.PieceNodeLevels(f.Length, t.info.PieceLength)
	layer := []merkle.Hash{f.V2.PiecesRoot}
	if f.Length > t.info.PieceLength {
		if f.V2.Layer == nil {
			return nil
		}
		var err error
		if layer, err = merkle.Split(f.V2.Layer); err != nil {
			return nil
		}
	}
	tree, err := merkle.NewTree(f.Length, levels, layer)
	if err != nil || tree.Root() != f.V2.PiecesRoot {
		return nil
	}
	t.v2.trees[j] = tree
	return tree
}

// infoMatches reports whether buf, an info dictionary from peers, is the
// one the torrent is named by: SHA-1 for a v1 info-hash, SHA-256 for a v2
// one (both for a magnet that carries both).
func (t *Torrent) infoMatches(buf []byte) bool {
	if t.magnet != nil {
		return t.magnet.Matches(buf)
	}
	return !t.v2only && sha1.Sum(buf) == [20]byte(t.infoHash)
}

// reserved is the handshake's extension bits for this torrent: the
// client's, and v2 (BEP 52) for a torrent named by its v2 info-hash or a
// hybrid. A hybrid is named by its v1 hash; with the bit, a v2 peer
// (libtorrent 2.0) answers with the v2 hash truncated, upgrading the
// connection to v2 (upgraded).
func (t *Torrent) reserved() peer.Reserved {
	r := t.client.reserved()
	if t.v2only || !t.alias.Load().IsZero() {
		r.SetV2()
	}
	return r
}

// upgraded reports whether ih, from a peer's handshake, is the hybrid's v2
// hash truncated: the connection is then a v2 one, which rsv (the peer's
// bits as the loop keeps them) records with the v2 bit. libtorrent does
// not set that bit in its own handshake; it is how the rest of the engine
// knows the peer speaks v2 (peerV2).
func (t *Torrent) upgraded(rsv *peer.Reserved, ih [20]byte) bool {
	if alias := t.alias.Load(); alias.IsZero() || ih != [20]byte(alias) {
		return false
	}
	rsv.SetV2()
	return true
}

// upgradeTo is the info-hash to answer an incoming handshake for ih with:
// a v2 peer (the v2 bit) naming a hybrid by its v1 hash is answered with
// the v2 hash truncated, upgrading the connection to v2 as libtorrent
// does (BEP 52).
func (t *Torrent) upgradeTo(rsv peer.Reserved, ih [20]byte) [20]byte {
	if alias := t.alias.Load(); rsv.V2() && !alias.IsZero() && ih == [20]byte(t.infoHash) {
		return alias
	}
	return ih
}

// peerV2 reports whether c speaks v2: every peer of a v2-only torrent, and
// a hybrid's peers whose connection was upgraded (or that set the bit).
func (t *Torrent) peerV2(c *conn) bool { return t.v2only || c.reserved.V2() }

// aliasCell holds a hybrid's second name (its v2 info-hash truncated) for
// any goroutine: set before start, or once by the loop when a btih
// magnet's info shows a hybrid (nameHybrid).
type aliasCell struct{ p atomic.Pointer[metainfo.Hash] }

// Load returns the alias; zero when there is none.
func (a *aliasCell) Load() metainfo.Hash {
	if h := a.p.Load(); h != nil {
		return *h
	}
	return metainfo.Hash{}
}

func (a *aliasCell) Store(h metainfo.Hash) { a.p.Store(&h) }

// nameHybrid gives a torrent added by its btih magnet its second name once
// its info shows a hybrid, as a hybrid added from its .torrent has from
// the start: the client lets in v2 peers that name it so (and upgrades
// the rest), and it is announced under it to its trackers, LSD and, from
// its next announce, the DHT. On the loop, from setInfo.
func (t *Torrent) nameHybrid() {
	if t.magnet == nil || t.v2only || !t.alias.Load().IsZero() {
		return
	}
	alias := v2Alias(t.mi, nil)
	if alias.IsZero() {
		return
	}
	// Set before the client's map points at t, so a peer naming t by
	// its alias finds it set (upgraded).
	t.alias.Store(alias)
	if !t.client.addAlias(t, alias) {
		t.alias.Store(metainfo.Hash{})
		return
	}
	t.client.logf("%s: a hybrid: its v2 info-hash is %s, announced as %s too", t.name(), t.mi.InfoHashV2, alias)
	if t.announcer != nil && t.announcerV2 == nil {
		a := t.newAnnouncer(t.tiers, alias)
		t.announcerV2 = a
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			a.Run(t.annCtx)
		}()
	}
	if l := t.client.lsd; l != nil && !t.info.Private {
		l.Add(alias)
	}
}

// v2Alias is the second name of a hybrid torrent (its v2 info-hash
// truncated), under which v2 peers may connect; zero for others.
func v2Alias(mi *metainfo.MetaInfo, m *metainfo.Magnet) metainfo.Hash {
	switch {
	case mi != nil && mi.Info != nil && mi.Info.HasV1() && mi.Info.HasV2():
		return mi.Info.InfoHashV2.Truncate()
	case mi == nil && m != nil && m.HasV1() && !m.InfoHashV2.IsZero():
		return m.InfoHashV2.Truncate()
	}
	return metainfo.Hash{}
}

// servedPieceLen is how much of piece idx a peer may request. libtorrent
// pads the last file of a v2 torrent to a whole piece too, so it asks for
// a full last piece: the bytes past our (short) last piece are padding,
// zeros, and served as such.
func (t *Torrent) servedPieceLen(idx int) int64 {
	if t.v2only && idx == t.info.NumPieces()-1 {
		return t.info.PieceLength
	}
	return t.info.PieceLen(idx)
}
