package mse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// handshaken returns the two ends of a finished handshake with method.
func handshaken(t testing.TB, tcp bool, method CryptoMethod, ia []byte) (ini, acc *Conn) {
	t.Helper()
	a, b := connPair(t, tcp)
	i, r := runHandshake(t, a, b, handshakeOpts{provide: method, allowed: method, ia: ia})
	if i.err != nil || r.err != nil {
		t.Fatalf("Initiate: %v; Accept: %v", i.err, r.err)
	}
	return i.c, r.c
}

// TestConnStream sends 1 MiB each way at once through both ends (a reader
// and a writer goroutine per end, as the engine runs them), in writes of
// odd sizes up to past maxWriteChunk and reads of other odd sizes, and
// checks every byte and that no caller's buffer was modified by Write.
func TestConnStream(t *testing.T) {
	for _, method := range []CryptoMethod{RC4, Plaintext} {
		for _, tcp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/tcp=%v", method, tcp), func(t *testing.T) {
				ini, acc := handshaken(t, tcp, method, testIA)
				if got := readN(t, acc, len(testIA)); !bytes.Equal(got, testIA) {
					t.Fatalf("IA %q", got)
				}
				data := make([]byte, 1<<20)
				detRand(4).Read(data)
				want := sha256.Sum256(data)
				sizes := []int{1, 13, 16397, maxWriteChunk + 5, 7, 4096, 3*maxWriteChunk + 1}
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				for _, c := range []*Conn{ini, acc} {
					wg.Add(2)
					go func() {
						defer wg.Done()
						orig := bytes.Clone(data)
						for off, i := 0, 0; off < len(data); i++ {
							n := min(sizes[i%len(sizes)], len(data)-off)
							if _, err := c.Write(data[off : off+n]); err != nil {
								errs <- err
								return
							}
							off += n
						}
						if !bytes.Equal(orig, data) {
							errs <- errors.New("Write modified the caller's buffer")
						}
					}()
					go func() {
						defer wg.Done()
						h := sha256.New()
						buf := make([]byte, 9999)
						for n := 0; n < len(data); {
							m, err := c.Read(buf[:min(len(buf), len(data)-n, 1+n%9999)])
							h.Write(buf[:m])
							n += m
							if err != nil {
								errs <- err
								return
							}
						}
						if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
							errs <- errors.New("received stream differs")
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
			})
		}
	}
}

// coalesceConn holds its second Write back and sends it with the third in
// one Write: the responder's crypto_select and its first message then
// arrive together, and the initiator reads past the end of its handshake.
type coalesceConn struct {
	net.Conn
	n    int
	held []byte
}

func (c *coalesceConn) Write(p []byte) (int, error) {
	c.n++
	switch c.n {
	case 2:
		c.held = bytes.Clone(p)
		return len(p), nil
	case 3:
		if _, err := c.Conn.Write(append(c.held, p...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestReadPastHandshake: bytes that came with the end of the handshake are
// kept, decrypted (or not) as the stream's first bytes.
func TestReadPastHandshake(t *testing.T) {
	for _, method := range []CryptoMethod{RC4, Plaintext} {
		t.Run(method.String(), func(t *testing.T) {
			a, b := connPair(t, false)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ch := make(chan result, 1)
			go func() {
				c, err := Initiate(ctx, a, testSKey, method, nil)
				ch <- result{c, err}
			}()
			acc, err := Accept(ctx, &coalesceConn{Conn: b}, SKeys(testSKey), method)
			if err != nil {
				t.Fatal(err)
			}
			// This write sends the held crypto_select too.
			msg := []byte("the responder's handshake and bitfield")
			if _, err := acc.Write(msg); err != nil {
				t.Fatal(err)
			}
			ini := <-ch
			if ini.err != nil {
				t.Fatal(ini.err)
			}
			if !bytes.Equal(ini.c.pending, msg) {
				t.Fatalf("pending after the handshake: %q, want %q", ini.c.pending, msg)
			}
			got := readN(t, ini.c, 5)
			got = append(got, readN(t, ini.c, len(msg)-5)...)
			if !bytes.Equal(got, msg) {
				t.Fatalf("read %q, want %q", got, msg)
			}
			if ini.c.pending != nil {
				t.Fatal("the handshake buffer is still held")
			}
			// And the stream goes on after the pending bytes.
			wait := writeAsync(acc, []byte("more"))
			if got := readN(t, ini.c, 4); string(got) != "more" {
				t.Fatalf("then read %q", got)
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriteAfterError: a write that failed (here at its deadline) has
// moved the RC4 keystream past bytes the peer never got, so the Conn
// refuses further writes instead of sending what would decrypt to garbage.
func TestWriteAfterError(t *testing.T) {
	ini, _ := handshaken(t, true, RC4, nil)
	ini.SetWriteDeadline(time.Unix(1, 0))
	if _, err := ini.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	}
	ini.SetWriteDeadline(time.Time{})
	if _, err := ini.Write([]byte("y")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after a failed one: %v", err)
	}
}
