package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/compact"
)

// udpReq is an announce request as the fake tracker decoded it.
type udpReq struct {
	connID                     uint64
	infoHash, peerID           [20]byte
	downloaded, left, uploaded uint64
	event, ip, key             uint32
	numWant                    int32
	port                       uint16
	options                    []byte
}

// fakeUDP is a BEP 15 tracker on 127.0.0.1. By default it answers as a real
// tracker does; respond, when set, decides instead (it may call standard).
type fakeUDP struct {
	conn *net.UDPConn
	done chan struct{}

	mu        sync.Mutex
	packets   int // datagrams received
	connects  int // connect requests answered by standard
	nextID    uint64
	ids       map[uint64]bool
	announces []udpReq
	peers     []byte
	interval  uint32
	respond   func(n int, pkt []byte) [][]byte // n counts datagrams from 0
}

func newFakeUDP(t *testing.T) *fakeUDP {
	t.Helper()
	return newFakeUDPOn(t, net.IPv4(127, 0, 0, 1))
}

// newFakeUDPOn is newFakeUDP on ip (127.0.0.1 or ::1).
func newFakeUDPOn(t *testing.T, ip net.IP) *fakeUDP {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUDP{conn: conn, done: make(chan struct{}), ids: make(map[uint64]bool), nextID: 0x1000, interval: 1800}
	go f.serve()
	t.Cleanup(func() {
		conn.Close()
		<-f.done
	})
	return f
}

func (f *fakeUDP) url() string { return "udp://" + f.conn.LocalAddr().String() + "/announce" }

func (f *fakeUDP) serve() {
	defer close(f.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := slices.Clone(buf[:n])
		f.mu.Lock()
		i := f.packets
		f.packets++
		respond := f.respond
		f.mu.Unlock()
		var out [][]byte
		if respond != nil {
			out = respond(i, pkt)
		} else {
			out = [][]byte{f.standard(pkt)}
		}
		for _, b := range out {
			if b != nil {
				f.conn.WriteToUDPAddrPort(b, from)
			}
		}
	}
}

// standard answers pkt as a tracker would; nil means silence.
func (f *fakeUDP) standard(pkt []byte) []byte {
	if len(pkt) < 16 {
		return nil
	}
	tid := binary.BigEndian.Uint32(pkt[12:])
	f.mu.Lock()
	defer f.mu.Unlock()
	switch binary.BigEndian.Uint32(pkt[8:]) {
	case actionConnect:
		if binary.BigEndian.Uint64(pkt) != udpProtocolID {
			return nil
		}
		f.connects++
		f.nextID++
		f.ids[f.nextID] = true
		b := binary.BigEndian.AppendUint32(nil, actionConnect)
		b = binary.BigEndian.AppendUint32(b, tid)
		return binary.BigEndian.AppendUint64(b, f.nextID)
	case actionAnnounce:
		if len(pkt) < udpAnnounceLen || !f.ids[binary.BigEndian.Uint64(pkt)] {
			return nil
		}
		r := udpReq{
			connID:     binary.BigEndian.Uint64(pkt),
			infoHash:   [20]byte(pkt[16:36]),
			peerID:     [20]byte(pkt[36:56]),
			downloaded: binary.BigEndian.Uint64(pkt[56:]),
			left:       binary.BigEndian.Uint64(pkt[64:]),
			uploaded:   binary.BigEndian.Uint64(pkt[72:]),
			event:      binary.BigEndian.Uint32(pkt[80:]),
			ip:         binary.BigEndian.Uint32(pkt[84:]),
			key:        binary.BigEndian.Uint32(pkt[88:]),
			numWant:    int32(binary.BigEndian.Uint32(pkt[92:])),
			port:       binary.BigEndian.Uint16(pkt[96:]),
			options:    pkt[98:],
		}
		f.announces = append(f.announces, r)
		return udpAnnounceResponse(tid, f.interval, 3, 4, f.peers)
	}
	return nil
}

func (f *fakeUDP) counts() (packets, connects, announces int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.packets, f.connects, len(f.announces)
}

func (f *fakeUDP) setRespond(fn func(n int, pkt []byte) [][]byte) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func udpAnnounceResponse(tid, interval, leechers, seeders uint32, peers []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, tid)
	b = binary.BigEndian.AppendUint32(b, interval)
	b = binary.BigEndian.AppendUint32(b, leechers)
	b = binary.BigEndian.AppendUint32(b, seeders)
	return append(b, peers...)
}

func udpErrorPacket(tid uint32, msg string) []byte {
	b := binary.BigEndian.AppendUint32(nil, actionError)
	b = binary.BigEndian.AppendUint32(b, tid)
	return append(b, msg...)
}

func tidOf(pkt []byte) uint32 { return binary.BigEndian.Uint32(pkt[12:]) }

// fastUDP returns a client whose retransmit schedule is in milliseconds, yet
// long enough that a loaded machine's loopback answers in time.
func fastUDP() *udpClient {
	c := newUDPClient()
	c.baseTimeout = 100 * time.Millisecond
	c.maxRetries = 3
	return c
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUDPAnnounce(t *testing.T) {
	f := newFakeUDP(t)
	f.mu.Lock()
	f.peers = []byte(compactPeers("127.0.0.2:6881", "127.0.0.3:1", "127.0.0.2:6881") + "\x01\x02") // a partial entry is ignored
	f.mu.Unlock()
	req := testRequest()
	req.Event = Completed
	req.NumWant = 30
	// Through the package function and its default client.
	r, err := Announce(ctxT(t), f.url()+"?pk=abc", req)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{ap("127.0.0.2:6881"), ap("127.0.0.3:1")}
	if !slices.Equal(r.Peers, want) || r.Interval != 30*time.Minute || r.Leechers != 3 || r.Seeders != 4 {
		t.Fatalf("got %+v", r)
	}
	f.mu.Lock()
	got := f.announces[0]
	f.mu.Unlock()
	wantReq := udpReq{
		connID: 0x1001, infoHash: req.InfoHash, peerID: req.PeerID,
		downloaded: 2, left: 3, uploaded: 1, event: 1, key: 0xDEADBEEF, numWant: 30, port: 6881,
		options: []byte("\x02\x10/announce?pk=abc"),
	}
	if !reflect.DeepEqual(got, wantReq) {
		t.Fatalf("tracker got %+v\nwant %+v", got, wantReq)
	}
}

func TestUDPRequestEncoding(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		code uint32
	}{{None, 0}, {Completed, 1}, {Started, 2}, {Stopped, 3}} {
		req := AnnounceRequest{Event: tc.ev, NumWant: -1}
		b := appendUDPAnnounce(nil, req, "")
		if len(b) != udpAnnounceLen {
			t.Fatalf("request is %d bytes", len(b))
		}
		if got := binary.BigEndian.Uint32(b[80:]); got != tc.code {
			t.Errorf("%v: code %d, want %d", tc.ev, got, tc.code)
		}
		if got := int32(binary.BigEndian.Uint32(b[92:])); got != -1 {
			t.Errorf("numwant %d, want -1", got)
		}
	}
	// URL data longer than one option is split into 255-byte options.
	data := "/" + strings.Repeat("x", 300)
	b := appendUDPAnnounce(nil, AnnounceRequest{}, data)
	opts := b[udpAnnounceLen:]
	if opts[0] != 2 || opts[1] != 255 || opts[257] != 2 || int(opts[258]) != len(data)-255 || string(opts[2:257])+string(opts[259:]) != data {
		t.Fatalf("options % x", opts[:4])
	}
}

func TestUDPConnectionIDCache(t *testing.T) {
	f := newFakeUDP(t)
	c := fastUDP()
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	u := mustURL(t, f.url())
	for i, step := range []struct {
		advance  time.Duration
		connects int
	}{
		{0, 1},
		{30 * time.Second, 1}, // cached
		{29 * time.Second, 1}, // still cached: 59 s after the connect
		{2 * time.Second, 2},  // expired after a minute: reconnect
		{10 * time.Second, 2}, // the new ID is cached
	} {
		advance(step.advance)
		if _, err := c.announce(ctxT(t), u, testRequest()); err != nil {
			t.Fatalf("announce %d: %v", i, err)
		}
		if _, connects, _ := f.counts(); connects != step.connects {
			t.Fatalf("announce %d: %d connects, want %d", i, connects, step.connects)
		}
	}
	// The tracker forgets our ID: the silent announce is retried with a new one.
	f.mu.Lock()
	clear(f.ids)
	f.mu.Unlock()
	if _, err := c.announce(ctxT(t), u, testRequest()); err != nil {
		t.Fatal(err)
	}
	if _, connects, announces := f.counts(); connects != 3 || announces != 6 {
		t.Fatalf("%d connects, %d announces; want 3, 6", connects, announces)
	}
}

func TestUDPRetransmit(t *testing.T) {
	f := newFakeUDP(t)
	// Drop the first connect and the first announce.
	f.setRespond(func(n int, pkt []byte) [][]byte {
		if n == 0 || n == 2 {
			return nil
		}
		return [][]byte{f.standard(pkt)}
	})
	c := fastUDP()
	start := time.Now()
	r, err := c.announce(ctxT(t), mustURL(t, f.url()), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if r.Interval != 30*time.Minute {
		t.Fatalf("got %+v", r)
	}
	// connect (lost), connect, announce (lost), connect again, announce.
	if packets, connects, announces := f.counts(); packets != 5 || connects != 2 || announces != 1 {
		t.Fatalf("%d packets, %d connects, %d announces", packets, connects, announces)
	}
	// Waits of 100 ms, then 200 ms.
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("retransmitted too early: %v", d)
	}
}

func TestUDPNoAnswer(t *testing.T) {
	f := newFakeUDP(t)
	f.setRespond(func(int, []byte) [][]byte { return nil })
	c := fastUDP()
	c.baseTimeout = 10 * time.Millisecond
	c.maxRetries = 2
	start := time.Now()
	_, err := c.announce(ctxT(t), mustURL(t, f.url()), testRequest())
	if err == nil || !strings.Contains(err.Error(), "no answer after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Fatalf("gave up after %v, want 10+20+40 ms", d)
	}
	// The last datagram may still be on its way to the fake tracker.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		packets, _, _ := f.counts()
		if packets > 3 || packets < 3 && time.Now().After(deadline) {
			t.Fatalf("%d packets, want 3", packets)
		}
		if packets == 3 {
			break
		}
	}

	// The context bounds BEP 15's long schedule.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Announce(ctx, f.url(), testRequest())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}

	// So does cancellation.
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err = Announce(ctx, f.url(), testRequest()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestUDPTransactionMismatch(t *testing.T) {
	f := newFakeUDP(t)
	f.setRespond(func(n int, pkt []byte) [][]byte {
		good := f.standard(pkt)
		bad := slices.Clone(good)
		binary.BigEndian.PutUint32(bad[4:], tidOf(pkt)+1)
		// Stray answers first: another transaction's, and a runt.
		return [][]byte{bad, {1, 2, 3}, udpErrorPacket(tidOf(pkt)^0xffff, "not yours"), good}
	})
	r, err := fastUDP().announce(ctxT(t), mustURL(t, f.url()), testRequest())
	if err != nil {
		t.Fatal(err)
	}
	if r.Seeders != 4 {
		t.Fatalf("got %+v", r)
	}
	if packets, _, _ := f.counts(); packets != 2 {
		t.Fatalf("%d packets, want 2 (no retransmission)", packets)
	}
}

func TestUDPTransactionIDsAreRandom(t *testing.T) {
	f := newFakeUDP(t)
	var mu sync.Mutex
	seen := map[uint32]bool{}
	f.setRespond(func(n int, pkt []byte) [][]byte {
		mu.Lock()
		seen[tidOf(pkt)] = true
		mu.Unlock()
		return [][]byte{f.standard(pkt)}
	})
	c := fastUDP()
	c.baseTimeout = 2 * time.Second // no retransmissions
	for range 5 {
		c.forgetID(f.conn.LocalAddr().String())
		if _, err := c.announce(ctxT(t), mustURL(t, f.url()), testRequest()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 10 {
		t.Fatalf("%d distinct transaction IDs in 10 requests", len(seen))
	}
}

func TestUDPErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(f *fakeUDP, n int, pkt []byte) []byte
		wantErr string
		failure bool
	}{
		{"error action on announce", func(f *fakeUDP, n int, pkt []byte) []byte {
			if n == 1 {
				return udpErrorPacket(tidOf(pkt), "torrent not registered\x00")
			}
			return f.standard(pkt)
		}, "announce: tracker: failure: torrent not registered", true},
		{"error action on connect", func(f *fakeUDP, n int, pkt []byte) []byte {
			return udpErrorPacket(tidOf(pkt), "")
		}, "connect: tracker: failure", true},
		{"short connect", func(f *fakeUDP, n int, pkt []byte) []byte {
			return f.standard(pkt)[:12]
		}, "short packet of 12 bytes", false},
		{"short announce", func(f *fakeUDP, n int, pkt []byte) []byte {
			return f.standard(pkt)[:16]
		}, "short packet of 16 bytes", false},
		{"wrong action", func(f *fakeUDP, n int, pkt []byte) []byte {
			b := f.standard(pkt)
			if n == 1 {
				binary.BigEndian.PutUint32(b, actionConnect)
			}
			return b
		}, "unexpected action 0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeUDP(t)
			f.setRespond(func(n int, pkt []byte) [][]byte { return [][]byte{tc.respond(f, n, pkt)} })
			_, err := fastUDP().announce(ctxT(t), mustURL(t, f.url()), testRequest())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if errors.Is(err, ErrFailure) != tc.failure {
				t.Fatalf("errors.Is(err, ErrFailure) = %v", !tc.failure)
			}
		})
	}
}

func TestUDPBadURL(t *testing.T) {
	for _, u := range []string{"udp://127.0.0.1", "udp:///announce", "udp://127.0.0.1:notaport"} {
		if _, err := Announce(ctxT(t), u, testRequest()); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}

func TestUDPRefused(t *testing.T) {
	// A port with nobody listening: ICMP says so, no retransmit schedule.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()
	conn.Close()
	c := newUDPClient()
	start := time.Now()
	if _, err := c.announce(ctxT(t), mustURL(t, "udp://"+addr), testRequest()); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestParseUDPAnnounce(t *testing.T) {
	v6 := compact.AppendPeer(nil, ap("[2001:db8::2]:80"))
	v6 = compact.AppendPeer(v6, ap("[2001:db8::2]:80"))
	r, err := parseUDPAnnounce(udpAnnounceResponse(1, 0xffffffff, 0x80000000, 7, v6), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, []netip.AddrPort{ap("[2001:db8::2]:80")}) || r.Interval != 0 || r.Leechers != 0 || r.Seeders != 7 {
		t.Fatalf("got %+v", r)
	}
	// Read as IPv4, the same 36 bytes are six 6-byte entries, some unusable.
	if r, err := parseUDPAnnounce(udpAnnounceResponse(1, 60, 0, 0, v6), false); err != nil || len(r.Peers) == 0 || len(r.Peers) > 6 {
		t.Fatalf("got %v, %v", r, err)
	}
	var many []byte
	for i := range MaxPeers + 100 {
		many = compact.AppendPeer(many, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1))
	}
	if r, err := parseUDPAnnounce(udpAnnounceResponse(1, 60, 0, 0, many), false); err != nil || len(r.Peers) != MaxPeers {
		t.Fatalf("got %d peers, %v", len(r.Peers), err)
	}
}

// TestUDPOverIPv6: a UDP tracker reached over IPv6 answers with 18-byte
// peers (BEP 15), read as such.
func TestUDPOverIPv6(t *testing.T) {
	f := newFakeUDPOn(t, net.IPv6loopback)
	f.mu.Lock()
	f.peers = compact.AppendPeer(compact.AppendPeer(nil, ap("[::1]:6881")), ap("[2001:db8::7]:51413"))
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := Announce(ctx, f.url(), AnnounceRequest{Port: 1, NumWant: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{ap("[::1]:6881"), ap("[2001:db8::7]:51413")}
	if !slices.Equal(r.Peers, want) {
		t.Errorf("peers %v, want %v", r.Peers, want)
	}
}
