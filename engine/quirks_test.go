package engine

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/peer"
	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// What real clients send that BEP 3 and BEP 6 do not quite allow, and what
// libtorrent, transmission and aria2 accept: none of it may cost us the
// peer. Each case is the only seeder of a small torrent, so a dropped
// connection fails the download.
func TestQuirkySeeders(t *testing.T) {
	file := swarmtest.FileSpec{Path: "a.bin", Size: 1<<20 + 5000} // 33 pieces of 32 KiB
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{file})
	n := f.mi.Info.NumPieces()
	all := fullBitfield(n)
	half := make([]byte, len(all))
	half[0], half[1] = 0xFF, 0xFF // pieces 0..15
	extHS := func(reqq int) peer.Message {
		b, err := (&peer.ExtendedHandshake{M: map[string]int{peer.ExtPex: 1}, V: "quirk", Reqq: reqq}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return peer.Message{Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: b}
	}
	cases := []struct {
		name      string
		fast, ext bool
		intro     []peer.Message
	}{
		// aria2: a run of HAVEs, then a BITFIELD when several pieces
		// completed at once.
		{"bitfield after haves", false, false, []peer.Message{
			{Type: peer.Have, Index: 0}, {Type: peer.Have, Index: 5}, {Type: peer.Bitfield, Bitfield: all}}},
		{"bitfield after have none", true, false, []peer.Message{
			{Type: peer.HaveNone}, {KeepAlive: true}, {Type: peer.Bitfield, Bitfield: all}}},
		{"second bitfield grows the set", false, false, []peer.Message{
			{Type: peer.Bitfield, Bitfield: half}, {Type: peer.Bitfield, Bitfield: all}}},
		{"have all after a bitfield", true, false, []peer.Message{
			{Type: peer.Bitfield, Bitfield: half}, {Type: peer.HaveAll}}},
		{"have all without the fast extension", false, false, []peer.Message{{Type: peer.HaveAll}}},
		{"have none without the fast extension, then have all", false, false, []peer.Message{
			{Type: peer.HaveNone}, {Type: peer.HaveAll}}},
		{"extended messages without BEP 10", false, false, []peer.Message{
			extHS(0), {Type: peer.Bitfield, Bitfield: all}, {Type: peer.Extended, ExtendedID: 1, Payload: []byte("d5:added0:e")}}},
		{"extended message of an extension we did not announce", false, true, []peer.Message{
			{Type: peer.Bitfield, Bitfield: all}, {Type: peer.Extended, ExtendedID: 77, Payload: []byte("junk")}}},
		{"extended handshake twice", true, true, []peer.Message{
			{Type: peer.HaveAll}, extHS(2), extHS(300)}},
		{"malformed extended handshake", true, true, []peer.Message{
			{Type: peer.HaveAll}, {Type: peer.Extended, ExtendedID: peer.ExtHandshakeID, Payload: []byte("d1:mi5ee")}}},
		{"malformed ut_pex", false, true, []peer.Message{
			{Type: peer.Bitfield, Bitfield: all}, {Type: peer.Extended, ExtendedID: extPexID, Payload: []byte("d5:added3:abce")}}},
		{"reject for a request never made", true, false, []peer.Message{
			{Type: peer.HaveAll}, {Type: peer.Reject, Index: 3, Begin: 0, Length: 16 << 10}}},
		{"reject without the fast extension", false, false, []peer.Message{
			{Type: peer.Bitfield, Bitfield: all}, {Type: peer.Reject, Index: 3, Begin: 0, Length: 16 << 10}}},
		{"keep-alives everywhere", true, true, []peer.Message{
			{KeepAlive: true}, {KeepAlive: true}, {Type: peer.HaveAll}, {KeepAlive: true}}},
		{"suggest, allowed fast and port out of the blue", false, false, []peer.Message{
			{Type: peer.Bitfield, Bitfield: all}, {Type: peer.Port, Port: 6881}, {Type: peer.AllowedFast, Index: uint32(n + 5)}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptSeed{fast: tc.fast, ext: tc.ext, reqq: 250, intro: tc.intro, file: file}
			fp := startScriptSeed(t, "127.0.0."+strconv.Itoa(30+i), f.mi, s)
			_, tor, dir := leecher(t, f, Config{}, fp.addr())
			waitComplete(t, tor, 20*time.Second)
			swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
		})
	}
}

// TestQuirkyLeechers: a seeder keeps serving a leecher that sends what
// aria2 and others send (aria2's mid-connection BITFIELD made us drop it at
// 3 MiB of 64, for good).
func TestQuirkyLeechers(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1<<20 + 5000}}) // 33 pieces
	sc, _ := seeder(t, f, Config{})
	n := f.mi.Info.NumPieces()
	some := make([]byte, (n+7)/8)
	some[0] = 0xF0 // pieces 0..3
	more := append([]byte(nil), some...)
	more[1] = 0xFF // and 8..15
	cases := []struct {
		name  string
		fast  bool
		quirk []peer.Message
	}{
		{"bitfield after haves", false, []peer.Message{
			{Type: peer.Have, Index: 0}, {Type: peer.Have, Index: 1}, {Type: peer.Bitfield, Bitfield: more}}},
		{"two bitfields", true, []peer.Message{{Type: peer.Bitfield, Bitfield: some}, {Type: peer.Bitfield, Bitfield: more}}},
		{"have none after a bitfield", true, []peer.Message{{Type: peer.Bitfield, Bitfield: some}, {Type: peer.HaveNone}}},
		{"have none without the fast extension", false, []peer.Message{{Type: peer.HaveNone}}},
		{"extended message without BEP 10", false, []peer.Message{
			{Type: peer.Extended, ExtendedID: 0, Payload: []byte("d1:md6:ut_pexi1eee")}}},
		{"reject without the fast extension", false, []peer.Message{{Type: peer.Reject, Index: 1, Length: 16 << 10}}},
		{"cancel for nothing", true, []peer.Message{{Type: peer.Cancel, Index: 1, Length: 16 << 10}}},
		{"keep-alives first", false, []peer.Message{{KeepAlive: true}, {KeepAlive: true}, {Type: peer.Bitfield, Bitfield: some}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc := dialHandshaken(t, sc.Addr(), f.mi, tc.fast)
			var out []byte
			for i := range tc.quirk {
				out = peer.AppendMessage(out, &tc.quirk[i])
			}
			out = peer.AppendMessage(out, &peer.Message{Type: peer.Interested})
			if _, err := nc.Write(out); err != nil {
				t.Fatal(err)
			}
			// Unchoked (a free upload slot), then served.
			nc.SetDeadline(time.Now().Add(15 * time.Second))
			dec := peer.NewDecoder(nc, peer.DefaultMaxMessageLength)
			var m peer.Message
			asked := false
			for {
				if err := dec.Decode(&m); err != nil {
					t.Fatalf("connection lost after %s: %v", tc.name, err)
				}
				if m.Type == peer.Unchoke && !m.KeepAlive && !asked {
					asked = true
					req := peer.AppendMessage(nil, &peer.Message{Type: peer.Request, Index: 20, Begin: 0, Length: 16 << 10})
					if _, err := nc.Write(req); err != nil {
						t.Fatal(err)
					}
				}
				if m.Type == peer.Piece && !m.KeepAlive {
					if m.Index != 20 || len(m.Block) != 16<<10 {
						t.Fatalf("got %v, want piece 20's first block", &m)
					}
					return
				}
			}
		})
	}
}

// dialHandshaken connects to addr and completes a handshake for mi, with
// the fast extension or with no extension bit at all.
func dialHandshaken(t *testing.T, addr netip.AddrPort, mi *metainfo.MetaInfo, fast bool) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var rsv peer.Reserved
	if fast {
		rsv.SetFast()
	}
	if err := peer.WriteHandshake(nc, peer.Handshake{Reserved: rsv, InfoHash: mi.InfoHash, PeerID: peer.NewPeerID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.ReadHandshake(nc); err != nil {
		t.Fatal(err)
	}
	return nc
}

// TestPreInfoLaterBitfield: before the metadata, a later BITFIELD replaces
// what a peer said before (its HAVEs), and HAVEs after it add to it.
func TestPreInfoLaterBitfield(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1<<20 + 5000}}) // 33 pieces
	bits := make([]byte, (f.mi.Info.NumPieces()+7)/8)
	bits[0] = 0xFF // pieces 0..7
	quirky := startFakePeer(t, "127.0.0.6", f.mi,
		peer.Message{Type: peer.Have, Index: 20},
		peer.Message{Type: peer.Bitfield, Bitfield: bits},
		peer.Message{Type: peer.Have, Index: 30})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0"})
	_, tor, dir := magnetLeecher(t, (&metainfo.Magnet{InfoHash: f.mi.InfoHash}).String(), Config{}, quirky)
	deadline := time.Now().Add(10 * time.Second)
	for len(peerHaves(t, tor)) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("fake peer not connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // its messages are in
	tor.AddPeers([]netip.AddrPort{sc.Addr()})
	waitInfo(t, tor, 30*time.Second)
	if got, ok := peerHaves(t, tor)[quirky]; !ok || got != 9 {
		t.Errorf("quirky peer: connected %v, %d pieces; want 9 (0-7 and 30)", ok, got)
	}
	waitComplete(t, tor, 30*time.Second)
	swarmtest.VerifyTree(t, f.root, filepath.Join(dir, "data"))
}
