package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/picker"
)

// errProtocol marks a peer's violation of the wire protocol.
var errProtocol = errors.New("protocol violation")

// run is the torrent's loop: the only goroutine that touches loop-owned state.
func (t *Torrent) run() {
	defer t.wg.Done()
	defer t.shutdown()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	t.checkComplete()
	for {
		select {
		case f := <-t.events:
			f()
		case <-t.readerPoke:
			t.applyReaderOps()
		case now := <-tick.C:
			t.tick(now)
		case <-t.done:
			return
		}
	}
}

// shutdown closes every connection and waits for their goroutines.
func (t *Torrent) shutdown() {
	for c := range t.conns {
		c.close(ErrClosed)
	}
	for c := range t.conns {
		c.wg.Wait()
	}
	for _, pp := range t.partial {
		putPieceBuf(pp.buf)
	}
	t.partial = nil
}

func (t *Torrent) tick(now time.Time) {
	for c := range t.conns {
		c.down.update(c.downloaded.Load(), now)
		c.up.update(c.uploaded.Load(), now)
		// Keep about a second of the peer's rate in flight, within what it accepts.
		want := int(c.down.value/float64(peer.BlockSize)) + 16
		c.pipeline = max(64, min(want, c.peerReqq, ourReqq))
	}
	t.picker.SetRate(t.downRate())
	for _, pr := range t.picker.Timeouts(now) {
		if c := t.byID[pr.Peer]; c != nil {
			c.send(peer.Message{Type: peer.Cancel, Index: uint32(pr.Piece), Begin: pr.Begin, Length: pr.Length})
		}
	}
	if now.Sub(t.lastChoke) >= chokeInterval {
		t.rechoke(now)
	}
	for c := range t.conns {
		t.updateInterest(c)
		t.fill(c, now)
	}
	t.syncPins()
	t.connectMore(now)
	t.refreshStats(now)
}

func (t *Torrent) downRate() float64 {
	var r float64
	for c := range t.conns {
		r += c.down.value
	}
	return r
}

func (t *Torrent) refreshStats(now time.Time) {
	s := Stats{
		Name:        t.info.Name,
		InfoHash:    t.infoHash,
		Pieces:      t.info.NumPieces(),
		TotalLength: t.info.TotalLength,
		Peers:       len(t.conns),
		KnownPeers:  len(t.candidates),
		Complete:    t.isComplete,
	}
	for c := range t.conns {
		s.DownloadRate += c.down.value
		s.UploadRate += c.up.value
		if t.peerIsSeed(c) {
			s.Seeds++
		}
	}
	t.statsMu.Lock()
	t.stats = s
	t.statsMu.Unlock()
}

// addConn adopts a handshaken connection.
func (t *Torrent) addConn(nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool) {
	if t.isBanned(addr.Addr()) || len(t.conns) >= t.client.cfg.MaxConnsPerTorrent {
		nc.Close()
		return
	}
	for c := range t.conns {
		if c.peerID == pid {
			nc.Close() // already connected to this peer
			return
		}
	}
	t.nextPeerID++
	c := newConn(t, nc, addr, pid, rsv, incoming, t.nextPeerID)
	t.conns[c] = struct{}{}
	t.byID[c.id] = c
	t.picker.AddPeer(c.id)
	if cand := t.candidates[addr]; cand != nil && !incoming {
		cand.connected = true
		cand.failures = 0
	}
	maxMsg := max(peer.DefaultMaxMessageLength, (t.info.NumPieces()+7)/8+16)
	c.start(maxMsg)
	t.sendIntro(c)
}

// sendIntro sends what we have and the extension handshake.
func (t *Torrent) sendIntro(c *conn) {
	n := t.numHave.Load()
	switch {
	case c.fast && n == int64(t.info.NumPieces()):
		c.send(peer.Message{Type: peer.HaveAll})
	case c.fast && n == 0:
		c.send(peer.Message{Type: peer.HaveNone})
	case n > 0:
		c.send(peer.Message{Type: peer.Bitfield, Bitfield: t.bitfield()})
	}
	if c.ext {
		h := peer.ExtendedHandshake{
			M:    map[string]int{},
			V:    "swarmfs " + Version,
			Reqq: ourReqq,
			Port: int(t.client.port),
		}
		if ip := c.addr.Addr(); ip.IsValid() {
			h.YourIP = string(ip.AsSlice())
		}
		if b, err := h.Marshal(); err == nil {
			c.send(peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: b})
		}
	}
}

// bitfield encodes our verified pieces, BEP 3 bit order.
func (t *Torrent) bitfield() []byte {
	n := t.info.NumPieces()
	b := make([]byte, (n+7)/8)
	for i := 0; i < n; i++ {
		if t.HavePiece(i) {
			b[i/8] |= 0x80 >> (uint(i) % 8)
		}
	}
	return b
}

// removeConn forgets a closed connection.
func (t *Torrent) removeConn(c *conn) {
	if c.removed {
		return
	}
	c.removed = true
	c.close(nil)
	delete(t.conns, c)
	delete(t.byID, c.id)
	t.picker.RemovePeer(c.id)
	if cand := t.candidates[c.addr]; cand != nil && !c.incoming {
		cand.connected = false
		cand.lastSeen = time.Now()
		if time.Since(c.started) < 30*time.Second {
			cand.failures++ // a peer that drops us at once is worth less
		}
		cand.nextTry = time.Now().Add(backoff(cand.failures))
	}
	c.dropUploads()
	// The reader goroutine ends on its own now that the socket is closed;
	// waiting for it here could deadlock on a post, so shutdown waits instead.
	go c.wg.Wait()
	t.fillAll()
}

// violation disconnects a peer that broke the protocol.
func (t *Torrent) violation(c *conn, format string, args ...any) {
	err := fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
	t.client.logf("%s: %s: %v", t.name(), c.addr, err)
	c.close(err)
	t.removeConn(c)
}

// onMessage handles one message from c on the loop.
func (t *Torrent) onMessage(c *conn, m *peer.Message) {
	if c.removed {
		if m.Type == peer.Piece {
			putBlockBuf(m.Block)
		}
		return
	}
	// The extension handshake may precede the bitfield (libtorrent sends it
	// first), so only other messages count as the first one.
	first := !c.gotFirst
	if m.Type != peer.Extended {
		c.gotFirst = true
	}
	n := t.info.NumPieces()
	now := time.Now()
	switch m.Type {
	case peer.Choke:
		c.peerChoking = true
		t.picker.PeerChoked(c.id, true)
	case peer.Unchoke:
		c.peerChoking = false
		t.picker.PeerChoked(c.id, false)
		t.fill(c, now)
	case peer.Interested:
		c.peerInterested = true
		t.unchokeIfFree(c, now)
	case peer.NotInterested:
		c.peerInterested = false
	case peer.Have:
		if int(m.Index) >= n {
			t.violation(c, "have %d of %d pieces", m.Index, n)
			return
		}
		t.picker.PeerHave(c.id, int(m.Index))
		t.notePeerHas(c, int(m.Index))
		t.updateInterest(c)
		t.fill(c, now)
	case peer.Bitfield:
		if !first {
			t.violation(c, "bitfield after the first message")
			return
		}
		if err := peer.CheckBitfield(m.Bitfield, n); err != nil {
			t.violation(c, "%v", err)
			return
		}
		t.picker.PeerBitfield(c.id, m.Bitfield)
		c.bits = m.Bitfield
		c.numHave = 0
		for i := 0; i < n; i++ {
			if c.bits[i/8]&(0x80>>(uint(i)%8)) != 0 {
				c.numHave++
			}
		}
		t.updateInterest(c)
	case peer.HaveAll, peer.HaveNone:
		if !c.fast || !first {
			t.violation(c, "%v not allowed here", m.Type)
			return
		}
		if m.Type == peer.HaveAll {
			t.picker.PeerHaveAll(c.id)
			c.numHave = n
		}
		t.updateInterest(c)
	case peer.Request:
		t.onRequest(c, m)
	case peer.Cancel:
		c.cancelUpload(m.Index, m.Begin, m.Length)
	case peer.Piece:
		t.onPiece(c, m, now)
	case peer.Reject:
		if !c.fast {
			t.violation(c, "reject without the fast extension")
			return
		}
		t.picker.RequestRejected(c.id, picker.Request{Piece: int(m.Index), Begin: m.Begin, Length: m.Length})
		t.fill(c, now)
	case peer.AllowedFast:
		if int(m.Index) < n {
			t.picker.PeerAllowedFast(c.id, int(m.Index))
			t.fill(c, now)
		}
	case peer.Suggest, peer.Port:
		// Hints we do not act on yet.
	case peer.Extended:
		t.onExtended(c, m)
	}
	if !c.removed && t.isComplete && t.peerIsSeed(c) {
		c.close(errBothSeeding)
		t.removeConn(c)
	}
}

func (t *Torrent) onExtended(c *conn, m *peer.Message) {
	if !c.ext {
		t.violation(c, "extended message without BEP 10")
		return
	}
	if m.ExtendedID != peer.ExtHandshakeID {
		return // extensions we did not announce
	}
	h, err := peer.ParseExtendedHandshake(m.Payload)
	if err != nil {
		t.violation(c, "extension handshake: %v", err)
		return
	}
	c.peerExt = h
	c.extIDs = h.M
	if h.Reqq > 0 {
		c.peerReqq = min(h.Reqq, ourReqq)
	}
}

// onRequest validates and queues an upload request.
func (t *Torrent) onRequest(c *conn, m *peer.Message) {
	n := t.info.NumPieces()
	if int(m.Index) >= n || m.Length == 0 || m.Length > maxBlockRequest ||
		int64(m.Begin)+int64(m.Length) > t.info.PieceLen(int(m.Index)) {
		t.violation(c, "request %d+%d/%d out of range", m.Index, m.Begin, m.Length)
		return
	}
	reject := func() {
		if c.fast {
			c.send(peer.Message{Type: peer.Reject, Index: m.Index, Begin: m.Begin, Length: m.Length})
		}
	}
	if c.amChoking || !t.HavePiece(int(m.Index)) {
		reject()
		return
	}
	if !c.queueUpload(*m) {
		reject()
	}
}

// updateInterest tells the peer whether we want something it has.
func (t *Torrent) updateInterest(c *conn) {
	want := t.picker.Interesting(c.id)
	if want != c.amInterested {
		c.amInterested = want
		if want {
			c.send(peer.Message{Type: peer.Interested})
		} else {
			c.send(peer.Message{Type: peer.NotInterested})
		}
	}
}

// fill tops up c's request pipeline.
func (t *Torrent) fill(c *conn, now time.Time) {
	if c.removed {
		return
	}
	if t.hashing >= maxHashBacklog {
		return // pieceHashed refills once the disk has caught up
	}
	free := c.pipeline - t.picker.Outstanding(c.id)
	if free <= 0 {
		return
	}
	reqs := t.picker.Next(c.id, now, free)
	if len(reqs) == 0 {
		return
	}
	c.wmu.Lock()
	for _, r := range reqs {
		c.wq = append(c.wq, peer.Message{Type: peer.Request, Index: uint32(r.Piece), Begin: r.Begin, Length: r.Length})
	}
	c.wmu.Unlock()
	c.poke()
}

func (t *Torrent) fillAll() {
	now := time.Now()
	for c := range t.conns {
		t.fill(c, now)
	}
}

func (t *Torrent) peerIsSeed(c *conn) bool {
	return c.numHave >= t.info.NumPieces()
}

// notePeerHas records a piece the peer announced, for seed detection.
func (t *Torrent) notePeerHas(c *conn, i int) {
	if c.bits == nil {
		c.bits = make([]byte, (t.info.NumPieces()+7)/8)
	}
	if c.bits[i/8]&(0x80>>(uint(i)%8)) == 0 {
		c.bits[i/8] |= 0x80 >> (uint(i) % 8)
		c.numHave++
	}
}

var (
	errBanned      = errors.New("banned")
	errBothSeeding = errors.New("both seeding")
)
