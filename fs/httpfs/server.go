package httpfs

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// Server serves a Host over HTTP. Make it with New; it is an http.Handler,
// safe for concurrent use.
type Server struct {
	// read-only after construction
	host    Host
	opts    Options
	metrics *Metrics
	logf    func(format string, args ...any)
	api     http.Handler

	conns sync.Map // net.Conn -> *connReaders, see ConfigureServer
}

var _ http.Handler = (*Server)(nil)

// New returns a server of host.
func New(host Host, opts Options) *Server {
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	s := &Server{host: host, opts: opts, metrics: opts.Metrics, logf: opts.Logf}
	if s.logf == nil {
		s.logf = log.Printf
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.metrics.watch(host)
	// The first call loads the system's MIME tables (a few ms, /etc/mime.types):
	// here, not in the first file request, whose first byte a player waits for.
	mime.TypeByExtension(".mp4")
	// Likewise a first read buffer, whose page faults take milliseconds.
	putBuf(getChunk())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/torrents", s.apiTorrents)
	mux.HandleFunc("POST /api/torrents", s.apiAdd)
	mux.HandleFunc("DELETE /api/torrents/{ih}", s.apiRemove)
	mux.HandleFunc("GET /api/cache", s.apiCache)
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /{$}", s.statusPage)
	s.api = mux
	return s
}

// Metrics returns the server's metrics (Options.Metrics, or its own).
func (s *Server) Metrics() *Metrics { return s.metrics }

// ServeHTTP checks authentication and dispatches. Paths under /files/ and
// /playlist/ are routed here rather than by a ServeMux, which would answer
// a path with ".." with a redirect to its cleaned form: here it is refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="swarmfs", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodPost || r.Method == http.MethodDelete || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		if err := sameOrigin(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/files/") || p == "/files":
		s.serveFiles(w, r)
	case strings.HasPrefix(p, "/playlist/"):
		s.servePlaylist(w, r)
	default:
		s.api.ServeHTTP(w, r)
	}
}

// authorized checks the credentials, if the server wants any.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Auth == "" && s.opts.Token == "" {
		return true
	}
	if s.opts.Token != "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return equal(h[7:], s.opts.Token)
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if s.opts.Token != "" && equal(pass, s.opts.Token) {
		return true
	}
	if s.opts.Auth != "" {
		return equal(user+":"+pass, s.opts.Auth)
	}
	return false
}

// equal compares secrets in constant time (hashed first, so their lengths
// do not show either).
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// sameOrigin refuses a cross-site request: one whose Origin (or, without
// one, Sec-Fetch-Site) says it comes from another site. Clients that are
// not browsers (curl, swarmfs) send neither and pass.
func sameOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		if o != "http://"+r.Host && o != "https://"+r.Host {
			return fmt.Errorf("cross-origin request from %q refused", o)
		}
		return nil
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return errors.New("cross-site request refused")
}

// CheckListen refuses to serve addr without authentication unless it is a
// loopback address: "127.0.0.1:8080", "[::1]:8080" and "localhost:8080"
// pass; ":8080", "0.0.0.0:8080" or a LAN address need authenticated (Auth
// or Token set).
func CheckListen(addr string, authenticated bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("http address %q: %w", addr, err)
	}
	if authenticated || isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("http address %q listens on %s, not only on loopback: anyone who can reach it could read and add torrents; give --http-auth USER:PASSWORD or --http-token-file FILE, or listen on 127.0.0.1", addr, shown)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// NewHTTPServer returns an http.Server for h with the bounds the server
// needs against slow or greedy clients. It sets no WriteTimeout: a paused
// player may hold a response open for hours.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	hs := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		IdleTimeout:       2 * ReadHeaderTimeout * 6,
	}
	if s, ok := h.(*Server); ok {
		s.ConfigureServer(hs)
	}
	return hs
}
