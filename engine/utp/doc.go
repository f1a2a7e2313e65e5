// Package utp is the uTorrent transport protocol (BEP 29): reliable,
// ordered byte streams over UDP with LEDBAT congestion control, which
// yields to other traffic on a congested link. A Conn is a net.Conn and
// a Socket is a net.Listener, so the engine's peer code does not care
// which transport it holds. It imports nothing of swarmfs.
//
// # Concepts
//
//   - Socket (socket.go): one UDP socket, shared by every connection and
//     by the DHT. NewSocket takes a net.PacketConn (a *net.UDPConn gets
//     recvmmsg/sendmmsg batches on Linux, io_mmsg.go, and UDP
//     segmentation offload where the kernel has it: a run of equal-sized
//     datagrams to one peer goes down as one UDP_SEGMENT send and comes
//     up as one UDP_GRO read, cut back into datagrams by the reader) and
//     owns it from then on; Listen binds one. On Linux the socket leaves
//     Go's network poller (io_fd_linux.go): its reader waits in ppoll on
//     the socket alone, which costs a datagram that finds it asleep one
//     thread wake-up instead of a round of Go's scheduler. Datagrams are told apart by their first
//     byte: a uTP header has version 1 in its low nibble and a type 0-4
//     in its high one; anything else (a bencoded DHT message starts with
//     'd', a UDP tracker reply with 0) goes to Others.
//   - OtherConn (others.go): the non-uTP traffic, with the three methods
//     engine/dht uses on its socket (ReadFromUDPAddrPort,
//     WriteToUDPAddrPort, Close), so a DHT node can share the port.
//   - Conn (conn.go, conn_send.go, conn_recv.go): one connection, keyed
//     by (peer address, our receive id). The dialler picks a random
//     receive id R and sends with R+1; the SYN carries R; the acceptor
//     receives on R+1 and sends on R. A SYN whose id our own dialled
//     connection holds is refused with a RESET (collision).
//   - Packets (header.go): the 20-byte header and its extension chain,
//     walked with a bound (8 links); only the selective ACK (type 1) is
//     read, others (libtorrent's close reason, 3) are skipped.
//   - Congestion (ledbat.go): LEDBAT on the peer's timestamp_difference:
//     base delay = minimum over 2 minutes (12 buckets of 10 s); queuing
//     delay = minimum of the last 3 samples above it, capped at the RTT;
//     target 100 ms; under it, cwnd += 3000 B × off_target/target ×
//     acked/cwnd, grown only while the window limited sending; over it,
//     cwnd -= acked × (delay/target - 1), at most half the window per
//     round trip (LEDBAT++'s multiplicative decrease: BEP 29's linear
//     one takes tens of seconds to yield to a TCP flow); slow start (doubling)
//     while the delay is under half the target; halved on a loss (once
//     per window of data), one packet after a timeout.
//   - Retransmission: RTO = max(srtt + 4 rttvar, 500 ms), 1 s before the
//     first sample, doubling per timeout up to 30 s; Karn's rule (no RTT
//     sample from a resent packet). A timeout marks every unacked packet
//     lost; Config.MaxRetransmits timeouts in a row end the connection.
//     Fast retransmit: 3 duplicate ACKs, or a SACK showing 3 packets past
//     a hole (with 2 or 3 packets in flight and nothing more to send, one
//     less than in flight: early retransmit, for request streams); a fast
//     retransmission that is lost again is resent after about a round
//     trip, not a whole RTO.
//   - ACKs are delayed: at the end of a read batch a connection ACKs once
//     16 data packets came since its last ACK (ackEvery); fewer wait for
//     more, at most 1 ms (ackDelay, the reader's read deadline). A hole,
//     the peer's FIN, a handshake or a nearly closed receive window is
//     ACKed at the end of the batch. ACKs also ride on data packets; an
//     ACK while packets are out of order carries a SACK bitmask (up to
//     1024 packets). Acking every batch drew an ACK per 4-5 packets from
//     a libtorrent seeder on loopback: a system call each on both ends.
//   - Windows: each packet advertises our free receive buffer
//     (Config.RecvBuffer less unread and out-of-order bytes); data past
//     it, or more than 1024 packets ahead, is dropped. Reading that opens
//     the window by a quarter of the buffer sends a window update at once.
//     A closed peer window is probed after an RTO.
//   - Packet size: Config.PacketSize (default 1400 bytes of UDP payload,
//     at most 1472 as libtorrent) on every path, loopback included, so IP
//     never fragments on common paths (IPv6, PPPoE, tunnels).
//
// # Connection states
//
//	dialler:  SynSent --STATE acking the SYN--> Connected
//	acceptor: SYN --> SynRecv (half-open; our SYN-ACK announced seq X)
//	          SynRecv --any packet with ack_nr X-1--> Connected, queued for Accept
//	Connected: each direction ends with its FIN (CloseWrite, Close);
//	          Read returns io.EOF once everything before the peer's FIN came.
//	Close:    FIN after the queued data; done when our FIN is acked and the
//	          peer's FIN arrived -> TimeWait (3 s, answers late FINs) -> Done;
//	          or RESET after Config.Linger.
//	any --RESET, timeout, Socket.Close--> Done (Read/Write fail)
//
// # Who owns what
//
// A Socket owns two goroutines: the reader (all incoming datagrams, and
// the ACKs and window-driven sends they cause, flushed per batch or when
// its read deadline for deferred ACKs passes) and the
// timer loop (every 20 ms while connections exist: RTO, SYN resends,
// keep-alives every 29 s, idle timeout, half-open expiry, linger,
// time-wait). No goroutine per connection or per packet. The reader
// wakes a connection's Read once per batch of datagrams, after the
// whole batch (woken per packet, Read ran on the other core a packet at
// a time, a futex wake and a context switch each), and then yields its
// thread to them, so they run on this core rather than on another thread
// woken for them; ACKs go after that, so that what the woken readers
// write at once (requests) carries them. A reader whose last read emptied the socket but took
// several datagrams naps 50 µs before the next (readNap), letting a fast
// sender's datagrams gather into one read. Read and Write
// run on the caller's goroutine; Write sends what the windows allow
// itself. Close stops and waits for both goroutines.
//
// Conn.mu guards all of a connection's protocol state. Socket.mu guards
// the connection table and the half-open count. Lock order: the two are
// never held together; packets are built into an outbox under Conn.mu and
// sent after it is released (never I/O under a lock); a packet's ack_nr
// is refreshed from Conn.ackWire just before its system call, since the
// writer's and the reader's sends race and libtorrent drops a packet
// whose ack_nr is more than 3 behind one it already had. Wake-ups are
// non-blocking sends on capacity-1 channels, which may happen under
// Conn.mu. deadline.mu is a leaf. Buffers (send packets, received
// payload, outboxes, mmsg arrays) come from sync.Pools: no allocation per
// packet in steady state.
//
// # Bounds against a hostile network
//
//   - Per connection: Config.SendBuffer written-unacked bytes,
//     Config.RecvBuffer received-unread bytes, at most 1024 out-of-order
//     packets (each a 2 KiB buffer) and 2048 packets in flight.
//   - Half-open connections (SYNs whose source never proved it receives
//     our packets, such as spoofed floods): at most Config.MaxHalfOpen,
//     each dropped after Config.HalfOpenTimeout; further SYNs are ignored.
//     Accept's queue holds Config.AcceptBacklog; more are reset.
//   - Datagrams over 2 KiB are not taken as uTP; an ACK of a packet never
//     sent drops the packet; non-uTP datagrams queue at most 256 deep.
//
// # Pitfalls
//
//   - An accepted connection reaches Accept only when the dialler sends
//     something after the SYN (its ACK of our SYN-ACK or data). BitTorrent
//     dialers always speak first; a protocol where the acceptor speaks
//     first would wait for HalfOpenTimeout and be dropped.
//   - Close returns at once and delivers in the background (as TCP does);
//     Socket.Close resets whatever is still open, so close the socket last.
//   - libtorrent dials with an encrypted (MSE) handshake first and
//     reconnects in plaintext when refused: expect two connections.
//   - Benchmarks on loopback stay at 1400-byte packets: uTP moves ~45
//     times more packets than TCP's 64 KiB segments. Without GSO/GRO
//     (Config.NoOffload, or a kernel before 5.0) each costs a trip
//     through the stack and loopback uTP is ~20% of TCP; with them a
//     window's run crosses loopback as one packet (see bench_test.go).
//   - Timestamps are microseconds of a per-socket monotonic clock; only
//     differences count (the base delay absorbs clock offsets).
package utp
