// Package dht is a BEP 5 (Mainline DHT) node: it finds peers for an
// info-hash without a tracker, announces ours, and answers other nodes.
//
// # Concepts
//
//   - Node: one UDP socket, one node ID, one routing table. New binds and
//     starts it; Close stops it. Bootstrap joins the network; GetPeers and
//     Announce run iterative lookups; AddNode feeds in a node learned from
//     a peer's PORT message.
//   - KRPC: bencoded query/response/error messages over UDP (krpc.go).
//     Every datagram goes through Node.handlePacket, which decodes it with
//     the bounded engine/bencode gate; anything malformed is dropped
//     silently and counted in Stats.Dropped.
//   - Routing table (table.go): k-buckets (k = 8) keyed by the length of
//     the prefix an ID shares with ours. Only the bucket covering our own
//     ID splits, up to 160 buckets and Config.MaxNodes entries. A node is
//     good if it answered us in the last 15 minutes (or answered once and
//     queried us in the last 15), bad after two unanswered queries,
//     questionable otherwise. A newcomer to a full bucket waits in the
//     bucket's replacement cache while the questionable nodes are pinged;
//     a node that turns bad gives its slot to the best replacement. Nodes
//     that only queried us enter unverified, are pinged at once, and are
//     never handed to others until they have answered us.
//   - Lookups (lookup.go): alpha = 3 queries in flight (a query older than
//     half the timeout no longer counts, so dead nodes do not stall it),
//     nearest candidates first, done when the 8 nearest candidates that did
//     not fail have all answered. Bootstrap is a find_node for our own ID.
//   - Tokens (token.go): get_peers hands out an HMAC of the requester's IP
//     under a secret that rotates every 5 minutes; announce_peer must bring
//     back a token made for its source IP under the current or previous
//     secret.
//   - Storage (store.go): peers announced to us, for 30 minutes.
//   - State (state.go): node ID and table nodes, saved atomically to
//     Config.StatePath every 5 minutes and on Close, loaded by New. Loaded
//     nodes are questionable until they answer again.
//
// # Who owns what
//
// A Node owns two goroutines: the reader (socket to handlePacket) and the
// maintenance loop (every 5 s: token rotation, peer expiry, liveness pings,
// refresh of buckets untouched for 15 minutes, re-bootstrap with backoff
// while no node is good, periodic save). Background pings, refreshes and
// re-bootstraps are further goroutines of the node. Close cancels them all
// and waits for them. Lookups run on the caller's goroutine; their query
// goroutines belong to the lookup, which waits for them before returning.
// Node.mu guards the table, tokens, storage, rate limiter and the
// transaction map; it is a leaf lock, never held across a socket write, a
// blocking channel operation or a callback.
//
// # Bounds (a hostile network cannot exhaust memory or borrow our bandwidth)
//
//   - Datagrams: at most 4 KiB read; bencode lengths checked before any
//     allocation; at most 16 nodes and 200 peers taken from one reply.
//   - Replies: to a sender that has not answered us from that address (it
//     may be a spoofed victim) at most 4 times the query's size, nodes
//     dropped before values; to a verified node at most 1400 bytes.
//   - Incoming queries: Config.QueryRate per source IP per second, over at
//     most 8192 source IPs per second; the excess is dropped and counted.
//   - Outgoing: at most 256 transactions outstanding (more queries wait),
//     8 background pings, 256 queries and 64 candidates per lookup.
//   - Tables: Config.MaxNodes routing entries plus k replacement candidates
//     per bucket; one entry per public IP; Config.MaxInfoHashes ×
//     Config.MaxPeersPerInfoHash stored peers, evicting the oldest of a
//     random sample when full.
//   - Transactions: 4 random bytes; an answer must come from the address
//     queried, else it is dropped.
//
// # Pitfalls
//
//   - Config.Bootstrap nil means the public routers. Tests must pass a
//     loopback list or an empty non-nil slice.
//   - Addresses in loopback or private ranges are only believed from a node
//     that is itself in such a range: a public node cannot point our
//     lookups (or the engine's peer connections) at our own machine or LAN.
//   - BEP 42 (Config.EnforceNodeID) never applies to loopback, private or
//     link-local addresses, so loopback test networks and LANs work.
//   - BEP 43 (Config.ReadOnly): a read-only node answers no query and marks
//     its queries "ro"; nodes marked "ro" are never added to our table.
//   - onPeers runs on the lookup's goroutine: a slow callback slows the
//     lookup, a blocking one stalls it until ctx ends.
//   - The socket is IPv4 unless Config.Listen names an IPv6 host; "nodes6"
//     (BEP 32) is parsed and, on an IPv4 node, ignored.
package dht
