package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

// TestDialRetryLateListener: a peer that is not listening yet when the
// torrent starts (a --peer started a second later) refuses the first dial;
// it is dialled again within a second or two, not after peerRetry's 15 s,
// and the torrent completes from it soon after it appears.
func TestDialRetryLateListener(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	port := swarmtest.FreePort(t, "127.0.0.2")
	addr := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.2:%d", port))
	t0 := time.Now()
	// TCP only: a uTP dial to the port would keep retransmitting until
	// the seeder's UDP socket appears, and connect without any retry.
	_, lt, _ := leecher(t, f, Config{ListenAddr: "127.0.0.3:0", NoTrackers: true, NoUTP: true}, addr)
	time.Sleep(time.Second) // the first dial is refused meanwhile
	if s := lt.Stats(); s.Peers != 0 {
		t.Fatalf("%d peers before the seeder listens", s.Peers)
	}
	seeder(t, f, Config{ListenAddr: addr.String(), NoUTP: true})
	up := time.Now()
	// Quick retries (1 s, then 2 s, ticked each second) reach it within
	// 3 s; peerRetry would wait 15 s after the first refusal. What is
	// timed is the first piece, not the whole download, which a loaded
	// machine slows.
	for lt.BytesCompleted() == 0 {
		if time.Since(up) > 8*time.Second {
			t.Fatalf("nothing downloaded %v after the seeder started listening", time.Since(up))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("first piece %v after the seeder started listening, %v after the start", time.Since(up), time.Since(t0))
	waitComplete(t, lt, time.Minute)
}

// TestDialRetryWait: quick retries only for refusals from peers never
// reached, and only the first few; everything else keeps peerRetry.
func TestDialRetryWait(t *testing.T) {
	refusedErr := fmt.Errorf("tcp: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	silence := fmt.Errorf("tcp: %w", errors.New("i/o timeout"))
	for _, tc := range []struct {
		name string
		cand candidate
		err  error
		took time.Duration
		want time.Duration
	}{
		{"first refusal", candidate{failures: 1}, refusedErr, time.Millisecond, time.Second},
		{"second refusal", candidate{failures: 2}, refusedErr, time.Millisecond, 2 * time.Second},
		{"third refusal", candidate{failures: 3}, refusedErr, time.Millisecond, 4 * time.Second},
		{"fourth refusal", candidate{failures: 4}, refusedErr, time.Millisecond, peerRetry.after(4)},
		{"silence", candidate{failures: 1}, silence, 10 * time.Second, peerRetry.after(1)},
		{"refusal after a slow fallback", candidate{failures: 1}, refusedErr, 10 * time.Second, time.Second},
		{"once reached", candidate{failures: 1, lastConnected: time.Now()}, refusedErr, time.Millisecond, peerRetry.after(1)},
		{"ourselves", candidate{failures: maxFailures}, errSelf, time.Millisecond, peerRetry.after(maxFailures)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialRetryWait(&tc.cand, tc.err, tc.took); got != tc.want {
				t.Errorf("dialRetryWait = %v, want %v", got, tc.want)
			}
		})
	}
}
