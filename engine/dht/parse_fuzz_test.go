package dht

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/compact"
	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// Fuzz targets for the DHT's decoders of untrusted bytes below decodeMsg:
// compact node lists (from replies and the state file), get_peers values,
// and the saved state. FuzzKRPC (fuzz_test.go) drives the whole packet path.

// testID is a node ID for seeds.
const testID = "abcdefghij0123456789"

// FuzzParseNodes decodes data as a compact node list, IPv4 and IPv6, under
// a small and a large cap. A list is accepted exactly when it is a whole
// number of entries; its nodes are the entries but IPv4-mapped ones in an
// IPv6 list, in order, up to the cap; every node re-encodes to the entry it
// came from; the nodes cost memory in proportion to the input.
func FuzzParseNodes(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		nil,
		[]byte(testID + "\x7f\x00\x00\x02\x1a\xe1" + "mnopqrstuvwxyz123456\x0a\x00\x00\x01\x00\x01"),
		[]byte(testID + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1"),
		[]byte(testID + "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00" + testID[:19]),
		bytes.Repeat([]byte(testID+"\x7f\x00\x00\x03\x1a\xe1"), 9),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		for _, ipv6 := range []bool{false, true} {
			size := nodeInfoLen
			if ipv6 {
				size = nodeInfo6Len
			}
			for _, max := range []int{8, DefaultMaxNodes} {
				var nodes []nodeInfo
				var err error
				bound := uint64(4*len(data) + 256)
				alloc := fuzztest.Allocated(bound, func() { nodes, err = parseNodes(s, ipv6, max) })
				if (err != nil) != (len(data)%size != 0) {
					t.Fatalf("%d bytes, entries of %d: err %v", len(data), size, err)
				}
				if err != nil {
					continue
				}
				var entries [][]byte // what parseNodes must keep
				for e := range slices.Chunk(data, size) {
					if !ipv6 || !netip.AddrFrom16([16]byte(e[idLen:idLen+16])).Is4In6() {
						entries = append(entries, e)
					}
				}
				if len(nodes) != min(len(entries), max) {
					t.Fatalf("%d nodes from %d usable entries of %d bytes, cap %d", len(nodes), len(entries), size, max)
				}
				if alloc > bound {
					t.Fatalf("%d nodes from %d bytes allocated %d bytes", len(nodes), len(data), alloc)
				}
				for i, ni := range nodes {
					if got := appendNode(nil, ni); !bytes.Equal(got, entries[i]) {
						t.Fatalf("node %d (%v) re-encodes as %x, came from %x", i, ni.Addr, got, entries[i])
					}
				}
			}
		}
	})
}

// FuzzParseValues decodes data as a bencoded list of strings, the values of
// a get_peers reply, and parses them as compact peers. parseValues keeps
// exactly the 6- and 18-byte entries with a port, in order, up to its cap,
// and each re-encodes to its entry.
func FuzzParseValues(f *testing.F) {
	fuzztest.Seeds(f, [][]byte{
		[]byte("le"),
		[]byte("l6:axje.u6:idhtnme"),
		[]byte("l6:\x7f\x00\x00\x01\x1a\xe15:short6:\x7f\x00\x00\x01\x00\x0018:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50e"),
		[]byte("l18:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01\x1a\xe1e"),
		[]byte("l" + string(bytes.Repeat([]byte("6:\x0a\x00\x00\x01\x1a\xe1"), 12)) + "e"),
		[]byte("li6881ee"),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		var vals []string
		if bencode.Unmarshal(data, &vals) != nil {
			return
		}
		var entries []string // what parseValues must keep
		for _, v := range vals {
			if (len(v) == 6 || len(v) == 18) && v[len(v)-2:] != "\x00\x00" {
				entries = append(entries, v)
			}
		}
		for _, max := range []int{1, 8, 1 << 20} {
			var peers []netip.AddrPort
			bound := uint64(16*len(data) + 1024)
			alloc := fuzztest.Allocated(bound, func() { peers = parseValues(vals, max) })
			if len(peers) != min(len(entries), max) {
				t.Fatalf("%d peers from %d usable values, cap %d", len(peers), len(entries), max)
			}
			if alloc > bound {
				t.Fatalf("%d peers from %d bytes allocated %d bytes", len(peers), len(data), alloc)
			}
			for i, p := range peers {
				e := entries[i]
				if len(e) == 18 && p.Addr().Is4In6() {
					e = e[12:] // AppendPeer writes an IPv4-mapped address as IPv4
				}
				if got := compact.AppendPeer(nil, p); string(got) != e {
					t.Fatalf("peer %d (%v) re-encodes as %x, came from %x", i, p, got, e)
				}
			}
		}
	})
}

// FuzzDecodeState decodes data as a saved state file (loadState has bounded
// its size by then). What decodes must survive encodeState and decodeState
// unchanged, hold no more nodes than two full tables, and cost memory in
// proportion to the input.
func FuzzDecodeState(f *testing.F) {
	v4 := testID + "\x7f\x00\x00\x02\x1a\xe1"
	v6 := testID + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1"
	fuzztest.Seeds(f, [][]byte{
		nil,
		[]byte("de"),
		[]byte("d2:id20:" + testID + "5:nodes0:e"),
		[]byte("d2:id20:" + testID + "5:nodes26:" + v4 + "e"),
		[]byte("d2:id20:" + testID + "5:nodes26:" + v4 + "6:nodes638:" + v6 + "e"),
		// An IPv4-mapped node in nodes6 was saved back as a 26-byte entry,
		// and the whole nodes6 list lost at the next load.
		[]byte("d2:id20:" + testID + "5:nodes0:6:nodes676:" + v6 + testID + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01\x1a\xe1e"),
		[]byte("d2:id20:" + testID + "5:nodes25:" + v4[:25] + "6:nodes61:xe"),
		[]byte("d2:id19:" + testID[:19] + "5:nodes0:e"),
		[]byte("d2:idi5e5:nodes0:e"),
		[]byte("d2:id20:" + testID + "5:nodes26:" + v4 + "5:extrai1ee"),
		[]byte("d2:id20:" + testID + "5:nodes999999999:e"),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		var st *state
		var err error
		bound := uint64(16*len(data) + 16<<10)
		alloc := fuzztest.Allocated(bound, func() { st, err = decodeState(data) })
		if err != nil {
			if st != nil {
				t.Fatal("a state with an error")
			}
			return
		}
		if alloc > bound {
			t.Fatalf("%d bytes of state allocated %d bytes", len(data), alloc)
		}
		if len(st.nodes) > 2*DefaultMaxNodes {
			t.Fatalf("%d nodes", len(st.nodes))
		}
		enc := encodeState(st)
		back, err := decodeState(enc)
		if err != nil {
			t.Fatalf("decodeState(encodeState(%q)): %v", enc, err)
		}
		if back.id != st.id || !reflect.DeepEqual(back.nodes, st.nodes) {
			t.Fatalf("round trip changed the state:\n%v\n%v", st.nodes, back.nodes)
		}
	})
}
