package swarmtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Aria2Options configures an aria2c peer. The zero value is a peer on
// 127.0.0.1 on a free port, in aria2's default encryption setting, without
// DHT, LPD or PEX, ignoring the torrent's trackers.
type Aria2Options struct {
	// IP is the address to listen on and connect from (--interface), in
	// one family: "" means 127.0.0.1. An IPv6 address (::1, or one a test's
	// network namespace put on its loopback) makes aria2 IPv6-only, its
	// DHT too. Addresses IsLocal refuses are refused.
	IP string
	// Port is the BitTorrent listen port; 0 picks a free one.
	Port int
	// Encryption is what it demands of its peers.
	Encryption Encryption
	// PEX turns peer exchange on (off by default: peers meet only through
	// what the test sets up).
	PEX bool
	// LPD turns local peer discovery (BEP 14) on: it needs multicast on
	// loopback, which a network namespace of the test's own can have.
	LPD bool
	// DHTEntry, "host:port" on loopback, turns the DHT (BEP 5) on with
	// that node as its entry point, on the BitTorrent port's UDP twin,
	// with its routing table in a file of its own. With an IPv6 IP it is
	// the IPv6 DHT (BEP 32), "[v6]:port", and the IPv4 one is off.
	DHTEntry string
	// Trackers are announce URLs aria2 uses (--bt-tracker); those in
	// the torrent never are.
	Trackers []string
}

// Aria2 is one aria2c process working on one torrent: seeding it
// (StartAria2 with seed) or downloading it and then stopping (seed time
// 0). It is driven over its JSON-RPC interface on loopback, stopped
// (SIGTERM, then SIGKILL after 3 s) and waited for in tb.Cleanup; its
// output goes to the test log if the test failed. Methods are safe for
// concurrent use and take the tb to fail.
//
// aria2 has no way to be told of a peer: the other side connects to
// Addr. It sends a BITFIELD in the middle of a connection, after a run of
// HAVEs, when several pieces complete at once.
type Aria2 struct {
	ip     string
	port   int
	gid    string
	secret string
	rpcURL string
	proc   *proc
	http   *http.Client

	mu     sync.Mutex // guards nextID
	nextID int
}

// Aria2Status is a snapshot of the download (aria2.tellStatus).
type Aria2Status struct {
	Status          string `json:"status"` // active, waiting, paused, error, complete, removed
	TotalLength     int64  `json:"totalLength,string"`
	CompletedLength int64  `json:"completedLength,string"`
	DownloadSpeed   int64  `json:"downloadSpeed,string"`
	UploadSpeed     int64  `json:"uploadSpeed,string"`
	Connections     int    `json:"connections,string"`
	Seeder          bool   `json:"seeder,string"`
	ErrorCode       string `json:"errorCode"`
	ErrorMessage    string `json:"errorMessage"`
	// FollowedBy names the download a magnet's metadata download was
	// followed by (status reports that one instead, once it exists).
	FollowedBy []string `json:"followedBy"`
}

// Complete reports whether every piece is downloaded and checked.
func (st Aria2Status) Complete() bool {
	return st.Status == "complete" || st.TotalLength > 0 && st.CompletedLength == st.TotalLength && st.Seeder
}

// StartAria2 starts aria2c on a .torrent with dir as its download folder
// (the folder that holds the torrent's file or top folder) and returns
// once its RPC answers. With seed, the data is in dir already: aria2
// checks it (--check-integrity) and seeds for ever (--seed-ratio=0.0);
// WaitSeeding waits for that. Without, it downloads and stops seeding once
// complete (--seed-time=0); WaitComplete waits for that.
func StartAria2(tb testing.TB, opts Aria2Options, torrentPath, dir string, seed bool) *Aria2 {
	tb.Helper()
	RequireTools(tb, "aria2c")
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if !IsLocal(net.ParseIP(opts.IP)) {
		tb.Fatalf("swarmtest.StartAria2: IP %q is not a loopback address", opts.IP)
	}
	if opts.DHTEntry != "" && !isLocalHostPort(opts.DHTEntry) {
		tb.Fatalf("swarmtest.StartAria2: DHT entry %q is not a loopback host:port", opts.DHTEntry)
	}
	return startRetrying(tb, "swarmtest.StartAria2("+opts.IP+")", opts.Port != 0, func() (*Aria2, error) {
		return startAria2(tb, opts, torrentPath, dir, seed)
	})
}

func startAria2(tb testing.TB, opts Aria2Options, torrentPath, dir string, seed bool) (*Aria2, error) {
	tb.Helper()
	port := opts.Port
	if port == 0 {
		port = FreePort(tb, opts.IP)
	}
	// aria2 serves its RPC on the loopback address of --interface's
	// family.
	v6 := net.ParseIP(opts.IP).To4() == nil
	rpcIP := "127.0.0.1"
	if v6 {
		rpcIP = "::1"
	}
	rpcPort := FreePort(tb, rpcIP)
	var b [16]byte
	_, _ = rand.Read(b[:])
	a := &Aria2{
		ip:     opts.IP,
		port:   port,
		gid:    hex.EncodeToString(b[:8]),
		secret: hex.EncodeToString(b[8:]),
		rpcURL: "http://" + net.JoinHostPort(rpcIP, strconv.Itoa(rpcPort)) + "/jsonrpc",
		http:   &http.Client{Timeout: callTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	args := []string{
		"--no-conf", "--log=/dev/stderr", "--log-level=info", "--console-log-level=error", "--summary-interval=0",
		"--enable-rpc", "--rpc-listen-all=false", "--rpc-listen-port=" + strconv.Itoa(rpcPort), "--rpc-secret=" + a.secret,
		"--interface=" + opts.IP, "--listen-port=" + strconv.Itoa(port),
		"--bt-enable-lpd=" + strconv.FormatBool(opts.LPD), "--enable-peer-exchange=" + strconv.FormatBool(opts.PEX),
		"--bt-exclude-tracker=*", "--file-allocation=none", "--auto-save-interval=0",
		"--gid=" + a.gid, "--dir=" + abs(dir),
	}
	switch {
	case opts.DHTEntry == "":
		args = append(args, "--enable-dht=false", "--enable-dht6=false")
	case v6:
		args = append(args, "--enable-dht=false", "--enable-dht6=true", "--dht-listen-port="+strconv.Itoa(port),
			"--dht-listen-addr6="+opts.IP, "--dht-entry-point6="+opts.DHTEntry,
			"--dht-file-path6="+filepath.Join(tb.TempDir(), "dht6.dat"))
	default:
		args = append(args, "--enable-dht=true", "--enable-dht6=false", "--dht-listen-port="+strconv.Itoa(port),
			"--dht-entry-point="+opts.DHTEntry, "--dht-file-path="+filepath.Join(tb.TempDir(), "dht.dat"))
	}
	if len(opts.Trackers) > 0 {
		args = append(args, "--bt-tracker="+strings.Join(opts.Trackers, ","))
	}
	if seed {
		args = append(args, "--check-integrity=true", "--seed-ratio=0.0")
	} else {
		args = append(args, "--seed-time=0")
	}
	if opts.Encryption == EncryptionRequired {
		args = append(args, "--bt-require-crypto=true", "--bt-min-crypto-level=arc4")
	}
	args = append(args, source(torrentPath))
	cmd := exec.Command("aria2c", args...)
	name := "aria2 " + a.Addr()
	var err error
	a.proc, err = startProc(tb, name, cmd, func() { _ = cmd.Process.Signal(syscall.SIGTERM) }, 3*time.Second)
	if err != nil {
		return nil, err
	}
	// Ready: the RPC answers for our download.
	deadline := time.Now().Add(callTimeout)
	for {
		_, err = a.status()
		if err == nil {
			return a, nil
		}
		if done, werr := a.proc.exited(); done {
			return nil, fmt.Errorf("%w (%v) before it was ready: %s", errExited, werr, lastLine(a.proc.stderr.String()))
		}
		if time.Now().After(deadline) {
			a.proc.kill()
			return nil, fmt.Errorf("not ready after %v: %w", callTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// Addr is the ip:port aria2 accepts peers on.
func (a *Aria2) Addr() string { return net.JoinHostPort(a.ip, strconv.Itoa(a.port)) }

// rpc calls one JSON-RPC method; out receives the result.
func (a *Aria2) rpc(method string, params []any, out any) error {
	a.mu.Lock()
	a.nextID++
	id := a.nextID
	a.mu.Unlock()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": strconv.Itoa(id), "method": method,
		"params": append([]any{"token:" + a.secret}, params...)})
	if err != nil {
		return err
	}
	resp, err := a.http.Post(a.rpcURL, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var ans struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("%s: bad answer %q: %w", method, b, err)
	}
	if ans.Error != nil {
		return fmt.Errorf("%s: %d %s", method, ans.Error.Code, ans.Error.Message)
	}
	if out != nil {
		return json.Unmarshal(ans.Result, out)
	}
	return nil
}

// Status is a snapshot of the download.
func (a *Aria2) Status(tb testing.TB) Aria2Status {
	tb.Helper()
	st, err := a.status()
	if err != nil {
		tb.Fatalf("swarmtest: aria2 %s: %v", a.Addr(), err)
	}
	return st
}

func (a *Aria2) status() (Aria2Status, error) {
	fields := []string{"status", "totalLength", "completedLength",
		"downloadSpeed", "uploadSpeed", "connections", "seeder", "errorCode", "errorMessage", "followedBy"}
	var st Aria2Status
	err := a.rpc("aria2.tellStatus", []any{a.gid, fields}, &st)
	if err == nil && len(st.FollowedBy) > 0 {
		// A magnet: its metadata is in, and the download proper goes on
		// under a gid of aria2's choosing.
		var next Aria2Status
		err = a.rpc("aria2.tellStatus", []any{st.FollowedBy[0], fields}, &next)
		st = next
	}
	return st, err
}

// waitFor polls the download until done says so, an error, aria2's exit,
// or timeout.
func (a *Aria2) waitFor(tb testing.TB, what string, timeout time.Duration, done func(Aria2Status) bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.status()
		if err != nil {
			tb.Fatalf("swarmtest: aria2 %s: waiting for %s: %v", a.Addr(), what, err)
		}
		if done(st) {
			return
		}
		if st.Status == "error" || st.Status == "removed" {
			tb.Fatalf("swarmtest: aria2 %s: %s while waiting for %s: %s %s", a.Addr(), st.Status, what, st.ErrorCode, st.ErrorMessage)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: aria2 %s: not %s after %v: %+v", a.Addr(), what, timeout, st)
		}
		time.Sleep(pollInterval)
	}
}

// WaitSeeding waits until the data is checked and aria2 accepts peers as
// a seeder (its listen port opens once the check is done).
func (a *Aria2) WaitSeeding(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	a.waitFor(tb, "seeding", timeout, func(st Aria2Status) bool {
		if !st.Seeder || st.Status != "active" || st.CompletedLength != st.TotalLength {
			return false
		}
		nc, err := net.DialTimeout("tcp", a.Addr(), time.Second)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
}

// WaitComplete waits until every piece is downloaded and checked.
func (a *Aria2) WaitComplete(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	a.waitFor(tb, "complete", timeout, Aria2Status.Complete)
}

// WaitListening waits until aria2 accepts connections (a leecher opens its
// port once its files are allocated).
func (a *Aria2) WaitListening(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	a.waitFor(tb, "listening", timeout, func(Aria2Status) bool {
		nc, err := net.DialTimeout("tcp", a.Addr(), time.Second)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
}
