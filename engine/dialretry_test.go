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
		{"named, silent", candidate{failures: 1, named: true}, silence, 10 * time.Second, peerRetry.after(1)},
		{"named, fourth refusal", candidate{failures: 4, named: true}, refusedErr, time.Millisecond, namedRetryMax},
		{"named, many failures", candidate{failures: maxFailures, named: true, lastConnected: time.Now()}, silence, 10 * time.Second, namedRetryMax},
		{"named, ourselves", candidate{failures: maxFailures, named: true}, errSelf, time.Millisecond, peerRetry.after(maxFailures)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialRetryWait(&tc.cand, tc.err, tc.took); got != tc.want {
				t.Errorf("dialRetryWait = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestNamedPeerKept: a peer the user named is marked as such, keeps its
// place when trackers, the DHT and PEX fill the candidate list (though
// it failed most), and waits at most namedRetryMax between dials however
// often it failed.
func TestNamedPeerKept(t *testing.T) {
	f := newFixture(t, 32<<10, swarmtest.StandardFiles())
	named := netip.MustParseAddrPort(fmt.Sprintf("127.0.12.7:%d", swarmtest.FreePort(t, "127.0.12.7")))
	_, lt, _ := leecher(t, f, Config{ListenAddr: "127.0.12.8:0", NoTrackers: true, NoUTP: true, MaxConnsPerTorrent: 1}, named)
	type seen struct {
		named, kept, other bool
		wait               time.Duration
	}
	ch := make(chan seen, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !lt.post(func() {
			var s seen
			c := lt.candidates[named]
			if c == nil || c.failures == 0 {
				ch <- s
				return
			}
			s.named = c.named
			c.failures = maxFailures + 3
			s.wait = c.retryWait(c.failures)
			other := netip.MustParseAddrPort("127.0.12.9:1")
			lt.candidates[other] = &candidate{addr: other, failures: 1, nextTry: time.Now().Add(time.Hour)}
			lt.dropWorstCandidate()
			_, s.kept = lt.candidates[named]
			_, s.other = lt.candidates[other]
			ch <- s
		}) {
			t.Fatal("torrent closed")
		}
		s := <-ch
		if s.wait == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the named peer was not dialled within 10 s")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !s.named {
			t.Error("the peer from TorrentOptions.Peers is not marked as named")
		}
		if !s.kept || s.other {
			t.Errorf("making room dropped the named peer (%v) or kept the other (%v)", !s.kept, s.other)
		}
		if s.wait != namedRetryMax {
			t.Errorf("a named peer that failed %d times waits %v, want %v", maxFailures+3, s.wait, namedRetryMax)
		}
		return
	}
}
