package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Lookup parameters.
const (
	alpha            = 3              // parallel queries
	maxInflight      = 8              // including queries counted as slow
	maxCands         = 8 * bucketSize // candidates kept, nearest first
	maxLookupQueries = 256            // queries one lookup may send
	maxNodesPerReply = 16             // nodes taken from one reply
	maxKnownAddrs    = 4096           // addresses one lookup remembers
	maxPeersSeen     = 10000          // peers one lookup de-duplicates
	bootResolveEvery = 30 * time.Minute
)

type candState uint8

const (
	candFresh candState = iota
	candAsked
	candAnswered
	candFailed
)

// cand is a node a lookup has heard of. Seeds (bootstrap routers) start
// without an ID.
type cand struct {
	nodeInfo
	hasID bool
	state candState
	token string
	asked time.Time
}

type lookupResult struct {
	c   *cand
	r   *msgReturn
	err error
}

// lookup is one iterative Kademlia search. It is owned by the goroutine
// running Node.lookup and needs no lock.
type lookup struct {
	n        *Node
	fam      family // of every node it asks
	target   [idLen]byte
	cands    []*cand // with IDs, nearest first, at most maxCands
	seeds    []*cand // without IDs until they answer
	known    map[netip.AddrPort]bool
	inflight map[*cand]struct{}
	queries  int
}

// lookup runs an iterative find_node or get_peers towards target among
// the nodes of family f (which the node serves), alpha queries at a time, nearest candidates first, until the bucketSize
// nearest candidates that did not fail have all answered. onReply, if not
// nil, sees every answer, on this goroutine. It returns the nearest
// candidates that answered, nearest first.
func (n *Node) lookup(ctx context.Context, f family, target [idLen]byte, method string, seeds []netip.AddrPort, onReply func(*cand, *msgReturn)) ([]*cand, error) {
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	l := &lookup{n: n, fam: f, target: target, known: make(map[netip.AddrPort]bool), inflight: make(map[*cand]struct{})}
	n.mu.Lock()
	start := n.tables[f].closest(target, 2*bucketSize, false, n.now())
	n.mu.Unlock()
	for _, ni := range start {
		l.addCand(ni)
	}
	for _, a := range seeds {
		if famOf(a.Addr()) == f && !l.known[a] {
			l.known[a] = true
			l.seeds = append(l.seeds, &cand{nodeInfo: nodeInfo{Addr: a}})
		}
	}

	qctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	results := make(chan lookupResult, maxInflight)
	slowAfter := max(n.cfg.QueryTimeout/2, 20*time.Millisecond)
	tick := time.NewTicker(slowAfter / 2)
	defer tick.Stop()

	for {
		now := time.Now()
		for l.queries < maxLookupQueries && len(l.inflight) < maxInflight && l.active(now, slowAfter) < alpha {
			c := l.next()
			if c == nil {
				break
			}
			c.state, c.asked = candAsked, now
			l.inflight[c] = struct{}{}
			l.queries++
			a := &msgArgs{}
			if method == qGetPeers {
				a.InfoHash = string(target[:])
			} else {
				a.Target = string(target[:])
			}
			wg.Add(1)
			go func(c *cand) {
				defer wg.Done()
				r, err := n.query(qctx, c.Addr, method, a)
				results <- lookupResult{c, r, err} // buffered for maxInflight
			}(c)
		}
		if l.done() || len(l.inflight) == 0 {
			break
		}
		select {
		case res := <-results:
			delete(l.inflight, res.c)
			l.handle(res, onReply)
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.ctx.Done():
			return nil, ErrClosed
		}
	}
	// Queries failed by a cancelled ctx end the loop as fast as ctx.Done
	// does: the caller's cancellation, not "no node answered", is why.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*cand
	for _, c := range l.cands {
		if len(out) == bucketSize {
			break
		}
		if c.state == candAnswered {
			out = append(out, c)
		}
	}
	return out, nil
}

// active counts queries in flight that are not yet slow: a slow node does
// not hold up the lookup, a new query takes its place.
func (l *lookup) active(now time.Time, slowAfter time.Duration) int {
	k := 0
	for c := range l.inflight {
		if now.Sub(c.asked) < slowAfter {
			k++
		}
	}
	return k
}

// next picks the next node to ask: a seed, else the nearest fresh
// candidate among the bucketSize nearest that have not failed.
func (l *lookup) next() *cand {
	for _, c := range l.seeds {
		if c.state == candFresh {
			return c
		}
	}
	k := 0
	for _, c := range l.cands {
		if c.state == candFailed {
			continue
		}
		if c.state == candFresh {
			return c
		}
		if k++; k >= bucketSize {
			break
		}
	}
	return nil
}

// done reports whether the seeds are settled and the bucketSize nearest
// non-failed candidates have all answered.
func (l *lookup) done() bool {
	for _, c := range l.seeds {
		if c.state == candFresh || c.state == candAsked {
			return false
		}
	}
	k := 0
	for _, c := range l.cands {
		if c.state == candFailed {
			continue
		}
		if c.state != candAnswered {
			return false
		}
		if k++; k >= bucketSize {
			break
		}
	}
	return true
}

// addCand inserts ni in distance order, keeping at most maxCands.
func (l *lookup) addCand(ni nodeInfo) *cand {
	if len(l.known) >= maxKnownAddrs {
		return nil
	}
	l.known[ni.Addr] = true
	i := sort.Search(len(l.cands), func(i int) bool { return xorCmp(l.target, l.cands[i].ID, ni.ID) >= 0 })
	if i < len(l.cands) && l.cands[i].ID == ni.ID {
		return nil // one ID, one candidate
	}
	if i >= maxCands {
		return nil
	}
	c := &cand{nodeInfo: ni, hasID: true}
	l.cands = append(l.cands, nil)
	copy(l.cands[i+1:], l.cands[i:])
	l.cands[i] = c
	if len(l.cands) > maxCands {
		l.cands[maxCands] = nil
		l.cands = l.cands[:maxCands]
	}
	return c
}

func (l *lookup) handle(res lookupResult, onReply func(*cand, *msgReturn)) {
	c := res.c
	if res.err != nil {
		c.state = candFailed
		return
	}
	r := res.r
	id, _ := parseID(r.ID) // handleReply checked it
	if id == l.n.id {
		c.state = candFailed // a seed that is ourselves
		return
	}
	if !c.hasID {
		// An answering seed joins the candidates under its real ID.
		c.state = candAnswered
		if ac := l.addCand(nodeInfo{ID: id, Addr: c.Addr}); ac != nil {
			ac.state, ac.token = candAnswered, boundedToken(r.Token)
			c = ac
		}
	} else {
		c.state = candAnswered
		c.token = boundedToken(r.Token)
	}
	list := r.Nodes
	if l.fam == fam6 {
		list = r.Nodes6
	}
	nodes, _ := parseNodes(list, l.fam == fam6, maxNodesPerReply)
	for _, ni := range nodes {
		if ni.ID == l.n.id || l.known[ni.Addr] || !usableAddr(ni.Addr, c.Addr.Addr()) {
			continue
		}
		l.addCand(ni)
	}
	if onReply != nil {
		onReply(c, r)
	}
}

// boundedToken keeps a token only if it is of a sane size: we echo it
// back in announce_peer and will not be made to send a large one.
func boundedToken(t string) string {
	if len(t) > 64 {
		return ""
	}
	return t
}

// seeds returns the bootstrap addresses of family f when its table is too
// thin to start a lookup from, or always when force is set.
func (n *Node) seeds(ctx context.Context, f family, force bool) []netip.AddrPort {
	n.mu.Lock()
	thin := n.tables[f].count < bucketSize
	n.mu.Unlock()
	if !force && !thin {
		return nil
	}
	var out []netip.AddrPort
	for _, a := range n.resolveBootstrap(ctx) {
		if famOf(a.Addr()) == f {
			out = append(out, a)
		}
	}
	return out
}

// resolveBootstrap turns cfg.Bootstrap into addresses of our families. Names
// are resolved concurrently, each within 5 s; the answer is cached for
// bootResolveEvery, a failure for a minute, so an offline machine does not
// wait on DNS at every lookup. Lookups that start together (a node of both
// families bootstraps each at once) share one resolution.
func (n *Node) resolveBootstrap(ctx context.Context) []netip.AddrPort {
	select {
	case n.resolving <- struct{}{}:
		defer func() { <-n.resolving }()
	case <-ctx.Done():
		return nil
	}
	now := n.now()
	n.mu.Lock()
	if n.bootAddrs != nil && (now.Sub(n.bootResolved) < bootResolveEvery ||
		len(n.bootAddrs) == 0 && now.Sub(n.bootResolved) < time.Minute) {
		out := n.bootAddrs
		n.mu.Unlock()
		return out
	}
	n.mu.Unlock()
	network := "ip"
	switch fams := n.families(); {
	case len(fams) == 2:
	case fams[0] == fam6:
		network = "ip6"
	default:
		network = "ip4"
	}
	lists := make([][]netip.AddrPort, len(n.cfg.Bootstrap))
	var wg sync.WaitGroup
	for i, hp := range n.cfg.Bootstrap {
		if ap, err := netip.ParseAddrPort(hp); err == nil {
			lists[i] = []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
			continue
		}
		host, portStr, err := net.SplitHostPort(hp)
		if err != nil {
			n.logf("dht: bootstrap %q: %v", hp, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			port, err := net.DefaultResolver.LookupPort(rctx, "udp", portStr)
			if err != nil || port <= 0 || port > 65535 {
				n.logf("dht: bootstrap %q: bad port", hp)
				return
			}
			ips, err := net.DefaultResolver.LookupNetIP(rctx, network, host)
			if err != nil {
				n.logf("dht: bootstrap %q: %v", hp, err)
				return
			}
			var per [2]int // at most 4 addresses of each family
			for _, ip := range ips {
				ip = ip.Unmap()
				if f := famOf(ip); per[f] < 4 {
					per[f]++
					lists[i] = append(lists[i], netip.AddrPortFrom(ip, uint16(port)))
				}
			}
		}()
	}
	wg.Wait()
	out := []netip.AddrPort{}
	for _, l := range lists {
		for _, ap := range l {
			if n.tableFor(ap.Addr()) != nil && ap != n.addr && ap.Port() != 0 {
				out = append(out, ap)
			}
		}
	}
	if ctx.Err() == nil {
		n.mu.Lock()
		n.bootAddrs, n.bootResolved = out, now
		n.mu.Unlock()
	}
	return out
}

// Bootstrap joins the network: a find_node lookup for our own ID, started
// from the bootstrap nodes and the routing table (saved nodes included).
// It returns ErrNoNodes (wrapped) if nobody answered.
//
// A node of both families bootstraps each (BEP 32), at once; it fails
// only if both do.
func (n *Node) Bootstrap(ctx context.Context) error {
	return n.bootstrap(ctx, n.families())
}

func (n *Node) bootstrap(ctx context.Context, fams []family) error {
	_, err := n.eachFamily(ctx, fams, func(f family) ([]*cand, error) {
		res, err := n.lookup(ctx, f, n.id, qFindNode, n.seeds(ctx, f, true), nil)
		if err == nil && len(res) == 0 {
			err = ErrNoNodes
		}
		return res, err
	})
	if err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	return nil
}

// eachFamily runs fn for each of fams, concurrently when there are two,
// and returns what those that succeeded returned; when none did, the
// error of the first (ctx's, if it ended). The goroutines are the
// caller's: eachFamily waits for them.
func (n *Node) eachFamily(ctx context.Context, fams []family, fn func(family) ([]*cand, error)) ([]*cand, error) {
	if len(fams) == 1 {
		return fn(fams[0])
	}
	type result struct {
		cands []*cand
		err   error
	}
	results := make([]result, len(fams))
	var wg sync.WaitGroup
	for i, f := range fams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := fn(f)
			results[i] = result{c, err}
		}()
	}
	wg.Wait()
	var out []*cand
	var firstErr error
	ok := false
	for i, r := range results {
		if r.err == nil {
			ok = true
			out = append(out, r.cands...)
		} else if firstErr == nil {
			firstErr = fmt.Errorf("%v: %w", fams[i], r.err)
		}
	}
	if ok {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr == nil {
		firstErr = ErrNoNodes
	}
	return nil, firstErr
}

// GetPeers runs an iterative get_peers lookup for infoHash (one per
// family the node serves, at once) and calls onPeers with each batch of
// peers not seen before in this lookup, never concurrently (on the
// calling goroutine for a node of one family). onPeers must not block for long:
// the lookup waits for it. GetPeers returns when the bucketSize nearest
// nodes have answered (nil), ctx ends (ctx.Err()), the node closes
// (ErrClosed), or no node answered (ErrNoNodes).
func (n *Node) GetPeers(ctx context.Context, infoHash [20]byte, onPeers func([]netip.AddrPort)) error {
	_, err := n.getPeers(ctx, infoHash, onPeers)
	return err
}

func (n *Node) getPeers(ctx context.Context, ih [idLen]byte, onPeers func([]netip.AddrPort)) ([]*cand, error) {
	var mu sync.Mutex // guards seen; serialises onPeers across families
	seen := make(map[netip.AddrPort]struct{})
	onReply := func(c *cand, r *msgReturn) {
		if len(r.Values) == 0 || onPeers == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		var fresh []netip.AddrPort
		for _, p := range parseValues(r.Values, 4*maxValues) {
			p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
			if _, dup := seen[p]; dup || len(seen) >= maxPeersSeen || !usableAddr(p, c.Addr.Addr()) {
				continue
			}
			seen[p] = struct{}{}
			fresh = append(fresh, p)
		}
		if len(fresh) > 0 {
			onPeers(fresh)
		}
	}
	res, err := n.eachFamily(ctx, n.families(), func(f family) ([]*cand, error) {
		res, err := n.lookup(ctx, f, ih, qGetPeers, n.seeds(ctx, f, false), onReply)
		if err == nil && len(res) == 0 {
			err = ErrNoNodes
		}
		return res, err
	})
	if err != nil {
		return nil, fmt.Errorf("dht: get_peers: %w", err)
	}
	return res, nil
}

// Announce runs GetPeers (streaming peers to onPeers as GetPeers does) and
// then sends announce_peer for port to the nearest nodes that handed out a
// token. It returns nil if at least one node accepted the announce.
func (n *Node) Announce(ctx context.Context, infoHash [20]byte, port int, onPeers func([]netip.AddrPort)) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("dht: announce: invalid port %d", port)
	}
	res, err := n.getPeers(ctx, infoHash, onPeers)
	if err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards accepted and lastErr
		accepted int
		lastErr  error = ErrNoNodes
	)
	for _, c := range res {
		if c.token == "" {
			continue
		}
		wg.Add(1)
		go func(c *cand) {
			defer wg.Done()
			_, err := n.query(ctx, c.Addr, qAnnounce, &msgArgs{
				InfoHash: string(infoHash[:]),
				Port:     int64(port),
				Token:    c.token,
			})
			mu.Lock()
			if err == nil {
				accepted++
			} else {
				lastErr = err
			}
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	if accepted == 0 {
		if errors.Is(lastErr, ErrClosed) || ctx.Err() != nil {
			if ctx.Err() != nil {
				lastErr = ctx.Err()
			}
		}
		return fmt.Errorf("dht: announce: no node accepted: %w", lastErr)
	}
	return nil
}
