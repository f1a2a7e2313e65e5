package swarmtest

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// RtorrentOptions configures an rtorrent peer. The zero value is a peer on
// 127.0.0.1 on a free port, in rtorrent's default encryption setting,
// without DHT, PEX or UDP trackers.
type RtorrentOptions struct {
	// IP is the IPv4 address to listen on and connect from
	// (network.bind_address); "" means 127.0.0.1. Addresses IsLocal
	// refuses are refused.
	IP string
	// Port is the BitTorrent listen port; 0 picks a free one.
	Port int
	// Encryption is what it demands of its peers.
	Encryption Encryption
	// PEX turns peer exchange on (off by default: peers meet only through
	// what the test sets up).
	PEX bool
	// DHTEntry, "host:port" on loopback, turns the DHT (BEP 5) on with
	// that node as its first, on the BitTorrent port's UDP twin.
	DHTEntry string
}

// Rtorrent is one rtorrent process (rakshasa's libtorrent, an
// implementation of its own, the client of many seedboxes) working on one
// torrent: seeding it (StartRtorrent with seed: it checks the data first)
// or downloading it and then seeding. It runs as a daemon
// (system.daemon.set) with its own session folder, is driven over XML-RPC
// on a Unix socket (SCGI), and is stopped (SIGTERM, then SIGKILL after
// 3 s) and waited for in tb.Cleanup; its log goes to the test log if the
// test failed. Methods take the tb to fail.
//
// rtorrent refuses a torrent without a tracker: StartRtorrent hands it a
// copy of the torrent announcing to a closed port on its own address
// (the info dictionary, and so the info-hash, unchanged), or the magnet
// link with that tracker added. It cannot be told of a peer: the other
// side connects to Addr.
type Rtorrent struct {
	ip   string
	port int
	sock string // the SCGI socket
	hash string // the info-hash, in rtorrent's upper-case hex
	// magnet: a magnet's download is replaced by the torrent's once
	// the metadata is in, and for a moment neither is there.
	magnet bool
	proc   *proc
}

// RtorrentStatus is a snapshot of the download.
type RtorrentStatus struct {
	Complete       bool  // every piece is there and checked (d.complete)
	Hashing        bool  // checking its data (d.hashing)
	Active         bool  // started: accepts peers (d.is_active)
	CompletedBytes int64 // d.completed_bytes
	SizeBytes      int64 // d.size_bytes
	DownTotal      int64 // payload received (d.down.total)
	UpTotal        int64 // payload sent (d.up.total)
	Peers          int64 // connected peers (d.peers_connected)
	Message        string
}

// StartRtorrent starts rtorrent on a .torrent, or a magnet link with a hex
// btih, with dir as its download folder (the folder that holds the
// torrent's file or top folder) and returns once the torrent is loaded and
// started. rtorrent checks what dir holds of it first and seeds what is
// complete: WaitSeeding waits for that, WaitComplete for a download.
func StartRtorrent(tb testing.TB, opts RtorrentOptions, torrentPath, dir string) *Rtorrent {
	tb.Helper()
	RequireTools(tb, "rtorrent")
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if ip := net.ParseIP(opts.IP); ip.To4() == nil || !IsLocal(ip) {
		tb.Fatalf("swarmtest.StartRtorrent: IP %q is not a local IPv4 address", opts.IP)
	}
	closed := "http://" + opts.IP + ":1/announce"
	var torrent []byte // nil for a magnet
	var hash, magnet string
	if strings.HasPrefix(torrentPath, "magnet:") {
		q, err := url.ParseQuery(strings.TrimPrefix(torrentPath, "magnet:?"))
		if err != nil {
			tb.Fatalf("swarmtest.StartRtorrent: %s: %v", torrentPath, err)
		}
		for _, xt := range q["xt"] {
			if h, ok := strings.CutPrefix(xt, "urn:btih:"); ok && len(h) == 40 {
				hash = strings.ToUpper(h)
			}
		}
		if hash == "" {
			tb.Fatalf("swarmtest.StartRtorrent: %s: no hex btih", torrentPath)
		}
		magnet = torrentPath + "&tr=" + url.QueryEscape(closed)
	} else {
		raw, err := os.ReadFile(torrentPath)
		if err != nil {
			tb.Fatalf("swarmtest.StartRtorrent: %v", err)
		}
		if torrent, hash, err = withAnnounce(raw, closed); err != nil {
			tb.Fatalf("swarmtest.StartRtorrent: %s: %v", torrentPath, err)
		}
	}
	return startRetrying(tb, "swarmtest.StartRtorrent("+opts.IP+")", opts.Port != 0, func() (*Rtorrent, error) {
		return startRtorrent(tb, opts, torrent, magnet, hash, dir)
	})
}

func startRtorrent(tb testing.TB, opts RtorrentOptions, torrent []byte, magnet, hash, dir string) (*Rtorrent, error) {
	tb.Helper()
	port := opts.Port
	if port == 0 {
		port = FreePort(tb, opts.IP)
	}
	// A folder of its own under /tmp, not tb.TempDir: a Unix socket's path
	// must fit in 108 bytes, and a subtest's temporary folder may not.
	home, err := os.MkdirTemp("", "rtorrent")
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { os.RemoveAll(home) })
	session := filepath.Join(home, "session")
	if err := os.Mkdir(session, 0o700); err != nil {
		return nil, err
	}
	load := magnet
	if torrent != nil {
		load = filepath.Join(home, "t.torrent")
		if err := os.WriteFile(load, torrent, 0o600); err != nil {
			return nil, err
		}
	}
	r := &Rtorrent{ip: opts.IP, port: port, sock: filepath.Join(home, "rpc.sock"), hash: hash, magnet: torrent == nil}
	// Paths in double quotes: a bare comma separates arguments (a
	// subtest's folder may have one).
	for _, p := range []string{abs(dir), home} {
		if strings.ContainsAny(p, "\"\\\n") {
			return nil, fmt.Errorf("path %q: rtorrent's configuration cannot quote it", p)
		}
	}
	conf := []string{
		`directory.default.set = "` + abs(dir) + `"`,
		`session.path.set = "` + session + `"`,
		fmt.Sprintf("network.port_range.set = %d-%d", port, port),
		"network.port_random.set = no",
		"network.bind_address.set = " + opts.IP,
		"network.local_address.set = " + opts.IP,
		"dht.mode.set = " + map[bool]string{false: "disable", true: "on"}[opts.DHTEntry != ""],
		fmt.Sprintf("dht.port.set = %d", port),
		"protocol.pex.set = " + map[bool]string{false: "no", true: "yes"}[opts.PEX],
		"trackers.use_udp.set = no",
		"system.daemon.set = true",
		`network.scgi.open_local = "` + r.sock + `"`,
		`log.open_file = "log", /dev/stderr`,
		`log.add_output = "info", "log"`,
	}
	if opts.Encryption == EncryptionRequired {
		conf = append(conf, "protocol.encryption.set = allow_incoming,try_outgoing,require,require_RC4")
	}
	rc := filepath.Join(home, "rtorrent.rc")
	if err := os.WriteFile(rc, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("rtorrent", "-n", "-o", "import="+rc)
	cmd.Dir = home
	r.proc, err = startProc(tb, "rtorrent "+r.Addr(), cmd, func() { _ = cmd.Process.Signal(syscall.SIGTERM) }, 3*time.Second)
	if err != nil {
		return nil, err
	}
	// Ready: the RPC answers (rtorrent binds its peer port before it
	// opens the socket), then the torrent is loaded and started.
	deadline := time.Now().Add(callTimeout)
	for {
		if _, err = r.call("system.client_version"); err == nil {
			break
		}
		if done, werr := r.proc.exited(); done {
			return nil, fmt.Errorf("%w (%v) before it was ready: %s", errExited, werr, lastLine(r.proc.stderr.String()))
		}
		if time.Now().After(deadline) {
			r.proc.kill()
			return nil, fmt.Errorf("RPC not ready after %v: %w", callTimeout, err)
		}
		time.Sleep(pollInterval)
	}
	if opts.DHTEntry != "" {
		// Its node in the table before the torrent starts: rtorrent asks
		// the DHT for a new download's peers once at its start, and then
		// only at its announce interval.
		if _, err := r.call("dht.add_node", "", opts.DHTEntry); err != nil {
			r.proc.kill()
			return nil, err
		}
		for r.dhtNodes() == 0 {
			if time.Now().After(deadline) {
				r.proc.kill()
				return nil, fmt.Errorf("DHT: no node in its table after %v", callTimeout)
			}
			time.Sleep(pollInterval)
		}
	}
	if _, err := r.call("load.start_verbose", "", load); err != nil {
		r.proc.kill()
		return nil, err
	}
	for {
		st, err := r.status()
		if err == nil && st.Active {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.proc.kill()
			return nil, fmt.Errorf("torrent not started after %v: %v %+v", callTimeout, err, st)
		}
		time.Sleep(pollInterval)
	}
}

// dhtNodes is how many nodes rtorrent's DHT table holds (0 on an error).
func (r *Rtorrent) dhtNodes() int64 {
	v, err := r.call("dht.statistics", "")
	if err != nil {
		return 0
	}
	for _, m := range v.Struct {
		if m.Name == "nodes" {
			n, _ := m.Value.int()
			return n
		}
	}
	return 0
}

// Addr is the ip:port rtorrent accepts peers on.
func (r *Rtorrent) Addr() string { return net.JoinHostPort(r.ip, strconv.Itoa(r.port)) }

// Status is a snapshot of the download.
func (r *Rtorrent) Status(tb testing.TB) RtorrentStatus {
	tb.Helper()
	st, err := r.status()
	if err != nil {
		tb.Fatalf("swarmtest: rtorrent %s: %v", r.Addr(), err)
	}
	return st
}

// status is the download's state; for a magnet's, between its metadata
// download and the torrent's, the zero RtorrentStatus.
func (r *Rtorrent) status() (RtorrentStatus, error) {
	st, err := r.status1()
	if err != nil && r.magnet && strings.Contains(err.Error(), "Could not find info-hash") {
		return RtorrentStatus{}, nil
	}
	return st, err
}

func (r *Rtorrent) status1() (RtorrentStatus, error) {
	var st RtorrentStatus
	ints := []struct {
		method string
		dst    *int64
	}{
		{"d.completed_bytes", &st.CompletedBytes}, {"d.size_bytes", &st.SizeBytes},
		{"d.down.total", &st.DownTotal}, {"d.up.total", &st.UpTotal}, {"d.peers_connected", &st.Peers},
	}
	for _, f := range ints {
		v, err := r.callInt(f.method)
		if err != nil {
			return st, err
		}
		*f.dst = v
	}
	flags := []struct {
		method string
		dst    *bool
	}{{"d.complete", &st.Complete}, {"d.hashing", &st.Hashing}, {"d.is_active", &st.Active}}
	for _, f := range flags {
		v, err := r.callInt(f.method)
		if err != nil {
			return st, err
		}
		*f.dst = v != 0
	}
	msg, err := r.call("d.message", r.hash)
	st.Message = msg.text()
	return st, err
}

func (r *Rtorrent) callInt(method string) (int64, error) {
	v, err := r.call(method, r.hash)
	if err != nil {
		return 0, err
	}
	return v.int()
}

// waitFor polls the download until done says so, rtorrent's exit, or
// timeout.
func (r *Rtorrent) waitFor(tb testing.TB, what string, timeout time.Duration, done func(RtorrentStatus) bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := r.status()
		if err != nil {
			tb.Fatalf("swarmtest: rtorrent %s: waiting for %s: %v", r.Addr(), what, err)
		}
		if done(st) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("swarmtest: rtorrent %s: not %s after %v: %+v", r.Addr(), what, timeout, st)
		}
		time.Sleep(pollInterval)
	}
}

// WaitSeeding waits until the data is checked and complete.
func (r *Rtorrent) WaitSeeding(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	r.waitFor(tb, "seeding", timeout, func(st RtorrentStatus) bool {
		return st.Complete && !st.Hashing && st.Active
	})
}

// WaitComplete waits until every piece is downloaded and checked.
func (r *Rtorrent) WaitComplete(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	r.waitFor(tb, "complete", timeout, func(st RtorrentStatus) bool { return st.Complete && !st.Hashing })
}

// withAnnounce returns a copy of a .torrent whose "announce" is url, and
// its info-hash in upper-case hex. The other keys' bytes, the info
// dictionary's among them, are kept as they are.
func withAnnounce(torrent []byte, url string) ([]byte, string, error) {
	type kv struct{ key, val []byte }
	var keys []kv
	var info []byte
	err := bencode.Dict(torrent, func(key, val []byte) error {
		switch string(key) {
		case "announce", "announce-list":
			return nil
		case "info":
			info = val
		}
		keys = append(keys, kv{key, val})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if info == nil {
		return nil, "", fmt.Errorf("no info dictionary")
	}
	keys = append(keys, kv{[]byte("announce"), fmt.Appendf(nil, "%d:%s", len(url), url)})
	slices.SortFunc(keys, func(a, b kv) int { return bytes.Compare(a.key, b.key) })
	out := []byte{'d'}
	for _, e := range keys {
		out = fmt.Appendf(out, "%d:%s", len(e.key), e.key)
		out = append(out, e.val...)
	}
	out = append(out, 'e')
	sum := sha1.Sum(info)
	return out, strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// xmlValue is an XML-RPC value as rtorrent sends them: integers (i8, i4
// or int), strings (tagged or bare) and arrays.
type xmlValue struct {
	I8     *string    `xml:"i8"`
	I4     *string    `xml:"i4"`
	Int    *string    `xml:"int"`
	String *string    `xml:"string"`
	Array  []xmlValue `xml:"array>data>value"`
	Struct []struct {
		Name  string   `xml:"name"`
		Value xmlValue `xml:"value"`
	} `xml:"struct>member"`
	Bare string `xml:",chardata"`
}

func (v xmlValue) int() (int64, error) {
	for _, s := range []*string{v.I8, v.I4, v.Int} {
		if s != nil {
			return strconv.ParseInt(strings.TrimSpace(*s), 10, 64)
		}
	}
	return 0, fmt.Errorf("not an integer: %+v", v)
}

func (v xmlValue) text() string {
	if v.String != nil {
		return *v.String
	}
	return v.Bare
}

// call calls one XML-RPC method with string parameters over SCGI.
func (r *Rtorrent) call(method string, params ...string) (xmlValue, error) {
	var body bytes.Buffer
	body.WriteString(`<?xml version="1.0"?><methodCall><methodName>`)
	xml.EscapeText(&body, []byte(method))
	body.WriteString(`</methodName><params>`)
	for _, p := range params {
		body.WriteString(`<param><value><string>`)
		xml.EscapeText(&body, []byte(p))
		body.WriteString(`</string></value></param>`)
	}
	body.WriteString(`</params></methodCall>`)
	headers := fmt.Sprintf("CONTENT_LENGTH\x00%d\x00SCGI\x001\x00", body.Len())

	nc, err := net.DialTimeout("unix", r.sock, callTimeout)
	if err != nil {
		return xmlValue{}, fmt.Errorf("%s: %w", method, err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(callTimeout))
	if _, err := fmt.Fprintf(nc, "%d:%s,%s", len(headers), headers, body.Bytes()); err != nil {
		return xmlValue{}, fmt.Errorf("%s: %w", method, err)
	}
	br := bufio.NewReader(io.LimitReader(nc, 16<<20))
	for { // the CGI headers, up to an empty line
		line, err := br.ReadString('\n')
		if err != nil {
			return xmlValue{}, fmt.Errorf("%s: reading the answer's headers: %w", method, err)
		}
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
	}
	var ans struct {
		Params []xmlValue `xml:"params>param>value"`
		Fault  *xmlValue  `xml:"fault>value"`
	}
	if err := xml.NewDecoder(br).Decode(&ans); err != nil {
		return xmlValue{}, fmt.Errorf("%s: bad answer: %w", method, err)
	}
	if ans.Fault != nil {
		msg := ""
		for _, m := range ans.Fault.Struct {
			if m.Name == "faultString" {
				msg = m.Value.text()
			}
		}
		return xmlValue{}, fmt.Errorf("%s: fault: %s", method, msg)
	}
	if len(ans.Params) != 1 {
		return xmlValue{}, fmt.Errorf("%s: %d values in the answer, want 1", method, len(ans.Params))
	}
	return ans.Params[0], nil
}
