package dht

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ltDriver is a python3-libtorrent DHT node driven over stdin/stdout: one
// command per line in, one JSON event per line out.
const ltDriver = `
import faulthandler, json, sys, threading, time
import libtorrent as lt
faulthandler.enable()  # a crash in libtorrent leaves a trace on stderr

listen_ip, bootstrap, save_path = sys.argv[1], sys.argv[2], sys.argv[3]
handles = {}
out_lock = threading.Lock()
def emit(**kw):
    with out_lock:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()

ses = lt.session({
    "listen_interfaces": listen_ip + ":0",
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": bootstrap,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False,
    "alert_mask": lt.alert.category_t.all_categories,
})
emit(event="ready", port=ses.listen_port())

def alerts():
    while True:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.dht_get_peers_reply_alert):
                emit(event="peers", info_hash=str(a.info_hash), peers=[[p[0], p[1]] for p in a.peers()])
            elif isinstance(a, lt.dht_stats_alert):
                n = 0
                try:
                    n = sum(b["num_nodes"] for b in a.routing_table)
                except Exception:
                    pass
                emit(event="stats", nodes=n)
            elif isinstance(a, lt.dht_bootstrap_alert):
                emit(event="bootstrapped")
threading.Thread(target=alerts, daemon=True).start()

for line in sys.stdin:
    f = line.split()
    if not f:
        continue
    if f[0] == "add":
        # The bindings cannot build dht_announce's flags; a magnet-only torrent
        # makes libtorrent announce its listen port to the DHT instead.
        if f[1] not in handles:
            p = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + f[1])
            p.save_path = save_path
            handles[f[1]] = ses.add_torrent(p)
        else:
            handles[f[1]].force_dht_announce()
    elif f[0] == "get_peers":
        ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(f[1])))
    elif f[0] == "stats":
        ses.post_dht_stats()
    elif f[0] == "quit":
        break
`

type ltEvent struct {
	Event    string  `json:"event"`
	Port     int     `json:"port"`
	Nodes    int     `json:"nodes"`
	InfoHash string  `json:"info_hash"`
	Peers    [][]any `json:"peers"`
}

type ltNode struct {
	t      *testing.T
	stdin  io.WriteCloser
	events chan ltEvent
	port   int
	exited chan struct{} // closed once the driver process has ended
	state  *os.ProcessState
}

// startLibtorrent runs the driver on listenIP, bootstrapped from boot. It
// skips the test when python3-libtorrent is missing, unless CI=true.
func startLibtorrent(t *testing.T, listenIP string, boot []netip.AddrPort) *ltNode {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import libtorrent").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import libtorrent: %v %s", py, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	script := filepath.Join(t.TempDir(), "ltdht.py")
	if err := os.WriteFile(script, []byte(ltDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	var bs []string
	for _, b := range boot {
		bs = append(bs, b.String())
	}
	cmd := exec.Command(py, script, listenIP, strings.Join(bs, ","), t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lt := &ltNode{t: t, stdin: stdin, events: make(chan ltEvent, 1024), exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		lt.state = cmd.ProcessState
		close(lt.exited)
	}()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev ltEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				select {
				case lt.events <- ev:
				default: // the test stopped listening; keep draining
				}
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the driver exits at end of input
		select {
		case <-lt.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-lt.exited
		}
		<-readerDone
		if t.Failed() {
			t.Logf("libtorrent stderr:\n%s", stderr.String())
		}
	})
	ev := lt.wait(20*time.Second, func(ev ltEvent) bool { return ev.Event == "ready" })
	lt.port = ev.Port
	return lt
}

func (lt *ltNode) cmd(format string, args ...any) {
	lt.t.Helper()
	if _, err := fmt.Fprintf(lt.stdin, format+"\n", args...); err != nil {
		// Say how the driver ended (a signal: libtorrent crashed;
		// faulthandler then left its trace in the stderr logged below).
		how := "still running"
		select {
		case <-lt.exited:
			how = lt.state.String()
		case <-time.After(2 * time.Second):
		}
		lt.t.Fatalf("libtorrent driver: %v (driver %s)", err, how)
	}
}

// wait returns the first event ok accepts, failing the test after d.
func (lt *ltNode) wait(d time.Duration, ok func(ltEvent) bool) ltEvent {
	lt.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-lt.events:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			lt.t.Fatalf("libtorrent: no matching event within %v", d)
		}
	}
}

// poll repeats act every period until an event satisfies ok or d passes.
func (lt *ltNode) poll(d, period time.Duration, act func(), ok func(ltEvent) bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		act()
		until := time.After(period)
	wait:
		for {
			select {
			case ev := <-lt.events:
				if ok(ev) {
					return true
				}
			case <-until:
				break wait
			}
		}
	}
	return false
}

func TestLibtorrentInterop(t *testing.T) {
	// Our network: 8 nodes on 127.0.0.70-77, bootstrapped from the first.
	nodes := []*Node{newTestNode(t, 70, []string{}, nil)}
	for i := 1; i < 8; i++ {
		nodes = append(nodes, newTestNode(t, 70+i, []string{nodes[0].Addr().String()}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for round := 0; round < 2; round++ {
		for _, n := range nodes[1:] {
			if err := n.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	const ltIP = "127.0.0.90"
	lt := startLibtorrent(t, ltIP, []netip.AddrPort{nodes[0].Addr(), nodes[1].Addr()})
	if !lt.poll(30*time.Second, time.Second, func() { lt.cmd("stats") }, func(ev ltEvent) bool {
		return ev.Event == "stats" && ev.Nodes >= 3
	}) {
		t.Fatal("libtorrent did not fill its routing table from our nodes")
	}
	ltAddr := netip.AddrPortFrom(netip.MustParseAddr(ltIP), uint16(lt.port))
	for _, n := range nodes {
		n.AddNode(ltAddr)
	}

	// libtorrent announces (its listen port, for a magnet it joins); our node finds it.
	ihA := randomID()
	want := netip.AddrPortFrom(netip.MustParseAddr(ltIP), uint16(lt.port))
	found := false
	start := time.Now()
	for !found && time.Since(start) < 40*time.Second {
		lt.cmd("add %x", ihA)
		time.Sleep(2 * time.Second)
		err := nodes[3].GetPeers(ctx, ihA, func(ps []netip.AddrPort) {
			for _, p := range ps {
				found = found || p == want
			}
		})
		if err != nil {
			t.Fatalf("GetPeers: %v", err)
		}
	}
	if !found {
		t.Fatal("our GetPeers did not find libtorrent's announce")
	}
	t.Logf("found libtorrent's announce after %v", time.Since(start).Round(time.Millisecond))

	// We announce; libtorrent finds us.
	ihB := randomID()
	if err := nodes[5].Announce(ctx, ihB, 8888, nil); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	ourPeer := nodes[5].Addr().Addr().String()
	hexB := hex.EncodeToString(ihB[:])
	start = time.Now()
	if !lt.poll(40*time.Second, 3*time.Second, func() { lt.cmd("get_peers %s", hexB) }, func(ev ltEvent) bool {
		if ev.Event != "peers" || ev.InfoHash != hexB {
			return false
		}
		for _, p := range ev.Peers {
			if len(p) == 2 && fmt.Sprint(p[0]) == ourPeer && fmt.Sprint(p[1]) == "8888" {
				return true
			}
		}
		return false
	}) {
		t.Fatal("libtorrent's dht_get_peers did not find our announce")
	}
	t.Logf("libtorrent found our announce after %v", time.Since(start).Round(time.Millisecond))
}
