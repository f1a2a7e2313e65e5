package peer

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// fuzzSeeds are the seed corpora, one list per fuzz target, committed in
// testdata/fuzz/<target>/ (see package fuzztest).
func fuzzSeeds() map[string][][]byte {
	var stream []byte
	for _, tc := range messageCases {
		stream = append(stream, tc.wire...)
	}
	decode := [][]byte{stream, wire("ffffffff 07"), wire("00000005 04 0000"), wire("00000001 0a"), wire("0000000d 06 00000000")}
	for _, tc := range messageCases {
		decode = append(decode, tc.wire)
	}
	ext := [][]byte{
		[]byte(libtorrentExtHandshake),
		[]byte("de"),
		[]byte("d1:md11:ut_metadatai0eee"),
		[]byte("d4:ipv44:\x01\x02\x03\x044:ipv616:0123456789abcdef1:md6:ut_pexi255ee13:metadata_sizei0e1:pi6881e4:reqqi1e1:v2:xy6:yourip16:fedcba9876543210e"),
		[]byte("d13:metadata_size3:abc1:p4:68814:reqq3:5001:vi5e6:yourip5:12345e"),
		[]byte("d1:md1:ai256eee"),
	}
	meta := [][]byte{
		[]byte("d8:msg_typei0e5:piecei0ee"),
		[]byte("d8:msg_typei2e5:piecei3ee"),
		[]byte("d8:msg_typei1e5:piecei1e10:total_sizei16389eehello"),
		[]byte("d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"),
		[]byte("d8:msg_typei1e5:piecei0e10:total_sizei5eeabc"),
	}
	pm, _ := PexMessage{
		Added:      addrs("127.0.0.2:6881", "[::1]:6882", "10.0.0.1:80"),
		AddedFlags: []byte{PexFlagSeed, PexFlagUTP, PexFlagReachable},
		Dropped:    addrs("[2001:db8::1]:2", "127.0.0.3:1"),
	}.Marshal()
	pex := [][]byte{
		pm,
		[]byte("de"),
		[]byte("d5:added12:\x7f\x00\x00\x02\x1a\xe1\x0a\x00\x00\x01\x00\x507:added.f2:\x02\x117:dropped6:\x7f\x00\x00\x03\x00\x01e"),
		[]byte("d5:added5:\x7f\x00\x00\x02\x1ae"),
	}
	good := AppendHandshake(nil, testHandshake())
	hs := [][]byte{
		good,
		append(append([]byte(nil), good...), wire("00000001 0e")...),
		good[:40],
		append([]byte{18}, good[1:]...),
	}
	return map[string][][]byte{
		"FuzzDecode":            decode,
		"FuzzExtendedHandshake": ext,
		"FuzzMetadataMessage":   meta,
		"FuzzPex":               pex,
		"FuzzHandshake":         hs,
	}
}

// FuzzDecode decodes a stream until it fails and checks that re-encoding
// the decoded messages reproduces the bytes consumed, and that every error
// but a clean io.EOF is a protocol violation.
func FuzzDecode(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds()["FuzzDecode"])
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data), 1<<16)
		var m Message
		var again []byte
		for {
			err := d.Decode(&m)
			if err == io.EOF {
				if !bytes.Equal(again, data) {
					t.Fatalf("re-encoded %x, input %x", again, data)
				}
				return
			}
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("error %v is not a protocol violation", err)
				}
				if !bytes.HasPrefix(data, again) {
					t.Fatalf("re-encoded %x is not a prefix of %x", again, data)
				}
				return
			}
			again = AppendMessage(again, &m)
			if len(again) > len(data) {
				t.Fatalf("re-encoded %d bytes from %d", len(again), len(data))
			}
		}
	})
}

// FuzzExtendedHandshake checks the bounds of what ParseExtendedHandshake
// accepts and that Marshal round-trips it.
func FuzzExtendedHandshake(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds()["FuzzExtendedHandshake"])
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := ParseExtendedHandshake(payload)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if len(h.M) > MaxExtensions || h.MetadataSize < 0 || h.Port < 0 || h.Port > 65535 || h.Reqq < 0 {
			t.Fatalf("out of bounds: %+v", h)
		}
		for name, id := range h.M {
			if id < 0 || id > 255 {
				t.Fatalf("id %d for %q", id, name)
			}
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", h, err)
		}
		back, err := ParseExtendedHandshake(b)
		if err != nil {
			t.Fatalf("re-parse %q: %v", b, err)
		}
		if h.M == nil {
			h.M = map[string]int{} // Marshal sends a nil M as an empty one
		}
		if !reflect.DeepEqual(back, h) {
			t.Fatalf("round trip %+v -> %+v", h, back)
		}
	})
}

// FuzzMetadataMessage checks the consistency ParseMetadataMessage promises
// and that Marshal round-trips it.
func FuzzMetadataMessage(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds()["FuzzMetadataMessage"])
	const max = 1 << 20
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := ParseMetadataMessage(payload, max)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if m.Type < 0 || m.Type > MetadataReject || m.Piece < 0 || m.Piece*MetadataPieceSize >= max {
			t.Fatalf("out of bounds: %+v", m)
		}
		if m.Type == MetadataData {
			if m.TotalSize <= 0 || m.TotalSize > max || m.Piece*MetadataPieceSize+len(m.Data) > m.TotalSize ||
				(len(m.Data) != MetadataPieceSize && m.Piece*MetadataPieceSize+len(m.Data) != m.TotalSize) {
				t.Fatalf("inconsistent data message: piece %d, %d bytes, total %d", m.Piece, len(m.Data), m.TotalSize)
			}
		} else if m.Data != nil || m.TotalSize != 0 {
			t.Fatalf("data on a non-data message: %+v", m)
		}
		back, err := ParseMetadataMessage(m.Marshal(), max)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip %+v -> %+v, %v", m, back, err)
		}
	})
}

// FuzzPex checks the bounds of ParsePexMessage and that Marshal
// round-trips it.
func FuzzPex(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds()["FuzzPex"])
	const max = 50
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := ParsePexMessage(payload, max)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			return
		}
		if len(m.Added) > max || len(m.Dropped) > max || len(m.AddedFlags) != len(m.Added) {
			t.Fatalf("out of bounds: %d added, %d flags, %d dropped", len(m.Added), len(m.AddedFlags), len(m.Dropped))
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := ParsePexMessage(b, 0)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for _, ap := range append(append([]netip.AddrPort(nil), m.Added...), m.Dropped...) {
			if ap.Addr().Is4In6() {
				return // Marshal moves IPv4-mapped peers to the IPv4 lists
			}
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip %+v -> %+v", m, back)
		}
	})
}

// FuzzHandshake checks that an accepted handshake re-encodes to the bytes it
// was read from and that every rejection but io.EOF is a protocol violation.
func FuzzHandshake(f *testing.F) {
	fuzztest.Seeds(f, fuzzSeeds()["FuzzHandshake"])
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHandshake(bytes.NewReader(data))
		if err != nil {
			if err != io.EOF && !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not a protocol violation", err)
			}
			if err == io.EOF && len(data) != 0 {
				t.Fatalf("io.EOF after %d bytes", len(data))
			}
			return
		}
		if got := AppendHandshake(nil, h); !bytes.Equal(got, data[:HandshakeLength]) {
			t.Fatalf("re-encoded %x from %x", got, data[:HandshakeLength])
		}
	})
}
