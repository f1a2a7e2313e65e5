package mse

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CryptoMethod is a set of the methods an MSE handshake negotiates, as the
// bits of crypto_provide and crypto_select on the wire.
type CryptoMethod uint32

const (
	// Plaintext leaves the stream after the handshake unencrypted: only the
	// handshake itself (and the initial payload) is obfuscated.
	Plaintext CryptoMethod = 0x01
	// RC4 encrypts the whole stream.
	RC4 CryptoMethod = 0x02

	// knownMethods are the bits this package speaks; others (reserved by
	// the spec for future methods) are ignored in a peer's crypto_provide.
	knownMethods = Plaintext | RC4
)

// String names the methods of the set: "plaintext", "rc4",
// "plaintext|rc4", or "none" for the empty set.
func (m CryptoMethod) String() string {
	var parts []string
	if m&Plaintext != 0 {
		parts = append(parts, "plaintext")
	}
	if m&RC4 != 0 {
		parts = append(parts, "rc4")
	}
	if rest := m &^ knownMethods; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// choose picks the method a responder selects from what the initiator
// provides and what it allows: RC4 when both sides accept it (obfuscation
// is why a peer starts MSE at all), else plaintext, else none (0).
func choose(provided, allowed CryptoMethod) CryptoMethod {
	common := provided & allowed
	switch {
	case common&RC4 != 0:
		return RC4
	case common&Plaintext != 0:
		return Plaintext
	}
	return 0
}

// Policy is a client's encryption setting, the value of --encryption.
// The zero value is Prefer.
type Policy int

const (
	// Prefer reaches every peer: outgoing connections start with an MSE
	// handshake that offers plaintext and RC4 (RC4 is selected when the
	// peer offers it too), incoming ones may be MSE or plain BitTorrent.
	Prefer Policy = iota
	// Require talks RC4 only: outgoing MSE offers only RC4, incoming
	// plain handshakes and MSE handshakes without RC4 are refused.
	Require
	// Off talks plain BitTorrent only: no MSE either way.
	Off
)

// ParsePolicy reads "prefer", "require" or "off".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "prefer":
		return Prefer, nil
	case "require":
		return Require, nil
	case "off":
		return Off, nil
	}
	return 0, fmt.Errorf("mse: unknown encryption policy %q (want prefer, require or off)", s)
}

// String is the policy's name as ParsePolicy reads it.
func (p Policy) String() string {
	switch p {
	case Prefer:
		return "prefer"
	case Require:
		return "require"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Methods is what the policy provides as an MSE initiator and allows as an
// MSE responder; 0 for Off, which speaks no MSE.
func (p Policy) Methods() CryptoMethod {
	switch p {
	case Prefer:
		return Plaintext | RC4
	case Require:
		return RC4
	}
	return 0
}

// PlainHandshake reports whether the policy accepts a plain BitTorrent
// handshake (no MSE) on an incoming connection, and may dial one.
func (p Policy) PlainHandshake() bool { return p != Require }

// Errors. Every handshake error wraps one of these, a net.Error (a
// deadline: os.ErrDeadlineExceeded), the context's error, or
// io.ErrUnexpectedEOF (the peer hung up inside the handshake).
var (
	// ErrNotMSE: the peer does not speak MSE. As responder: the stream
	// starts with a plain BitTorrent handshake. As initiator: the peer
	// closed the connection before sending its public key, which is what a
	// client that speaks only plain BitTorrent does (a new connection with a
	// plain handshake may work).
	ErrNotMSE = errors.New("mse: peer does not speak MSE")
	// ErrSyncNotFound: the synchronisation marker (HASH('req1', S) for a
	// responder, ENCRYPT(VC) for an initiator) is not within the 512 bytes
	// of padding the spec allows. The peer computed another secret, or is
	// not speaking MSE.
	ErrSyncNotFound = errors.New("mse: synchronisation marker not found")
	// ErrUnknownInfoHash: the initiator asked for a torrent (SKEY) the
	// responder does not know.
	ErrUnknownInfoHash = errors.New("mse: unknown info-hash")
	// ErrNoCommonMethod: no crypto method is both provided and allowed.
	ErrNoCommonMethod = errors.New("mse: no common crypto method")
	// ErrTryAgain: the responder hung up after our offer, and the shared
	// secret S began with a zero byte. libtorrent (2.0 at least) hashes
	// HASH('req3', S) as responder over S without its leading zero bytes
	// (and garbage after them), so it cannot find the torrent in 1 of 256
	// handshakes; a new connection, with new keys, succeeds with
	// probability 255/256. The peer may also have refused for the usual
	// reasons (unknown torrent, no common method): retry once.
	ErrTryAgain = errors.New("mse: responder hung up on a shared secret with a leading zero byte; try again")
	// ErrProtocol: the peer broke the protocol (a public key out of range,
	// a wrong verification constant, padding longer than 512 bytes, a
	// crypto_select that was not offered).
	ErrProtocol = errors.New("mse: protocol violation")
)

// Sizes and bounds of the protocol.
const (
	// KeyLen is the length of a public key (Ya, Yb) and of the shared
	// secret S on the wire: 768 bits, big-endian, zero-padded.
	KeyLen = 96
	// MaxPad bounds PadA, PadB, PadC and PadD.
	MaxPad = 512
	// MaxInitialPayload is the largest initial payload (IA) the wire can
	// carry (len(IA) is 16 bits). A responder streams the IA to its
	// caller instead of buffering it, so no memory is sized by it.
	MaxInitialPayload = 1<<16 - 1
	// vcLen is the length of the verification constant VC (8 zero bytes).
	vcLen = 8
	// rc4Discard is how much of each RC4 keystream is thrown away before
	// use (the first bytes of RC4 output leak key bits).
	rc4Discard = 1024
	// respHandshakeMax is the most a responder reads before the IA:
	// Ya, PadA, HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
	// VC, crypto_provide, len(PadC), PadC, len(IA).
	respHandshakeMax = KeyLen + MaxPad + 20 + 20 + vcLen + 4 + 2 + MaxPad + 2
	// initHandshakeMax is the most an initiator reads: Yb, PadB, VC,
	// crypto_select, len(PadD), PadD.
	initHandshakeMax = KeyLen + MaxPad + vcLen + 4 + 2 + MaxPad
)

// DefaultTimeout bounds a handshake whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Req2 returns HASH('req2', skey): what a responder looks an SKEY up by.
// A client with many torrents keeps a map from Req2(infoHash) to each
// torrent and hands its lookup to Accept.
func Req2(skey [20]byte) [20]byte {
	return hash([]byte("req2"), skey[:])
}

// SKeyFunc finds the SKEY (the info-hash) whose Req2 is req2. It is called
// once per incoming MSE handshake, on the handshake's goroutine.
type SKeyFunc func(req2 [20]byte) (skey [20]byte, ok bool)

// SKeys returns an SKeyFunc over a fixed set of SKEYs.
func SKeys(skeys ...[20]byte) SKeyFunc {
	m := make(map[[20]byte][20]byte, len(skeys))
	for _, k := range skeys {
		m[Req2(k)] = k
	}
	return func(req2 [20]byte) ([20]byte, bool) {
		k, ok := m[req2]
		return k, ok
	}
}

// hash is SHA-1 over the concatenation of parts.
func hash(parts ...[]byte) [20]byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [20]byte
	h.Sum(out[:0])
	return out
}
