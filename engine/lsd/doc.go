// Package lsd is local service discovery (BEP 14): peers on the same
// network find each other's torrents without a tracker or the DHT by
// multicasting "BT-SEARCH" announces to 239.192.152.143:6771.
//
// # Concepts
//
//   - Announce (message.go): one message, HTTP-like, naming our TCP port,
//     up to MaxInfoHashes info-hashes and a cookie. Parse reads one, Append
//     writes one.
//   - Service (lsd.go): a receiving socket (joined to the group), a sending
//     socket, and the set of torrents to announce. Add announces a torrent
//     at once and then every Config.Interval (5 minutes); Remove stops it.
//     Peers announced by others for torrents we Added reach Config.OnPeer
//     as (info-hash, sender's IP and announced port).
//
// # Who owns what
//
// A Service owns its reader goroutine (datagram to Parse to OnPeer, inline)
// and its announcer goroutine (a one-second tick that sends what is due,
// woken early by Add). Close closes both sockets and waits for both.
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
//     without a multicast-capable interface): New fails, or sends fail and
//     are logged once. The engine carries on without LSD.
//   - Tests use a unicast Config.Group on loopback (two Services pointing at
//     each other's Listen addresses), since multicast on loopback needs
//     routing that test machines may lack.
//   - The multicast TTL is the system default, 1: announces never leave the
//     local network.
//   - IPv6 (group [ff15::efc0:988f]:6771) is not implemented.
package lsd
