package swarmtest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LTOptions configures a libtorrent peer. The zero value is a peer on
// 127.0.0.1 on a free port, without DHT, with no rate limits.
type LTOptions struct {
	// IP is the loopback address to listen on and connect from, e.g.
	// "127.0.0.2" or "::1" (a peer reachable over IPv6 only); "" means
	// 127.0.0.1. Addresses IsLocal refuses are refused: tests send
	// traffic only to loopback.
	IP string
	// AlsoIP is a second loopback address the peer listens on (on the
	// same port) and connects from, e.g. "::1" beside "127.0.0.2": a
	// dual-stack peer. Addr names IP only.
	AlsoIP string
	// Port is the TCP and UDP port; 0 lets the kernel choose a free one.
	Port int
	// UploadRate and DownloadRate cap the session's BitTorrent traffic
	// (payload and protocol messages, not TCP/IP overhead) in bytes per
	// second; 0 means unlimited. They apply to loopback peers too (by
	// default libtorrent exempts local networks). Expect a little under the
	// cap on average, and a slow first second.
	UploadRate, DownloadRate int
	// DHT runs a DHT node on the listen port with the checks that assume
	// the real internet relaxed (one node per IP, node-ID verification,
	// ...), so a DHT of loopback nodes works.
	DHT bool
	// DHTBootstrap are host:port nodes to bootstrap from (loopback only).
	DHTBootstrap []string
	// LSD turns local service discovery (BEP 14) on: it needs multicast
	// on loopback, which a network namespace of the test's own can have.
	LSD bool
	// NoTrackers strips announce URLs from torrents and magnets when they
	// are added, so peers only meet through ConnectPeer or the DHT.
	NoTrackers bool
	// SeedMode makes AddTorrent(..., seed=true) trust the data on disk
	// instead of hashing it first (libtorrent hashes each piece when it is
	// first requested): a faster start for large benchmark data.
	SeedMode bool
	// Fingerprint is the peer-ID prefix, e.g. "-LT2080-" (the default).
	Fingerprint string
	// UTPOnly makes the peer speak uTP (BEP 29) and not TCP, in and out
	// (by default it speaks TCP only).
	UTPOnly bool
	// Encryption is what it demands of its peers: by default libtorrent
	// accepts both and tries MSE first (pe_enabled); EncryptionRequired
	// talks RC4-encrypted MSE only (pe_forced, pe_rc4). EncPolicy and
	// EncLevel, where set, override it.
	Encryption Encryption
	// EncPolicy is the MSE/PE policy for incoming and outgoing
	// connections alike (in_enc_policy, out_enc_policy): "" keeps
	// what Encryption says, "enabled" (outgoing connections try MSE
	// first, incoming ones may be either); "forced" refuses plain
	// BitTorrent handshakes both ways; "disabled" speaks no MSE.
	EncPolicy string
	// EncLevel is what an MSE handshake may select (allowed_enc_level):
	// "" keeps what Encryption says, "both"; "rc4" or "plaintext".
	EncLevel string
}

// LTStatus is a snapshot of one torrent in a libtorrent peer. Rates are
// payload bytes per second; totals are payload bytes this session.
type LTStatus struct {
	State         string  `json:"state"` // checking_files, downloading_metadata, downloading, finished, seeding, ...
	Progress      float64 `json:"progress"`
	IsSeeding     bool    `json:"is_seeding"`
	IsFinished    bool    `json:"is_finished"` // every wanted piece is there (also true when seeding)
	HasMetadata   bool    `json:"has_metadata"`
	Paused        bool    `json:"paused"`
	NumPeers      int     `json:"num_peers"` // connected peers, seeds included
	NumSeeds      int     `json:"num_seeds"`
	DownloadRate  int     `json:"download_rate"`
	UploadRate    int     `json:"upload_rate"`
	TotalDownload int64   `json:"total_download"`
	TotalUpload   int64   `json:"total_upload"`
	TotalDone     int64   `json:"total_done"`
	TotalWanted   int64   `json:"total_wanted"`
	Error         string  `json:"error"` // the torrent's error, "" if none
	// Peers are the addresses of the connected peers.
	Peers []string `json:"peers"`
	// UTPPeers are those of Peers connected over uTP.
	UTPPeers []string `json:"utp_peers"`
	// FinishedAfter is the time from AddTorrent/AddMagnet to libtorrent's
	// torrent_finished alert, measured inside the peer; negative until then.
	FinishedAfter time.Duration `json:"-"`
}

// LT is a libtorrent session in a /usr/bin/python3 process, driven by JSON
// lines over its stdin and stdout. It is killed and waited for in
// tb.Cleanup; its stderr (libtorrent's alerts) goes to the test log if the
// test failed. Methods are safe for concurrent use; those without a tb
// argument fail the test given to StartLibtorrent and, like t.Fatal, must
// then be called from that test's goroutine.
type LT struct {
	tb   testing.TB
	ip   string
	port int
	proc *proc

	stdin   io.WriteCloser
	replies chan []byte // stdout lines

	mu     sync.Mutex // serialises requests; guards nextID
	nextID int
}

// callTimeout bounds one request to the peer.
const callTimeout = 30 * time.Second

// StartLibtorrent starts a libtorrent peer and returns once it listens.
func StartLibtorrent(tb testing.TB, opts LTOptions) *LT {
	tb.Helper()
	RequireTools(tb, "libtorrent")
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	for _, a := range []string{opts.IP, opts.AlsoIP} {
		if a != "" && !IsLocal(net.ParseIP(a)) {
			tb.Fatalf("swarmtest.StartLibtorrent: IP %q is not a loopback address", a)
		}
	}
	for _, n := range opts.DHTBootstrap {
		if !isLocalHostPort(n) {
			tb.Fatalf("swarmtest.StartLibtorrent: DHT bootstrap %q is not a loopback host:port", n)
		}
	}
	if !slices.Contains([]string{"", "enabled", "forced", "disabled"}, opts.EncPolicy) ||
		!slices.Contains([]string{"", "both", "rc4", "plaintext"}, opts.EncLevel) {
		tb.Fatalf("swarmtest.StartLibtorrent: encryption %q, level %q: unknown", opts.EncPolicy, opts.EncLevel)
	}
	encPolicy, encLevel := opts.EncPolicy, opts.EncLevel
	if opts.Encryption == EncryptionRequired {
		if encPolicy == "" {
			encPolicy = "forced"
		}
		if encLevel == "" {
			encLevel = "rc4"
		}
	}
	cfg, err := json.Marshal(map[string]any{
		"ip":            opts.IP,
		"also_ips":      alsoIPs(opts.AlsoIP),
		"port":          opts.Port,
		"upload_rate":   opts.UploadRate,
		"download_rate": opts.DownloadRate,
		"dht":           opts.DHT,
		"dht_bootstrap": opts.DHTBootstrap,
		"lsd":           opts.LSD,
		"no_trackers":   opts.NoTrackers,
		"seed_mode":     opts.SeedMode,
		"fingerprint":   opts.Fingerprint,
		"encryption":    encPolicy,
		"enc_level":     encLevel,
		"utp_only":      opts.UTPOnly,
	})
	if err != nil {
		tb.Fatalf("swarmtest.StartLibtorrent: %v", err)
	}
	var lastErr error
	for range 3 {
		if opts.AlsoIP != "" && opts.Port == 0 {
			// Both addresses on one port: pick one free on both.
			port, err := freePortOn(opts.IP, opts.AlsoIP)
			if err != nil {
				tb.Fatalf("swarmtest.StartLibtorrent(%s): %v", opts.IP, err)
			}
			cfg = setPort(cfg, port)
		}
		l, err := startLT(tb, opts, cfg)
		if err == nil {
			return l
		}
		lastErr = err
		if opts.Port != 0 || !strings.Contains(err.Error(), "listen failed") && !strings.Contains(err.Error(), "in use") {
			break
		}
		// The kernel's TCP port was taken for UDP: try another.
	}
	tb.Fatalf("swarmtest.StartLibtorrent(%s): %v", opts.IP, lastErr)
	return nil
}

func startLT(tb testing.TB, opts LTOptions, cfg []byte) (*LT, error) {
	tb.Helper()
	l := &LT{tb: tb, ip: opts.IP, replies: make(chan []byte, 256)}
	cmd, script, err := ltpeerCmd("peer", cfg)
	if err != nil {
		return nil, err
	}
	defer script.Close() // the child has its own descriptor once started
	cmd.Stdout = &lineWriter{ch: l.replies}
	l.stdin, err = cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	name := "libtorrent " + opts.IP
	// Closing stdin makes the script exit at once; SIGKILL after 2 s.
	l.proc, err = startProc(tb, name, cmd, func() { l.stdin.Close() }, 2*time.Second)
	if err != nil {
		return nil, err
	}
	var ready struct {
		Ready bool   `json:"ready"`
		Port  int    `json:"port"`
		Error string `json:"error"`
	}
	line, err := l.readLine(callTimeout)
	if err == nil {
		err = json.Unmarshal(line, &ready)
	}
	if err == nil && !ready.Ready {
		err = fmt.Errorf("unexpected first line %q", line)
	}
	if err != nil {
		l.proc.kill()
		return nil, fmt.Errorf("not ready: %w", err)
	}
	l.port = ready.Port
	l.proc.name = "libtorrent " + l.Addr()
	return l, nil
}

// alsoIPs is the also_ips list of ltpeer.py's configuration.
func alsoIPs(ip string) []string {
	if ip == "" {
		return nil
	}
	return []string{ip}
}

// setPort rewrites the "port" of ltpeer.py's JSON configuration.
func setPort(cfg []byte, port int) []byte {
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		panic("swarmtest: " + err.Error())
	}
	m["port"] = port
	b, err := json.Marshal(m)
	if err != nil {
		panic("swarmtest: " + err.Error())
	}
	return b
}

// freePortOn returns a port free for TCP and UDP on both a and b.
func freePortOn(a, b string) (int, error) {
	var lastErr error
	for range 20 {
		port, err := freePort(a)
		if err != nil {
			return 0, err
		}
		if lastErr = portFree(b, port); lastErr == nil {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free on both %s and %s: %w", a, b, lastErr)
}

// Addr is the ip:port the peer listens on (TCP, and UDP for the DHT).
func (l *LT) Addr() string { return net.JoinHostPort(l.ip, strconv.Itoa(l.port)) }

// Pid is the peer's process id (to pin it to a CPU in a benchmark).
func (l *LT) Pid() int { return l.proc.cmd.Process.Pid }

// Port is the peer's TCP and UDP port.
func (l *LT) Port() int { return l.port }

// readLine waits for the next stdout line.
func (l *LT) readLine(timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-l.replies:
		return line, nil
	case <-l.proc.done:
		// Lines written just before exit are still queued.
		select {
		case line := <-l.replies:
			return line, nil
		default:
		}
		return nil, fmt.Errorf("%w (%v): its stderr is in the test log; last line: %s", errExited, l.proc.waitErr, lastLine(l.proc.stderr.String()))
	case <-t.C:
		return nil, fmt.Errorf("no answer within %v", timeout)
	}
}

// call sends one request and decodes the answer into out (may be nil).
func (l *LT) call(cmd string, args map[string]any, out any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	id := l.nextID
	req := map[string]any{"id": id, "cmd": cmd}
	for k, v := range args {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := l.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: write request: %w", cmd, err)
	}
	deadline := time.Now().Add(callTimeout)
	for {
		line, err := l.readLine(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		var head struct {
			ID    int    `json:"id"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return fmt.Errorf("%s: bad answer %q: %w", cmd, line, err)
		}
		if head.ID != id {
			continue // the answer to an earlier request that timed out
		}
		if head.Error != "" {
			return fmt.Errorf("%s: %s", cmd, head.Error)
		}
		if out != nil {
			return json.Unmarshal(line, out)
		}
		return nil
	}
}

func (l *LT) must(err error) {
	l.tb.Helper()
	if err != nil {
		l.tb.Fatalf("swarmtest: libtorrent %s: %v", l.Addr(), err)
	}
}

func hexIH(ih [20]byte) string { return hex.EncodeToString(ih[:]) }

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// source is what a client is handed for a torrent: a magnet link as it is,
// a .torrent's path made absolute.
func source(p string) string {
	if strings.HasPrefix(p, "magnet:") {
		return p
	}
	return abs(p)
}

// AddTorrent adds a .torrent with saveDir as its save folder (the folder
// that holds the torrent's file or top folder). With seed, the data is
// expected in saveDir already: libtorrent checks it (unless
// LTOptions.SeedMode) and then seeds; WaitSeeding waits for that. Without,
// it downloads. The torrent starts at once (not auto-managed, not paused).
func (l *LT) AddTorrent(torrentPath, saveDir string, seed bool) {
	l.tb.Helper()
	l.must(l.call("add_torrent", map[string]any{"torrent": abs(torrentPath), "save": abs(saveDir), "seed": seed}, nil))
}

// AddSuperSeed adds a .torrent whose data is in saveDir, like
// AddTorrent(..., seed=true), and super-seeds it (BEP 16).
func (l *LT) AddSuperSeed(torrentPath, saveDir string) {
	l.tb.Helper()
	l.must(l.call("add_torrent", map[string]any{"torrent": abs(torrentPath), "save": abs(saveDir), "seed": true, "super_seed": true}, nil))
}

// AddUploadMode adds a .torrent in upload mode: the peer downloads
// nothing and says upload_only (BEP 21), serving what saveDir holds.
func (l *LT) AddUploadMode(torrentPath, saveDir string) {
	l.tb.Helper()
	l.must(l.call("add_torrent", map[string]any{"torrent": abs(torrentPath), "save": abs(saveDir), "upload_mode": true}, nil))
}

// LTPeerTotals is what a libtorrent peer exchanged with each IP over a
// torrent's life (closed connections included: the peer notes each
// connection's counters on every request it serves and every alert, so
// what flowed after the last of those on a closed connection is missed),
// and the peers connected now.
type LTPeerTotals struct {
	// Totals maps an IP to the payload bytes downloaded from it and
	// uploaded to it.
	Totals map[string]struct {
		Download int64 `json:"download"`
		Upload   int64 `json:"upload"`
	} `json:"totals"`
	Peers []LTPeer `json:"peers"`
}

// LTPeer is one connected peer as libtorrent sees it.
type LTPeer struct {
	Addr        string `json:"addr"`
	UploadOnly  bool   `json:"upload_only"` // it said upload_only (BEP 21), or is a seed
	Seed        bool   `json:"seed"`
	Interesting bool   `json:"interesting"` // libtorrent wants something it has
	Client      string `json:"client"`
}

// PeerTotals reports the torrent's per-IP payload totals and its peers.
func (l *LT) PeerTotals(infoHash [20]byte) LTPeerTotals {
	l.tb.Helper()
	var pt LTPeerTotals
	l.must(l.call("peer_totals", map[string]any{"info_hash": hexIH(infoHash)}, &pt))
	return pt
}

// AddMagnet adds a magnet URI; the metadata comes from peers (BEP 9).
func (l *LT) AddMagnet(magnet, saveDir string) {
	l.tb.Helper()
	l.must(l.call("add_magnet", map[string]any{"magnet": magnet, "save": abs(saveDir)}, nil))
}

// ConnectPeer makes the peer connect to addr (ip:port) for the torrent,
// without a tracker. The connection is made in the background.
func (l *LT) ConnectPeer(infoHash [20]byte, addr string) {
	l.tb.Helper()
	if !isLocalHostPort(addr) {
		l.tb.Fatalf("swarmtest: ConnectPeer(%s): not a loopback host:port", addr)
	}
	l.must(l.call("connect_peer", map[string]any{"info_hash": hexIH(infoHash), "addr": addr}, nil))
}

// Remove removes the torrent (keeping its files).
func (l *LT) Remove(infoHash [20]byte) {
	l.tb.Helper()
	l.must(l.call("remove", map[string]any{"info_hash": hexIH(infoHash)}, nil))
}

// SetRates changes the session's rate limits (bytes/s, 0 = unlimited).
func (l *LT) SetRates(upload, download int) {
	l.tb.Helper()
	l.must(l.call("set_rates", map[string]any{"upload_rate": upload, "download_rate": download}, nil))
}

// Status is a snapshot of the torrent.
func (l *LT) Status(infoHash [20]byte) LTStatus {
	l.tb.Helper()
	st, err := l.status(infoHash)
	l.must(err)
	return st
}

func (l *LT) status(infoHash [20]byte) (LTStatus, error) {
	var st struct {
		LTStatus
		FinishedAfter float64 `json:"finished_after"` // seconds, -1 if not yet
	}
	err := l.call("status", map[string]any{"info_hash": hexIH(infoHash)}, &st)
	st.LTStatus.FinishedAfter = -1
	if st.FinishedAfter >= 0 {
		st.LTStatus.FinishedAfter = time.Duration(st.FinishedAfter * float64(time.Second))
	}
	return st.LTStatus, err
}

// DHTAnnounce announces a peer for infoHash on the DHT at once (torrents
// of a peer with DHT also announce themselves every 5 s).
//
// With port 0 or the peer's own port, the torrent, which must have been
// added to this peer, is announced by libtorrent (force_dht_announce).
// With another port, the peer announces its IP with that port by plain
// KRPC (get_peers for a token, then announce_peer) to its DHTBootstrap
// nodes, which in a small loopback DHT are queried by every lookup: this is
// how a test publishes a non-DHT peer that listens on the same IP, such as
// an engine under test. (session.dht_announce is not callable from
// libtorrent's Python binding 2.0.8.)
func (l *LT) DHTAnnounce(infoHash [20]byte, port int) {
	l.tb.Helper()
	l.must(l.call("dht_announce", map[string]any{"info_hash": hexIH(infoHash), "port": port}, nil))
}

// WaitDHTNodes waits until the peer's DHT routing table holds at least n
// nodes, failing tb after timeout.
func (l *LT) WaitDHTNodes(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var res struct {
			Nodes int `json:"nodes"`
		}
		if err := l.call("dht_nodes", nil, &res); err != nil {
			tb.Fatalf("swarmtest: libtorrent %s: %v", l.Addr(), err)
		}
		if res.Nodes >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: libtorrent %s: %d DHT nodes after %v, want %d", l.Addr(), res.Nodes, timeout, n)
		}
		time.Sleep(pollInterval)
	}
}

// DHTNodes is the number of nodes in the peer's DHT routing table.
func (l *LT) DHTNodes() int {
	l.tb.Helper()
	var res struct {
		Nodes int `json:"nodes"`
	}
	l.must(l.call("dht_nodes", nil, &res))
	return res.Nodes
}

// pollInterval is how often the Wait methods ask for a status.
const pollInterval = 50 * time.Millisecond

// waitFor polls the torrent until done says so, a torrent error, or timeout.
func (l *LT) waitFor(tb testing.TB, what string, infoHash [20]byte, timeout time.Duration, done func(LTStatus) bool) LTStatus {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := l.status(infoHash)
		if err != nil {
			tb.Fatalf("swarmtest: libtorrent %s: waiting for %s of %x: %v", l.Addr(), what, infoHash, err)
		}
		if done(st) {
			return st
		}
		if st.Error != "" {
			tb.Fatalf("swarmtest: libtorrent %s: torrent %x failed while waiting for %s: %s", l.Addr(), infoHash, what, st.Error)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: libtorrent %s: torrent %x not %s after %v: %+v", l.Addr(), infoHash, what, timeout, st)
		}
		time.Sleep(pollInterval)
	}
}

// WaitSeeding waits until the torrent seeds (its data checked and
// complete), failing tb after timeout.
func (l *LT) WaitSeeding(tb testing.TB, infoHash [20]byte, timeout time.Duration) {
	tb.Helper()
	l.waitFor(tb, "seeding", infoHash, timeout, func(st LTStatus) bool { return st.IsSeeding })
}

// WaitComplete waits until every piece of the torrent is downloaded and
// checked, failing tb after timeout. It returns the time from the add to
// completion as measured inside the peer (not polling-rounded).
func (l *LT) WaitComplete(tb testing.TB, infoHash [20]byte, timeout time.Duration) time.Duration {
	tb.Helper()
	st := l.waitFor(tb, "complete", infoHash, timeout, func(st LTStatus) bool {
		return st.IsFinished && st.FinishedAfter >= 0
	})
	return st.FinishedAfter
}

// lineWriter turns a process's stdout into lines on ch. It never blocks: if
// nobody reads (more than cap(ch) unread answers), lines are dropped, which
// only answers to abandoned requests can be.
type lineWriter struct {
	ch  chan []byte
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(nil), w.buf[:i]...)
		w.buf = w.buf[i+1:]
		select {
		case w.ch <- line:
		default:
		}
	}
	return len(p), nil
}

var _ io.Writer = (*lineWriter)(nil)

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// SessionStats returns the session's counters and gauges (libtorrent's
// session_stats_metrics names, such as "utp.utp_packet_loss") whose names
// start with one of prefixes (all of them without prefixes): what a
// benchmark reads to tell which side of a transfer set its pace.
func (l *LT) SessionStats(prefixes ...string) map[string]int64 {
	l.tb.Helper()
	var out struct {
		Stats map[string]int64 `json:"stats"`
	}
	l.must(l.call("session_stats", map[string]any{"prefixes": prefixes}, &out))
	return out.Stats
}
