package engine

import (
	"errors"
	"net/netip"
	"runtime"
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
	connected     bool // a connection to it is open (ours, or its own once it told its port)
}

// maxCandidates bounds the addresses kept per torrent: trackers, DHT and PEX
// can all be hostile, and a few hundred good peers are plenty.
const maxCandidates = 2000

func numCPU() int { return runtime.NumCPU() }

// maxFailures is the back-off ceiling's failure count.
const maxFailures = 7

// backoff is the wait before retrying a peer that failed n times.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := 15 * time.Second << min(n-1, 6) // 15 s .. 16 min
	return d
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
		if c.dialing || c.connected {
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
	if room <= 0 || t.isComplete && !t.opts.DownloadAll && len(t.conns) > 0 {
		return
	}
	var ready []*candidate
	for _, c := range t.candidates {
		if !c.dialing && !c.connected && !now.Before(c.nextTry) && !t.isBanned(c.addr.Addr()) {
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
	for _, c := range ready[:min(room, len(ready))] {
		t.startDial(c)
	}
}

func (t *Torrent) startDial(cand *candidate) {
	cand.dialing = true
	t.dialing++
	addr := cand.addr
	t.logDial(addr)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		nc, pid, rsv, err := t.dial(t.ctx, addr)
		ok := t.post(func() {
			t.dialing--
			cand.dialing = false
			if err != nil {
				t.logDialFailed(addr, err)
				cand.failures++
				if errors.Is(err, errSelf) {
					cand.failures = maxFailures // ourselves, under another address
				}
				cand.nextTry = time.Now().Add(backoff(cand.failures))
				return
			}
			t.addConn(nc, addr, pid, rsv, false)
		})
		if !ok && nc != nil {
			nc.Close()
		}
	}()
}
