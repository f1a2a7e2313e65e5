package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// portRange is where a client without a listen address looks for a port:
// the ports BitTorrent clients have used by default since BEP 3, then (port
// 0) one the kernel picks. A desktop client, a local seeder or a second
// swarmfs often holds 6881 already; that must not stop us.
type portRange struct {
	host  string // "" is every address
	ports []int
}

// defaultPorts is the range New uses when Config.ListenAddr is empty.
var defaultPorts = portRange{ports: []int{6881, 6882, 6883, 6884, 6885, 6886, 6887, 6888, 6889, 0}}

// listen binds the client's TCP listener. An explicit address binds
// exactly that, and its error names it; "" takes the first free port of
// pr. logf says which port was taken, and why not an earlier one.
func listen(addr string, pr portRange, logf func(string, ...any)) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("engine: listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	var lastErr error
	busy := 0
	for _, p := range pr.ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(pr.host, strconv.Itoa(p)))
		if err != nil {
			lastErr = err
			busy++
			continue
		}
		if busy > 0 {
			logf("listening on %v: ports %s taken (%v)", ln.Addr(), portList(pr.ports[:busy]), lastErr)
		} else {
			logf("listening on %v", ln.Addr())
		}
		return ln, nil
	}
	return nil, fmt.Errorf("engine: listen: no port free of %s: %w", portList(pr.ports), lastErr)
}

// portList formats ports for a log line: "6881-6889" for a run.
func portList(ports []int) string {
	switch n := len(ports); {
	case n == 0:
		return ""
	case n == 1:
		return strconv.Itoa(ports[0])
	case ports[n-1] == 0:
		return portList(ports[:n-1]) + " and an ephemeral one"
	case ports[n-1]-ports[0] == n-1:
		return fmt.Sprintf("%d-%d", ports[0], ports[n-1])
	}
	return fmt.Sprint(ports)
}

// ownIPv6 is the IPv6 address a client listening on ln tells trackers
// (BEP 7's ipv6=): the listener's own address when it is a specific IPv6
// one (configured: loopback too, for tests), else, when it listens on
// every address of both families, the first global unicast address of
// the host's interfaces. Unique-local (fc00::/7) and link-local addresses
// are left out: a tracker hands them to peers elsewhere, who cannot reach
// them. The zero Addr means none.
func ownIPv6(ln netip.AddrPort) netip.Addr {
	a := ln.Addr()
	switch {
	case a.Is6() && !a.Is4In6() && !a.IsUnspecified():
		if a.IsLinkLocalUnicast() {
			return netip.Addr{}
		}
		return a
	case !a.IsUnspecified() || a.Is4():
		return netip.Addr{} // bound to an IPv4 address (0.0.0.0 included)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}
	}
	return firstGlobalIPv6(addrs)
}

// firstGlobalIPv6 picks the first address of addrs a peer elsewhere on
// the internet can reach over IPv6.
func firstGlobalIPv6(addrs []net.Addr) netip.Addr {
	for _, na := range addrs {
		var ip net.IP
		switch v := na.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok || !a.Is6() || a.Is4In6() {
			continue
		}
		if a.IsGlobalUnicast() && !a.IsPrivate() {
			return a
		}
	}
	return netip.Addr{}
}
