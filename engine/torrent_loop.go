package engine

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/picker"
)

const (
	// minPipeline and maxPipeline bound the requests outstanding per peer:
	// 1 MiB to 4 MiB in flight. 4 MiB covers 40 MB/s at 100 ms of round
	// trip; more only costs memory (measured: pipelines of 1000 blocks held
	// 77 MB of piece buffers live while streaming from one fast peer).
	// maxSlowPipeline (8 MiB) is for a peer that keeps our requests long
	// but serves them all: transmission answers every 500 ms, so a
	// pipeline of P blocks gets at most 2P a second from it.
	minPipeline     = 64
	maxPipeline     = 256
	maxSlowPipeline = 512
	// slowAnswer is the mean wait of a request (outstanding bytes over the
	// rate, Little's law) past which a peer gets maxSlowPipeline.
	slowAnswer = 250 * time.Millisecond
)

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
		case <-t.storePoke:
			t.reconcileStore()
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
	t.dropParked()
}

func (t *Torrent) tick(now time.Time) {
	for c := range t.conns {
		last, lastAt := c.down.last, c.down.at
		c.down.update(c.downloaded.Load(), now)
		c.up.update(c.uploaded.Load(), now)
		c.pipeline = t.pipelineFor(c, last, lastAt, now)
	}
	if t.picker != nil {
		t.picker.SetRate(t.downRate())
		t.sendCancels(t.picker.Timeouts(now))
		if now.Sub(t.lastChoke) >= chokeInterval {
			t.rechoke(now)
		}
		for c := range t.conns {
			t.updateInterest(c)
			t.fill(c, now)
		}
		t.syncPins()
		t.storeTick(now)
	} else {
		t.metaTick(now)
	}
	t.pexTick(now)
	t.reviewPeers(now)
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
		Name:       t.name(),
		InfoHash:   t.infoHash,
		Peers:      len(t.conns),
		KnownPeers: len(t.candidates),
		Complete:   t.isComplete,
	}
	if t.picker != nil {
		s.HasInfo = true
		s.Pieces = t.info.NumPieces()
		s.TotalLength = t.info.TotalLength
		s.Requests = RequestCounters(t.picker.Counters())
	}
	for c := range t.conns {
		s.DownloadRate += c.down.value
		s.UploadRate += c.up.value
		if t.peerIsSeed(c) {
			s.Seeds++
		}
		if c.encrypted {
			s.EncryptedPeers++
		} else {
			s.PlainPeers++
		}
		if transportOf(c.nc) == overUTP {
			s.UTPPeers++
		} else {
			s.TCPPeers++
		}
	}
	t.statsMu.Lock()
	t.stats = s
	t.statsMu.Unlock()
}

// addConn adopts a handshaken connection.
func (t *Torrent) addConn(nc net.Conn, addr netip.AddrPort, pid [20]byte, rsv peer.Reserved, incoming bool) {
	if t.isBanned(addr.Addr()) {
		t.client.logf("%s: %s: refused after the handshake: banned", t.name(), addr)
		nc.Close()
		return
	}
	cand := t.candidates[addr]
	var inherit *candidate // the candidate of a duplicate this one replaces
	for o := range t.conns {
		if o.peerID != pid {
			continue
		}
		// Already connected to this peer. When both sides dialled at once,
		// both must keep the same connection: the one opened by the side
		// with the lower peer ID.
		ours := bytes.Compare(t.client.peerID[:], pid[:]) < 0
		if o.incoming == incoming || !o.incoming == ours {
			t.client.logf("%s: %s: refused: already connected to this peer at %s", t.name(), addr, o.addr)
			nc.Close()
			if cand != nil && !incoming {
				if o.cand == nil && o.addr.Addr() == addr.Addr() {
					o.cand, cand.connected = cand, true
				} else {
					cand.nextTry = time.Now().Add(duplicateBackoff)
				}
			}
			return
		}
		inherit, o.cand = o.cand, nil
		o.close(errDuplicate)
		t.removeConn(o)
		break
	}
	if err := t.admit(addr, time.Now()); err != nil {
		t.client.refusedLog.logf(t.client, "%s: %s: refused: %v", t.name(), addr, err)
		nc.Close()
		if cand != nil && !incoming {
			cand.nextTry = later(cand.nextTry, time.Now().Add(backoff(1)))
		}
		return
	}
	t.nextPeerID++
	c := newConn(t, nc, addr, pid, rsv, incoming, t.nextPeerID)
	t.conns[c] = struct{}{}
	t.byID[c.id] = c
	t.numConns.Store(int32(len(t.conns)))
	if t.picker != nil {
		t.picker.AddPeer(c.id)
	}
	if cand != nil && !incoming {
		c.cand = cand
		cand.connected = true
		cand.failures = 0
		cand.lastConnected = time.Now()
	} else if inherit != nil && t.candidates[inherit.addr] == inherit {
		c.cand = inherit
		inherit.connected = true
	}
	t.logConnected(c)
	c.start(t.maxMessage())
	t.sendIntro(c)
}

// pipelineFor sizes c's request pipeline at a tick: two seconds of its
// rate in flight (the smoothed rate, or the last second's when higher;
// the picker queues at most a second of work on a peer, this is the
// ceiling), within a bound and within what the peer accepts (transmission
// rejects the reqq-th request). A peer that serves in batches delivers at
// most a pipeline per batch (transmission: every 500 ms), so the pipeline
// must outgrow rate × period for the rate to grow at all: this way it
// grows several-fold a tick until the peer or the bound says stop. The
// bound is maxSlowPipeline for a peer that keeps requests long
// (slowAnswer), else maxPipeline: every outstanding block holds a share of
// a piece buffer.
func (t *Torrent) pipelineFor(c *conn, last int64, lastAt, now time.Time) int {
	rate := c.down.value
	if dt := now.Sub(lastAt).Seconds(); !lastAt.IsZero() && dt > 0 {
		rate = max(rate, float64(c.down.last-last)/dt)
	}
	bound := maxPipeline
	if t.picker != nil && rate > 0 {
		wait := float64(t.picker.Outstanding(c.id)*peer.BlockSize) / rate
		if wait >= slowAnswer.Seconds() {
			bound = maxSlowPipeline
		}
	}
	want := int(2*rate/float64(peer.BlockSize)) + 16
	return max(1, min(max(minPipeline, min(want, bound)), c.peerReqq-1))
}

// duplicateBackoff is how long a candidate that turned out to be a peer we
// are already connected to (under another address) is left alone.
const duplicateBackoff = 10 * time.Minute

// maxMessage bounds a message from a peer: room for a block, or for the
// bitfield of the torrent (before the info is known, of the largest torrent
// whose info dictionary we would accept).
func (t *Torrent) maxMessage() int {
	n := t.client.cfg.MaxMetadataSize / 20 // a piece costs 20 bytes of info
	if t.picker != nil {
		n = t.info.NumPieces()
	}
	return max(peer.DefaultMaxMessageLength, (n+7)/8+16)
}

// sendIntro sends what we have, the extension handshake and our DHT port.
func (t *Torrent) sendIntro(c *conn) {
	if t.picker == nil {
		// No info yet: we have nothing. Without the fast extension,
		// saying nothing says that.
		if c.fast {
			c.send(peer.Message{Type: peer.HaveNone})
		}
	} else {
		n := t.numHave.Load()
		switch {
		case c.fast && n == int64(t.info.NumPieces()):
			c.send(peer.Message{Type: peer.HaveAll})
		case c.fast && n == 0:
			c.send(peer.Message{Type: peer.HaveNone})
		case n > 0:
			c.send(peer.Message{Type: peer.Bitfield, Bitfield: t.bitfield()})
		}
	}
	if c.ext {
		t.sendExtHandshake(c)
	}
	if c.dht {
		c.send(peer.Message{Type: peer.Port, Port: t.client.dht.Addr().Port()})
	}
}

// Our extended message ids: what peers send ut_pex and ut_metadata
// messages to us under (libtorrent uses the same).
const (
	extPexID      = 1
	extMetadataID = 2
)

// sendExtHandshake sends the BEP 10 handshake: the extensions we speak and,
// once known, the size of the info dictionary. It is sent again when a
// magnet's info arrives.
func (t *Torrent) sendExtHandshake(c *conn) {
	m := map[string]int{peer.ExtMetadata: extMetadataID, peer.ExtPex: extPexID}
	if !t.pexAllowed() {
		m[peer.ExtPex] = 0
	}
	h := peer.ExtendedHandshake{
		M:            m,
		V:            "swarmfs " + Version,
		Reqq:         ourReqq,
		Port:         int(t.client.port),
		MetadataSize: len(t.infoBytes),
	}
	if ip := c.addr.Addr(); ip.IsValid() {
		h.YourIP = string(ip.AsSlice())
	}
	if b, err := h.Marshal(); err == nil {
		c.send(peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: b})
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
	t.logClosed(c)
	delete(t.conns, c)
	delete(t.byID, c.id)
	t.numConns.Store(int32(len(t.conns)))
	if t.picker != nil {
		t.picker.RemovePeer(c.id)
	} else {
		t.metaConnGone(c)
	}
	if cand := c.cand; cand != nil && t.candidates[cand.addr] == cand {
		now := time.Now()
		cand.connected = false
		cand.lastSeen = now
		if !c.incoming {
			if now.Sub(c.started) < 30*time.Second {
				cand.failures++ // a peer that drops us at once is worth less
			}
			cand.nextTry = now.Add(backoff(cand.failures))
		}
	}
	c.dropUploads()
	// The reader goroutine ends on its own now that the socket is closed;
	// waiting for it here could deadlock on a post, so the torrent's
	// WaitGroup, which close waits for, waits for it instead.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		c.wg.Wait()
	}()
	t.fillAll()
}

// updateInterest tells the peer whether we want something it has.
func (t *Torrent) updateInterest(c *conn) {
	if t.picker == nil {
		return
	}
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
	if c.removed || t.picker == nil {
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
	// Next may withdraw queued requests to make room for urgent ones.
	t.sendCancels(t.picker.Cancels())
	if len(reqs) == 0 {
		return
	}
	c.sendRequests(reqs)
}

// sendCancels tells peers about requests the picker withdrew (after a seek,
// for an urgent read, or because they timed out).
func (t *Torrent) sendCancels(prs []picker.PeerRequest) {
	for _, pr := range prs {
		if c := t.byID[pr.Peer]; c != nil {
			c.send(peer.Message{Type: peer.Cancel, Index: uint32(pr.Piece), Begin: pr.Begin, Length: pr.Length})
		}
	}
}

func (t *Torrent) fillAll() {
	if t.picker == nil {
		return
	}
	now := time.Now()
	for c := range t.conns {
		t.fill(c, now)
	}
}

func (t *Torrent) peerIsSeed(c *conn) bool {
	return t.picker != nil && c.numHave >= t.info.NumPieces()
}

var (
	errBanned      = errors.New("banned")
	errDuplicate   = errors.New("duplicate connection")
	errBothSeeding = errors.New("both seeding")
)
