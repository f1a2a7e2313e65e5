package mse

import (
	"crypto/rc4"
	"fmt"
	"io"
	"math/big"
)

// prime is P, the 768-bit safe prime of the spec (the Oakley group 1
// prime of RFC 2409); the generator is 2.
var prime, _ = new(big.Int).SetString(
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
		"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
		"E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)

var (
	generator  = big.NewInt(2)
	primeMinus = new(big.Int).Sub(prime, big.NewInt(1)) // P-1
)

// privBytes is the size of a private key: 160 bits, the spec's minimum,
// which matches the strength of a 768-bit group (about 80 bits) and keeps
// each modular exponentiation short.
const privBytes = 20

// dhKey is one side's ephemeral Diffie-Hellman key pair.
type dhKey struct {
	priv *big.Int
	pub  [KeyLen]byte // G^priv mod P, big-endian, zero-padded
}

// newDHKey draws a private key from r and computes the public key.
func newDHKey(r io.Reader) (*dhKey, error) {
	var b [privBytes]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("mse: private key: %w", err)
		}
		k := &dhKey{priv: new(big.Int).SetBytes(b[:])}
		if k.priv.BitLen() < 2 {
			continue // 0 or 1: a public key of 1 or 2 gives itself away
		}
		new(big.Int).Exp(generator, k.priv, prime).FillBytes(k.pub[:])
		return k, nil
	}
}

// secret computes the shared secret S from the peer's public key. A key
// outside [2, P-2] is refused: 0, 1 and P-1 force a secret the peer (or
// anyone in the middle) knows without the private key.
func (k *dhKey) secret(peerPub []byte) ([KeyLen]byte, error) {
	var s [KeyLen]byte
	y := new(big.Int).SetBytes(peerPub)
	if y.Cmp(generator) < 0 || y.Cmp(primeMinus) >= 0 {
		return s, fmt.Errorf("%w: public key out of range", ErrProtocol)
	}
	new(big.Int).Exp(y, k.priv, prime).FillBytes(s[:])
	return s, nil
}

// streamKeys are the RC4 ciphers of one connection, their first 1024
// bytes of keystream already discarded.
type streamKeys struct {
	enc, dec *rc4.Cipher
}

// newStreamKeys derives both directions' ciphers from S and SKEY: the
// initiator (A) sends with HASH('keyA', S, SKEY) and receives with
// HASH('keyB', S, SKEY); the responder (B) the other way round.
func newStreamKeys(s *[KeyLen]byte, skey [20]byte, initiator bool) streamKeys {
	a := newDiscardedRC4(hash([]byte("keyA"), s[:], skey[:]))
	b := newDiscardedRC4(hash([]byte("keyB"), s[:], skey[:]))
	if initiator {
		return streamKeys{enc: a, dec: b}
	}
	return streamKeys{enc: b, dec: a}
}

func newDiscardedRC4(key [20]byte) *rc4.Cipher {
	c, err := rc4.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: 20 bytes is a valid RC4 key size
	}
	var discard [rc4Discard]byte
	c.XORKeyStream(discard[:], discard[:])
	return c
}
