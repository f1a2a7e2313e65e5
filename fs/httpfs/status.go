package httpfs

import (
	_ "embed"
	"net/http"
)

// statusHTML is the status page: one file, no external assets; its script
// polls /api/torrents and /api/cache.
//
//go:embed status.html
var statusHTML []byte

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Write(statusHTML)
}
