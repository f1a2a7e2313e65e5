package mse

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// startAria2Seeder runs aria2c seeding seedFile on 127.0.0.1 with the
// given extra options, and returns its address once it accepts
// connections. It is killed and waited for at cleanup.
func startAria2Seeder(t *testing.T, opts ...string) (string, swarmtest.TorrentInfo) {
	t.Helper()
	swarmtest.RequireTools(t, "aria2c", "libtorrent")
	dir, ti := seedTorrent(t)
	port := swarmtest.FreePort(t, "127.0.0.1")
	args := append([]string{
		"--interface=127.0.0.1", "--listen-port=" + strconv.Itoa(port),
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--disable-ipv6=true",
		"--check-integrity=true", "--seed-ratio=0.0", "--seed-time=60",
		"--bt-seed-unverified=false", "--console-log-level=warn", "--summary-interval=0",
		"--dir=" + dir, ti.Path,
	}, opts...)
	cmd := exec.Command("aria2c", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("aria2c output:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(interopTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, ti
		}
		if time.Now().After(deadline) {
			t.Fatalf("aria2c does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInteropAria2Initiate dials aria2 seeders (1.36), one requiring
// encryption and one with its defaults, with Initiate, and downloads a
// block through the Conn.
func TestInteropAria2Initiate(t *testing.T) {
	skipShort(t)
	cases := []struct {
		opts          []string
		provide, want CryptoMethod
	}{
		{[]string{"--bt-require-crypto=true", "--bt-min-crypto-level=arc4"}, Plaintext | RC4, RC4},
		// Offered both, aria2 selects plaintext by default, as
		// libtorrent does.
		{nil, Plaintext | RC4, Plaintext},
		{nil, RC4, RC4},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/provide=%v", tc.opts, tc.provide), func(t *testing.T) {
			addr, ti := startAria2Seeder(t, tc.opts...)
			initiateAndFetch(t, "aria2", addr, "A2-", ti, tc.provide, tc.want)
		})
	}
}
