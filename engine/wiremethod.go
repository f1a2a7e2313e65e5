package engine

import (
	"net"

	"github.com/swarmfs/swarmfs/engine/mse"
)

// wireMethod is how an outgoing connection opens: an MSE handshake (which
// may still select plaintext) or a plain BitTorrent handshake. A
// candidate remembers the one that last worked, so that the next dial
// goes straight to it. The zero value is "not known yet".
type wireMethod uint8

const (
	wireUnknown wireMethod = iota
	wireMSE
	wirePlain
)

func (m wireMethod) String() string {
	switch m {
	case wireMSE:
		return "mse"
	case wirePlain:
		return "plain"
	}
	return "unknown"
}

// dialPlan lists the methods an outgoing connection tries, in order, under
// policy p for a peer last reached with known. Under Prefer an MSE
// handshake comes first: it reaches peers that require encryption and
// peers that merely accept it, and a peer that allows only plaintext
// after it is reached too (we offer both methods); a peer that hangs up on
// MSE gets one plain handshake on a new connection. A peer known to speak
// plain only is dialled plain first, then MSE (it may have changed its
// setting). Require never dials plain, Off never MSE.
func dialPlan(p mse.Policy, known wireMethod) []wireMethod {
	switch p {
	case mse.Require:
		return []wireMethod{wireMSE}
	case mse.Off:
		return []wireMethod{wirePlain}
	}
	if known == wirePlain {
		return []wireMethod{wirePlain, wireMSE}
	}
	return []wireMethod{wireMSE, wirePlain}
}

// rc4Conn reports whether nc is an MSE connection that selected RC4
// (conn.encrypted); an MSE handshake that selected plaintext is plain.
func rc4Conn(nc net.Conn) bool {
	mc, ok := nc.(*mse.Conn)
	return ok && mc.Method() == mse.RC4
}
