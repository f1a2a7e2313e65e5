package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// candidate is a peer address we may dial, from any source (trackers, the
// DHT, PEX, LSD, the magnet, the caller): one entry per address, whoever
// reported it. Loop-owned.
type candidate struct {
	addr          netip.AddrPort
	added         time.Time
	lastSeen      time.Time // last time a connection to it ended or it was reported
	lastConnected time.Time // last successful handshake with it; zero if never
	nextTry       time.Time
	failures      int
	dialing       bool
	connected     bool       // a connection to it is open (ours, or its own once it told its port)
	wire          wireMethod // the handshake that last worked when we dialled it
	utp           bool       // speaks uTP: PEX said so (flag 0x04), or we reached it over uTP
	metaRedial    bool       // dialled again at once after it took our info dictionary
	named         bool       // the user named it (a --peer, a magnet's x.pe): retried within namedRetryMax, never dropped for room
}

// maxCandidates bounds the addresses kept per torrent: trackers, DHT and PEX
// can all be hostile, and a few hundred good peers are plenty.
const maxCandidates = 2000

// maxFailures is the failure count at which peerRetry reaches its ceiling.
const maxFailures = 7

// backoff is the wait before retrying a peer that failed n times
// (peerRetry).
func backoff(n int) time.Duration { return peerRetry.after(n) }

// namedRetryMax caps the back-off of a peer the user named. Peers from
// trackers, the DHT and PEX come and go by the thousand, and one that
// keeps failing is rightly left alone for up to 16 min; a --peer is most
// often the user's own seedbox or a friend's client, restarted or briefly
// offline, and a mount that waits a quarter of an hour to try it again
// looks broken.
const namedRetryMax = time.Minute

// retryWait is the back-off before dialling c again after n failures in
// a row.
func (c *candidate) retryWait(n int) time.Duration {
	if c.named {
		return min(backoff(n), namedRetryMax)
	}
	return backoff(n)
}

// addNamedPeers adds the peers the user named and marks them as such.
func (t *Torrent) addNamedPeers(peers []netip.AddrPort) {
	t.addCandidates(peers)
	for _, p := range peers {
		if c, ok := t.candidates[netip.AddrPortFrom(p.Addr().Unmap(), p.Port())]; ok {
			c.named = true
		}
	}
}

// addCandidates merges peer addresses from any source.
func (t *Torrent) addCandidates(peers []netip.AddrPort) {
	now := time.Now()
	self := t.client.Addr()
	for _, p := range peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if !p.IsValid() || p.Port() == 0 || p.Addr().IsUnspecified() || p.Addr().IsMulticast() || t.isBanned(p.Addr()) {
			continue
		}
		if p.Port() == self.Port() && (p.Addr() == self.Addr() || p.Addr().IsLoopback() && self.Addr().IsUnspecified()) {
			continue // ourselves, as a tracker reports us back
		}
		if c, ok := t.candidates[p]; ok {
			c.lastSeen = now
			continue
		}
		if len(t.candidates) >= maxCandidates {
			t.dropWorstCandidate()
		}
		t.candidates[p] = &candidate{addr: p, added: now, lastSeen: now}
	}
	t.connectMore(now)
}

// dropWorstCandidate makes room: the candidate that failed most goes
// first; among equals, one we never connected to, then the one reported
// longest ago.
func (t *Torrent) dropWorstCandidate() {
	var worst *candidate
	worse := func(a, b *candidate) bool {
		if a.failures != b.failures {
			return a.failures > b.failures
		}
		if a.lastConnected.IsZero() != b.lastConnected.IsZero() {
			return a.lastConnected.IsZero()
		}
		return a.lastSeen.Before(b.lastSeen)
	}
	for _, c := range t.candidates {
		if c.dialing || c.connected || c.named {
			continue
		}
		if worst == nil || worse(c, worst) {
			worst = c
		}
	}
	if worst != nil {
		delete(t.candidates, worst.addr)
	}
}

// connectMore dials candidates while there is room: those that failed
// least first; among equals, those we were connected to most recently,
// then those reported most recently. Failed ones wait out their back-off.
func (t *Torrent) connectMore(now time.Time) {
	room := t.client.cfg.MaxConnsPerTorrent - len(t.conns) - t.dialing
	if room <= 0 || t.isComplete && !t.opts.DownloadAll && len(t.conns) > 0 || t.goal.retired {
		return
	}
	// Connections and dials per address, within Config.MaxConnsPerIP.
	perIP := make(map[netip.Addr]int, len(t.conns)+t.dialing)
	for c := range t.conns {
		perIP[c.addr.Addr()]++
	}
	var ready []*candidate
	for _, c := range t.candidates {
		if c.dialing {
			perIP[c.addr.Addr()]++
		} else if !c.connected && !now.Before(c.nextTry) && !t.isBanned(c.addr.Addr()) {
			ready = append(ready, c)
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		a, b := ready[i], ready[j]
		if a.failures != b.failures {
			return a.failures < b.failures
		}
		if !a.lastConnected.Equal(b.lastConnected) {
			return a.lastConnected.After(b.lastConnected)
		}
		return a.lastSeen.After(b.lastSeen)
	})
	for _, c := range ready {
		if room == 0 {
			break
		}
		if ip := c.addr.Addr(); perIP[ip] < t.client.maxConnsPerIP(ip) {
			perIP[ip]++
			room--
			t.startDial(c)
		}
	}
}

func (t *Torrent) startDial(cand *candidate) {
	cand.dialing = true
	t.dialing++
	addr, known, knownUTP := cand.addr, cand.wire, cand.utp
	t.logDial(addr, known, knownUTP)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t0 := time.Now()
		nc, pid, rsv, wire, err := t.dial(t.ctx, addr, known, knownUTP)
		took := time.Since(t0)
		ok := t.post(func() {
			t.dialing--
			cand.dialing = false
			if err == nil {
				cand.wire = wire
				cand.utp = cand.utp || transportOf(nc) == overUTP
			}
			if err != nil {
				t.logDialFailed(addr, err)
				cand.failures++
				if errors.Is(err, errSelf) {
					cand.failures = maxFailures // ourselves, under another address
				}
				cand.nextTry = time.Now().Add(dialRetryWait(cand, err, took))
				return
			}
			t.addConn(nc, addr, pid, rsv, false)
		})
		if !ok && nc != nil {
			nc.Close()
		}
	}()
}

// errUseless drops a peer that is not worth its connection slot.
var errUseless = errors.New("useless")

// admit makes room for a new connection with addr, or says why not. A
// torrent keeps at most Config.MaxConnsPerIP connections with one address
// and MaxConnsPerTorrent in all; at either bound, the connection that has
// been useless longest (for evictGrace at least) gives its slot up.
func (t *Torrent) admit(addr netip.AddrPort, now time.Time) error {
	ip := addr.Addr()
	var same []*conn
	for c := range t.conns {
		if c.addr.Addr() == ip {
			same = append(same, c)
		}
	}
	if lim := t.client.maxConnsPerIP(ip); len(same) >= lim {
		v := leastUseful(same, now)
		if v == nil {
			return fmt.Errorf("%d connections with %v already (limit %d)", len(same), ip, lim)
		}
		t.dropPeer(v, fmt.Errorf("%w for %v: its address's slot goes to a newcomer", errUseless, now.Sub(v.flow.lastUseful).Round(time.Second)))
	}
	if len(t.conns) >= t.client.cfg.MaxConnsPerTorrent {
		all := make([]*conn, 0, len(t.conns))
		for c := range t.conns {
			all = append(all, c)
		}
		v := leastUseful(all, now)
		if v == nil {
			return fmt.Errorf("torrent full (%d connections, none useless for %v)", len(t.conns), evictGrace)
		}
		t.dropPeer(v, fmt.Errorf("%w for %v: its slot goes to a newcomer", errUseless, now.Sub(v.flow.lastUseful).Round(time.Second)))
	}
	return nil
}

// leastUseful picks the connection to give up for a newcomer among cs:
// one useless for evictGrace at least; among those, one with no interest
// either way, then the one useless longest. Nil when none may go.
func leastUseful(cs []*conn, now time.Time) *conn {
	var worst *conn
	idle := func(c *conn) bool { return !c.choke.amInterested && !c.choke.peerInterested }
	for _, c := range cs {
		if peerUploadOnly(c) && idle(c) {
			return c // a partial seed with nothing we want (BEP 21): no grace
		}
		if now.Sub(c.flow.lastUseful) < evictGrace {
			continue
		}
		if worst == nil || idle(c) && !idle(worst) ||
			idle(c) == idle(worst) && c.flow.lastUseful.Before(worst.flow.lastUseful) {
			worst = c
		}
	}
	return worst
}

// reviewPeers notes which connections were useful in the last second and,
// when slots are scarce (within a tenth of MaxConnsPerTorrent), drops
// those useless for uselessTimeout, so that candidates and newcomers get
// their slots. Useful means: a block we asked for arrived, a block went
// out, a Have or Bitfield made the peer interesting, or (before a
// magnet's info) it has our metadata requests. Keep-alives and messages
// that change nothing do not count, so a peer cannot hold its slot by
// trickling bytes.
func (t *Torrent) reviewPeers(now time.Time) {
	for c := range t.conns {
		if up := c.uploaded.Load(); up != c.flow.upSeen {
			c.flow.upSeen, c.flow.lastUseful = up, now
		}
		if c.flow.lastPiece.After(c.flow.lastUseful) {
			c.flow.lastUseful = c.flow.lastPiece
		}
		if c.choke.amInterested && !c.flow.interesting || t.metaOut(c) > 0 {
			c.flow.lastUseful = now
		}
		c.flow.interesting = c.choke.amInterested
	}
	if limit := t.client.cfg.MaxConnsPerTorrent; len(t.conns) < limit-limit/10 {
		return
	}
	for c := range t.conns {
		if idle := now.Sub(c.flow.lastUseful); idle > uselessTimeout {
			t.dropPeer(c, fmt.Errorf("%w for %v while slots are scarce", errUseless, idle.Round(time.Second)))
		}
	}
}

// dropPeer closes and forgets a useless connection, saying why in the
// log. Its candidate waits as long as it was useless (15 s at least, 16
// min at most) before it is dialled again: a peer that had nothing for us
// for five minutes is unlikely to have something a moment later.
func (t *Torrent) dropPeer(c *conn, err error) {
	c.drop(err)
	cand := c.cand
	t.removeConn(c)
	if cand != nil && t.candidates[cand.addr] == cand {
		now := time.Now()
		wait := peerRetry.clamp(now.Sub(c.flow.lastUseful))
		cand.nextTry = later(cand.nextTry, now.Add(wait))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
