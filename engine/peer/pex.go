package peer

import (
	"fmt"
	"net/netip"

	"github.com/swarmfs/swarmfs/engine/compact"
)

// Flags of a ut_pex "added.f" byte, one per added peer.
const (
	PexFlagEncryption = 0x01 // prefers encrypted connections
	PexFlagSeed       = 0x02 // is a seed (or upload-only)
	PexFlagUTP        = 0x04 // supports uTP
	PexFlagHolepunch  = 0x08 // supports ut_holepunch
	PexFlagReachable  = 0x10 // was reached by an outgoing connection
)

// PexMessage is a BEP 11 ut_pex message with the IPv4 and IPv6 lists
// merged: on the wire "added"/"added6", "added.f"/"added6.f" and
// "dropped"/"dropped6".
//
// AddedFlags[i] belongs to Added[i]. ParsePexMessage always returns as many
// flags as added peers (zero where the sender sent none); Marshal accepts
// fewer, padding with zero.
type PexMessage struct {
	Added      []netip.AddrPort
	AddedFlags []byte
	Dropped    []netip.AddrPort
}

// ParsePexMessage decodes a ut_pex payload (after the extended id). At most
// maxPeers added and maxPeers dropped peers are kept (maxPeers <= 0: no
// limit beyond the payload's size; BEP 11 senders send at most 50 of each),
// IPv4 first. A payload that is not a dictionary or a peer list that is not
// a whole number of entries is an error wrapping ErrProtocol; unknown keys
// and lists of the wrong type are ignored.
func ParsePexMessage(payload []byte, maxPeers int) (PexMessage, error) {
	var added, added6, dropped, dropped6, flags, flags6 []byte
	err := eachKey(payload, func(key string, val []byte) error {
		var dst *[]byte
		switch key {
		case "added":
			dst = &added
		case "added6":
			dst = &added6
		case "added.f":
			dst = &flags
		case "added6.f":
			dst = &flags6
		case "dropped":
			dst = &dropped
		case "dropped6":
			dst = &dropped6
		default:
			return nil
		}
		if s, ok := rawString(val); ok {
			*dst = s
		}
		return nil
	})
	if err != nil {
		return PexMessage{}, fmt.Errorf("%w: ut_pex: %w", ErrProtocol, err)
	}
	var m PexMessage
	var n4 int
	if m.Added, n4, err = mergePeers(added, added6, maxPeers); err != nil {
		return PexMessage{}, fmt.Errorf("%w: ut_pex added: %w", ErrProtocol, err)
	}
	if m.Dropped, _, err = mergePeers(dropped, dropped6, maxPeers); err != nil {
		return PexMessage{}, fmt.Errorf("%w: ut_pex dropped: %w", ErrProtocol, err)
	}
	if len(m.Added) > 0 {
		m.AddedFlags = make([]byte, len(m.Added))
		copy(m.AddedFlags[:n4], flags)
		copy(m.AddedFlags[n4:], flags6)
	}
	return m, nil
}

// mergePeers decodes compact IPv4 and IPv6 lists into one, at most max
// entries (max <= 0: all), and says how many came from the IPv4 list.
func mergePeers(v4, v6 []byte, max int) ([]netip.AddrPort, int, error) {
	if len(v4) == 0 && len(v6) == 0 {
		return nil, 0, nil
	}
	p4, err := compact.ParsePeers(v4, max)
	if err != nil {
		return nil, 0, err
	}
	if max > 0 && len(p4) == max {
		return p4, len(p4), nil
	}
	rest := 0
	if max > 0 {
		rest = max - len(p4)
	}
	p6, err := compact.ParsePeers6(v6, rest)
	if err != nil {
		return nil, 0, err
	}
	if len(p4) == 0 {
		return p6, 0, nil
	}
	return append(p4, p6...), len(p4), nil
}

// Marshal encodes m as a ut_pex payload, splitting each list by address
// family (IPv4-mapped IPv6 addresses count as IPv4). It fails on an invalid
// address or on more flags than added peers.
func (m PexMessage) Marshal() ([]byte, error) {
	if len(m.AddedFlags) > len(m.Added) {
		return nil, fmt.Errorf("peer: ut_pex: %d flags for %d added peers", len(m.AddedFlags), len(m.Added))
	}
	var a4, a6, f4, f6, d4, d6 []byte
	for i, ap := range m.Added {
		if !ap.IsValid() {
			return nil, fmt.Errorf("peer: ut_pex: invalid added peer %v", ap)
		}
		var f byte
		if i < len(m.AddedFlags) {
			f = m.AddedFlags[i]
		}
		if ap.Addr().Unmap().Is4() {
			a4, f4 = compact.AppendPeer(a4, ap), append(f4, f)
		} else {
			a6, f6 = compact.AppendPeer(a6, ap), append(f6, f)
		}
	}
	for _, ap := range m.Dropped {
		if !ap.IsValid() {
			return nil, fmt.Errorf("peer: ut_pex: invalid dropped peer %v", ap)
		}
		if ap.Addr().Unmap().Is4() {
			d4 = compact.AppendPeer(d4, ap)
		} else {
			d6 = compact.AppendPeer(d6, ap)
		}
	}
	b := make([]byte, 0, 64+len(a4)+len(a6)+len(f4)+len(f6)+len(d4)+len(d6))
	b = append(b, 'd')
	// Keys in byte order, as bencoding requires: "added" < "added.f" < "added6".
	for _, kv := range [...]struct {
		key string
		val []byte
	}{{"added", a4}, {"added.f", f4}, {"added6", a6}, {"added6.f", f6}, {"dropped", d4}, {"dropped6", d6}} {
		b = appendString(b, []byte(kv.key))
		b = appendString(b, kv.val)
	}
	return append(b, 'e'), nil
}
