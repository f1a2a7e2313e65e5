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
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/picker"
)

// The control socket lets "swarmfs add/rm/status/cache" talk to a running
// mount: HTTP over a unix socket in the data directory, readable only by
// the user who mounted.

const controlSocketName = "control.sock"

// maxControlBody bounds what a control request may upload (a .torrent).
const maxControlBody = fs.MaxTorrentFileSize

// TorrentStatus is one torrent in "swarmfs status".
type TorrentStatus struct {
	Name         string  `json:"name"`
	InfoHash     string  `json:"info_hash"`
	HasInfo      bool    `json:"has_info"`
	Progress     float64 `json:"progress"`
	Size         int64   `json:"size"`
	Completed    int64   `json:"completed"`
	DownloadRate float64 `json:"download_rate"`
	UploadRate   float64 `json:"upload_rate"`
	Downloaded   int64   `json:"downloaded"`
	Wasted       int64   `json:"wasted"`
	// Requests counts the picker's costly decisions (duplicates, cancels).
	Requests    picker.Counters `json:"requests"`
	Uploaded    int64           `json:"uploaded"`
	Peers       int             `json:"peers"`
	Seeds       int             `json:"seeds"`
	CachedBytes int64           `json:"cached_bytes"`
}

// CacheStatus is "swarmfs cache": the whole cache and each torrent's share.
type CacheStatus struct {
	Size     int64        `json:"size"`
	Capacity int64        `json:"capacity"`
	Disk     int64        `json:"disk"`
	Torrents []CacheEntry `json:"torrents"`
}

// CacheEntry is one torrent's use of the cache.
type CacheEntry struct {
	Name     string `json:"name"`
	InfoHash string `json:"info_hash"`
	Pieces   int    `json:"pieces"`
	Bytes    int64  `json:"bytes"`
}

// controlServer serves the control API of a running mount.
type controlServer struct {
	h    *host
	srv  *http.Server
	ln   net.Listener
	path string
	done chan struct{}
}

func startControl(dataDir string, h *host) (*controlServer, error) {
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
	cs := &controlServer{h: h, ln: ln, path: path, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", cs.status)
	mux.HandleFunc("POST /add", cs.add)
	mux.HandleFunc("POST /rm", cs.rm)
	mux.HandleFunc("GET /cache", cs.cacheStatus)
	mux.HandleFunc("POST /cache/drop", cs.cacheDrop)
	cs.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, metainfo.ErrInvalid), errors.Is(err, metainfo.ErrInvalidMagnet), errors.Is(err, metainfo.ErrUnsupported):
		code = http.StatusBadRequest
	case errors.Is(err, os.ErrExist):
		code = http.StatusConflict
	case errors.Is(err, os.ErrNotExist):
		code = http.StatusNotFound
	}
	http.Error(w, err.Error(), code)
}

func (cs *controlServer) status(w http.ResponseWriter, r *http.Request) {
	out := []TorrentStatus{} // "[]", not "null", when nothing is mounted
	for _, t := range cs.h.client.Torrents() {
		s := t.Stats()
		ts := TorrentStatus{
			Name: t.Name(), InfoHash: t.InfoHash().String(), HasInfo: t.Info() != nil,
			Size: s.TotalLength, Completed: s.BytesCompleted,
			DownloadRate: s.DownloadRate, UploadRate: s.UploadRate,
			Downloaded: s.Downloaded, Wasted: s.Wasted, Requests: s.Requests, Uploaded: s.Uploaded, Peers: s.Peers, Seeds: s.Seeds,
		}
		if s.TotalLength > 0 {
			ts.Progress = float64(s.BytesCompleted) / float64(s.TotalLength)
		}
		for _, u := range cs.h.cache.Usage() {
			if u.InfoHash == t.InfoHash() {
				ts.CachedBytes = u.Bytes
			}
		}
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, out)
}

func (cs *controlServer) add(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		httpError(w, err)
		return
	}
	if len(body) > maxControlBody {
		http.Error(w, "torrent larger than 16 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	var t fs.Torrent
	if s := strings.TrimSpace(string(body)); strings.HasPrefix(s, "magnet:") {
		t, err = cs.h.AddMagnet(s)
	} else {
		t, err = cs.h.AddTorrentFile(body)
	}
	if err != nil {
		httpError(w, err)
		return
	}
	cs.h.refresh()
	writeJSON(w, map[string]string{"name": t.Name(), "info_hash": t.InfoHash().String()})
}

func (cs *controlServer) rm(w http.ResponseWriter, r *http.Request) {
	t, err := cs.h.find(r.URL.Query().Get("id"))
	if err != nil {
		httpError(w, fmt.Errorf("%w: %v", os.ErrNotExist, err))
		return
	}
	name := t.Name()
	if err := cs.h.Remove(t.InfoHash()); err != nil {
		httpError(w, err)
		return
	}
	cs.h.refresh()
	writeJSON(w, map[string]string{"name": name, "info_hash": t.InfoHash().String()})
}

func (cs *controlServer) cacheStatus(w http.ResponseWriter, r *http.Request) {
	names := map[metainfo.Hash]string{}
	for _, t := range cs.h.client.Torrents() {
		names[t.InfoHash()] = t.Name()
	}
	writeJSON(w, cacheStatusOf(cs.h.cache, names))
}

func (cs *controlServer) cacheDrop(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if t, err := cs.h.find(id); err == nil {
		// A mounted torrent: dropping its pieces means removing it.
		name := t.Name()
		if err := cs.h.Remove(t.InfoHash()); err != nil {
			httpError(w, err)
			return
		}
		cs.h.refresh()
		writeJSON(w, map[string]string{"name": name})
		return
	}
	ih, err := resolveCached(cs.h.cache, id)
	if err != nil {
		httpError(w, fmt.Errorf("%w: %v", os.ErrNotExist, err))
		return
	}
	if err := cs.h.cache.DropTorrent(ih); err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]string{"name": ih.String()})
}

// cacheStatusOf describes the cache, naming torrents from names or from
// their remembered metainfo.
func cacheStatusOf(c *cache.Cache, names map[metainfo.Hash]string) CacheStatus {
	st := CacheStatus{Size: c.Size(), Capacity: c.Capacity(), Disk: c.DiskUsage()}
	seen := map[metainfo.Hash]bool{}
	add := func(ih metainfo.Hash, pieces int, bytes int64) {
		name, ok := names[ih]
		if !ok {
			name = ih.String()
			if b, err := c.Meta(cache.InfoHash(ih)); err == nil {
				if mi, err := metainfo.Parse(b); err == nil {
					name = mi.Info.Name
				} else if m, err := metainfo.ParseMagnet(string(b)); err == nil && m.DisplayName != "" {
					name = metainfo.SanitizeComponent(m.DisplayName) + " (metadata not yet known)"
				}
			}
		}
		st.Torrents = append(st.Torrents, CacheEntry{Name: name, InfoHash: ih.String(), Pieces: pieces, Bytes: bytes})
	}
	for _, u := range c.Usage() {
		seen[metainfo.Hash(u.InfoHash)] = true
		add(metainfo.Hash(u.InfoHash), u.Pieces, u.Bytes)
	}
	for _, ih := range c.Torrents() {
		if !seen[metainfo.Hash(ih)] {
			add(metainfo.Hash(ih), 0, 0)
		}
	}
	sort.Slice(st.Torrents, func(i, j int) bool { return st.Torrents[i].Name < st.Torrents[j].Name })
	return st
}

// resolveCached finds a cached torrent by info-hash, hash prefix or name.
func resolveCached(c *cache.Cache, id string) (metainfo.Hash, error) {
	st := cacheStatusOf(c, nil)
	var found []CacheEntry
	for _, e := range st.Torrents {
		if e.Name == id || e.InfoHash == strings.ToLower(id) {
			found = []CacheEntry{e}
			break
		}
		if len(id) >= 6 && strings.HasPrefix(e.InfoHash, strings.ToLower(id)) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		return metainfo.Hash{}, fmt.Errorf("no single cached torrent matches %q", id)
	}
	return metainfo.ParseHash(found[0].InfoHash)
}

// controlClient talks to the mount using dataDir; errNoMount if none runs.
type controlClient struct {
	http *http.Client
}

var errNoMount = errors.New("no swarmfs mount is running")

func dialControl(dataDir string) (*controlClient, error) {
	path := filepath.Join(dataDir, controlSocketName)
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w with data directory %s (start one with: swarmfs mount MOUNTPOINT)", errNoMount, dataDir)
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
