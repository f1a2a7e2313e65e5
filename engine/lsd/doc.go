// Package lsd is local service discovery (BEP 14): peers on the same
// network find each other's torrents without a tracker or the DHT by
// multicasting "BT-SEARCH" announces to 239.192.152.143:6771 and, over
// IPv6, to [ff15::efc0:988f]:6771.
//
// # Concepts
//
//   - Announce (message.go): one message, HTTP-like, naming our TCP port,
//     up to MaxInfoHashes info-hashes and a cookie. Parse reads one, Append
//     writes one.
//   - Service (lsd.go): per group (IPv4 and IPv6 by default: a link), a
//     receiving socket (joined to the group) and a sending socket (bound
//     to Config.Source or Source6 where set: peers dial the sender's IP,
//     so a client listening on one address announces from it); and the
//     set of torrents to announce, sent to every group. Add announces a torrent
//     at once and then every Config.Interval (5 minutes); Remove stops it.
//     Peers announced by others for torrents we Added reach Config.OnPeer
//     as (info-hash, sender's IP and announced port).
//
// # Who owns what
//
// A Service owns one reader goroutine per group (datagram to Parse to
// OnPeer, inline) and its announcer goroutine (a one-second tick that sends what is due,
// woken early by Add). Close closes every socket and waits for them all.
// Service.mu guards the torrent set, the per-source counters and the
// send-error flag; it is a leaf, never held across I/O or OnPeer.
//
// # Bounds
//
//   - A datagram over MaxMessageSize (1400 bytes) is dropped; Parse reads
//     at most maxLines lines, MaxInfoHashes info-hashes and a 64-byte
//     cookie; every field is checked (port 1..65535, 40 hex digits).
//   - Each source IP is acted on at most maxPerSource times per 10 s, and at
//     most maxSources sources per window: a flood costs bounded memory and
//     bounded OnPeer calls.
//   - Only torrents we Added are reported: announces of other torrents cost
//     a parse and nothing else.
//   - A torrent is announced at most once per Interval, even when removed
//     and added again.
//
// # Pitfalls
//
//   - Our own announces loop back (IP_MULTICAST_LOOP is on by default): the
//     random cookie tells them apart.
//   - Multicast may be unavailable (no route for 224.0.0.0/4, a sandbox
//     without a multicast-capable interface, a host without IPv6): a group
//     whose sockets cannot be opened is logged and left out, New fails
//     only when no group is left; sends that fail are logged once per
//     group. The engine carries on without LSD.
//   - Tests use a unicast Config.Group on loopback (two Services pointing at
//     each other's Listen addresses), since multicast on loopback needs
//     routing that test machines may lack.
//   - The multicast TTL is the system default, 1: announces never leave the
//     local network.
//   - The IPv6 group is joined only by default (Group and Group6 zero), or
//     when Group6 is given: a Service given a unicast IPv4 Group (tests)
//     stays off IPv6 multicast. The Host line names an IPv6 group in
//     brackets, as BEP 14 does.
package lsd
