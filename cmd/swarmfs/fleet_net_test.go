package main

// The fleet's network (issue 18): one Linux bridge in the test's own
// network namespace, with no address on it, and one network namespace per
// machine (origin, tracker, hosts), each joined to the bridge by a veth
// pair whose two ends are both capped by tbf: the namespace's end caps
// what the machine sends (its uplink), the bridge's end what it receives
// (its downlink). Addresses are 10.213.0.0/16, inside the namespaces only:
// the test's namespace has no address and no route there, the namespaces
// have no default route, so nothing can leave for the real network.
//
// Names carry a prefix unique to the run (fleetPrefix): scripts/fleet.sh
// deletes what a killed run left behind by that prefix. Processes started
// in a namespace (nsenter --net) stay in the test's mount namespace, so a
// FUSE mount they make is visible to the test and to fusermount.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envFleetPrefix names the run's namespaces and links (default "sfl" and
// the test binary's pid); scripts/fleet.sh sets it to clean up by it.
const envFleetPrefix = "SWARMFS_FLEET_PREFIX"

// fleetPrefix is the prefix of this run's namespaces and links: short,
// since a link name has at most 15 bytes ("<prefix>v<index>").
func fleetPrefix() string {
	if p := os.Getenv(envFleetPrefix); p != "" {
		return p
	}
	return "sfl" + strconv.Itoa(os.Getpid()%100000)
}

// fleetNet is one fleet's bridge and namespaces. Not safe for concurrent
// use: the test's goroutine builds it, its cleanup tears it down.
type fleetNet struct {
	prefix string
	bridge string
	// rate is each link's cap in bits per second, both ways.
	rate int64
	nss  []string // created namespaces, in order
}

// fleetMachine is one namespace on the bridge.
type fleetMachine struct {
	NS string // namespace name, for nsenter --net=/run/netns/NS
	IP string // its address on the bridge
}

// newFleetNet creates the bridge; tb.Cleanup kills every process left in
// the namespaces, deletes them and the bridge. It fails (under CI=true) or
// skips when network namespaces are not permitted.
func newFleetNet(tb testing.TB, rate int64) *fleetNet {
	tb.Helper()
	requireRoot(tb)
	requireProgs(tb, "ip", "tc", "nsenter")
	n := &fleetNet{prefix: fleetPrefix(), rate: rate}
	n.bridge = n.prefix + "b"
	// A run killed before its cleanup (SIGKILL) may have left namespaces
	// under the same prefix (the same pid, later): they go first.
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], n.prefix+"-") {
				n.nss = append(n.nss, f[0])
			}
		}
		n.teardown()
		n.nss = nil
	}
	probe := n.prefix + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("ip netns add is not permitted here: %v: %s", err, out)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	tb.Cleanup(n.teardown)
	n.ip(tb, "link", "add", n.bridge, "type", "bridge", "mcast_snooping", "0",
		"nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0")
	noIPv6(n.bridge)
	n.ip(tb, "link", "set", n.bridge, "up")
	return n
}

// noIPv6 keeps a link of the test's namespace without even a link-local
// IPv6 address: the host has nothing on the bridge.
func noIPv6(link string) {
	_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", link, "disable_ipv6"), []byte("1"), 0o644)
}

func (n *fleetNet) ip(tb testing.TB, args ...string) {
	tb.Helper()
	fleetRun(tb, "ip", args...)
}

func fleetRun(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// fleetIP is machine i's address: 10.213.0.1 for 0, then on.
func fleetIP(i int) string { return fmt.Sprintf("10.213.%d.%d", i/250, i%250+1) }

// add creates machine i: its namespace, its capped veth into the bridge,
// its address, and a route for multicast (LSD) on the link.
func (n *fleetNet) add(tb testing.TB, i int) fleetMachine {
	tb.Helper()
	m := fleetMachine{NS: fmt.Sprintf("%s-%d", n.prefix, i), IP: fleetIP(i)}
	veth := fmt.Sprintf("%sv%d", n.prefix, i)
	n.ip(tb, "netns", "add", m.NS)
	n.nss = append(n.nss, m.NS)
	fleetRun(tb, "ip", "netns", "exec", m.NS, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	n.ip(tb, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", m.NS)
	noIPv6(veth)
	n.ip(tb, "link", "set", veth, "master", n.bridge, "up")
	n.ip(tb, "-n", m.NS, "link", "set", "lo", "up")
	n.ip(tb, "-n", m.NS, "addr", "add", m.IP+"/16", "dev", "eth0")
	n.ip(tb, "-n", m.NS, "link", "set", "eth0", "up")
	n.ip(tb, "-n", m.NS, "route", "add", "224.0.0.0/4", "dev", "eth0")
	n.tbf(tb, "-n", m.NS, "eth0")
	n.tbf(tb, "-n", "", veth)
	return m
}

// tbf caps dev's egress at n.rate. The bucket holds 10 ms of traffic (at
// least 32 KiB, beyond a GSO segment), and a packet waits at most 100 ms
// for tokens before it is dropped: a link with a short queue, as a
// switch port has.
func (n *fleetNet) tbf(tb testing.TB, nsFlag, ns, dev string) {
	tb.Helper()
	burst := max(32<<10, n.rate/8/100)
	args := []string{}
	if ns != "" {
		args = append(args, nsFlag, ns)
	}
	args = append(args, "qdisc", "add", "dev", dev, "root", "tbf",
		"rate", strconv.FormatInt(n.rate, 10)+"bit", "burst", strconv.FormatInt(burst, 10), "latency", "100ms")
	fleetRun(tb, "tc", args...)
}

// txBytes is what machine m has sent on its link (its uplink, IP headers
// included).
func txBytes(m fleetMachine) (int64, error) {
	out, err := exec.Command("ip", "netns", "exec", m.NS, "cat", "/sys/class/net/eth0/statistics/tx_bytes").Output()
	if err != nil {
		return 0, fmt.Errorf("tx bytes of %s: %w", m.NS, err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

// nsCommand is name run inside m's network namespace (only: the mount
// namespace stays the test's). The process gets SIGKILL if the test
// binary dies (startChild); teardown kills it anyway.
func nsCommand(m fleetMachine, name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + m.NS, "--", name}, args...)...)
}

// teardown kills what runs in the namespaces, deletes them (which deletes
// their veths) and the bridge. It never fails: it is the last resort.
func (n *fleetNet) teardown() {
	for _, ns := range n.nss {
		killNetns(ns)
	}
	for _, ns := range n.nss {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "fleet: ip netns del %s: %v: %s\n", ns, err, out)
		}
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// killNetns SIGKILLs every process in namespace ns and waits a little for
// them to go.
func killNetns(ns string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
