package swarmtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Python is the interpreter that has Debian's python3-libtorrent. The first
// python3 on PATH may be another one (pyenv) without it, so it is never
// looked up on PATH.
const Python = "/usr/bin/python3"

// toolChecks maps each name RequireTools accepts to its probe. A probe
// returns nil when the tool is usable.
var toolChecks = map[string]func() error{
	"libtorrent": func() error {
		out, err := exec.Command(Python, "-c", "import libtorrent").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -c 'import libtorrent': %v: %s (apt-get install python3-libtorrent)", Python, err, strings.TrimSpace(string(out)))
		}
		return nil
	},
	"python3-http.server": func() error {
		out, err := exec.Command(Python, "-c", "import http.server").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -c 'import http.server': %v: %s (apt-get install python3)", Python, err, strings.TrimSpace(string(out)))
		}
		return nil
	},
	"opentracker":         lookPath("opentracker"),
	"ffmpeg":              lookPath("ffmpeg"),
	"ffprobe":             lookPath("ffprobe"),
	"fusermount3":         lookPath("fusermount3"),
	"mktorrent":           lookPath("mktorrent"),
	"transmission-cli":    lookPath("transmission-cli"),
	"transmission-daemon": lookPath("transmission-daemon"),
	"aria2c":              lookPath("aria2c"),
	"rtorrent":            lookPath("rtorrent"),
	"curl":                lookPath("curl"),
	"btfs":                lookPath("btfs"),
	// webtorrent is node with the webtorrent package make deps installs
	// beside wtpeer.js (webtorrent.go).
	"webtorrent": checkWebTorrent,
	// fuse is a mount being possible at all: the fusermount3 helper and a
	// usable /dev/fuse (containers often lack one).
	"fuse": func() error {
		if err := lookPath("fusermount3")(); err != nil {
			return err
		}
		f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("/dev/fuse: %w", err)
		}
		return f.Close()
	},
}

func lookPath(name string) func() error {
	return func() error {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s not found on PATH", name)
		}
		return nil
	}
}

// toolCache remembers each probe's answer for the life of the test binary.
var toolCache struct {
	mu   sync.Mutex // guards errs
	errs map[string]error
}

func toolError(name string) error {
	check, ok := toolChecks[name]
	if !ok {
		return errUnknownTool
	}
	toolCache.mu.Lock()
	defer toolCache.mu.Unlock()
	if err, ok := toolCache.errs[name]; ok {
		return err
	}
	if toolCache.errs == nil {
		toolCache.errs = make(map[string]error)
	}
	err := check()
	toolCache.errs[name] = err
	return err
}

var errUnknownTool = errors.New("unknown tool name")

// ToolNames lists the names RequireTools accepts.
func ToolNames() []string {
	names := make([]string, 0, len(toolChecks))
	for n := range toolChecks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RequireTools skips the test when one of the named tools is missing, or
// fails it when the environment variable CI is "true": CI must never pass by
// skipping the tests that use real peers. Names: "libtorrent" (the Python
// module, through /usr/bin/python3), "python3-http.server" (its web
// server, which ignores Range), "opentracker", "ffmpeg", "ffprobe",
// "fusermount3", "fuse" (fusermount3 and an openable /dev/fuse), "mktorrent",
// "transmission-cli", "transmission-daemon", "aria2c", "rtorrent", "curl",
// "btfs", "webtorrent" (node and the webtorrent package, see StartWebTorrent).
// An unknown name fails the test.
func RequireTools(tb testing.TB, names ...string) {
	tb.Helper()
	var missing []string
	for _, n := range names {
		err := toolError(n)
		if errors.Is(err, errUnknownTool) {
			tb.Fatalf("swarmtest.RequireTools: unknown tool %q (known: %s)", n, strings.Join(ToolNames(), ", "))
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", n, err))
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing test tools: " + strings.Join(missing, "; ") + "; run `make deps`"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// FreePort returns a port that is free for both TCP and UDP on ip at the
// time of the call. Another process can still take it before the caller
// binds it; callers that start a server on it should retry on a bind
// failure (StartTracker and StartLibtorrent do).
func FreePort(tb testing.TB, ip string) int {
	tb.Helper()
	port, err := freePort(ip)
	if err != nil {
		tb.Fatalf("swarmtest.FreePort(%s): %v", ip, err)
	}
	return port
}

func freePort(ip string) (int, error) {
	var lastErr error
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
		l.Close()
		if err != nil {
			lastErr = err
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no port free for both TCP and UDP: %w", lastErr)
}

// portFree tells whether port is free for TCP and UDP on ip just now.
func portFree(ip string, port int) error {
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return u.Close()
}

// IsLocal reports whether ip is one a test may use: a loopback address
// (127.0.0.0/8, ::1), or one assigned to the loopback interface, which
// only a network namespace of the test's own has (a test there gives each
// client an IPv6 address of its own, since ::1 is only one).
func IsLocal(ip net.IP) bool {
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return false
	}
	addrs, err := lo.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isLocalHostPort reports whether s is "host:port" with a host IsLocal
// accepts.
func isLocalHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if _, err := strconv.Atoi(port); err != nil {
		return false
	}
	return IsLocal(net.ParseIP(host))
}
