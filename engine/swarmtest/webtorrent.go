package swarmtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WebTorrent is one WebTorrent client (the webtorrent npm package, 1.9.7:
// an independent JavaScript implementation, the engine of WebTorrent
// Desktop and webtorrent-cli) working on one torrent over TCP, without
// DHT, trackers, LSD, uTP or web seeds. It runs webtorrent/wtpeer.js under
// node, with the package make test-deps installs into
// webtorrent/node_modules, and is read through the script's stdin and
// stdout. The other side dials it. It is stopped (stdin
// closed, then SIGKILL after 3 s) and waited for in tb.Cleanup; its output
// goes to the test log if the test failed. Methods are safe for concurrent
// use and take the tb to fail.
//
// WebTorrent has no MSE/PE: it speaks plaintext only. Its ut_pex only
// listens: it dials the peers others name while it downloads, and names
// none. Given a .torrent and a folder that holds the data, it checks the
// data and seeds; otherwise it downloads into the folder and goes on
// seeding.
type WebTorrent struct {
	ip   string
	port int
	proc *proc

	mu  sync.Mutex // guards in and out: one command and its answer at a time
	in  io.WriteCloser
	out *bufio.Reader
}

// WebTorrentOptions configures a WebTorrent peer. The zero value listens
// on a free port of 127.0.0.1.
type WebTorrentOptions struct {
	// IP is the loopback address it listens on and dials from; ""
	// means 127.0.0.1.
	IP string
	// Port is the listen port; 0 picks a free one.
	Port int
}

// WebTorrentStatus is a snapshot of the torrent.
type WebTorrentStatus struct {
	Listening  bool   `json:"listening"`
	Ready      bool   `json:"ready"` // has the metadata
	Done       bool   `json:"done"`  // has every piece, checked
	Downloaded int64  `json:"downloaded"`
	Uploaded   int64  `json:"uploaded"`
	Peers      int    `json:"peers"`
	Error      string `json:"error"`
}

// webTorrentDir is the folder of wtpeer.js and its node_modules, found
// from this file's path: tests run from a checkout.
func webTorrentDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "webtorrent")
}

// checkWebTorrent is RequireTools's probe for "webtorrent".
func checkWebTorrent() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node not found on PATH (apt-get install nodejs npm)")
	}
	dir := webTorrentDir()
	cmd := exec.Command("node", "-e", "require('webtorrent')")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node cannot load webtorrent from %s: %v: %s (npm ci --ignore-scripts in that folder)", dir, err, lastLine(string(out)))
	}
	return nil
}

// StartWebTorrent starts a WebTorrent client on source (a .torrent file or
// a magnet link) with its data in dir, and waits until it listens.
func StartWebTorrent(tb testing.TB, opts WebTorrentOptions, source, dir string) *WebTorrent {
	tb.Helper()
	RequireTools(tb, "webtorrent")
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if !IsLocal(net.ParseIP(opts.IP)) {
		tb.Fatalf("swarmtest.StartWebTorrent: IP %q is not a loopback address", opts.IP)
	}
	if !strings.HasPrefix(source, "magnet:") {
		source = abs(source)
	}
	return startRetrying(tb, "swarmtest.StartWebTorrent("+opts.IP+")", opts.Port != 0, func() (*WebTorrent, error) {
		return startWebTorrent(tb, opts, source, abs(dir))
	})
}

func startWebTorrent(tb testing.TB, opts WebTorrentOptions, source, dir string) (*WebTorrent, error) {
	tb.Helper()
	port := opts.Port
	if port == 0 {
		port = FreePort(tb, opts.IP)
	}
	arg, err := json.Marshal(map[string]any{"ip": opts.IP, "port": port, "source": source, "dir": dir})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "wtpeer.js", string(arg))
	cmd.Dir = webTorrentDir()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &WebTorrent{ip: opts.IP, port: port, in: in, out: bufio.NewReader(outPipe)}
	// Closing stdin ends the script, which destroys its client.
	w.proc, err = startProc(tb, "webtorrent", cmd, func() { in.Close() }, 3*time.Second)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := w.status()
		switch {
		case err != nil:
			w.proc.kill()
			return nil, err
		case st.Error != "":
			w.proc.kill()
			return nil, errors.New(st.Error)
		case st.Listening:
			return w, nil
		case time.Now().After(deadline):
			w.proc.kill()
			return nil, errors.New("not listening after 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the address it listens on.
func (w *WebTorrent) Addr() string { return net.JoinHostPort(w.ip, strconv.Itoa(w.port)) }

// call sends one command and decodes its answer into v.
func (w *WebTorrent) call(cmd string, v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(w.in, cmd+"\n"); err != nil {
		return fmt.Errorf("webtorrent %s: %w", cmd, err)
	}
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := w.out.ReadBytes('\n')
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("webtorrent %s: %w", cmd, r.err)
		}
		return json.Unmarshal(r.line, v)
	case <-time.After(callTimeout):
		// Killed, so that the reader goroutine ends and no later call
		// reads beside it.
		w.proc.kill()
		return fmt.Errorf("webtorrent %s: no answer after %v", cmd, callTimeout)
	}
}

func (w *WebTorrent) status() (WebTorrentStatus, error) {
	var st WebTorrentStatus
	err := w.call("status", &st)
	return st, err
}

// Status returns the torrent's state.
func (w *WebTorrent) Status(tb testing.TB) WebTorrentStatus {
	tb.Helper()
	st, err := w.status()
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// WaitDone waits until it has every piece, checked: a seeder once its data
// is checked, a leecher once it downloaded everything.
func (w *WebTorrent) WaitDone(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := w.Status(tb)
		if st.Error != "" {
			tb.Fatalf("webtorrent: %s", st.Error)
		}
		if st.Done {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("webtorrent not done after %v: %+v", timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
