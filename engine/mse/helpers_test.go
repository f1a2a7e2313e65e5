package mse

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every handshake in the tests that do not test
// deadlines.
const testTimeout = 10 * time.Second

var (
	testSKey  = [20]byte{0: 0xaa, 19: 0x55, 7: 'i', 8: 'h'}
	otherSKey = [20]byte{0: 0xbb, 19: 0x66}
)

// testIA is an initial payload shaped like a BitTorrent handshake.
var testIA = append([]byte(plainHeader+"\x00\x00\x00\x00\x00\x10\x00\x05"), append(testSKey[:], []byte("-SF0001-abcdefghijkl")...)...)

// detRand is a deterministic source for keys and padding (fuzz seeds and
// their replay need the same keys).
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// connPair returns two connected ends: a net.Pipe (synchronous, no
// buffering: it catches writes that wait for a read that never comes) or
// a TCP connection on 127.0.0.1. Both are closed at cleanup.
func connPair(t testing.TB, tcp bool) (a, b net.Conn) {
	t.Helper()
	if !tcp {
		a, b = net.Pipe()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := l.Accept()
			ch <- res{c, err}
		}()
		a, err = net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil {
			a.Close()
			t.Fatal(r.err)
		}
		b = r.c
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// tapConn records what is written through it.
type tapConn struct {
	net.Conn
	mu      sync.Mutex // guards written
	written bytes.Buffer
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.written.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tapConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.written.Bytes())
}

// result is one side's outcome of a handshake.
type result struct {
	c   *Conn
	err error
}

// handshakeOpts vary runHandshake.
type handshakeOpts struct {
	skey             [20]byte // the initiator's; zero: testSKey
	provide, allowed CryptoMethod
	ia               []byte
	find             SKeyFunc // nil: SKeys(testSKey)
	initCfg, accCfg  *config
	sniff            bool // the responder goes through Sniff first
	timeout          time.Duration
}

// runHandshake runs Initiate on a and Accept on b concurrently. A side
// that fails closes its end, as a client would, so the other one returns
// too.
func runHandshake(t testing.TB, a, b net.Conn, o handshakeOpts) (ini, acc result) {
	t.Helper()
	if o.skey == ([20]byte{}) {
		o.skey = testSKey
	}
	if o.find == nil {
		o.find = SKeys(testSKey)
	}
	if o.initCfg == nil {
		o.initCfg = &config{}
	}
	if o.accCfg == nil {
		o.accCfg = &config{}
	}
	if o.timeout == 0 {
		o.timeout = testTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ini.c, ini.err = initiate(ctx, a, o.skey, o.provide, o.ia, o.initCfg)
		if ini.err != nil {
			a.Close()
		}
	}()
	go func() {
		defer wg.Done()
		conn := b
		if o.sniff {
			plain, replay, err := Sniff(ctx, b)
			if err != nil || plain {
				acc.err = err
				if plain {
					acc.err = ErrNotMSE
				}
				b.Close()
				return
			}
			conn = replay
		}
		acc.c, acc.err = accept(ctx, conn, o.find, o.allowed, o.accCfg)
		if acc.err != nil {
			b.Close()
		}
	}()
	wg.Wait()
	return ini, acc
}

// readN reads exactly n bytes from c within testTimeout.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	got := 0
	for got < n {
		m, err := c.Read(b[got:])
		got += m
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
	}
	return b
}

// writeAsync writes p to c on a goroutine (a net.Pipe write waits for
// the reader) and returns a func that waits and reports the error.
func writeAsync(c net.Conn, p []byte) func() error {
	ch := make(chan error, 1)
	go func() {
		_, err := c.Write(p)
		ch <- err
	}()
	return func() error { return <-ch }
}
