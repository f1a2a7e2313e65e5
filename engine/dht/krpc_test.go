package dht

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The examples of BEP 5, byte for byte.
const (
	bepPing         = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
	bepPingResp     = "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"
	bepFindNode     = "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe"
	bepGetPeers     = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe"
	bepGetPeersResp = "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"
	bepAnnounce     = "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
	bepError        = "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"
)

func TestDecodeMsg(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *msg // nil: must fail
	}{
		{"ping", bepPing, &msg{T: "aa", Y: "q", Q: "ping", A: &msgArgs{ID: "abcdefghij0123456789"}}},
		{"ping response", bepPingResp, &msg{T: "aa", Y: "r", R: &msgReturn{ID: "mnopqrstuvwxyz123456"}}},
		{"find_node", bepFindNode, &msg{T: "aa", Y: "q", Q: "find_node", A: &msgArgs{ID: "abcdefghij0123456789", Target: "mnopqrstuvwxyz123456"}}},
		{"get_peers", bepGetPeers, &msg{T: "aa", Y: "q", Q: "get_peers", A: &msgArgs{ID: "abcdefghij0123456789", InfoHash: "mnopqrstuvwxyz123456"}}},
		{"get_peers values", bepGetPeersResp, &msg{T: "aa", Y: "r", R: &msgReturn{ID: "abcdefghij0123456789", Token: "aoeusnth", Values: []string{"axje.u", "idhtnm"}}}},
		{"announce_peer", bepAnnounce, &msg{T: "aa", Y: "q", Q: "announce_peer", A: &msgArgs{ID: "abcdefghij0123456789", InfoHash: "mnopqrstuvwxyz123456", Port: 6881, ImpliedPort: 1, Token: "aoeusnth"}}},
		{"error", bepError, &msg{T: "aa", Y: "e", E: []any{int64(201), "A Generic Error Ocurred"}}},
		{"extra keys ignored", "d1:ad2:id20:abcdefghij01234567893:xyzli1eee1:q4:ping1:t2:aa1:v4:LT\x01\x021:y1:q2:zzd1:a0:ee", &msg{T: "aa", Y: "q", Q: "ping", V: "LT\x01\x02", A: &msgArgs{ID: "abcdefghij0123456789"}}},
		{"read-only and ip", "d1:ad2:id20:abcdefghij0123456789e2:ip6:\x7f\x00\x00\x01\x1a\xe11:q4:ping2:roi1e1:t2:aa1:y1:qe", &msg{T: "aa", Y: "q", Q: "ping", RO: 1, IP: "\x7f\x00\x00\x01\x1a\xe1", A: &msgArgs{ID: "abcdefghij0123456789"}}},
		{"want list", "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe", &msg{T: "aa", Y: "q", Q: "find_node", A: &msgArgs{ID: "abcdefghij0123456789", Target: "mnopqrstuvwxyz123456", Want: []string{"n4", "n6"}}}},
		{"empty", "", nil},
		{"not a dict", "li1ee", nil},
		{"no transaction", "d1:rd2:id20:mnopqrstuvwxyz123456e1:y1:re", nil},
		{"empty transaction", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t0:1:y1:re", nil},
		{"long transaction", "d1:rd2:id20:mnopqrstuvwxyz123456e1:t17:aaaaaaaaaaaaaaaaa1:y1:re", nil},
		{"unknown type", "d1:t2:aa1:y1:xe", nil},
		{"query without args", "d1:q4:ping1:t2:aa1:y1:qe", nil},
		{"query without method", "d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe", nil},
		{"response without body", "d1:t2:aa1:y1:re", nil},
		{"id is an integer", "d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", nil},
		{"args not a dict", "d1:ali1ee1:q4:ping1:t2:aa1:y1:qe", nil},
		{"huge declared string", "d1:ad2:id99999999999:xe1:q4:ping1:t2:aa1:y1:qe", nil},
		{"truncated", bepPing[:len(bepPing)-3], nil},
		{"trailing garbage", bepPing + "x", nil},
		{"duplicate key", "d1:t2:aa1:t2:bb1:y1:re", nil},
		{"negative port", "d1:ad2:id20:abcdefghij01234567894:porti-1ee1:q4:ping1:t2:aa1:y1:qe", &msg{T: "aa", Y: "q", Q: "ping", A: &msgArgs{ID: "abcdefghij0123456789", Port: -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeMsg([]byte(tc.in))
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decodeMsg accepted %q: %+v", tc.in, got)
				}
				if !errors.Is(err, errBadPacket) {
					t.Fatalf("error %v does not wrap errBadPacket", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeMsg: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decodeMsg = %+v (a %+v r %+v), want %+v", got, got.A, got.R, tc.want)
			}
		})
	}
}

func TestEncodeMsg(t *testing.T) {
	tests := []struct {
		name string
		m    *msg
		want string
	}{
		{"ping", &msg{T: "aa", Y: "q", Q: "ping", A: &msgArgs{ID: "abcdefghij0123456789"}}, bepPing},
		{"ping response", &msg{T: "aa", Y: "r", R: &msgReturn{ID: "mnopqrstuvwxyz123456"}}, bepPingResp},
		{"find_node", &msg{T: "aa", Y: "q", Q: "find_node", A: &msgArgs{ID: "abcdefghij0123456789", Target: "mnopqrstuvwxyz123456"}}, bepFindNode},
		{"get_peers", &msg{T: "aa", Y: "q", Q: "get_peers", A: &msgArgs{ID: "abcdefghij0123456789", InfoHash: "mnopqrstuvwxyz123456"}}, bepGetPeers},
		{"get_peers values", &msg{T: "aa", Y: "r", R: &msgReturn{ID: "abcdefghij0123456789", Token: "aoeusnth", Values: []string{"axje.u", "idhtnm"}}}, bepGetPeersResp},
		{"announce_peer", &msg{T: "aa", Y: "q", Q: "announce_peer", A: &msgArgs{ID: "abcdefghij0123456789", InfoHash: "mnopqrstuvwxyz123456", Port: 6881, ImpliedPort: 1, Token: "aoeusnth"}}, bepAnnounce},
		{"error", errorMsg("aa", ErrCodeGeneric, "A Generic Error Ocurred"), bepError},
		{"read-only query", &msg{T: "aa", Y: "q", Q: "ping", RO: 1, A: &msgArgs{ID: "abcdefghij0123456789"}}, "d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(encodeMsg(tc.m)); got != tc.want {
				t.Fatalf("encodeMsg =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestRemoteError(t *testing.T) {
	tests := []struct {
		name string
		e    []any
		want KRPCError
	}{
		{"generic", []any{int64(201), "oops"}, KRPCError{201, "oops"}},
		{"server", []any{int64(202), "busy"}, KRPCError{202, "busy"}},
		{"protocol", []any{int64(203), "bad token"}, KRPCError{203, "bad token"}},
		{"method", []any{int64(204), "method unknown"}, KRPCError{204, "method unknown"}},
		{"empty list", nil, KRPCError{201, ""}},
		{"swapped types", []any{"x", int64(3)}, KRPCError{201, ""}},
		{"long message cut", []any{int64(202), strings.Repeat("x", 500)}, KRPCError{202, strings.Repeat("x", 200)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &msg{E: tc.e}
			if got := *m.remoteError(); got != tc.want {
				t.Fatalf("remoteError = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCompactNodes(t *testing.T) {
	a := nodeInfo{ID: [20]byte{1, 2, 3}, Addr: netip.MustParseAddrPort("127.0.0.9:6881")}
	b := nodeInfo{ID: [20]byte{9}, Addr: netip.MustParseAddrPort("10.1.2.3:1")}
	enc := string(appendNode(appendNode(nil, a), b))
	if len(enc) != 2*nodeInfoLen {
		t.Fatalf("encoded %d bytes", len(enc))
	}
	got, err := parseNodes(enc, false, 16)
	if err != nil || !reflect.DeepEqual(got, []nodeInfo{a, b}) {
		t.Fatalf("parseNodes = %v, %v", got, err)
	}
	if got, _ := parseNodes(enc, false, 1); len(got) != 1 {
		t.Fatalf("max not applied: %d", len(got))
	}
	if _, err := parseNodes(enc[:30], false, 16); err == nil {
		t.Fatal("accepted a partial entry")
	}
	c := nodeInfo{ID: [20]byte{7}, Addr: netip.MustParseAddrPort("[::1]:6881")}
	enc6 := string(appendNode(nil, c))
	if got, err := parseNodes(enc6, true, 16); err != nil || !reflect.DeepEqual(got, []nodeInfo{c}) {
		t.Fatalf("parseNodes v6 = %v, %v", got, err)
	}
	vals := []string{"\x7f\x00\x00\x01\x1a\xe1", "short", "\x7f\x00\x00\x01\x00\x00", compactAddr(netip.MustParseAddrPort("[::1]:80"))}
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6881"), netip.MustParseAddrPort("[::1]:80")}
	if got := parseValues(vals, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseValues = %v, want %v", got, want)
	}
}
