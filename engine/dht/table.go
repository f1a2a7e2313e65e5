package dht

import (
	"net/netip"
	"time"
)

// Routing table parameters (BEP 5).
const (
	bucketSize = 8   // k
	maxBuckets = 160 // one per bit of the ID space
	// goodFor is how long a node stays good after it last answered us (or,
	// having answered once, last queried us).
	goodFor = 15 * time.Minute
	// maxFails consecutive unanswered queries make a node bad.
	maxFails = 2
	// dropFails unanswered queries remove a node even without a replacement.
	dropFails = 5
)

// nodeState is a routing table entry's standing (BEP 5).
type nodeState int

const (
	stateGood nodeState = iota
	stateQuestionable
	stateBad
)

// contact is one routing table entry, or a candidate in a bucket's
// replacement cache.
type contact struct {
	nodeInfo
	lastResponse time.Time // zero until the node answers one of our queries
	lastQuery    time.Time // last query it sent us
	lastPing     time.Time // last liveness ping we sent it
	fails        int       // consecutive unanswered queries
	pinging      bool      // a liveness ping is in flight
}

func (c *contact) verified() bool { return !c.lastResponse.IsZero() }

func (c *contact) state(now time.Time) nodeState {
	switch {
	case c.fails >= maxFails:
		return stateBad
	case c.verified() && (now.Sub(c.lastResponse) < goodFor || now.Sub(c.lastQuery) < goodFor):
		return stateGood
	default:
		return stateQuestionable
	}
}

// bucket holds up to bucketSize contacts, plus as many replacement
// candidates waiting for a slot.
type bucket struct {
	nodes       []*contact
	repl        []*contact // most recent last
	lastChanged time.Time  // last time a node here was added or answered
}

// table is a Kademlia routing table of k-buckets. Bucket i < len-1 holds
// the nodes whose IDs share exactly i leading bits with self; the last
// bucket holds all closer nodes and is the only one that splits. The table
// is not safe for concurrent use; the Node's mutex guards it.
type table struct {
	self     [idLen]byte
	maxNodes int
	buckets  []*bucket
	byAddr   map[netip.AddrPort]*contact // table entries (not replacements) by address
	perIP    map[netip.Addr]int          // table entries per public IP
	count    int
}

func newTable(self [idLen]byte, maxNodes int) *table {
	if maxNodes < bucketSize {
		maxNodes = bucketSize
	}
	return &table{
		self:     self,
		maxNodes: maxNodes,
		buckets:  []*bucket{{}},
		byAddr:   make(map[netip.AddrPort]*contact),
		perIP:    make(map[netip.Addr]int),
	}
}

// bucketIndex returns the index of the bucket id belongs in.
func (t *table) bucketIndex(id [idLen]byte) int {
	i := commonPrefixLen(t.self, id)
	if i >= len(t.buckets)-1 {
		return len(t.buckets) - 1
	}
	return i
}

// find returns the table entry with this ID, or nil.
func (t *table) find(id [idLen]byte) *contact {
	for _, c := range t.buckets[t.bucketIndex(id)].nodes {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// limitIP reports whether ip may hold only one table entry: public
// addresses do (a cheap defence against one host posing as many nodes),
// loopback and private ones do not (test networks, LANs).
func limitIP(ip netip.Addr) bool { return !bep42Exempt(ip) }

// seen records that a node was heard from. verified means it answered one
// of our queries from ni.Addr (a source address that cannot be spoofed
// without the transaction ID); otherwise it only sent us a query. It
// returns the questionable nodes the caller should ping because a verified
// newcomer is waiting for their slot, or the newcomer itself when it was
// added unverified; they are marked as being pinged.
func (t *table) seen(ni nodeInfo, verified bool, now time.Time) (ping []nodeInfo) {
	if ni.ID == t.self {
		return nil
	}
	if c := t.find(ni.ID); c != nil {
		if c.Addr != ni.Addr {
			// A known ID at a new address: believe it only when the new address
			// answered us and the old one has gone quiet.
			if !verified || c.state(now) == stateGood {
				return nil
			}
			t.removeLocked(c)
		} else {
			if verified {
				c.lastResponse, c.fails, c.pinging = now, 0, false
				t.buckets[t.bucketIndex(c.ID)].lastChanged = now
			} else {
				c.lastQuery = now
			}
			return nil
		}
	}
	if other := t.byAddr[ni.Addr]; other != nil {
		// Another ID at this address: the node restarted with a new ID, or
		// someone is lying. An answer to our transaction from the address
		// settles it; a query does not.
		if !verified {
			return nil
		}
		t.removeLocked(other)
	}
	if limitIP(ni.Addr.Addr()) && t.perIP[ni.Addr.Addr()] > 0 {
		return nil
	}
	nc := &contact{nodeInfo: ni}
	if verified {
		nc.lastResponse = now
	} else {
		nc.lastQuery = now
	}
	for {
		bi := t.bucketIndex(ni.ID)
		b := t.buckets[bi]
		if len(b.nodes) < bucketSize && t.count < t.maxNodes {
			return t.addNew(b, nc, verified, now)
		}
		if bad := worst(b, now); bad != nil {
			t.removeLocked(bad)
			return t.addNew(b, nc, verified, now)
		}
		if bi == len(t.buckets)-1 && len(t.buckets) < maxBuckets && t.count < t.maxNodes {
			t.split()
			continue
		}
		addReplacement(b, nc)
		if !verified {
			return nil
		}
		for _, c := range b.nodes {
			if !c.pinging && c.state(now) == stateQuestionable {
				c.pinging, c.lastPing = true, now
				ping = append(ping, c.nodeInfo)
			}
		}
		return ping
	}
}

// addNew adds a new contact; one that has not answered us yet is returned
// for an immediate ping, so it is verified (or found dead) quickly.
func (t *table) addNew(b *bucket, c *contact, verified bool, now time.Time) []nodeInfo {
	t.addLocked(b, c, now)
	if verified {
		return nil
	}
	c.pinging, c.lastPing = true, now
	return []nodeInfo{c.nodeInfo}
}

// worst returns the bad node of b that has failed most, or nil.
func worst(b *bucket, now time.Time) *contact {
	var w *contact
	for _, c := range b.nodes {
		if c.state(now) == stateBad && (w == nil || c.fails > w.fails) {
			w = c
		}
	}
	return w
}

// addReplacement remembers c as a candidate for b, evicting the oldest
// unverified candidate (or the oldest one) when the cache is full.
func addReplacement(b *bucket, c *contact) {
	for i, r := range b.repl {
		if r.ID == c.ID || r.Addr == c.Addr {
			b.repl = append(b.repl[:i], b.repl[i+1:]...)
			break
		}
	}
	if len(b.repl) >= bucketSize {
		drop := 0
		for i, r := range b.repl {
			if !r.verified() {
				drop = i
				break
			}
		}
		if !c.verified() && b.repl[drop].verified() {
			return // keep verified candidates over unverified ones
		}
		b.repl = append(b.repl[:drop], b.repl[drop+1:]...)
	}
	b.repl = append(b.repl, c)
}

func (t *table) addLocked(b *bucket, c *contact, now time.Time) {
	b.nodes = append(b.nodes, c)
	b.lastChanged = now
	t.byAddr[c.Addr] = c
	if ip := c.Addr.Addr(); limitIP(ip) {
		t.perIP[ip]++
	}
	t.count++
}

func (t *table) removeLocked(c *contact) {
	b := t.buckets[t.bucketIndex(c.ID)]
	for i, x := range b.nodes {
		if x == c {
			b.nodes = append(b.nodes[:i], b.nodes[i+1:]...)
			delete(t.byAddr, c.Addr)
			if ip := c.Addr.Addr(); limitIP(ip) {
				if t.perIP[ip]--; t.perIP[ip] <= 0 {
					delete(t.perIP, ip)
				}
			}
			t.count--
			return
		}
	}
}

// split divides the last bucket: the nodes sharing more leading bits with
// self than its depth move to a new last bucket.
func (t *table) split() {
	last := t.buckets[len(t.buckets)-1]
	depth := len(t.buckets) - 1
	nb := &bucket{lastChanged: last.lastChanged}
	keep := last.nodes[:0]
	for _, c := range last.nodes {
		if commonPrefixLen(t.self, c.ID) > depth {
			nb.nodes = append(nb.nodes, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(last.nodes[len(keep):])
	last.nodes = keep
	keepR := last.repl[:0]
	for _, c := range last.repl {
		if commonPrefixLen(t.self, c.ID) > depth {
			nb.repl = append(nb.repl, c)
		} else {
			keepR = append(keepR, c)
		}
	}
	clear(last.repl[len(keepR):])
	last.repl = keepR
	t.buckets = append(t.buckets, nb)
}

// failed records that a query to addr went unanswered. A node that turns
// bad gives its slot to the best replacement candidate.
func (t *table) failed(addr netip.AddrPort, now time.Time) {
	c := t.byAddr[addr]
	if c == nil {
		return
	}
	c.fails++
	c.pinging = false
	if !c.verified() {
		// It never answered us: one miss is enough (spoofed queriers and
		// stale saved nodes leave quickly).
		c.fails = max(c.fails, maxFails)
	}
	if c.fails < maxFails {
		return
	}
	b := t.buckets[t.bucketIndex(c.ID)]
	if r := bestReplacement(b); r != nil || c.fails >= dropFails {
		t.removeLocked(c)
		if r != nil {
			for i, x := range b.repl {
				if x == r {
					b.repl = append(b.repl[:i], b.repl[i+1:]...)
					break
				}
			}
			if t.byAddr[r.Addr] == nil && (!limitIP(r.Addr.Addr()) || t.perIP[r.Addr.Addr()] == 0) {
				t.addLocked(b, r, now)
			}
		}
	}
}

// bestReplacement is the most recent verified candidate, else the most
// recent one.
func bestReplacement(b *bucket) *contact {
	for i := len(b.repl) - 1; i >= 0; i-- {
		if b.repl[i].verified() {
			return b.repl[i]
		}
	}
	if len(b.repl) > 0 {
		return b.repl[len(b.repl)-1]
	}
	return nil
}

// closest returns up to n non-bad nodes nearest to target, nearest first.
// verifiedOnly leaves out nodes that never answered us: what we tell
// others must have been seen alive, what we query ourselves need not.
func (t *table) closest(target [idLen]byte, n int, verifiedOnly bool, now time.Time) []nodeInfo {
	out := make([]nodeInfo, 0, n)
	for _, b := range t.buckets {
		for _, c := range b.nodes {
			if c.state(now) == stateBad || (verifiedOnly && !c.verified()) {
				continue
			}
			// insertion into the sorted prefix of length <= n
			if len(out) == n && xorCmp(target, c.ID, out[n-1].ID) >= 0 {
				continue
			}
			if len(out) < n {
				out = append(out, c.nodeInfo)
			} else {
				out[n-1] = c.nodeInfo
			}
			for i := len(out) - 1; i > 0 && xorCmp(target, out[i].ID, out[i-1].ID) < 0; i-- {
				out[i], out[i-1] = out[i-1], out[i]
			}
		}
	}
	return out
}

// questionable returns up to max nodes due a liveness ping (questionable,
// not already being pinged, not pinged in the last minute) and marks them.
func (t *table) questionable(max int, now time.Time) []nodeInfo {
	var out []nodeInfo
	for _, b := range t.buckets {
		for _, c := range b.nodes {
			if len(out) >= max {
				return out
			}
			if !c.pinging && c.state(now) == stateQuestionable && now.Sub(c.lastPing) >= time.Minute {
				c.pinging, c.lastPing = true, now
				out = append(out, c.nodeInfo)
			}
		}
	}
	return out
}

// stale returns the index of a bucket untouched for goodFor, marking it
// touched so it is refreshed once, or -1.
func (t *table) stale(now time.Time) int {
	for i, b := range t.buckets {
		if now.Sub(b.lastChanged) >= goodFor {
			b.lastChanged = now
			return i
		}
	}
	return -1
}

// nodes returns every non-bad entry, verified ones first: what is saved.
func (t *table) nodes(now time.Time) []nodeInfo {
	var v, u []nodeInfo
	for _, b := range t.buckets {
		for _, c := range b.nodes {
			switch {
			case c.state(now) == stateBad:
			case c.verified():
				v = append(v, c.nodeInfo)
			default:
				u = append(u, c.nodeInfo)
			}
		}
	}
	return append(v, u...)
}

// good counts the good entries.
func (t *table) good(now time.Time) int {
	n := 0
	for _, b := range t.buckets {
		for _, c := range b.nodes {
			if c.state(now) == stateGood {
				n++
			}
		}
	}
	return n
}
