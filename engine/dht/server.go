package dht

import (
	"net/netip"
)

// handleQuery answers one query from another node. Replies are bounded:
// to a sender that has not answered us from this address (and so may be a
// spoofed victim) a reply is at most ampFactor times the query's size;
// to a verified node at most maxReply bytes.
func (n *Node) handleQuery(from netip.AddrPort, m *msg, reqLen int) {
	n.queriesIn.Add(1)
	now := n.now()
	id, idOK := parseID(m.A.ID)

	var ping []nodeInfo
	defer func() { n.pingAsync(ping) }()
	n.mu.Lock()
	if !n.limiter.allow(from.Addr(), now) {
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	if n.cfg.ReadOnly { // BEP 43: a read-only node answers nothing
		n.mu.Unlock()
		return
	}
	if !idOK {
		n.mu.Unlock()
		n.send(from, errorMsg(m.T, ErrCodeProtocol, "invalid id"))
		return
	}
	// A read-only node (BEP 43) asks not to be added; neither is our own ID.
	tb := n.tableFor(from.Addr())
	if tb != nil && m.RO == 0 && id != n.id && n.idAcceptable(id, from.Addr()) &&
		usableAddr(from, netip.Addr{}) {
		ping = tb.seen(nodeInfo{ID: id, Addr: from}, false, now)
	}
	budget := maxReply
	if c := n.contactLocked(from); c == nil || c.ID != id || !c.verified() {
		budget = min(maxReply, ampFactor*reqLen)
	}
	want := wanted(m.A.Want, from.Addr())
	closest := func(target [idLen]byte) [2][]nodeInfo {
		var out [2][]nodeInfo
		for f, tb := range n.tables {
			if tb != nil && want[f] {
				out[f] = tb.closest(target, bucketSize, true, now)
			}
		}
		return out
	}

	r := &msgReturn{ID: string(n.id[:])}
	var nodes [2][]nodeInfo // by family
	var peers []netip.AddrPort
	errCode, errText := 0, ""
	switch m.Q {
	case qPing:
	case qFindNode:
		target, ok := parseID(m.A.Target)
		if !ok {
			errCode, errText = ErrCodeProtocol, "invalid target"
			break
		}
		nodes = closest(target)
	case qGetPeers:
		ih, ok := parseID(m.A.InfoHash)
		if !ok {
			errCode, errText = ErrCodeProtocol, "invalid info_hash"
			break
		}
		r.Token = n.tokens.make(from.Addr())
		peers = n.store.get(ih, famOf(from.Addr()), maxValues, now)
		nodes = closest(ih)
	case qAnnounce:
		ih, ok := parseID(m.A.InfoHash)
		if !ok {
			errCode, errText = ErrCodeProtocol, "invalid info_hash"
			break
		}
		if !n.tokens.valid(m.A.Token, from.Addr()) {
			errCode, errText = ErrCodeProtocol, "bad token"
			break
		}
		port := m.A.Port
		if m.A.ImpliedPort != 0 {
			port = int64(from.Port())
		}
		if port <= 0 || port > 65535 {
			errCode, errText = ErrCodeProtocol, "invalid port"
			break
		}
		n.store.add(ih, netip.AddrPortFrom(from.Addr(), uint16(port)), now)
	default:
		errCode, errText = ErrCodeMethod, "method unknown"
	}
	n.mu.Unlock()

	if errCode != 0 {
		n.send(from, errorMsg(m.T, errCode, errText))
		return
	}
	n.send(from, fitReply(m.T, r, nodes, peers, from, n.version, budget))
}

// wanted says which families' nodes a query asks for: BEP 32's "want"
// ("n4", "n6"), else the family of the address it came from.
func wanted(want []string, from netip.Addr) [2]bool {
	var w [2]bool
	for _, s := range want {
		switch s {
		case "n4":
			w[fam4] = true
		case "n6":
			w[fam6] = true
		}
	}
	if !w[fam4] && !w[fam6] {
		w[famOf(from)] = true
	}
	return w
}

// fitReply builds the response, dropping nodes (of the asker's other
// family first) and then values until the encoded message fits budget.
// Peers are worth more to the asker than nodes, so nodes go first.
func fitReply(t string, r *msgReturn, nodes [2][]nodeInfo, peers []netip.AddrPort, to netip.AddrPort, version string, budget int) *msg {
	m := &msg{T: t, Y: "r", R: r, IP: compactAddr(to), V: version}
	own := famOf(to.Addr())
	for {
		r.Nodes, r.Nodes6 = "", ""
		for f, list := range nodes {
			if len(list) == 0 {
				continue
			}
			b := make([]byte, 0, len(list)*nodeInfo6Len)
			for _, ni := range list {
				b = appendNode(b, ni)
			}
			if family(f) == fam6 {
				r.Nodes6 = string(b)
			} else {
				r.Nodes = string(b)
			}
		}
		r.Values = r.Values[:0]
		for _, p := range peers {
			r.Values = append(r.Values, compactAddr(p))
		}
		if len(r.Values) == 0 {
			r.Values = nil
		}
		size := len(encodeMsg(m))
		if size <= budget {
			return m
		}
		over := size - budget
		other := 1 - own
		switch {
		case len(nodes[other]) > 0 || len(nodes[own]) > 0:
			f := own
			if len(nodes[other]) > 0 {
				f = other
			}
			size := nodeInfoLen
			if f == fam6 {
				size = nodeInfo6Len
			}
			drop := min(len(nodes[f]), (over+size-1)/size)
			nodes[f] = nodes[f][:len(nodes[f])-drop]
		case len(peers) > 0:
			drop := min(len(peers), (over+peerLen+1)/(peerLen+2))
			peers = peers[:len(peers)-drop]
		default:
			return m // the bare reply: never much bigger than any query
		}
	}
}
