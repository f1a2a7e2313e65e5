package engine

import (
	"net/netip"
	"runtime"
	"sort"
	"time"
)

// candidate is a peer address we may dial. Loop-owned.
type candidate struct {
	addr      netip.AddrPort
	added     time.Time
	lastSeen  time.Time // last time a connection to it ended or it was reported
	nextTry   time.Time
	failures  int
	dialing   bool
	connected bool
}

// maxCandidates bounds the addresses kept per torrent: trackers, DHT and PEX
// can all be hostile, and a few hundred good peers are plenty.
const maxCandidates = 2000

func numCPU() int { return runtime.NumCPU() }

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
		if !p.IsValid() || p.Port() == 0 || t.isBanned(p.Addr()) {
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

func (t *Torrent) dropWorstCandidate() {
	var worst *candidate
	for _, c := range t.candidates {
		if c.dialing || c.connected {
			continue
		}
		if worst == nil || c.failures > worst.failures || c.failures == worst.failures && c.lastSeen.Before(worst.lastSeen) {
			worst = c
		}
	}
	if worst != nil {
		delete(t.candidates, worst.addr)
	}
}

// connectMore dials candidates while there is room: peers that worked most
// recently first, failed ones after their back-off.
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
		if ready[i].failures != ready[j].failures {
			return ready[i].failures < ready[j].failures
		}
		return ready[i].lastSeen.After(ready[j].lastSeen)
	})
	for _, c := range ready[:min(room, len(ready))] {
		t.startDial(c)
	}
}

func (t *Torrent) startDial(cand *candidate) {
	cand.dialing = true
	t.dialing++
	addr := cand.addr
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		nc, pid, rsv, err := t.dial(t.ctx, addr)
		ok := t.post(func() {
			t.dialing--
			cand.dialing = false
			if err != nil {
				cand.failures++
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
