package mse

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

// The fuzz targets' own keys come from these seeds, so a committed seed
// (a peer's half of a real handshake, recorded against the same keys) gets
// past the key exchange and lets the fuzzer work on what follows it.
const (
	fuzzInitSeed   = 101
	fuzzAcceptSeed = 202
)

// streamConn is a net.Conn whose peer sends data, in reads of varying
// sizes (the handshake must not care how bytes are cut), and takes
// whatever is written.
type streamConn struct {
	data []byte
	off  int
	n    int // reads so far
}

var readSizes = []int{1, 7, 64, 300, 1500, 3}

func (c *streamConn) Read(p []byte) (int, error) {
	if c.off == len(c.data) {
		return 0, io.EOF
	}
	n := min(len(p), readSizes[c.n%len(readSizes)], len(c.data)-c.off)
	c.n++
	copy(p, c.data[c.off:c.off+n])
	c.off += n
	return n, nil
}

func (c *streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// checkFuzzErr fails unless err is one a peer's bytes may cause.
func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	for _, want := range []error{ErrProtocol, ErrSyncNotFound, ErrUnknownInfoHash, ErrNoCommonMethod, ErrNotMSE, io.ErrUnexpectedEOF} {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("unexpected error: %v", err)
}

// checkFuzzConn checks a Conn that a handshake over sc returned: the
// handshake took no more than max bytes, and the Conn reads exactly what
// followed them.
func checkFuzzConn(t *testing.T, sc *streamConn, c *Conn, max int) {
	t.Helper()
	used := sc.off - len(c.pending)
	if used > max {
		t.Fatalf("handshake took %d bytes, at most %d possible", used, max)
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != len(sc.data)-used {
		t.Fatalf("read %d bytes after the handshake, %d were there", len(rest), len(sc.data)-used)
	}
}

// FuzzAccept feeds the responder arbitrary bytes as the initiator's stream.
func FuzzAccept(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &streamConn{data: data}
		c, err := accept(context.Background(), sc, SKeys(testSKey), Plaintext|RC4, &config{rand: detRand(fuzzAcceptSeed)})
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if c.SKey() != testSKey {
			t.Fatalf("skey %x", c.SKey())
		}
		checkFuzzConn(t, sc, c, respHandshakeMax)
	})
}

// FuzzInitiate feeds the initiator arbitrary bytes as the responder's
// stream.
func FuzzInitiate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &streamConn{data: data}
		c, err := initiate(context.Background(), sc, testSKey, Plaintext|RC4, testIA, &config{rand: detRand(fuzzInitSeed)})
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if m := c.Method(); m != Plaintext && m != RC4 {
			t.Fatalf("method %v", m)
		}
		checkFuzzConn(t, sc, c, initHandshakeMax)
	})
}

// recordedHandshake runs a real handshake between the fuzz targets' keys
// and returns what each side sent: the initiator's bytes are a seed for
// FuzzAccept, the responder's for FuzzInitiate. After the handshake, each
// side sends a few bytes of stream.
func recordedHandshake(t *testing.T, skey [20]byte, provide, allowed CryptoMethod, ia []byte, pads *[2]int) (fromInit, fromAcc []byte) {
	t.Helper()
	a, b := connPair(t, false)
	ta, tb := &tapConn{Conn: a}, &tapConn{Conn: b}
	ini, acc := runHandshake(t, ta, tb, handshakeOpts{
		skey: skey, provide: provide, allowed: allowed, ia: ia, find: SKeys(skey),
		initCfg: &config{rand: detRand(fuzzInitSeed), pads: pads},
		accCfg:  &config{rand: detRand(fuzzAcceptSeed), pads: pads},
	})
	if ini.err == nil && acc.err == nil {
		wait := writeAsync(ini.c, []byte("interested"))
		readN(t, acc.c, len(ia)+len("interested"))
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		wait = writeAsync(acc.c, []byte("bitfield"))
		readN(t, ini.c, len("bitfield"))
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	return ta.bytes(), tb.bytes()
}

// fuzzSeeds are the committed seed corpora, one list per fuzz target. They
// live in testdata/fuzz/<target>/ so a plain `go test` runs them;
// `go test -run TestFuzzCorpus -update-corpus` rewrites the files.
func fuzzSeeds(t *testing.T) map[string][][]byte {
	maxPads := &[2]int{MaxPad, MaxPad}
	both := Plaintext | RC4
	rc4Init, rc4Acc := recordedHandshake(t, testSKey, both, both, testIA, nil)
	plainInit, plainAcc := recordedHandshake(t, testSKey, both, Plaintext, testIA, nil)
	maxInit, maxAcc := recordedHandshake(t, testSKey, both, both, testIA, maxPads)
	noIAInit, _ := recordedHandshake(t, testSKey, RC4, RC4, nil, &[2]int{0, 0})
	unknown, _ := recordedHandshake(t, otherSKey, both, both, testIA, nil)
	k, err := newDHKey(detRand(5))
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 700)
	detRand(6).Read(garbage)
	return map[string][][]byte{
		"FuzzAccept": {rc4Init, plainInit, maxInit, noIAInit, unknown, testIA, k.pub[:], garbage},
		"FuzzInitiate": {rc4Acc, plainAcc, maxAcc, k.pub[:], garbage,
			append(bytes.Clone(k.pub[:]), testIA...)},
	}
}

func TestFuzzCorpus(t *testing.T) {
	for name, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", name)
		for i, s := range seeds {
			path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("%s is missing or stale (%v): run go test -run TestFuzzCorpus -update-corpus", path, err)
			}
		}
	}
}

// TestFuzzSeedsGetThrough checks that the recorded seeds are what they
// claim: the fuzz targets complete a handshake on them, so the fuzzer
// starts from inputs that reach every step.
func TestFuzzSeedsGetThrough(t *testing.T) {
	seeds := fuzzSeeds(t)
	for i, s := range seeds["FuzzAccept"][:4] {
		allowed := Plaintext | RC4
		if i == 1 {
			allowed = Plaintext // as recorded: the stream after the IA is in the clear
		}
		c, err := accept(context.Background(), &streamConn{data: s}, SKeys(testSKey), allowed, &config{rand: detRand(fuzzAcceptSeed)})
		if err != nil {
			t.Errorf("FuzzAccept seed %d: %v", i, err)
			continue
		}
		want := "interested"
		if i < 3 {
			want = string(testIA) + want
		}
		if got, err := io.ReadAll(c); err != nil || string(got) != want {
			t.Errorf("FuzzAccept seed %d: stream %q, %v", i, got, err)
		}
	}
	if _, err := accept(context.Background(), &streamConn{data: seeds["FuzzAccept"][4]}, SKeys(testSKey), RC4, &config{rand: detRand(fuzzAcceptSeed)}); !errors.Is(err, ErrUnknownInfoHash) {
		t.Errorf("FuzzAccept seed 4: %v, want ErrUnknownInfoHash", err)
	}
	for i, s := range seeds["FuzzInitiate"][:3] {
		c, err := initiate(context.Background(), &streamConn{data: s}, testSKey, Plaintext|RC4, testIA, &config{rand: detRand(fuzzInitSeed)})
		if err != nil {
			t.Errorf("FuzzInitiate seed %d: %v", i, err)
			continue
		}
		if got, err := io.ReadAll(c); err != nil || string(got) != "bitfield" {
			t.Errorf("FuzzInitiate seed %d: stream %q, %v", i, got, err)
		}
	}
}
