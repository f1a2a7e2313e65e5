package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestListenDefaultPorts: without a listen address, a taken port is
// skipped for the next of the range, then for one the kernel picks, and
// the log says which was taken; an explicit address that cannot be bound
// is an error that names it.
func TestListenDefaultPorts(t *testing.T) {
	hold := func() (net.Listener, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln, ln.Addr().(*net.TCPAddr).Port
	}
	freePort := func() int {
		ln, p := hold()
		ln.Close()
		return p
	}
	_, busy1 := hold()
	_, busy2 := hold()
	free := freePort()
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }

	cases := []struct {
		name  string
		ports []int
		want  func(int) bool
	}{
		{"first free", []int{free, busy1, 0}, func(p int) bool { return p == free }},
		{"next after a taken one", []int{busy1, free, 0}, func(p int) bool { return p == free }},
		{"ephemeral when all are taken", []int{busy1, busy2, 0}, func(p int) bool { return p != busy1 && p != busy2 && p != 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs = nil
			ln, err := listen("", portRange{host: "127.0.0.1", ports: tc.ports}, logf)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			p := ln.Addr().(*net.TCPAddr).Port
			if !tc.want(p) {
				t.Errorf("bound port %d (ports %v)", p, tc.ports)
			}
			if len(logs) != 1 || !strings.Contains(logs[0], fmt.Sprint(p)) {
				t.Errorf("log %q does not name port %d", logs, p)
			}
			if tc.ports[0] != p && !strings.Contains(logs[0], fmt.Sprint(tc.ports[0])) {
				t.Errorf("log %q does not say that %d was taken", logs, tc.ports[0])
			}
		})
	}
	t.Run("explicit address taken", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", busy1)
		ln, err := listen(addr, defaultPorts, logf)
		if err == nil {
			ln.Close()
			t.Fatalf("listen on a taken %s succeeded", addr)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("error %q does not name %s", err, addr)
		}
	})
	t.Run("none free", func(t *testing.T) {
		ln, err := listen("", portRange{host: "127.0.0.1", ports: []int{busy1, busy2}}, logf)
		if err == nil {
			ln.Close()
			t.Fatal("listen succeeded with every port taken")
		}
	})
}

// TestDefaultPortsRange: the range is BitTorrent's 6881-6889, then any.
func TestDefaultPortsRange(t *testing.T) {
	want := []int{6881, 6882, 6883, 6884, 6885, 6886, 6887, 6888, 6889, 0}
	if fmt.Sprint(defaultPorts.ports) != fmt.Sprint(want) || defaultPorts.host != "" {
		t.Errorf("defaultPorts = %+v, want %v on every address", defaultPorts, want)
	}
}

// TestOwnIPv6: what a client tells trackers as its IPv6 address.
func TestOwnIPv6(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   string
	}{
		{"[::1]:6881", "::1"},
		{"[2001:db8::5]:6881", "2001:db8::5"},
		{"[fe80::1]:6881", ""},
		{"127.0.0.1:6881", ""},
		{"0.0.0.0:6881", ""},
	} {
		got := ownIPv6(netip.MustParseAddrPort(tc.listen))
		if (got.IsValid() || tc.want != "") && got.String() != tc.want {
			t.Errorf("ownIPv6(%s) = %v, want %q", tc.listen, got, tc.want)
		}
	}
	mask := net.CIDRMask(64, 128)
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("::1"), Mask: net.CIDRMask(128, 128)},
		&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: mask},
		&net.IPNet{IP: net.ParseIP("fd00::2"), Mask: mask},
		&net.IPNet{IP: net.ParseIP("2001:db8::7"), Mask: mask},
	}
	if got := firstGlobalIPv6(addrs); got != netip.MustParseAddr("2001:db8::7") {
		t.Errorf("firstGlobalIPv6 = %v, want 2001:db8::7", got)
	}
	if got := firstGlobalIPv6(addrs[:4]); got.IsValid() {
		t.Errorf("firstGlobalIPv6 without a global address = %v", got)
	}
}
