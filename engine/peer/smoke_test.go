package peer

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestSmoke(t *testing.T) {
	var buf []byte
	buf = AppendMessage(buf, &Message{Type: Request, Index: 1, Begin: 2, Length: 3})
	buf = AppendMessage(buf, &Message{Type: Piece, Index: 1, Begin: 2, Block: []byte("abc")})
	d := NewDecoder(bytes.NewReader(buf), 0)
	var m Message
	if err := d.Decode(&m); err != nil || m.Type != Request || m.Length != 3 {
		t.Fatal(err, m)
	}
	if err := d.Decode(&m); err != nil || m.Type != Piece || string(m.Block) != "abc" {
		t.Fatal(err, m)
	}
	h := &ExtendedHandshake{M: map[string]int{"ut_metadata": 3}, V: "x", MetadataSize: 5}
	b, err := h.Marshal()
	t.Logf("%q %v", b, err)
	h2, err := ParseExtendedHandshake(b)
	t.Logf("%+v %v", h2, err)
	b, err = (&ExtendedHandshake{}).Marshal()
	t.Logf("%q %v", b, err)
	t.Log(AllowedFastSet(netipMust("80.4.4.200"), [20]byte(bytes.Repeat([]byte{0xaa}, 20)), 1313, 9))
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
