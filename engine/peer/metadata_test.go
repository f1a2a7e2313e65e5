package peer

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseMetadataMessage(t *testing.T) {
	full := bytes.Repeat([]byte{'x'}, MetadataPieceSize)
	tests := []struct {
		name string
		in   string
		want MetadataMessage
	}{
		{"request", "d8:msg_typei0e5:piecei0ee", MetadataMessage{Type: MetadataRequest}},
		{"reject", "d8:msg_typei2e5:piecei3ee", MetadataMessage{Type: MetadataReject, Piece: 3}},
		{"reject with total_size", "d8:msg_typei2e5:piecei0e10:total_sizei5ee", MetadataMessage{Type: MetadataReject}},
		{"data, last piece", "d8:msg_typei1e5:piecei1e10:total_sizei16389ee" + "hello",
			MetadataMessage{Type: MetadataData, Piece: 1, TotalSize: 16389, Data: []byte("hello")}},
		{"data, full piece", "d8:msg_typei1e5:piecei0e10:total_sizei16389ee" + string(full),
			MetadataMessage{Type: MetadataData, Piece: 0, TotalSize: 16389, Data: full}},
		{"data, only piece", "d8:msg_typei1e5:piecei0e10:total_sizei3ee" + "abc",
			MetadataMessage{Type: MetadataData, Piece: 0, TotalSize: 3, Data: []byte("abc")}},
		{"data starting like bencode", "d8:msg_typei1e5:piecei0e10:total_sizei3ee" + "d1e",
			MetadataMessage{Type: MetadataData, Piece: 0, TotalSize: 3, Data: []byte("d1e")}},
		{"unknown keys", "d1:xi1e8:msg_typei0e5:piecei0e1:zli1eee", MetadataMessage{Type: MetadataRequest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMetadataMessage([]byte(tc.in), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.Data != nil && cap(got.Data) != len(got.Data) {
				t.Fatal("Data not capped")
			}
		})
	}
}

func TestParseMetadataMessageBad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
	}{
		{"empty", "", 0},
		{"not a dict", "li1ee", 0},
		{"no msg_type", "d5:piecei0ee", 0},
		{"no piece", "d8:msg_typei0ee", 0},
		{"unknown msg_type", "d8:msg_typei3e5:piecei0ee", 0},
		{"negative msg_type", "d8:msg_typei-1e5:piecei0ee", 0},
		{"negative piece", "d8:msg_typei0e5:piecei-1ee", 0},
		{"piece not int", "d8:msg_typei0e5:piece1:0e", 0},
		{"huge piece", "d8:msg_typei0e5:piecei9999999999999999ee", 0},
		{"piece beyond max", "d8:msg_typei0e5:piecei64ee", 1 << 20},
		{"request with data", "d8:msg_typei0e5:piecei0eeXX", 0},
		{"data without total_size", "d8:msg_typei1e5:piecei0eeabc", 0},
		{"data with zero total_size", "d8:msg_typei1e5:piecei0e10:total_sizei0ee", 0},
		{"total_size over max", "d8:msg_typei1e5:piecei0e10:total_sizei2000001ee", 2000000},
		{"piece past total_size", "d8:msg_typei1e5:piecei1e10:total_sizei3ee", 0},
		{"short data", "d8:msg_typei1e5:piecei0e10:total_sizei5eeabc", 0},
		{"long data", "d8:msg_typei1e5:piecei0e10:total_sizei2eeabc", 0},
		{"short full piece", "d8:msg_typei1e5:piecei0e10:total_sizei20000eeabc", 0},
		{"broken dict", "d8:msg_typei1e5:piecei0e10:total_sizei3eabc", 0},
		{"huge string claim", "d8:msg_typei1e5:piece99999999:", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMetadataMessage([]byte(tc.in), tc.max)
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v does not wrap ErrProtocol", err)
			}
			t.Log(err)
		})
	}
}

func TestMetadataMessageMarshal(t *testing.T) {
	tests := []struct {
		msg  MetadataMessage
		want string
	}{
		{MetadataMessage{Type: MetadataRequest, Piece: 2}, "d8:msg_typei0e5:piecei2ee"},
		{MetadataMessage{Type: MetadataReject, Piece: 0, TotalSize: 9}, "d8:msg_typei2e5:piecei0ee"},
		{MetadataMessage{Type: MetadataData, Piece: 1, TotalSize: MetadataPieceSize + 3, Data: []byte("abc")},
			"d8:msg_typei1e5:piecei1e10:total_sizei16387eeabc"},
	}
	for _, tc := range tests {
		got := tc.msg.Marshal()
		if string(got) != tc.want {
			t.Errorf("Marshal(%+v) = %q, want %q", tc.msg, got, tc.want)
		}
		back, err := ParseMetadataMessage(got, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tc.msg.Type != MetadataData {
			tc.msg.TotalSize = 0
		}
		if !reflect.DeepEqual(back, tc.msg) {
			t.Errorf("round trip %+v -> %+v", tc.msg, back)
		}
	}
	// A full-size data piece round-trips too.
	data := []byte(strings.Repeat("z", MetadataPieceSize))
	m := MetadataMessage{Type: MetadataData, Piece: 3, TotalSize: 4*MetadataPieceSize + 1, Data: data}
	back, err := ParseMetadataMessage(m.Marshal(), 0)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("full piece: %v", err)
	}
}
