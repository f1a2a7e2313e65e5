package mse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// TestRoundTrip runs Initiate against Accept for every pair of method sets
// (what Prefer, Require and a plaintext-only MSE peer offer and allow),
// with and without an initial payload, over net.Pipe and TCP, and checks
// the selected method, that the IA arrives first, that data flows both
// ways, and what is visible on the wire: the IA never, the stream only
// when plaintext was selected.
func TestRoundTrip(t *testing.T) {
	sets := []CryptoMethod{Plaintext | RC4, RC4, Plaintext}
	for _, tcp := range []bool{false, true} {
		for _, provide := range sets {
			for _, allowed := range sets {
				for _, ia := range [][]byte{nil, testIA} {
					name := fmt.Sprintf("tcp=%v/provide=%v/allow=%v/ia=%d", tcp, provide, allowed, len(ia))
					t.Run(name, func(t *testing.T) {
						testRoundTrip(t, tcp, provide, allowed, ia)
					})
				}
			}
		}
	}
}

func testRoundTrip(t *testing.T, tcp bool, provide, allowed CryptoMethod, ia []byte) {
	a, b := connPair(t, tcp)
	ta, tb := &tapConn{Conn: a}, &tapConn{Conn: b}
	ini, acc := runHandshake(t, ta, tb, handshakeOpts{provide: provide, allowed: allowed, ia: ia, sniff: tcp})
	// RC4 when both sides accept it, else plaintext, else nothing.
	var want CryptoMethod
	switch {
	case provide&allowed&RC4 != 0:
		want = RC4
	case provide&allowed&Plaintext != 0:
		want = Plaintext
	}
	if want == 0 {
		if !errors.Is(acc.err, ErrNoCommonMethod) {
			t.Fatalf("Accept: %v, want ErrNoCommonMethod", acc.err)
		}
		if ini.err == nil {
			t.Fatal("Initiate succeeded against a responder that refused")
		}
		return
	}
	if ini.err != nil || acc.err != nil {
		t.Fatalf("Initiate: %v; Accept: %v", ini.err, acc.err)
	}
	if ini.c.Method() != want || acc.c.Method() != want {
		t.Fatalf("methods %v / %v, want %v", ini.c.Method(), acc.c.Method(), want)
	}
	if acc.c.SKey() != testSKey || ini.c.SKey() != testSKey {
		t.Fatalf("skeys %x / %x", ini.c.SKey(), acc.c.SKey())
	}
	toB := []byte("initiator to responder: request piece 7")
	toA := []byte("responder to initiator: here is piece 7")
	wait := writeAsync(ini.c, toB)
	if got := readN(t, acc.c, len(ia)+len(toB)); !bytes.Equal(got, append(bytes.Clone(ia), toB...)) {
		t.Fatalf("responder read %q, want IA then %q", got, toB)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	wait = writeAsync(acc.c, toA)
	if got := readN(t, ini.c, len(toA)); !bytes.Equal(got, toA) {
		t.Fatalf("initiator read %q, want %q", got, toA)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	wireA, wireB := ta.bytes(), tb.bytes()
	if len(ia) > 0 && bytes.Contains(wireA, ia[:20]) {
		t.Error("the initial payload went out in the clear")
	}
	plain := want == Plaintext
	if bytes.Contains(wireA, toB) != plain || bytes.Contains(wireB, toA) != plain {
		t.Errorf("method %v: stream visible on the wire: %v / %v", want,
			bytes.Contains(wireA, toB), bytes.Contains(wireB, toA))
	}
}

// TestPadBounds sends each pad at the spec's maximum (all at once: the
// longest handshake there is) and one byte past it, which the other side
// must refuse: PadA and PadB by not finding the marker within 512 bytes,
// PadC and PadD from their length field.
func TestPadBounds(t *testing.T) {
	cases := []struct {
		name           string
		initPads       [2]int // PadA, PadC
		accPads        [2]int // PadB, PadD
		initErr, acErr error
	}{
		{"all max", [2]int{512, 512}, [2]int{512, 512}, nil, nil},
		{"all empty", [2]int{0, 0}, [2]int{0, 0}, nil, nil},
		{"PadA 513", [2]int{513, 0}, [2]int{0, 0}, nil, ErrSyncNotFound},
		{"PadB 513", [2]int{0, 0}, [2]int{513, 0}, ErrSyncNotFound, nil},
		{"PadC 513", [2]int{0, 513}, [2]int{0, 0}, nil, ErrProtocol},
		{"PadD 513", [2]int{0, 0}, [2]int{0, 513}, ErrProtocol, nil},
	}
	for _, tc := range cases {
		for _, tcp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tcp=%v", tc.name, tcp), func(t *testing.T) {
				a, b := connPair(t, tcp)
				ini, acc := runHandshake(t, a, b, handshakeOpts{
					provide: Plaintext | RC4, allowed: Plaintext | RC4, ia: testIA,
					initCfg: &config{pads: &tc.initPads}, accCfg: &config{pads: &tc.accPads},
				})
				check := func(side string, got, want error) {
					t.Helper()
					switch {
					case want == nil && tc.initErr == nil && tc.acErr == nil && got != nil:
						t.Errorf("%s: %v", side, got)
					case want != nil && !errors.Is(got, want):
						t.Errorf("%s: %v, want %v", side, got, want)
					}
				}
				check("Initiate", ini.err, tc.initErr)
				check("Accept", acc.err, tc.acErr)
				if tc.initErr == nil && tc.acErr == nil && ini.err == nil && acc.err == nil {
					wait := writeAsync(ini.c, []byte("x"))
					if got := readN(t, acc.c, len(testIA)+1); !bytes.Equal(got[:len(testIA)], testIA) || got[len(testIA)] != 'x' {
						t.Errorf("responder read %q", got)
					}
					if err := wait(); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
}

func TestUnknownInfoHash(t *testing.T) {
	a, b := connPair(t, true)
	ini, acc := runHandshake(t, a, b, handshakeOpts{provide: RC4, allowed: RC4, find: SKeys(otherSKey)})
	if !errors.Is(acc.err, ErrUnknownInfoHash) {
		t.Fatalf("Accept: %v, want ErrUnknownInfoHash", acc.err)
	}
	if ini.err == nil {
		t.Fatal("Initiate succeeded")
	}
}

// TestManyTorrents finds the torrent among many by HASH('req2', SKEY).
func TestManyTorrents(t *testing.T) {
	var keys [][20]byte
	for i := range 1000 {
		k := testSKey
		k[10], k[11] = byte(i), byte(i>>8)
		keys = append(keys, k)
	}
	keys[777] = testSKey
	a, b := connPair(t, false)
	_, acc := runHandshake(t, a, b, handshakeOpts{provide: RC4, allowed: RC4, find: SKeys(keys...)})
	if acc.err != nil || acc.c.SKey() != testSKey {
		t.Fatalf("Accept: %v", acc.err)
	}
}

// rawPeer is the far end of a connection driven by a test byte by byte.
func rawPeer(t *testing.T) (ours, theirs net.Conn) {
	return connPair(t, true)
}

// TestGarbage feeds each side bytes that are not an MSE handshake.
func TestGarbage(t *testing.T) {
	garbage := make([]byte, 4096)
	detRand(1).Read(garbage)
	ctx := context.Background()

	t.Run("accept/random", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		wait := writeAsync(theirs, garbage)
		_, err := Accept(ctx, ours, SKeys(testSKey), RC4)
		if !errors.Is(err, ErrSyncNotFound) {
			t.Fatalf("Accept: %v, want ErrSyncNotFound", err)
		}
		ours.Close()
		_ = wait()
	})
	t.Run("accept/plain handshake", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		wait := writeAsync(theirs, testIA)
		_, err := Accept(ctx, ours, SKeys(testSKey), RC4)
		if !errors.Is(err, ErrNotMSE) {
			t.Fatalf("Accept: %v, want ErrNotMSE", err)
		}
		_ = wait()
	})
	t.Run("accept/short", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		theirs.Write(garbage[:50])
		theirs.Close()
		_, err := Accept(ctx, ours, SKeys(testSKey), RC4)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Accept: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("initiate/random", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		go func() {
			// Answer the public key with noise, then drain.
			readFullOrNothing(theirs, KeyLen)
			theirs.Write(garbage)
			io.Copy(io.Discard, theirs)
		}()
		_, err := Initiate(ctx, ours, testSKey, RC4, testIA)
		if !errors.Is(err, ErrSyncNotFound) {
			t.Fatalf("Initiate: %v, want ErrSyncNotFound", err)
		}
		ours.Close()
	})
	t.Run("initiate/plain-only peer", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		go func() {
			// What a client without MSE does: read a handshake, find
			// the wrong protocol string, hang up.
			readFullOrNothing(theirs, 68)
			theirs.Close()
		}()
		_, err := Initiate(ctx, ours, testSKey, RC4|Plaintext, testIA)
		if !errors.Is(err, ErrNotMSE) {
			t.Fatalf("Initiate: %v, want ErrNotMSE", err)
		}
	})
	t.Run("initiate/plain answer", func(t *testing.T) {
		ours, theirs := rawPeer(t)
		go func() {
			readFullOrNothing(theirs, KeyLen)
			theirs.Write(append(bytes.Clone(testIA), testIA...))
			io.Copy(io.Discard, theirs)
		}()
		_, err := Initiate(ctx, ours, testSKey, RC4|Plaintext, testIA)
		if !errors.Is(err, ErrNotMSE) {
			t.Fatalf("Initiate: %v, want ErrNotMSE", err)
		}
		ours.Close()
	})
}

func readFullOrNothing(c net.Conn, n int) {
	_, _ = io.ReadFull(c, make([]byte, n))
}

// TestBadPublicKey refuses the keys that force a known secret.
func TestBadPublicKey(t *testing.T) {
	one := new(big.Int).SetInt64(1)
	keys := map[string]*big.Int{
		"0":   new(big.Int),
		"1":   one,
		"P-1": new(big.Int).Sub(prime, one),
		"P":   prime,
		"max": new(big.Int).Sub(new(big.Int).Lsh(one, 8*KeyLen), one),
	}
	for name, y := range keys {
		var b [KeyLen]byte
		y.FillBytes(b[:])
		t.Run("accept/"+name, func(t *testing.T) {
			ours, theirs := rawPeer(t)
			theirs.Write(b[:])
			_, err := Accept(context.Background(), ours, SKeys(testSKey), RC4)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Accept: %v, want ErrProtocol", err)
			}
		})
		t.Run("initiate/"+name, func(t *testing.T) {
			ours, theirs := rawPeer(t)
			go func() {
				readFullOrNothing(theirs, KeyLen)
				theirs.Write(b[:])
				io.Copy(io.Discard, theirs)
			}()
			_, err := Initiate(context.Background(), ours, testSKey, RC4, nil)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Initiate: %v, want ErrProtocol", err)
			}
			ours.Close()
		})
	}
}

// TestTryAgain: a responder that hangs up after the offer is reported as
// ErrTryAgain when S had a leading zero byte (libtorrent's failure; see
// TestInteropLibtorrentShortSecret), and not otherwise.
func TestTryAgain(t *testing.T) {
	const accSeed = 1000
	kb, _ := newDHKey(detRand(accSeed))
	short, long := uint64(0), uint64(0)
	for i := uint64(1); short == 0 || long == 0; i++ {
		if i == 5000 {
			t.Fatal("no short secret in 5000 draws")
		}
		ka, _ := newDHKey(detRand(i))
		s, _ := ka.secret(kb.pub[:])
		if s[0] == 0 {
			short = i
		} else {
			long = i
		}
	}
	for _, tc := range []struct {
		seed uint64
		want bool
	}{{short, true}, {long, false}} {
		a, b := connPair(t, true)
		ini, acc := runHandshake(t, a, b, handshakeOpts{
			provide: RC4, allowed: RC4, find: SKeys(otherSKey),
			initCfg: &config{rand: detRand(tc.seed)}, accCfg: &config{rand: detRand(accSeed)},
		})
		if !errors.Is(acc.err, ErrUnknownInfoHash) {
			t.Fatalf("Accept: %v", acc.err)
		}
		if ini.err == nil || errors.Is(ini.err, ErrTryAgain) != tc.want {
			t.Fatalf("short secret %v: Initiate: %v", tc.want, ini.err)
		}
	}
}

// TestDeadlines stalls the peer at each step and checks that the
// handshake ends at the context's deadline, or at its cancellation.
func TestDeadlines(t *testing.T) {
	const timeout = 150 * time.Millisecond
	stalls := []struct {
		name string
		// peer does its part and then stalls (keeps the connection open).
		peer      func(t *testing.T, c net.Conn)
		initiator bool // we initiate (else we accept)
	}{
		{"initiate/silent", func(t *testing.T, c net.Conn) {}, true},
		{"initiate/after key", func(t *testing.T, c net.Conn) {
			k, _ := newDHKey(detRand(2))
			readFullOrNothing(c, KeyLen)
			c.Write(k.pub[:])
		}, true},
		{"accept/silent", func(t *testing.T, c net.Conn) {}, false},
		{"accept/half key", func(t *testing.T, c net.Conn) {
			c.Write(make([]byte, KeyLen/2))
		}, false},
		{"accept/after key", func(t *testing.T, c net.Conn) {
			k, _ := newDHKey(detRand(2))
			c.Write(k.pub[:])
		}, false},
		{"accept/after sync hash", func(t *testing.T, c net.Conn) {
			// A real initiator that stops after HASH('req1', S).
			k, _ := newDHKey(detRand(2))
			c.Write(k.pub[:])
			yb := make([]byte, KeyLen)
			if _, err := io.ReadFull(c, yb); err != nil {
				return
			}
			s, err := k.secret(yb)
			if err != nil {
				t.Error(err)
				return
			}
			req1 := hash([]byte("req1"), s[:])
			c.Write(req1[:])
		}, false},
	}
	for _, st := range stalls {
		for _, cancel := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cancel=%v", st.name, cancel), func(t *testing.T) {
				ours, theirs := rawPeer(t)
				peerDone := make(chan struct{})
				go func() {
					defer close(peerDone)
					st.peer(t, theirs)
				}()
				ctx, stop := context.WithTimeout(context.Background(), timeout)
				if cancel {
					ctx, stop = context.WithCancel(context.Background())
					time.AfterFunc(timeout, stop)
				}
				defer stop()
				start := time.Now()
				var err error
				if st.initiator {
					_, err = Initiate(ctx, ours, testSKey, RC4, testIA)
				} else {
					_, err = Accept(ctx, ours, SKeys(testSKey), RC4)
				}
				elapsed := time.Since(start)
				<-peerDone
				want := error(os.ErrDeadlineExceeded)
				if cancel {
					want = context.Canceled
				}
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
				if elapsed < timeout || elapsed > timeout+2*time.Second {
					t.Fatalf("returned after %v, deadline %v", elapsed, timeout)
				}
			})
		}
	}
}

// TestDefaultTimeout: a context without a deadline still bounds the
// handshake (by DefaultTimeout; shortened here).
func TestDefaultTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, initiator := range []bool{false, true} {
		ours, _ := rawPeer(t)
		start := time.Now()
		var err error
		if initiator {
			_, err = initiate(context.Background(), ours, testSKey, RC4, nil, &config{timeout: timeout})
		} else {
			_, err = accept(context.Background(), ours, SKeys(testSKey), RC4, &config{timeout: timeout})
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("initiator=%v: %v, want a deadline", initiator, err)
		}
		if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
			t.Fatalf("initiator=%v: returned after %v", initiator, d)
		}
	}
}

// TestKeysPadded: public keys and the shared secret are 96 bytes, zero
// bytes in front when the number is shorter, as every implementation
// hashes them. Keys are drawn until each case comes up (1 in 256 each).
func TestKeysPadded(t *testing.T) {
	r := detRand(7)
	padded := func(x *big.Int) []byte {
		b := x.Bytes()
		return append(make([]byte, KeyLen-len(b)), b...)
	}
	var shortPub, shortSecret bool
	for i := 0; !(shortPub && shortSecret); i++ {
		if i == 5000 {
			t.Fatal("no short key in 5000 draws")
		}
		a, _ := newDHKey(r)
		b, _ := newDHKey(r)
		pub := new(big.Int).Exp(generator, a.priv, prime)
		if !bytes.Equal(a.pub[:], padded(pub)) {
			t.Fatalf("public key %x, want %x", a.pub, padded(pub))
		}
		shortPub = shortPub || a.pub[0] == 0
		s, err := a.secret(b.pub[:])
		if err != nil {
			t.Fatal(err)
		}
		want := padded(new(big.Int).Exp(pub, b.priv, prime))
		if !bytes.Equal(s[:], want) {
			t.Fatalf("secret %x, want %x", s, want)
		}
		s2, _ := b.secret(a.pub[:])
		if s2 != s {
			t.Fatal("the two sides computed different secrets")
		}
		shortSecret = shortSecret || s[0] == 0
	}
}

// TestDeadlineCleared: after a handshake the connection has no deadline
// left from it.
func TestDeadlineCleared(t *testing.T) {
	a, b := connPair(t, true)
	ini, acc := runHandshake(t, a, b, handshakeOpts{provide: RC4, allowed: RC4, timeout: 300 * time.Millisecond})
	if ini.err != nil || acc.err != nil {
		t.Fatalf("Initiate: %v; Accept: %v", ini.err, acc.err)
	}
	time.Sleep(400 * time.Millisecond)
	wait := writeAsync(ini.c, []byte("late"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(acc.c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("read after the handshake's deadline: %q, %v", buf, err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// noClearConn cannot clear its deadline.
type noClearConn struct{ net.Conn }

func (c noClearConn) SetDeadline(t time.Time) error {
	if t.IsZero() {
		return errors.New("cannot clear the deadline")
	}
	return c.Conn.SetDeadline(t)
}

// TestNoConnOnError: a handshake that fails at its very end (here,
// clearing the deadline) returns no Conn with its error.
func TestNoConnOnError(t *testing.T) {
	a, b := connPair(t, false)
	ini, acc := runHandshake(t, noClearConn{a}, noClearConn{b}, handshakeOpts{provide: RC4, allowed: RC4})
	if ini.err == nil || ini.c != nil || acc.err == nil || acc.c != nil {
		t.Fatalf("Initiate: %v, %v; Accept: %v, %v", ini.c, ini.err, acc.c, acc.err)
	}
}

// TestSniff tells a plain handshake from an MSE one and replays the bytes.
func TestSniff(t *testing.T) {
	ours, theirs := rawPeer(t)
	theirs.Write(testIA)
	plain, c, err := Sniff(context.Background(), ours)
	if err != nil || !plain {
		t.Fatalf("Sniff of a plain handshake: %v, %v", plain, err)
	}
	if got := readN(t, c, len(testIA)); !bytes.Equal(got, testIA) {
		t.Fatalf("replayed %q", got)
	}

	ours, theirs = rawPeer(t)
	k, _ := newDHKey(detRand(3))
	theirs.Write(k.pub[:])
	plain, c, err = Sniff(context.Background(), ours)
	if err != nil || plain {
		t.Fatalf("Sniff of an MSE key: %v, %v", plain, err)
	}
	if got := readN(t, c, KeyLen); !bytes.Equal(got, k.pub[:]) {
		t.Fatalf("replayed %x", got)
	}

	ours, theirs = rawPeer(t)
	theirs.Write([]byte("\x13BitTorrent"))
	theirs.Close()
	if _, _, err := Sniff(context.Background(), ours); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Sniff of 12 bytes: %v", err)
	}
}

// TestBadArguments refuses what cannot go on the wire.
func TestBadArguments(t *testing.T) {
	a, b := connPair(t, false)
	ctx := context.Background()
	if _, err := Initiate(ctx, a, testSKey, 0, nil); err == nil {
		t.Error("Initiate offering nothing")
	}
	if _, err := Initiate(ctx, a, testSKey, 4|RC4, nil); err == nil {
		t.Error("Initiate offering an unknown method")
	}
	if _, err := Initiate(ctx, a, testSKey, RC4, make([]byte, MaxInitialPayload+1)); err == nil {
		t.Error("Initiate with an IA too long for its length field")
	}
	if _, err := Accept(ctx, b, SKeys(testSKey), 0); err == nil {
		t.Error("Accept allowing nothing")
	}
	if _, err := Accept(ctx, b, nil, RC4); err == nil {
		t.Error("Accept without an SKeyFunc")
	}
}

func TestPolicy(t *testing.T) {
	cases := []struct {
		p       Policy
		methods CryptoMethod
		plain   bool
	}{
		{Prefer, Plaintext | RC4, true},
		{Require, RC4, false},
		{Off, 0, true},
	}
	for _, tc := range cases {
		p, err := ParsePolicy(tc.p.String())
		if err != nil || p != tc.p {
			t.Errorf("ParsePolicy(%q) = %v, %v", tc.p.String(), p, err)
		}
		if tc.p.Methods() != tc.methods || tc.p.PlainHandshake() != tc.plain {
			t.Errorf("%v: methods %v, plain %v", tc.p, tc.p.Methods(), tc.p.PlainHandshake())
		}
	}
	if _, err := ParsePolicy("always"); err == nil {
		t.Error("ParsePolicy accepted a bad name")
	}
	var zero Policy
	if zero != Prefer {
		t.Error("the zero Policy is not Prefer")
	}
	for m, want := range map[CryptoMethod]string{0: "none", Plaintext: "plaintext", RC4: "rc4", Plaintext | RC4: "plaintext|rc4", 8 | RC4: "rc4|0x8"} {
		if m.String() != want {
			t.Errorf("%#x.String() = %q, want %q", uint32(m), m.String(), want)
		}
	}
}
