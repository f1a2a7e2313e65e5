package utp

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// rawPeer is a hand-driven uTP peer on a plain UDP socket: it dials a
// Socket and sends data packets whose timing the test controls, and
// reads the ACKs they draw.
type rawPeer struct {
	t      testing.TB
	uc     *net.UDPConn
	to     *net.UDPAddr
	id     uint16 // our receive id; we send with id+1
	seq    uint16 // next sequence number to send
	ackFor uint16 // what our packets acknowledge (the SYN-ACK's seq - 1)
}

// dialRaw connects a rawPeer to s and returns it with the accepted Conn.
func dialRaw(t testing.TB, s *Socket) (*rawPeer, *Conn) {
	t.Helper()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	r := &rawPeer{t: t, uc: uc, to: s.Addr().(*net.UDPAddr), id: 7000, seq: 100}
	r.send(stSyn, r.id, nil)
	synAck := r.recv(time.Second)
	if synAck == nil || synAck.typ != stState {
		t.Fatalf("no SYN-ACK: %+v", synAck)
	}
	r.ackFor = synAck.seq - 1
	r.send(stState, r.id+1, nil) // proves our address: the acceptor promotes us
	c := acceptTimeout(t, s, 2*time.Second)
	t.Cleanup(func() { c.Close() })
	return r, c
}

// send sends one packet; data packets take the next sequence number.
func (r *rawPeer) send(typ uint8, connID uint16, payload []byte) {
	r.t.Helper()
	seq := r.seq
	if typ == stData || typ == stSyn {
		r.seq++
	}
	r.sendSeq(typ, connID, seq, payload)
}

func (r *rawPeer) sendSeq(typ uint8, connID, seq uint16, payload []byte) {
	r.t.Helper()
	b := make([]byte, headerLen+len(payload))
	h := header{typ: typ, connID: connID, tsUS: uint32(time.Now().UnixMicro()), wnd: 1 << 20, seq: seq, ack: r.ackFor}
	putHeader(b, &h, extNone)
	copy(b[headerLen:], payload)
	if _, err := r.uc.WriteToUDP(b, r.to); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next uTP packet within d, or nil.
// dataBatch makes n data packets carrying payload, in sequence from r.seq
// on, addressed to to, for a packetIO's writeBatch.
func (r *rawPeer) dataBatch(n int, payload []byte, to netip.AddrPort) []msg {
	ms := make([]msg, n)
	for i := range ms {
		b := make([]byte, headerLen+len(payload))
		h := header{typ: stData, connID: r.id + 1, tsUS: uint32(time.Now().UnixMicro()), wnd: 1 << 20, seq: r.seq, ack: r.ackFor}
		r.seq++
		putHeader(b, &h, extNone)
		copy(b[headerLen:], payload)
		ms[i] = msg{buf: b, n: len(b), addr: to}
	}
	return ms
}

func (r *rawPeer) recv(d time.Duration) *packet {
	r.t.Helper()
	buf := make([]byte, 2048)
	r.uc.SetReadDeadline(time.Now().Add(d))
	n, _, err := r.uc.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	p := new(packet)
	if err := parsePacket(buf[:n], p); err != nil {
		r.t.Fatalf("bad packet from the socket: %v", err)
	}
	return p
}

// TestDelayedAcks: a sender whose packets trickle in, each in its own
// read batch, draws about one ACK per ackEvery packets, not one per
// packet (acking every batch cost a libtorrent seeder on loopback an ACK
// to process every 4-5 packets, and us a system call each); the packets
// short of ackEvery are acknowledged after ackDelay; a hole is reported
// (with a selective ACK) at once.
func TestDelayedAcks(t *testing.T) {
	s := testSocket(t, Config{})
	r, c := dialRaw(t, s)
	payload := make([]byte, 1000)
	const n = 64
	for range n {
		r.send(stData, r.id+1, payload)
		// Spin rather than sleep: each packet lands alone, well under
		// ackDelay after the one before.
		for t0 := time.Now(); time.Since(t0) < 150*time.Microsecond; {
		}
	}
	last := r.seq - 1
	acks := 0
	var final *packet
	for final == nil || final.ack != last {
		p := r.recv(2 * time.Second)
		if p == nil {
			t.Fatalf("after %d ACKs, none acknowledges the last packet %d (last seen %+v)", acks, last, final)
		}
		if p.typ == stState {
			acks++
			final = p
		}
	}
	t.Logf("%d data packets drew %d ACKs", n, acks)
	if acks > n/2 {
		t.Fatalf("%d data packets drew %d ACKs, want at most %d", n, acks, n/2)
	}
	buf := make([]byte, n*len(payload))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for got := 0; got < len(buf); {
		k, err := c.Read(buf[got:])
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += k
	}

	// A lone packet is acknowledged after ackDelay, well before the
	// 20 ms timer tick would.
	start := time.Now()
	r.send(stData, r.id+1, payload)
	if p := r.recv(2 * time.Second); p == nil || p.typ != stState || p.ack != r.seq-1 {
		t.Fatalf("lone packet: got %+v, want its ACK", p)
	}
	t.Logf("lone packet acknowledged after %v", time.Since(start))

	// A hole: the packet after the missing one is answered at once, with
	// a selective ACK naming it.
	r.seq++ // skip one
	r.send(stData, r.id+1, payload)
	p := r.recv(2 * time.Second)
	if p == nil || p.typ != stState || p.sack == nil || p.sack[0]&1 == 0 {
		t.Fatalf("after a hole: got %+v, want an ACK with a selective ACK of the next packet", p)
	}
}

// TestReaderWokenPerBatch: data arriving in one read batch wakes the
// connection's reader once, at the end of the batch, not once per
// packet. Woken per packet, a reader on the other core took the lock
// and a 1.4 KB packet at a time while the socket's goroutine was still
// handling the batch, and went back to sleep: a futex wake and a
// context switch per packet on both sides.
func TestReaderWokenPerBatch(t *testing.T) {
	s := testSocket(t, Config{})
	r, c := dialRaw(t, s)
	tx := newPacketIO(r.uc, true) // sendmmsg where Linux has it; no GSO; it takes r.uc
	t.Cleanup(func() { tx.close() })
	to := r.to.AddrPort()
	const n = maxBatch
	payload := make([]byte, 1000)
	for try := 0; ; try++ {
		before := s.Stats()
		ms := r.dataBatch(n, payload, to)
		if err := tx.writeBatch(ms); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n*len(payload))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("read: %v", err)
		}
		after := s.Stats()
		batches, wakes := after.ReadBatches-before.ReadBatches, after.ReaderWakeups-before.ReaderWakeups
		t.Logf("%d packets came in %d read batches and woke the reader %d times", n, batches, wakes)
		if batches >= n {
			// Each packet came alone: nothing to coalesce, try again.
			if try == 4 {
				t.Fatalf("%d packets sent in one sendmmsg came in %d read batches in 5 tries", n, batches)
			}
			continue
		}
		if wakes > batches {
			t.Fatalf("%d packets in %d read batches woke the reader %d times, want at most once per batch", n, batches, wakes)
		}
		return
	}
}

// TestDataCarriesLatestAck: a data packet built before the peer's next
// packets came, and sent after the socket acknowledged them, carries the
// latest ack_nr, not the one of the moment it was built. The writer and
// the socket's reader both send: a request built, then delayed, went
// out behind ACKs that acknowledged more than it did, and libtorrent
// drops a packet whose ack_nr is over 3 behind the best it has seen. The
// lost request stalled the transfer for a 500 ms retransmission timeout.
func TestDataCarriesLatestAck(t *testing.T) {
	s := testSocket(t, Config{})
	r, c := dialRaw(t, s)
	ob := getOutbox()
	defer putOutbox(ob)
	c.mu.Lock()
	c.enqueueLocked([]byte("a request"))
	c.sendLocked(time.Now(), ob)
	built := c.ackNr
	c.mu.Unlock()
	if ob.n != 1 {
		t.Fatalf("the write built %d packets, want 1", ob.n)
	}
	payload := make([]byte, 1000)
	for range 8 {
		r.send(stData, r.id+1, payload)
	}
	latest := r.seq - 1
	waitFor(t, 5*time.Second, "the socket to take the peer's packets", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ackNr == latest
	})
	s.flush(ob)
	for {
		p := r.recv(2 * time.Second)
		if p == nil {
			t.Fatal("the data packet never came")
		}
		if p.typ != stData {
			continue
		}
		if p.ack != latest {
			t.Fatalf("data packet acknowledges %d (as built: %d), want the latest, %d", p.ack, built, latest)
		}
		return
	}
}

// TestEarlyRetransmit: with three packets in flight and nothing more to
// send (a request stream), a hole with the two packets after it SACKed
// is resent at once, not after the retransmission timeout (at least
// 500 ms): no third packet will come to be SACKed past it.
func TestEarlyRetransmit(t *testing.T) {
	s := testSocket(t, Config{})
	r, c := dialRaw(t, s)
	var first *packet
	for i := range 3 {
		if _, err := c.Write([]byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
		p := r.recv(2 * time.Second)
		for p != nil && p.typ != stData {
			p = r.recv(2 * time.Second)
		}
		if p == nil {
			t.Fatalf("data packet %d never came", i)
		}
		if i == 0 {
			first = p
		}
	}
	// The first is lost: ACK the one before it, SACK the two after.
	b := make([]byte, headerLen+2+4)
	h := header{typ: stState, connID: r.id + 1, tsUS: uint32(time.Now().UnixMicro()), wnd: 1 << 20, seq: r.seq, ack: first.seq - 1}
	putHeader(b, &h, extSACK)
	b[headerLen], b[headerLen+1] = extNone, 4
	b[headerLen+2] = 0b11 // first.seq+1 and first.seq+2
	start := time.Now()
	if _, err := r.uc.WriteToUDP(b, r.to); err != nil {
		t.Fatal(err)
	}
	for {
		p := r.recv(2 * time.Second)
		if p == nil {
			t.Fatal("the lost packet was never resent")
		}
		if p.typ == stData && p.seq == first.seq {
			d := time.Since(start)
			t.Logf("resent after %v", d)
			if d > 250*time.Millisecond {
				t.Fatalf("resent after %v, want at once (the retransmission timeout is at least 500 ms)", d)
			}
			return
		}
	}
}
