package mse

import (
	"crypto/rand"
	"net"
	"sync"
	"testing"
)

// BenchmarkDH is one side's Diffie-Hellman work per handshake: a key pair
// and the shared secret, two 768-bit modular exponentiations with a
// 160-bit exponent.
func BenchmarkDH(b *testing.B) {
	peerKey, err := newDHKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		k, err := newDHKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := k.secret(peerKey.pub[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is a whole handshake, both sides in this process
// (Initiate and Accept over net.Pipe, random padding, a 68-byte IA): the
// CPU time a connection costs its two ends together.
func BenchmarkHandshake(b *testing.B) {
	for b.Loop() {
		x, y := net.Pipe()
		ini, acc := runHandshake(b, x, y, handshakeOpts{provide: Plaintext | RC4, allowed: Plaintext | RC4, ia: testIA})
		if ini.err != nil || acc.err != nil {
			b.Fatal(ini.err, acc.err)
		}
		x.Close()
		y.Close()
	}
}

// BenchmarkKeystream is RC4 alone: XORKeyStream in place over a 16 KiB
// block (one BitTorrent block), what each side spends per byte.
func BenchmarkKeystream(b *testing.B) {
	c := newDiscardedRC4([20]byte{1, 2, 3})
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		c.XORKeyStream(buf, buf)
	}
}

// BenchmarkTransfer streams 64 KiB writes one way over TCP on loopback:
// raw, through a Conn that selected plaintext, and through an RC4 Conn
// (encrypting on the writer's goroutine, decrypting on the reader's).
func BenchmarkTransfer(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		w, r := connPair(b, true)
		benchTransfer(b, w, r)
	})
	for _, m := range []CryptoMethod{Plaintext, RC4} {
		b.Run(m.String(), func(b *testing.B) {
			w, r := handshaken(b, true, m, nil)
			benchTransfer(b, w, r)
		})
	}
}

func benchTransfer(b *testing.B, w, r net.Conn) {
	const chunk = 64 << 10
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, chunk)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	wg.Wait()
}
