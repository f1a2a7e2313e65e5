package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The control socket lets "swarmfs add/rm/status/cache" talk to a running
// mount: the session's control API (session.Session.Handler) over HTTP on
// a unix socket in the data directory, usable only by the user who mounted
// (the socket is 0700, and so is the data directory).

const controlSocketName = "control.sock"

// controlServer serves the control API of a running mount.
type controlServer struct {
	srv  *http.Server
	path string
	done chan struct{} // closed when Serve returned
}

func startControl(dataDir string, h http.Handler) (*controlServer, error) {
	path := filepath.Join(dataDir, controlSocketName)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another swarmfs mount is already running with data directory %s", dataDir)
	}
	os.Remove(path) // a stale socket from a crash
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	cs := &controlServer{path: path, done: make(chan struct{})}
	cs.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(cs.done)
		cs.srv.Serve(ln)
	}()
	return cs, nil
}

func (cs *controlServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs.srv.Shutdown(ctx)
	<-cs.done
	os.Remove(cs.path)
}

// controlClient talks to the mount using a data directory.
type controlClient struct {
	http *http.Client
}

// errNoMount means no mount answers on the data directory's socket.
var errNoMount = errors.New("no swarmfs mount is running")

// dialControl connects to the mount using dataDir. Its error wraps
// errNoMount when there is no socket or nobody listens on it, and
// os.ErrPermission when the socket (or the folder) is another user's.
func dialControl(dataDir string) (*controlClient, error) {
	path := filepath.Join(dataDir, controlSocketName)
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w with data directory %s (start one with: swarmfs mount MOUNTPOINT)", errNoMount, dataDir)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("data directory %s: %w: it belongs to another user (give your own with --data-dir)", dataDir, os.ErrPermission)
	default:
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	c.Close()
	return &controlClient{http: &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}, nil
}

// do sends a request and decodes a JSON answer into out.
func (c *controlClient) do(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, "http://swarmfs"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
