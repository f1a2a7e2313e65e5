package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/fs/httpfs"
)

// httpHost serves a session's torrents over HTTP: it adapts
// session.Session to httpfs.Host, with the engine client for what the
// session does not describe (pieces, banned peers).
type httpHost struct {
	s       *session.Session
	client  *engine.Client
	changed func() // tells the other front-ends of an add or removal
}

var _ httpfs.Host = httpHost{}

func (h httpHost) Torrents() []httpfs.Torrent {
	ts := h.s.Torrents()
	// Only Stats wants the cache's use, and working it out lists the
	// cache's folder: a file request, which only looks the torrent up,
	// must not pay for it before its first byte.
	cached := sync.OnceValue(h.cached)
	out := make([]httpfs.Torrent, 0, len(ts))
	for _, t := range ts {
		ht := h.torrent(t)
		ht.cached = cached
		out = append(out, ht)
	}
	return out
}

// cached is each torrent's bytes in the cache, as "swarmfs status" counts
// them.
func (h httpHost) cached() map[metainfo.Hash]int64 {
	m := map[metainfo.Hash]int64{}
	for _, e := range h.s.CacheStatus().Torrents {
		if ih, err := metainfo.ParseHash(e.InfoHash); err == nil {
			m[ih] = e.Bytes
		}
	}
	return m
}

func (h httpHost) torrent(t *session.Torrent) httpTorrent {
	et, _ := h.client.Torrent(t.InfoHash())
	return httpTorrent{Torrent: t, et: et}
}

func (h httpHost) Add(data []byte) (httpfs.Torrent, error) {
	t, err := h.s.Add(data)
	if err != nil {
		return nil, err
	}
	h.changed()
	return h.torrent(t), nil
}

func (h httpHost) Remove(ih metainfo.Hash) error {
	if err := h.s.Remove(ih); err != nil {
		return err
	}
	h.changed()
	return nil
}

func (h httpHost) Cache() httpfs.CacheStats {
	c := h.s.CacheStatus()
	return httpfs.CacheStats{Size: c.Size, Capacity: c.Capacity, Disk: c.Disk}
}

// httpTorrent is a session torrent as the HTTP server sees it; et, the
// engine's torrent, is nil if it is gone from the engine.
type httpTorrent struct {
	*session.Torrent
	et     *engine.Torrent
	cached func() map[metainfo.Hash]int64 // every torrent's bytes in the cache; nil for none
}

var _ httpfs.Torrent = httpTorrent{}

func (t httpTorrent) NewReader(file int, media bool) (httpfs.Reader, error) {
	return t.Torrent.NewReader(file, media)
}

func (t httpTorrent) FileCachedBytes(i int) int64 { return t.Torrent.FileBytesCompleted(i) }

func (t httpTorrent) HavePiece(i int) bool { return t.et != nil && t.et.HavePiece(i) }

func (t httpTorrent) Stats() httpfs.TorrentStats {
	s := t.Torrent.Stats()
	var cached int64
	if t.cached != nil {
		cached = t.cached()[t.InfoHash()]
	}
	st := httpfs.TorrentStats{
		Size: s.TotalLength, Completed: s.BytesCompleted, Downloaded: s.Downloaded,
		Uploaded: s.Uploaded, Wasted: s.Wasted, DownloadRate: s.DownloadRate,
		UploadRate: s.UploadRate, Peers: s.Peers, Seeds: s.Seeds,
		Pieces: s.Pieces, PiecesHave: s.PiecesHave, CachedBytes: cached,
		HashFailures: s.HashFailures, Downloading: s.Downloading,
		Requests:       httpfs.RequestCounters(s.Requests),
		EncryptedPeers: s.EncryptedPeers, PlainPeers: s.PlainPeers, TCPPeers: s.TCPPeers, UTPPeers: s.UTPPeers,
		Ratio: s.Ratio, SeedState: s.SeedState, NoSeeders: s.NoSeeders,
		SeedGoal: s.SeedGoal, SuperSeeding: s.SuperSeeding, Waiting: s.Waiting,
	}
	// Typed nil slices would marshal as null rather than be left out.
	if len(s.WebSeeds) > 0 {
		st.WebSeeds = s.WebSeeds
	}
	if len(s.Trackers) > 0 {
		st.Trackers = s.Trackers
	}
	if s.Swarm != nil {
		st.Swarm = &httpfs.SwarmCounts{Seeders: s.Swarm.Seeders, Leechers: s.Swarm.Leechers, Completed: s.Swarm.Completed}
	}
	for _, r := range s.Readers {
		st.Readers = append(st.Readers, httpfs.ReaderStats{File: r.File, Pos: r.Pos, Window: r.Window})
	}
	if t.et != nil {
		st.Banned = len(t.et.Banned())
	}
	return st
}

// meteredReader counts a FUSE reader's reads in the metrics.
type meteredReader struct {
	fs.Reader
	m *httpfs.Metrics
}

func (r meteredReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	done := r.m.StartRead("fuse")
	defer done()
	return r.Reader.ReadAt(ctx, p, off)
}

// httpFlags are the flags of the HTTP front-end, shared by mount and serve.
type httpFlags struct {
	addr      *string
	auth      *string
	tokenFile *string
	// metrics is made at parse time when --http is given, so the FUSE
	// front-end can count its reads in it too.
	metrics *httpfs.Metrics
	// readTimeout is the command's --read-timeout.
	readTimeout time.Duration
}

func (hf *httpFlags) register(f *flag.FlagSet, what string) {
	hf.addr = f.String("http", "", what)
	hf.auth = f.String("http-auth", "", "USER:PASSWORD for HTTP basic authentication (needed to listen on anything but loopback)")
	hf.tokenFile = f.String("http-token-file", "", "a file holding a token the HTTP server accepts as a bearer token or as the basic-auth password (needed to listen on anything but loopback)")
}

// options checks the flags and returns the server's options; it refuses a
// non-loopback address without authentication.
func (hf *httpFlags) options() (httpfs.Options, error) {
	var o httpfs.Options
	if *hf.auth != "" {
		if !strings.Contains(*hf.auth, ":") {
			return o, usageErr("--http-auth wants USER:PASSWORD")
		}
		o.Auth = *hf.auth
	}
	if *hf.tokenFile != "" {
		b, err := os.ReadFile(*hf.tokenFile)
		if err != nil {
			return o, fmt.Errorf("--http-token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(b))
		if o.Token == "" {
			return o, fmt.Errorf("--http-token-file %s: empty", *hf.tokenFile)
		}
	}
	if err := httpfs.CheckListen(*hf.addr, o.Auth != "" || o.Token != ""); err != nil {
		return o, usageErr("%v", err)
	}
	if hf.metrics == nil {
		hf.metrics = httpfs.NewMetrics()
	}
	o.Metrics = hf.metrics
	o.ReadTimeout = hf.readTimeout
	return o, nil
}

// httpServer is the running HTTP front-end.
type httpServer struct {
	srv  *http.Server
	h    *httpfs.Server
	addr net.Addr
	done chan struct{} // closed when Serve returned
}

// startHTTP serves the session on the --http address.
func startHTTP(hf *httpFlags, s *session.Session, client *engine.Client, changed func(), logf func(string, ...any)) (*httpServer, error) {
	opts, err := hf.options()
	if err != nil {
		return nil, err
	}
	opts.Logf = logf
	ln, err := net.Listen("tcp", *hf.addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	h := httpfs.New(httpHost{s: s, client: client, changed: changed}, opts)
	hs := &httpServer{srv: httpfs.NewHTTPServer(*hf.addr, h), h: h, addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		defer close(hs.done)
		if err := hs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("http: %v", err)
		}
	}()
	return hs, nil
}

// close stops the server: open responses (a paused player) are cut after
// a moment.
func (hs *httpServer) close() {
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if hs.srv.Shutdown(ctx) != nil {
		hs.srv.Close()
	}
	<-hs.done
	// The readers connections kept between requests, before the session
	// closes.
	hs.h.Close()
}
