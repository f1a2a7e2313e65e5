package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// inNetnsEnv marks a test process re-run inside a network namespace of
// its own (see runInNetns).
const inNetnsEnv = "SWARMFS_TEST_NETNS"

// runInNetns runs the calling test again, alone, in a new network
// namespace whose loopback carries multicast (BEP 14's group, sent from
// 127.0.0.1), and reports whether the caller is that run. The inner run
// first sets the namespace up further with setup's ip(8) commands. The
// outer run passes or fails with the inner one; the namespace, and every
// process the inner run started, end with it.
func runInNetns(t *testing.T, setup ...[]string) bool {
	t.Helper()
	if os.Getenv(inNetnsEnv) != "" {
		for _, args := range append([][]string{
			{"link", "set", "lo", "up"},
			{"link", "set", "lo", "multicast", "on"},
			{"route", "add", "239.0.0.0/8", "dev", "lo", "src", "127.0.0.1"},
		}, setup...) {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
		return true
	}
	// The outer run only waits: it may do so beside the other interop
	// tests.
	t.Parallel()
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run this test in a network namespace of its own: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil {
		t.Fatalf("the run in a network namespace failed (its output is above; unshare --net needs root): %v", err)
	}
	return false
}

// Addresses for tests in a network namespace of their own: each peer
// gets an address of its own (peers tell each other of peers by address,
// and ::1 is one), outside 127.0.0.0/8 and ::1 where a client treats those
// as martians. nsAddrs is the runInNetns setup that puts 10.59.0.1 to
// 10.59.0.n (with v4) and fd5f::1 to fd5f::n on the namespace's loopback.
func nsAddrs(n int, v4 bool) [][]string {
	var setup [][]string
	for i := 1; i <= n; i++ {
		if v4 {
			setup = append(setup, []string{"addr", "add", nsIP4(i) + "/32", "dev", "lo"})
		}
		setup = append(setup, []string{"addr", "add", nsIP6(i) + "/128", "dev", "lo", "nodad"})
	}
	return setup
}

func nsIP4(i int) string     { return fmt.Sprintf("10.59.0.%d", i) }
func nsIP6(i int) string     { return fmt.Sprintf("fd5f::%d", i) }
func nsListen4(i int) string { return nsIP4(i) + ":0" }
func nsListen6(i int) string { return "[" + nsIP6(i) + "]:0" }
