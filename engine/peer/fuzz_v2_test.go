package peer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/fuzztest"
)

// hashFuzzSeeds are the committed seeds of FuzzDecodeHashes, in
// testdata/fuzz/FuzzDecodeHashes/ (checked, or with -update-corpus
// rewritten, by fuzztest.Seeds).
func hashFuzzSeeds() [][]byte {
	var stream []byte
	var seeds [][]byte
	for _, tc := range hashMessageCases {
		seeds = append(seeds, tc.wire)
		stream = append(stream, tc.wire...)
	}
	stream = append(stream, wire("00000005 04 00000007")...)
	head := func(id string, base, index, length, proof string) string {
		return id + strings.Repeat("00", 32) + base + index + length + proof
	}
	return append(seeds, stream,
		wire("00000031"+head("15", "00000000", "00000000", "00002001", "00000000")),
		wire("00000031"+head("15", "00000040", "00000000", "00000002", "00000000")),
		wire("000000d1 16"+head("", "00000000", "00000008", "00000004", "00000003")+strings.Repeat("07", 5*32)),
		wire("00400000 16"+head("", "00000000", "00000000", "00000002", "00000000")),
		wire("00000051 16"+head("", "00000000", "00000000", "00000001", "00000000")+strings.Repeat("ab", 32)),
		wire("000000f1 16"+strings.Repeat("00", 20)),
	)
}

// FuzzDecodeHashes decodes streams of BEP 52 hash messages (and anything
// else): every error is a protocol violation, re-encoding reproduces the
// bytes, and a decoded hashes message carries exactly the hashes its
// header asks for, within the bounds.
func FuzzDecodeHashes(f *testing.F) {
	fuzztest.Seeds(f, hashFuzzSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data), 1<<20)
		var again []byte
		for {
			var m Message
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
				return
			}
			switch m.Type {
			case HashRequest, HashReject, Hashes:
				if m.Length == 0 || m.Length > MaxHashLength || m.BaseLayer > MaxHashLayer || m.ProofLayers > MaxHashLayer {
					t.Fatalf("out of bounds: %v", m.String())
				}
				n, err := HashesLength(m.Length, m.ProofLayers)
				if err != nil || m.Type == Hashes && len(m.Hashes) != n || m.Type != Hashes && m.Hashes != nil {
					t.Fatalf("%v carries %d bytes of hashes, want %d (%v)", m.String(), len(m.Hashes), n, err)
				}
			}
			again = AppendMessage(again, &m)
			if !bytes.HasPrefix(data, again) {
				t.Fatalf("re-encoded %x is not a prefix of %x", again, data)
			}
		}
	})
}
