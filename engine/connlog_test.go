package engine

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestConnectionLog: the log says which connections were tried, which were
// made (how, and with what client), and why each failed or ended: a peer
// that hangs up on our handshake (as one that requires encryption does)
// leaves a line. Stats count the plain and the encrypted peers: two
// swarmfs clients under the default policy (prefer) select RC4.
func TestConnectionLog(t *testing.T) {
	f := newFixture(t, 32<<10, []swarmtest.FileSpec{{Path: "a.bin", Size: 1 << 20}})
	sc, _ := seeder(t, f, Config{ListenAddr: "127.0.0.2:0", UploadRate: 512 << 10})
	// A port nobody listens on, and a peer that hangs up on the handshake.
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	hangup := listenFake(t, "127.0.0.4", func(nc net.Conn) {}).addr()

	logs := newLogLines(t)
	_, tor, _ := leecher(t, f, Config{Logf: logs.logf}, sc.Addr(), refused, hangup)
	deadline := time.Now().Add(10 * time.Second)
	for s := tor.Stats(); s.Peers != 1 || s.PlainPeers != 0 || s.EncryptedPeers != 1 || s.TCPPeers != 1; s = tor.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats: %d peers, %d plain, %d encrypted, %d tcp; want 1, 0, 1, 1", s.Peers, s.PlainPeers, s.EncryptedPeers, s.TCPPeers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range [][]string{
		{sc.Addr().String() + ": connecting (tcp, then utp; mse, then plain)"},
		{sc.Addr().String() + ": connected (outgoing, tcp, rc4, peer id \"-SF"},
		{sc.Addr().String() + ": client \"swarmfs " + Version + "\""},
		{refused.String() + ": connect failed:", "refused"},
		{hangup.String() + ": connect failed:"},
	} {
		if _, ok := logs.wait(10*time.Second, want...); !ok {
			t.Errorf("no log line with %q", want)
		}
	}
	waitComplete(t, tor, 30*time.Second)
	// Whichever side sees first that both are seeding closes: the
	// leecher's line then says so, or says the seeder hung up (EOF).
	if line, ok := logs.wait(10*time.Second, sc.Addr().String()+": ended after"); !ok {
		t.Errorf("no line says the connection to the seeder ended")
	} else if !strings.Contains(line, "both seeding") && !strings.Contains(line, "EOF") {
		t.Errorf("the end line does not say why: %q", line)
	} else if _, ok := logs.find("down 1.0 MiB"); !ok {
		t.Errorf("the end line does not say what came down: %q", line)
	}
}
