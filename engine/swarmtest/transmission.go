package swarmtest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Encryption is what a real peer (transmission, aria2) demands of its
// connections: MSE/PE, the Message Stream Encryption that Vuze, libtorrent,
// transmission, rtorrent and aria2 speak.
type Encryption int

const (
	// EncryptionDefault is the client's own default: transmission prefers
	// encrypted connections and accepts plaintext ("encryption": 1); aria2
	// accepts both.
	EncryptionDefault Encryption = iota
	// EncryptionRequired talks RC4-encrypted MSE only: transmission
	// "encryption": 2, aria2 --bt-require-crypto --bt-min-crypto-level=arc4.
	EncryptionRequired
)

// TROptions configures a transmission-daemon peer. The zero value is a
// peer on 127.0.0.1 on a free port, in transmission's default encryption
// setting, without DHT, LPD, PEX, uTP or speed limits.
type TROptions struct {
	// IP is the IPv4 address to listen on and connect from; "" means
	// 127.0.0.1. Addresses IsLocal refuses are refused.
	IP string
	// IP6 is the IPv6 address it listens on and connects from, on the same
	// port; "" means ::1.
	IP6 string
	// Port is the peer port; 0 picks a free one.
	Port int
	// Encryption is what it demands of its peers.
	Encryption Encryption
	// PEX turns peer exchange on (off by default: peers meet only through
	// what the test sets up).
	PEX bool
	// LPD turns local peer discovery (BEP 14) on: it needs multicast on
	// loopback, which a network namespace of the test's own can have.
	LPD bool
	// UTP turns uTP (BEP 29, libutp) on beside TCP, on the peer port's
	// UDP twin; its peer list flags uTP connections with "T".
	UTP bool
	// DHTNodes, "host:port" each, turn its DHT (BEP 5) on, bootstrapped
	// from them (its dht.bootstrap file). It announces a torrent only once
	// its table has at least 4 good nodes and 9 in all (and takes
	// 127.0.0.0/8 nodes for martians).
	DHTNodes []string
	// Trackers are announce URLs added to every torrent (torrent-set's
	// trackerAdd).
	Trackers []string
}

// Transmission is a transmission-daemon process with its own configuration
// folder under tb.TempDir(), driven over its RPC interface (HTTP, with the
// X-Transmission-Session-Id exchange). It is stopped (SIGTERM, then SIGKILL
// after 5 s) and waited for in tb.Cleanup; its log goes to the test log if
// the test failed. Methods are safe for concurrent use and take the tb to
// fail.
//
// transmission never dials peers on 127.0.0.0/8 (it takes them for
// martians), whatever a tracker or PEX says: a test must make the other
// side connect to Addr. It accepts incoming connections from them. It
// rechokes every 10 s, so a new leecher may wait that long for its first
// byte.
type Transmission struct {
	ip       string
	ip6      string
	port     int
	enc      Encryption
	rpcURL   string
	proc     *proc
	http     *http.Client
	confDir  string
	trackers []string

	mu      sync.Mutex // guards session
	session string     // X-Transmission-Session-Id
}

// TRStatus is a snapshot of one torrent in a transmission peer.
type TRStatus struct {
	ID             int      `json:"id"`
	Name           string   `json:"name"`
	Status         int      `json:"status"` // 0 stopped, 1-2 checking, 3-4 downloading, 5-6 seeding
	PercentDone    float64  `json:"percentDone"`
	LeftUntilDone  int64    `json:"leftUntilDone"`
	SizeWhenDone   int64    `json:"sizeWhenDone"`
	PeersConnected int      `json:"peersConnected"`
	RateDownload   int64    `json:"rateDownload"` // bytes/s
	RateUpload     int64    `json:"rateUpload"`
	DownloadedEver int64    `json:"downloadedEver"`
	UploadedEver   int64    `json:"uploadedEver"`
	Error          int      `json:"error"` // 0: none
	ErrorString    string   `json:"errorString"`
	Peers          []TRPeer `json:"peers"`
}

// TRPeer is one connected peer of a torrent, as transmission sees it.
type TRPeer struct {
	Address     string `json:"address"`
	Port        int    `json:"port"`
	ClientName  string `json:"clientName"`
	IsEncrypted bool   `json:"isEncrypted"`
	IsIncoming  bool   `json:"isIncoming"`
	FlagStr     string `json:"flagStr"`
}

// Transmission's torrent states (TRStatus.Status).
const (
	trStatusSeed = 6
)

var trFields = []string{"id", "name", "status", "percentDone", "leftUntilDone", "sizeWhenDone", "peersConnected",
	"rateDownload", "rateUpload", "downloadedEver", "uploadedEver", "error", "errorString", "peers"}

// StartTransmission starts a transmission-daemon and returns once its RPC
// answers and its peer port accepts connections.
func StartTransmission(tb testing.TB, opts TROptions) *Transmission {
	tb.Helper()
	RequireTools(tb, "transmission-daemon")
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.IP6 == "" {
		opts.IP6 = "::1"
	}
	if ip := net.ParseIP(opts.IP); ip.To4() == nil || !IsLocal(ip) {
		tb.Fatalf("swarmtest.StartTransmission: IP %q is not a local IPv4 address", opts.IP)
	}
	if ip := net.ParseIP(opts.IP6); ip.To4() != nil || !IsLocal(ip) {
		tb.Fatalf("swarmtest.StartTransmission: IP6 %q is not a local IPv6 address", opts.IP6)
	}
	for _, n := range opts.DHTNodes {
		if !isLocalHostPort(n) {
			tb.Fatalf("swarmtest.StartTransmission: DHT node %q is not a local host:port", n)
		}
	}
	return startRetrying(tb, "swarmtest.StartTransmission("+opts.IP+")", opts.Port != 0, func() (*Transmission, error) {
		return startTransmission(tb, opts)
	})
}

func startTransmission(tb testing.TB, opts TROptions) (*Transmission, error) {
	tb.Helper()
	port := opts.Port
	if port == 0 {
		port = FreePort(tb, opts.IP)
	}
	rpcPort := FreePort(tb, opts.IP)
	conf, err := os.MkdirTemp(tb.TempDir(), "transmission-")
	if err != nil {
		return nil, err
	}
	enc := 1 // transmission's default: prefer encryption, accept plaintext
	if opts.Encryption == EncryptionRequired {
		enc = 2
	}
	settings := map[string]any{
		"bind-address-ipv4":           opts.IP,
		"bind-address-ipv6":           opts.IP6,
		"peer-port":                   port,
		"peer-port-random-on-start":   false,
		"port-forwarding-enabled":     false,
		"encryption":                  enc,
		"dht-enabled":                 len(opts.DHTNodes) > 0,
		"lpd-enabled":                 opts.LPD,
		"pex-enabled":                 opts.PEX,
		"utp-enabled":                 opts.UTP,
		"rpc-enabled":                 true,
		"rpc-bind-address":            opts.IP,
		"rpc-port":                    rpcPort,
		"rpc-authentication-required": false,
		"rpc-whitelist-enabled":       false,
		"rpc-host-whitelist-enabled":  false,
		"download-dir":                conf,
		"incomplete-dir-enabled":      false,
		"watch-dir-enabled":           false,
		"start-added-torrents":        true,
		"download-queue-enabled":      false,
		"seed-queue-enabled":          false,
		"queue-stalled-enabled":       false,
		"ratio-limit-enabled":         false,
		"idle-seeding-limit-enabled":  false,
		"speed-limit-up-enabled":      false,
		"speed-limit-down-enabled":    false,
		"alt-speed-enabled":           false,
		"blocklist-enabled":           false,
		"message-level":               2, // info
		"rename-partial-files":        false,
		"preallocation":               0,
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "settings.json"), b, 0o600); err != nil {
		return nil, err
	}
	if len(opts.DHTNodes) > 0 {
		var lines []byte
		for _, n := range opts.DHTNodes {
			host, port, _ := net.SplitHostPort(n)
			lines = fmt.Appendf(lines, "%s %s\n", host, port)
		}
		if err := os.WriteFile(filepath.Join(conf, "dht.bootstrap"), lines, 0o600); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("transmission-daemon", "--foreground", "--config-dir", conf)
	tr := &Transmission{
		ip:       opts.IP,
		ip6:      opts.IP6,
		port:     port,
		enc:      opts.Encryption,
		rpcURL:   fmt.Sprintf("http://%s/transmission/rpc", net.JoinHostPort(opts.IP, strconv.Itoa(rpcPort))),
		http:     &http.Client{Timeout: callTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
		confDir:  conf,
		trackers: opts.Trackers,
	}
	name := "transmission " + tr.Addr()
	tr.proc, err = startProc(tb, name, cmd, func() { _ = cmd.Process.Signal(syscall.SIGTERM) }, 5*time.Second)
	if err != nil {
		return nil, err
	}
	// Ready: the RPC answers and the peer port accepts.
	deadline := time.Now().Add(callTimeout)
	for {
		err = tr.rpc("session-get", map[string]any{"fields": []string{"version"}}, nil)
		if err == nil {
			var nc net.Conn
			nc, err = net.DialTimeout("tcp", tr.Addr(), time.Second)
			if err == nil {
				nc.Close()
				return tr, nil
			}
		}
		if done, werr := tr.proc.exited(); done {
			return nil, fmt.Errorf("%w (%v) before it was ready: %s", errExited, werr, lastLine(tr.proc.stderr.String()))
		}
		if time.Now().After(deadline) {
			tr.proc.kill()
			return nil, fmt.Errorf("not ready after %v: %w", callTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// Addr is the ip:port transmission accepts peers on.
func (tr *Transmission) Addr() string { return net.JoinHostPort(tr.ip, strconv.Itoa(tr.port)) }

// Addr6 is the [ip6]:port transmission accepts peers on over IPv6.
func (tr *Transmission) Addr6() string { return net.JoinHostPort(tr.ip6, strconv.Itoa(tr.port)) }

// rpc calls one RPC method; out receives the "arguments" of the answer.
func (tr *Transmission) rpc(method string, args any, out any) error {
	body, err := json.Marshal(map[string]any{"method": method, "arguments": args})
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequest(http.MethodPost, tr.rpcURL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		tr.mu.Lock()
		req.Header.Set("X-Transmission-Session-Id", tr.session)
		tr.mu.Unlock()
		req.Header.Set("Content-Type", "application/json")
		resp, err := tr.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if resp.StatusCode == http.StatusConflict {
			// The session id dance: retry with the id it hands out.
			tr.mu.Lock()
			tr.session = resp.Header.Get("X-Transmission-Session-Id")
			tr.mu.Unlock()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %s: %s", method, resp.Status, bytes.TrimSpace(b))
		}
		var ans struct {
			Result    string          `json:"result"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return fmt.Errorf("%s: bad answer %q: %w", method, b, err)
		}
		if ans.Result != "success" {
			return fmt.Errorf("%s: %s", method, ans.Result)
		}
		if out != nil {
			return json.Unmarshal(ans.Arguments, out)
		}
		return nil
	}
	return fmt.Errorf("%s: no session id accepted", method)
}

// AddTorrent adds a .torrent with dir as its download folder (the folder
// that holds the torrent's file or top folder) and returns its id. Data
// already in dir is checked first: a complete copy is seeded.
func (tr *Transmission) AddTorrent(tb testing.TB, torrentPath, dir string) int {
	tb.Helper()
	var res struct {
		Added     *struct{ ID int } `json:"torrent-added"`
		Duplicate *struct{ ID int } `json:"torrent-duplicate"`
	}
	err := tr.rpc("torrent-add", map[string]any{"filename": source(torrentPath), "download-dir": abs(dir), "paused": false}, &res)
	switch {
	case err != nil:
		tb.Fatalf("swarmtest: transmission %s: %v", tr.Addr(), err)
	case res.Duplicate != nil:
		return res.Duplicate.ID
	case res.Added != nil:
		if len(tr.trackers) > 0 {
			if err := tr.rpc("torrent-set", map[string]any{"ids": []int{res.Added.ID}, "trackerAdd": tr.trackers}, nil); err != nil {
				tb.Fatalf("swarmtest: transmission %s: %v", tr.Addr(), err)
			}
		}
		return res.Added.ID
	}
	tb.Fatalf("swarmtest: transmission %s: torrent-add answered without an id", tr.Addr())
	return 0
}

// Status is a snapshot of torrent id.
func (tr *Transmission) Status(tb testing.TB, id int) TRStatus {
	tb.Helper()
	st, err := tr.status(id)
	if err != nil {
		tb.Fatalf("swarmtest: transmission %s: %v", tr.Addr(), err)
	}
	return st
}

func (tr *Transmission) status(id int) (TRStatus, error) {
	var res struct {
		Torrents []TRStatus `json:"torrents"`
	}
	if err := tr.rpc("torrent-get", map[string]any{"ids": []int{id}, "fields": trFields}, &res); err != nil {
		return TRStatus{}, err
	}
	if len(res.Torrents) != 1 {
		return TRStatus{}, fmt.Errorf("torrent-get %d: %d torrents", id, len(res.Torrents))
	}
	return res.Torrents[0], nil
}

// waitFor polls torrent id until done says so, a torrent error, the
// daemon's exit, or timeout.
func (tr *Transmission) waitFor(tb testing.TB, what string, id int, timeout time.Duration, done func(TRStatus) bool) TRStatus {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := tr.status(id)
		if err != nil {
			tb.Fatalf("swarmtest: transmission %s: waiting for %s of torrent %d: %v", tr.Addr(), what, id, err)
		}
		if done(st) {
			return st
		}
		if st.Error != 0 {
			tb.Fatalf("swarmtest: transmission %s: torrent %d failed while waiting for %s: %s", tr.Addr(), id, what, st.ErrorString)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: transmission %s: torrent %d not %s after %v: %s", tr.Addr(), id, what, timeout, st)
		}
		time.Sleep(pollInterval)
	}
}

// WaitSeeding waits until torrent id is checked, complete and seeding,
// and accepts peers (WaitAccepting).
func (tr *Transmission) WaitSeeding(tb testing.TB, id int, timeout time.Duration) {
	tb.Helper()
	tr.waitFor(tb, "seeding", id, timeout, func(st TRStatus) bool { return st.PercentDone >= 1 && st.Status == trStatusSeed })
	tr.WaitAccepting(tb, id, timeout)
}

// WaitAccepting waits until transmission accepts peers for torrent id.
// Its peers' swarm starts up to a second after the RPC reports the torrent
// started (checking, downloading or seeding), and until then it hangs up
// on every peer right after the handshake: a peer that dials too early is
// refused (and may wait long before trying again). In its default
// encryption setting, a plaintext handshake tells when; with encryption
// required, it waits 1.5 s.
func (tr *Transmission) WaitAccepting(tb testing.TB, id int, timeout time.Duration) {
	tb.Helper()
	var res struct {
		Torrents []struct {
			Hash string `json:"hashString"`
		} `json:"torrents"`
	}
	err := tr.rpc("torrent-get", map[string]any{"ids": []int{id}, "fields": []string{"hashString"}}, &res)
	if err == nil && len(res.Torrents) != 1 {
		err = fmt.Errorf("torrent-get %d: %d torrents", id, len(res.Torrents))
	}
	var ih []byte
	if err == nil {
		ih, err = hex.DecodeString(res.Torrents[0].Hash)
	}
	if err != nil || len(ih) != 20 {
		tb.Fatalf("swarmtest: transmission %s: torrent %d: hash %v", tr.Addr(), id, err)
	}
	tr.waitFor(tb, "started", id, timeout, func(st TRStatus) bool { return st.Status >= 3 })
	if tr.enc == EncryptionRequired {
		time.Sleep(1500 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(timeout)
	for !answersHandshake(tr.Addr(), [20]byte(ih)) {
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: transmission %s: torrent %d: no peer accepted after %v", tr.Addr(), id, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// probeAddr is where answersHandshake connects from: transmission hangs up
// on a connection from an address it still counts as connected (a probe
// just closed), so the probe must not use one a test's peer uses.
var probeAddr = &net.TCPAddr{IP: net.IPv4(127, 255, 255, 254)}

// answersHandshake reports whether the peer at addr completes a plaintext
// handshake for ih (and stays connected for a moment after it).
func answersHandshake(addr string, ih [20]byte) bool {
	d := net.Dialer{Timeout: time.Second, LocalAddr: probeAddr}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(hs, ih[:]...)
	hs = append(hs, "-ST0000-swarmtestprb"...)
	if _, err := nc.Write(hs); err != nil {
		return false
	}
	nc.SetReadDeadline(time.Now().Add(time.Second))
	got := make([]byte, 68)
	if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got[28:48], ih[:]) {
		return false
	}
	// A swarm that is not running hangs up once the handshake is done.
	nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = nc.Read(got[:1])
	var ne net.Error
	return err == nil || errors.As(err, &ne) && ne.Timeout()
}

// WaitComplete waits until every piece of torrent id is downloaded and
// checked (its files renamed into place).
func (tr *Transmission) WaitComplete(tb testing.TB, id int, timeout time.Duration) {
	tb.Helper()
	tr.waitFor(tb, "complete", id, timeout, func(st TRStatus) bool { return st.PercentDone >= 1 && st.LeftUntilDone == 0 })
}

// String describes the status for failure messages.
func (st TRStatus) String() string {
	var peers []string
	for _, p := range st.Peers {
		peers = append(peers, fmt.Sprintf("%s:%d %q enc=%v %s", p.Address, p.Port, p.ClientName, p.IsEncrypted, p.FlagStr))
	}
	return fmt.Sprintf("status %d, %.1f%% done, %d peers [%s], down %d B/s, up %d B/s, error %q",
		st.Status, 100*st.PercentDone, st.PeersConnected, strings.Join(peers, "; "), st.RateDownload, st.RateUpload, st.ErrorString)
}
