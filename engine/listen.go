package engine

import (
	"fmt"
	"net"
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
