package engine

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metafetch"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/storage"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// metaLiar is a peer that announces ut_metadata with the right
// metadata_size and answers every request with random bytes.
type metaLiar struct {
	*fakePeer
	requests chan int // pieces asked for, dropped when full
	size     int      // metadata_size claimed; 0: the true one
	hangUp   bool     // close the connection at the first request
}

func startMetaLiar(t *testing.T, ip string, mi *metainfo.MetaInfo) *metaLiar {
	return startMetaLiarWith(t, ip, mi, metaLiar{})
}

func startMetaLiarWith(t *testing.T, ip string, mi *metainfo.MetaInfo, opts metaLiar) *metaLiar {
	t.Helper()
	l := &metaLiar{requests: make(chan int, 1000), size: opts.size, hangUp: opts.hangUp}
	l.fakePeer = listenFake(t, ip, func(nc net.Conn) { l.serve(nc, mi) })
	return l
}

func (l *metaLiar) serve(nc net.Conn, mi *metainfo.MetaInfo) {
	if _, err := peer.ReadHandshake(nc); err != nil {
		return
	}
	var rsv peer.Reserved
	rsv.SetFast()
	rsv.SetExtended()
	if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
		return
	}
	const ourMetaID = 3
	size := len(mi.InfoBytes)
	if l.size > 0 {
		size = l.size
	}
	hs, _ := (&peer.ExtendedHandshake{M: map[string]int{peer.ExtMetadata: ourMetaID}, MetadataSize: size}).Marshal()
	out := peer.AppendMessage(nil, &peer.Message{Type: peer.HaveNone})
	out = peer.AppendMessage(out, &peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: hs})
	if _, err := nc.Write(out); err != nil {
		return
	}
	theirID := 0
	dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
	var m peer.Message
	for {
		if err := dec.Decode(&m); err != nil {
			return
		}
		if m.Type != peer.Extended {
			continue
		}
		if m.ExtendedID == peer.ExtHandshakeID {
			if h, err := peer.ParseExtendedHandshake(m.Payload); err == nil {
				theirID = h.M[peer.ExtMetadata]
			}
			continue
		}
		if m.ExtendedID != ourMetaID || theirID == 0 {
			continue
		}
		req, err := peer.ParseMetadataMessage(m.Payload, 0)
		if err != nil || req.Type != peer.MetadataRequest {
			continue
		}
		select {
		case l.requests <- req.Piece:
		default:
		}
		if l.hangUp {
			return
		}
		junk := make([]byte, min(peer.MetadataPieceSize, size-req.Piece*peer.MetadataPieceSize))
		for i := range junk {
			junk[i] = byte(rand.Uint32())
		}
		data := peer.MetadataMessage{Type: peer.MetadataData, Piece: req.Piece, TotalSize: size, Data: junk}
		out = peer.AppendMessage(out[:0], &peer.Message{Type: peer.Extended, ExtendedID: uint8(theirID), Payload: data.Marshal()})
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func waitBanned(t *testing.T, tor *Torrent, a netip.Addr, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !slices.Contains(tor.Banned(), a) {
		if time.Now().After(deadline) {
			t.Fatalf("%v not banned after %v (banned: %v)", a, timeout, tor.Banned())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBadMetadata: metadata that does not hash to the info-hash is
// rejected, its sender banned, and the torrent gets the metadata from an
// honest peer.
func TestBadMetadata(t *testing.T) {
	// 1280 pieces: a 25 KiB info dictionary, two ut_metadata pieces.
	f := newFixture(t, 16<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 20 << 20}, {Path: "b.txt", Size: 1000}})
	if n := len(f.mi.InfoBytes); n <= peer.MetadataPieceSize {
		t.Fatalf("info dictionary of %d bytes: want several ut_metadata pieces", n)
	}
	uri := (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String()

	t.Run("sole liar, then an honest seeder", func(t *testing.T) {
		sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
		l := startMetaLiar(t, "127.0.0.5", f.mi)
		_, tor, dir := magnetLeecher(t, uri, Config{}, l.addr())
		waitBanned(t, tor, l.addr().Addr(), 30*time.Second)
		if tor.Info() != nil {
			t.Fatal("info from a liar")
		}
		tor.AddPeers([]netip.AddrPort{sc.Addr()})
		waitInfo(t, tor, 30*time.Second)
		checkInfo(t, tor, f.mi)
		waitComplete(t, tor, 60*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	})

	t.Run("liar among honest seeders", func(t *testing.T) {
		var peers []netip.AddrPort
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			sc, _ := seeder(t, f, Config{ListenAddr: ip + ":0"})
			peers = append(peers, sc.Addr())
		}
		l := startMetaLiar(t, "127.0.0.5", f.mi)
		peers = append([]netip.AddrPort{l.addr()}, peers...)
		_, tor, dir := magnetLeecher(t, uri, Config{}, peers...)
		waitInfo(t, tor, 60*time.Second)
		checkInfo(t, tor, f.mi)
		for _, a := range tor.Banned() {
			if a != l.addr().Addr() {
				t.Errorf("honest peer %v banned", a)
			}
		}
		// If the liar supplied any piece, it must have been found out.
		select {
		case <-l.requests:
			waitBanned(t, tor, l.addr().Addr(), 10*time.Second)
		default:
		}
		waitComplete(t, tor, 60*time.Second)
		swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
	})
}

// TestBadMetadataShared: a liar and an honest peer both contribute pieces
// to a copy that fails; the liar is found out (by a copy of its own, or by
// comparing with the good copy) and the honest peer is not banned.
func TestBadMetadataShared(t *testing.T) {
	// An info dictionary of more than metafetch.PerPeer pieces from 120 files
	// with long paths (few files: storage.File keeps 128 open).
	var files []swarmtest.FileSpec
	long := strings.Repeat("x", 200)
	for i := 0; i < 120; i++ {
		files = append(files, swarmtest.FileSpec{Path: fmt.Sprintf("%s%03d/%s/%s/%s%03d", long, i, long, long, long, i), Size: 10})
	}
	f := newFixture(t, 16<<10, files)
	if n := metaPieces(len(f.mi.InfoBytes)); n <= metafetch.PerPeer {
		t.Fatalf("info dictionary of %d pieces: want more than %d", n, metafetch.PerPeer)
	}
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	l := startMetaLiar(t, "127.0.0.5", f.mi)
	_, tor, _ := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(), Config{}, l.addr())
	// The liar takes the first pieces; the honest seeder gets the rest.
	select {
	case <-l.requests:
	case <-time.After(10 * time.Second):
		t.Fatal("the liar was never asked")
	}
	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	waitInfo(t, tor, 30*time.Second)
	checkInfo(t, tor, f.mi)
	waitBanned(t, tor, l.addr().Addr(), 10*time.Second)
	if slices.Contains(tor.Banned(), sc.Addr().Addr()) {
		t.Fatal("the honest seeder was banned")
	}
}

// TestMetadataSizeChange: when the peers claiming the size being fetched
// go away, the size others claim is fetched instead.
func TestMetadataSizeChange(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	l := startMetaLiarWith(t, "127.0.0.5", f.mi, metaLiar{size: len(f.mi.InfoBytes) + 5000, hangUp: true})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	_, tor, _ := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(), Config{}, l.addr())
	select {
	case <-l.requests:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer with the other size was never asked")
	}
	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	waitInfo(t, tor, 5*time.Second)
	checkInfo(t, tor, f.mi)
}

// TestMetadataTooLarge: a peer claiming a metadata_size above the bound is
// never asked.
func TestMetadataTooLarge(t *testing.T) {
	f := newFixture(t, 16<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 20 << 20}})
	l := startMetaLiar(t, "127.0.0.5", f.mi)
	_, tor, _ := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(),
		Config{MaxMetadataSize: peer.MetadataPieceSize}, l.addr())
	time.Sleep(2 * time.Second)
	select {
	case p := <-l.requests:
		t.Fatalf("asked for piece %d of a metadata_size over the bound", p)
	default:
	}
	if tor.Stats().Peers != 1 {
		t.Errorf("peer dropped (%d peers): an oversize claim is not a violation", tor.Stats().Peers)
	}
}

func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// startFakePeer listens on ip and, to each connection, answers the
// handshake (extension protocol, no fast extension) and sends intro, then
// reads until the connection ends.
func startFakePeer(t *testing.T, ip string, mi *metainfo.MetaInfo, intro ...peer.Message) netip.AddrPort {
	t.Helper()
	return listenFake(t, ip, func(nc net.Conn) {
		if _, err := peer.ReadHandshake(nc); err != nil {
			return
		}
		var rsv peer.Reserved
		rsv.SetExtended()
		if peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}) != nil {
			return
		}
		var out []byte
		for i := range intro {
			out = peer.AppendMessage(out, &intro[i])
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
		dec := peer.NewDecoder(nc, 1<<20)
		var m peer.Message
		for dec.Decode(&m) == nil {
		}
	}).addr()
}

// peerHaves reports, read on the loop, how many pieces each connected
// peer has announced.
func peerHaves(t *testing.T, tor *Torrent) map[netip.AddrPort]int {
	t.Helper()
	ch := make(chan map[netip.AddrPort]int, 1)
	if !tor.post(func() {
		out := map[netip.AddrPort]int{}
		for c := range tor.conns {
			out[c.addr] = c.has.count
		}
		ch <- out
	}) {
		t.Fatal("torrent closed")
	}
	return <-ch
}

// TestPreInfoBitfield: what peers announce before the metadata is kept and
// applied once the piece count is known; a bitfield of the wrong size is
// then a violation.
func TestPreInfoBitfield(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1<<20 + 5000}}) // 33 pieces
	n := f.mi.Info.NumPieces()
	bits := make([]byte, (n+7)/8)
	bits[0] = 0xFF // pieces 0..7
	good := startFakePeer(t, "127.0.0.6", f.mi,
		peer.Message{Type: peer.Bitfield, Bitfield: bits},
		peer.Message{Type: peer.Have, Index: 20},
		peer.Message{Type: peer.Have, Index: 3})
	bad := startFakePeer(t, "127.0.0.7", f.mi,
		peer.Message{Type: peer.Bitfield, Bitfield: make([]byte, len(bits)+4)})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	_, tor, dir := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(), Config{}, good, bad)
	deadline := time.Now().Add(10 * time.Second)
	for len(peerHaves(t, tor)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fake peers not connected: %v", peerHaves(t, tor))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	waitInfo(t, tor, 30*time.Second)
	haves := peerHaves(t, tor)
	if got, ok := haves[good]; !ok || got != 9 {
		t.Errorf("good peer: connected %v, %d pieces; want 9", ok, got)
	}
	if _, ok := haves[bad]; ok {
		t.Error("peer with a bitfield of the wrong size still connected")
	}
	waitComplete(t, tor, 30*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}

// TestRedialAfterMetadata: a peer we dialled that takes our info dictionary
// and hangs up (aria2 and rtorrent, given a magnet, start the torrent
// proper as a download of its own and drop the metadata's connections) is
// dialled again at once, not after the 15 s a peer that drops us waits;
// a second time it waits as any other (no loop with a peer that does it
// for ever).
func TestRedialAfterMetadata(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	ln, err := net.Listen("tcp4", "127.0.0.61:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newClient(t, Config{ListenAddr: "127.0.0.62:0", Storage: storage.File{Dir: f.dir}, NoTrackers: true, Encryption: mse.Off})
	if _, err := c.AddTorrent(f.mi, TorrentOptions{DownloadAll: true, Peers: []netip.AddrPort{netip.MustParseAddrPort(ln.Addr().String())}}); err != nil {
		t.Fatal(err)
	}
	accept := func(within time.Duration) (net.Conn, error) {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(within))
		return ln.Accept()
	}
	// takeInfo plays a magnet leecher: handshake, ut_metadata, piece 0 of
	// the info dictionary, then it hangs up.
	takeInfo := func(nc net.Conn) {
		t.Helper()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := peer.ReadHandshake(nc); err != nil {
			t.Fatal(err)
		}
		var rsv peer.Reserved
		rsv.SetExtended()
		if err := peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: f.mi.InfoHash, PeerID: peer.NewPeerID()}); err != nil {
			t.Fatal(err)
		}
		hs, err := (&peer.ExtendedHandshake{M: map[string]int{peer.ExtMetadata: 3}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(peer.AppendMessage(nil, &peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: hs})); err != nil {
			t.Fatal(err)
		}
		dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
		var m peer.Message
		for {
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("before the info dictionary: %v", err)
			}
			if m.KeepAlive || m.Type != peer.Extended {
				continue
			}
			if m.ExtendedID == peer.ExtHandshakeID {
				theirs, err := peer.ParseExtendedHandshake(m.Payload)
				if err != nil || theirs.M[peer.ExtMetadata] == 0 {
					t.Fatalf("extended handshake without ut_metadata: %v", err)
				}
				req := peer.MetadataMessage{Type: peer.MetadataRequest, Piece: 0}.Marshal()
				if _, err := nc.Write(peer.AppendMessage(nil, &peer.Message{Type: peer.Extended, ExtendedID: uint8(theirs.M[peer.ExtMetadata]), Payload: req})); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if m.ExtendedID == 3 {
				return // the info dictionary's first piece
			}
		}
	}
	nc, err := accept(10 * time.Second)
	if err != nil {
		t.Fatalf("no first dial: %v", err)
	}
	takeInfo(nc)
	hungUp := time.Now()
	if nc, err = accept(5 * time.Second); err != nil {
		t.Fatalf("not dialled again within 5 s of hanging up after the metadata: %v", err)
	}
	t.Logf("dialled again %v after the hang-up", time.Since(hungUp).Round(time.Millisecond))
	takeInfo(nc)
	if nc, err = accept(3 * time.Second); err == nil {
		nc.Close()
		t.Fatal("dialled again at once after a second hang-up")
	}
}
