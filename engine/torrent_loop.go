package engine

import "time"

// The torrent's loop: its events, and the work of each second.

// run is the torrent's loop: the only goroutine that touches loop-owned state.
func (t *Torrent) run() {
	defer t.wg.Done()
	defer t.shutdown()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	t.checkComplete()
	t.superStart()
	// Sources already known start now, not at the first tick: a web seed
	// of a torrent downloaded whole (swarmfs get) waited a second.
	t.fillAll()
	for {
		select {
		case f := <-t.events:
			f()
		case <-t.readerQ.poke:
			t.applyReaderOps()
		case <-t.evictions.poke:
			t.reconcileStore()
		case now := <-tick.C:
			t.tick(now)
		case <-t.done:
			return
		}
	}
}

// shutdown closes every connection; close waits for their goroutines,
// which are the torrent's (t.wg).
func (t *Torrent) shutdown() {
	for c := range t.conns {
		c.close(ErrClosed)
	}
	for _, pp := range t.partial {
		putPieceBuf(pp.buf)
	}
	t.partial = nil
	t.dropParked()
	for _, ws := range t.ws.list {
		ws.seed.Close() // a body it keeps open for its next run
	}
}

func (t *Torrent) tick(now time.Time) {
	for c := range t.conns {
		last, lastAt := c.flow.down.last, c.flow.down.at
		c.flow.down.update(c.downloaded.Load(), now)
		c.flow.up.update(c.uploaded.Load(), now)
		c.flow.pipeline = t.pipelineFor(c, last, lastAt, now)
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
		t.webSeedTick(now)
		t.syncPins()
		t.storeTick(now)
		t.checkWaits(now)
		t.superTick(now)
		t.requestLayers(now)
		t.blockTick(now)
	} else {
		t.metaTick(now)
	}
	t.goalTick(now)
	t.uploadOnlyTick(now)
	t.pexTick(now)
	t.reviewPeers(now)
	t.connectMore(now)
	t.refreshStats(now)
}
