package dht

import "time"

// Maintenance bounds.
const (
	pingsPerRound  = 4 // liveness pings started per maintenance round
	maxBootBackoff = 10 * time.Minute
	minBootBackoff = 30 * time.Second
)

// maintainLoop runs the periodic work: token rotation, stored peer expiry,
// liveness pings of questionable nodes, refresh of stale buckets,
// re-bootstrap when the table has no good node, and saving.
func (n *Node) maintainLoop() {
	defer n.wg.Done()
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.maintain()
		}
	}
}

func (n *Node) maintain() {
	now := n.now()
	n.mu.Lock()
	n.tokens.maybeRotate(now)
	if now.Sub(n.lastExpire) >= time.Minute {
		n.store.expire(now)
		n.lastExpire = now
	}
	var ping []nodeInfo
	var lonely []family // served families without a good node
	for _, f := range n.families() {
		tb := n.tables[f]
		ping = append(ping, tb.questionable(pingsPerRound, now)...)
		if !n.refreshing[f] && tb.count > 0 {
			if i := tb.stale(now); i >= 0 {
				target := randomIDWithPrefix(n.id, i)
				n.refreshing[f] = n.goLocked(func() {
					_, _ = n.lookup(n.ctx, f, target, qFindNode, nil, nil)
					n.mu.Lock()
					n.refreshing[f] = false
					n.mu.Unlock()
				})
			}
		}
		if tb.good(now) == 0 {
			lonely = append(lonely, f)
		}
	}
	if !n.booting && len(n.cfg.Bootstrap) > 0 && len(lonely) > 0 && !now.Before(n.nextBoot) {
		n.nextBoot = now.Add(n.bootBackoff)
		n.bootBackoff = min(2*n.bootBackoff, maxBootBackoff)
		n.booting = n.goLocked(func() {
			err := n.bootstrap(n.ctx, lonely)
			n.mu.Lock()
			n.booting = false
			if err == nil {
				n.bootBackoff = minBootBackoff
			}
			n.mu.Unlock()
		})
	}
	saveDue := n.cfg.StatePath != "" && now.Sub(n.lastSave) >= saveEvery
	n.mu.Unlock()
	n.pingAsync(ping)
	if saveDue {
		if err := n.save(); err != nil {
			n.logf("%v", err)
		}
	}
}
