package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/compact"
)

// KRPC error codes (BEP 5).
const (
	ErrCodeGeneric  = 201
	ErrCodeServer   = 202
	ErrCodeProtocol = 203
	ErrCodeMethod   = 204
)

// KRPCError is an error message a remote node sent in reply to one of our
// queries (y = "e"). Callers can find it with errors.As.
type KRPCError struct {
	Code int
	Msg  string
}

func (e *KRPCError) Error() string { return fmt.Sprintf("dht: remote error %d: %s", e.Code, e.Msg) }

// Query method names.
const (
	qPing     = "ping"
	qFindNode = "find_node"
	qGetPeers = "get_peers"
	qAnnounce = "announce_peer"
)

// Wire sizes.
const (
	nodeInfoLen  = idLen + 6  // compact node info, IPv4
	nodeInfo6Len = idLen + 18 // compact node info, IPv6 (BEP 32)
	peerLen      = 6
	tokenLen     = 8
	// maxPacket is the largest datagram we accept; KRPC messages are far
	// smaller, anything longer is truncated by the read and fails to decode.
	maxPacket = 4096
	// maxReply is the largest reply we ever send, below a typical MTU.
	maxReply = 1400
)

// msg is one KRPC message as it sits on the wire. Binary strings (IDs,
// tokens, compact lists) are Go strings so they decode without reflection
// on []byte and compare with ==.
type msg struct {
	T  string     `bencode:"t"`
	Y  string     `bencode:"y"`
	Q  string     `bencode:"q,omitempty"`
	A  *msgArgs   `bencode:"a,omitempty"`
	R  *msgReturn `bencode:"r,omitempty"`
	E  []any      `bencode:"e,omitempty"`
	IP string     `bencode:"ip,omitempty"` // BEP 42: the requester's address as seen by the responder
	RO int64      `bencode:"ro,omitempty"` // BEP 43: the querying node is read-only
	V  string     `bencode:"v,omitempty"`  // client version
}

// msgArgs are the arguments of a query (the "a" dictionary).
type msgArgs struct {
	ID          string   `bencode:"id"`
	Target      string   `bencode:"target,omitempty"`
	InfoHash    string   `bencode:"info_hash,omitempty"`
	Token       string   `bencode:"token,omitempty"`
	Port        int64    `bencode:"port,omitempty"`
	ImpliedPort int64    `bencode:"implied_port,omitempty"`
	Want        []string `bencode:"want,omitempty"` // BEP 32: "n4", "n6"
}

// msgReturn is the body of a response (the "r" dictionary).
type msgReturn struct {
	ID     string   `bencode:"id"`
	Nodes  string   `bencode:"nodes,omitempty"`
	Nodes6 string   `bencode:"nodes6,omitempty"`
	Token  string   `bencode:"token,omitempty"`
	Values []string `bencode:"values,omitempty"`
}

// errBadPacket is wrapped by every decodeMsg failure.
var errBadPacket = errors.New("dht: bad packet")

// decodeMsg decodes one datagram through the bounded bencode gate and
// checks the envelope every message must have. Method-specific arguments
// are checked by their handlers.
func decodeMsg(data []byte) (*msg, error) {
	var m msg
	if err := bencode.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadPacket, err)
	}
	if len(m.T) == 0 || len(m.T) > 16 {
		return nil, fmt.Errorf("%w: transaction id of %d bytes", errBadPacket, len(m.T))
	}
	switch m.Y {
	case "q":
		if m.A == nil || m.Q == "" {
			return nil, fmt.Errorf("%w: query without method or arguments", errBadPacket)
		}
	case "r":
		if m.R == nil {
			return nil, fmt.Errorf("%w: response without body", errBadPacket)
		}
	case "e":
	default:
		return nil, fmt.Errorf("%w: message type %q", errBadPacket, m.Y)
	}
	return &m, nil
}

// remoteError turns the "e" list of an error message into a KRPCError,
// tolerating the malformed lists some clients send.
func (m *msg) remoteError() *KRPCError {
	e := &KRPCError{Code: ErrCodeGeneric}
	if len(m.E) > 0 {
		if c, ok := m.E[0].(int64); ok && c >= 0 && c < 1000 {
			e.Code = int(c)
		}
	}
	if len(m.E) > 1 {
		if s, ok := m.E[1].(string); ok {
			if len(s) > 200 {
				s = s[:200]
			}
			e.Msg = s
		}
	}
	return e
}

// encodeMsg encodes m. Encoding our own structs cannot fail.
func encodeMsg(m *msg) []byte {
	b, err := bencode.Marshal(m)
	if err != nil {
		panic("dht: encoding a KRPC message: " + err.Error())
	}
	return b
}

// errorMsg builds the error reply to transaction t.
func errorMsg(t string, code int, text string) *msg {
	return &msg{T: t, Y: "e", E: []any{int64(code), text}}
}

// parseID checks a wire ID.
func parseID(s string) ([idLen]byte, bool) {
	var id [idLen]byte
	if len(s) != idLen {
		return id, false
	}
	copy(id[:], s)
	return id, true
}

// nodeInfo is a node's ID and address, as carried in "nodes" lists.
type nodeInfo struct {
	ID   [idLen]byte
	Addr netip.AddrPort
}

// parseNodes decodes a compact node list (26 bytes per IPv4 node, 38 per
// IPv6 node), keeping at most max entries. A list that is not a whole
// number of entries is an error. An IPv4-mapped address in an IPv6 list is
// an IPv4 node in the wrong list (BEP 32) and is skipped: appendNode writes
// it back as IPv4, so kept, it would put a 26-byte entry into our nodes6
// replies and saved state, breaking the whole list for its readers.
func parseNodes(s string, ipv6 bool, max int) ([]nodeInfo, error) {
	size, ipLen := nodeInfoLen, 4
	if ipv6 {
		size, ipLen = nodeInfo6Len, 16
	}
	if len(s)%size != 0 {
		return nil, fmt.Errorf("%w: nodes list of %d bytes", errBadPacket, len(s))
	}
	out := make([]nodeInfo, 0, min(len(s)/size, max))
	for i := 0; i+size <= len(s) && len(out) < max; i += size {
		e := s[i : i+size]
		var ni nodeInfo
		copy(ni.ID[:], e[:idLen])
		var ip netip.Addr
		if ipv6 {
			ip = netip.AddrFrom16([16]byte([]byte(e[idLen : idLen+16])))
			if ip.Is4In6() {
				continue
			}
		} else {
			ip = netip.AddrFrom4([4]byte([]byte(e[idLen : idLen+4])))
		}
		port := binary.BigEndian.Uint16([]byte(e[idLen+ipLen:]))
		ni.Addr = netip.AddrPortFrom(ip, port)
		out = append(out, ni)
	}
	return out, nil
}

// appendNode appends the compact node info of ni (26 or 38 bytes).
func appendNode(b []byte, ni nodeInfo) []byte {
	b = append(b, ni.ID[:]...)
	return compact.AppendPeer(b, ni.Addr)
}

// parseValues decodes the "values" list of a get_peers response: 6-byte
// IPv4 or 18-byte IPv6 compact peers. Malformed entries are skipped, at
// most max peers are returned.
func parseValues(vals []string, max int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, v := range vals {
		if len(out) >= max {
			break
		}
		var ps []netip.AddrPort
		var err error
		switch len(v) {
		case 6:
			ps, err = compact.ParsePeers([]byte(v), 1)
		case 18:
			ps, err = compact.ParsePeers6([]byte(v), 1)
		default:
			continue
		}
		if err != nil || len(ps) != 1 || ps[0].Port() == 0 {
			continue
		}
		out = append(out, ps[0])
	}
	return out
}

// compactAddr returns the 6- or 18-byte compact form of ap.
func compactAddr(ap netip.AddrPort) string {
	return string(compact.AppendPeer(nil, ap))
}
