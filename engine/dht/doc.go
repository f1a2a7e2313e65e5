// Package dht is a BEP 5 (Mainline DHT) node: it finds peers for an
// info-hash without a tracker, announces ours, and answers other nodes.
//
// # Concepts
//
//   - Node (node.go): one UDP socket, one node ID, one routing table per
//     address family the socket serves (BEP 32). New
//     binds it, loads the saved state and starts it; Close stops it.
//     Bootstrap joins the network; GetPeers and Announce run lookups;
//     AddNode pings a node learned from a peer's PORT message.
//   - KRPC (krpc.go): bencoded query/response/error messages over UDP.
//     Every datagram goes through Node.handlePacket (the fuzz target),
//     which decodes it with the bounded engine/bencode gate; anything
//     malformed is dropped silently and counted in Stats.Dropped. Queries
//     are answered in server.go.
//   - Routing table (table.go), one per address family the socket serves:
//     k-buckets (k = 8) keyed by the length of
//     the prefix an ID shares with ours. Only the bucket covering our own
//     ID splits, up to 160 buckets and Config.MaxNodes entries. A node is
//     good if it answered us in the last 15 minutes (or answered once and
//     queried us in the last 15), bad after two unanswered queries (one if
//     it never answered), questionable otherwise. A newcomer to a full
//     bucket waits in the bucket's replacement cache while the
//     questionable nodes are pinged; a node that turns bad gives its slot
//     to the best replacement. A node that only queried us enters
//     unverified, is pinged at once, and is never handed to others before
//     it answers.
//   - Lookups (lookup.go): alpha = 3 queries in flight (a query older than
//     half the timeout stops counting, so dead nodes do not stall it),
//     nearest candidates first, done when the 8 nearest candidates that did
//     not fail have all answered. Bootstrap is a find_node for our own ID;
//     GetPeers a get_peers; Announce a get_peers followed by announce_peer
//     to the nearest nodes that gave a token.
//   - Tokens (token.go): get_peers hands out an HMAC of the requester's IP
//     under a secret that rotates every 5 minutes; announce_peer must bring
//     back a token made for its source IP under the current or previous
//     secret.
//   - Storage (store.go): peers announced to us, kept 30 minutes.
//   - State (state.go): node ID and table nodes, written atomically to
//     Config.StatePath every 5 minutes and on Close, loaded by New. Loaded
//     nodes are questionable until they answer again.
//   - Maintenance (maintain.go): every 5 s, token rotation, peer expiry,
//     liveness pings of questionable nodes (4 per round), a refresh lookup
//     for a bucket untouched for 15 minutes, re-bootstrap with backoff
//     (30 s doubling to 10 min) while no node is good, periodic save.
//
// # Who owns what
//
// A Node owns its reader goroutine (socket to handlePacket, inline: no
// goroutine per packet), its maintenance goroutine, and the background
// pings, refreshes and re-bootstraps those start. Close cancels them all,
// closes the socket, waits for them, then saves. Lookups run on the
// caller's goroutine; their query goroutines belong to the lookup, which
// waits for them before returning. Node.mu guards the table, tokens,
// storage, rate limiter and transaction map; it is a leaf lock, never held
// across a socket write, a blocking channel operation or a callback.
// Goroutines are only started under Node.mu after checking that the node
// is not closing, which orders them before Close's wait.
//
// # Bounds: a hostile network cannot exhaust memory or borrow our bandwidth
//
//   - Datagrams: at most 4 KiB read; bencode lengths checked against the
//     input before any allocation; at most 16 nodes and 200 peers taken
//     from one reply; tokens over 64 bytes ignored.
//   - Replies: to a sender that has not answered us from that address (it
//     may be a spoofed victim) at most 4 times the query's size, nodes
//     dropped before values; to a verified node at most 1400 bytes (50
//     values and 8 nodes). Errors are only sent for well-formed queries.
//   - Incoming queries: Config.QueryRate per source IP per second, over at
//     most 8192 source IPs per second; the excess is dropped and counted.
//   - Outgoing: at most 256 transactions outstanding (more queries wait for
//     a slot), 8 background pings, 8 queries in flight, 256 queries and 64
//     candidates per lookup.
//   - Tables: Config.MaxNodes routing entries plus k replacement candidates
//     per bucket (about 480 KiB when all 160 buckets are full); one entry
//     per public IP; Config.MaxInfoHashes × Config.MaxPeersPerInfoHash
//     stored peers (about 8 MiB at the defaults), evicting the oldest of a
//     random sample when full.
//   - Transactions: 4 random bytes; a reply must come from the address
//     queried, else it is dropped. A reply from an address proves the ID
//     there; a query proves nothing and can neither move a known ID nor
//     displace a known address.
//
// # Pitfalls
//
//   - Config.Bootstrap nil means the public routers. Tests must pass a
//     loopback list or an empty non-nil slice.
//   - Addresses in loopback or private ranges (nodes and peers) are only
//     believed from a node that is itself in such a range: a public node
//     cannot point our lookups, or the engine's connections, at our own
//     machine or LAN.
//   - BEP 42 (Config.EnforceNodeID) never applies to loopback, private or
//     link-local addresses, so loopback test networks and LANs work.
//   - BEP 43 (Config.ReadOnly): a read-only node answers no query and marks
//     its queries "ro"; nodes whose queries say "ro" stay out of our table.
//   - onPeers runs on the lookup's goroutine: a slow callback slows the
//     lookup, a blocking one stalls it until ctx ends.
//   - A client that asks the same node more than Config.QueryRate times a
//     second is dropped there; test networks hammering a few nodes must
//     raise it.
//   - Families (BEP 32): a node on an IPv4 address is IPv4 only, one on a
//     specific IPv6 address IPv6 only, one on a dual-stack socket ([::],
//     as the engine's shared uTP socket, or Config.Listen without a host)
//     serves both with one routing table each (Node.tables) and one node
//     ID. A lookup runs in each table at once, over the nodes of that
//     family, reading "nodes" or "nodes6" accordingly; GetPeers merges
//     the values of both (onPeers is then called from the lookups'
//     goroutines, one at a time); Bootstrap fails only when both do.
//     Replies carry the nodes of the families a query's "want" asks for
//     ("n4", "n6"), else of the asker's family, and the stored peers
//     ("values") of the asker's family only. The saved state keeps
//     both tables' nodes. An IPv4-mapped address in "nodes6" is skipped:
//     written back, it would be a 26-byte IPv4 entry in an IPv6 list.
//   - Every decoder of untrusted bytes has a fuzz target with a committed
//     corpus: FuzzKRPC (the whole datagram path), FuzzParseNodes,
//     FuzzParseValues, FuzzDecodeState.
package dht
