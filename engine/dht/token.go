package dht

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"time"
)

// tokenRotation is how often the token secret changes. A token stays valid
// for one to two rotations: BEP 5 asks for about ten minutes.
const tokenRotation = 5 * time.Minute

// tokens makes and checks the opaque tokens get_peers hands out and
// announce_peer must return. A token is an HMAC of the requester's IP under
// a secret; the secret rotates and the previous one is still accepted, so a
// token works for 5 to 10 minutes and only from the IP it was given to.
// Not safe for concurrent use; the Node's mutex guards it.
type tokens struct {
	cur, prev [16]byte
	rotated   time.Time
}

func newTokens(now time.Time) *tokens {
	t := &tokens{rotated: now}
	rand.Read(t.cur[:])
	rand.Read(t.prev[:])
	return t
}

// rotate replaces the secret, keeping the current one as previous.
func (t *tokens) rotate(now time.Time) {
	t.prev = t.cur
	rand.Read(t.cur[:])
	t.rotated = now
}

// maybeRotate rotates when the secret is older than tokenRotation.
func (t *tokens) maybeRotate(now time.Time) {
	if now.Sub(t.rotated) >= tokenRotation {
		t.rotate(now)
	}
}

func tokenFor(secret [16]byte, ip netip.Addr) []byte {
	m := hmac.New(sha256.New, secret[:])
	b, _ := ip.Unmap().MarshalBinary()
	m.Write(b)
	return m.Sum(nil)[:tokenLen]
}

// make returns the token for a requester at ip.
func (t *tokens) make(ip netip.Addr) string { return string(tokenFor(t.cur, ip)) }

// valid reports whether tok was made for ip under the current or the
// previous secret.
func (t *tokens) valid(tok string, ip netip.Addr) bool {
	if len(tok) != tokenLen {
		return false
	}
	return hmac.Equal([]byte(tok), tokenFor(t.cur, ip)) || hmac.Equal([]byte(tok), tokenFor(t.prev, ip))
}
