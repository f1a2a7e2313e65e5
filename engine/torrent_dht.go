package engine

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"
)

// DHT announce schedule: at start, then every dhtInterval while the torrent
// has enough peers (or is complete), every dhtFewInterval while it has a
// few, and after dhtRetry's back-off while the announce fails or an
// incomplete torrent has no peer (or no metadata).
const (
	dhtInterval     = 15 * time.Minute
	dhtFewInterval  = 3 * time.Minute
	dhtFewPeers     = 8
	dhtLookupBudget = 2 * time.Minute // bounds one announce
)

// dhtLoop announces the torrent on the DHT and feeds the peers found to the
// loop, until the torrent stops or turns out to be private.
func (t *Torrent) dhtLoop() {
	defer t.wg.Done()
	d := t.client.dht
	ctx := t.dhtCtx
	fails := 0 // announces in a row that failed or found no use
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if !t.publicSources() {
			return
		}
		var err error
		for _, ih := range t.names() { // a hybrid under both names
			actx, cancel := context.WithTimeout(ctx, dhtLookupBudget)
			if e := d.Announce(actx, ih, int(t.client.port), func(peers []netip.AddrPort) {
				t.post(func() { t.addCandidates(peers) })
			}); e != nil && err == nil {
				err = e
			}
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.client.logf("%s: %v", t.name(), err)
		}
		var wait time.Duration
		complete := false
		select {
		case <-t.complete:
			complete = true // a seed with no peers has nobody to find
		default:
		}
		switch n := t.pub.numConns.Load(); {
		case err != nil || !complete && (n == 0 || !t.hasInfo.Load()):
			fails++
			wait = dhtRetry.after(fails)
		case n < dhtFewPeers:
			wait, fails = dhtFewInterval, 0
		default:
			wait, fails = dhtInterval, 0
		}
		// ±10% so torrents added together do not announce together.
		wait += time.Duration(rand.Int64N(int64(wait)/5+1)) - wait/10
		timer.Reset(wait)
	}
}
