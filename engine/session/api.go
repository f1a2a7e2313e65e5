package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Handler serves the control API, which "swarmfs add/rm/status/cache" speak
// over the control socket:
//
//	GET  /status           []TorrentStatus
//	POST /add              body: .torrent bytes, a magnet URI or an info-hash;
//	                       answers {"name", "info_hash"}
//	POST /rm?id=ID         answers {"name", "info_hash"}
//	GET  /cache            CacheStatus
//	POST /cache/drop?id=ID answers {"name"}
//
// ID is a name, an info-hash or a unique prefix of one. Errors are plain
// text with 400 (bad input), 404 (no such torrent), 409 (already added),
// 413 (a body over metainfo.MaxTorrentSize) or 500. changed, if not nil, is
// called after an add or a removal made through the API, with no lock
// held, so the other front-ends can show it.
func (s *Session) Handler(changed func()) http.Handler {
	if changed == nil {
		changed = func() {}
	}
	a := api{s: s, changed: changed}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", a.status)
	mux.HandleFunc("POST /add", a.add)
	mux.HandleFunc("POST /rm", a.rm)
	mux.HandleFunc("GET /cache", a.cacheStatus)
	mux.HandleFunc("POST /cache/drop", a.cacheDrop)
	return mux
}

type api struct {
	s       *Session
	changed func()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// httpError answers err with the status code its kind calls for.
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

func (a api) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, a.s.Status())
}

func (a api) add(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, metainfo.MaxTorrentSize+1))
	if err != nil {
		httpError(w, err)
		return
	}
	if len(body) > metainfo.MaxTorrentSize {
		http.Error(w, fmt.Sprintf("larger than the %d MiB limit for a .torrent file", metainfo.MaxTorrentSize>>20), http.StatusRequestEntityTooLarge)
		return
	}
	t, err := a.s.Add(body)
	if err != nil {
		httpError(w, err)
		return
	}
	a.changed()
	writeJSON(w, map[string]string{"name": t.Name(), "info_hash": t.InfoHash().String()})
}

func (a api) rm(w http.ResponseWriter, r *http.Request) {
	t, err := a.s.Find(r.URL.Query().Get("id"))
	if err != nil {
		httpError(w, err)
		return
	}
	name := t.Name()
	if err := a.s.Remove(t.InfoHash()); err != nil {
		httpError(w, err)
		return
	}
	a.changed()
	writeJSON(w, map[string]string{"name": name, "info_hash": t.InfoHash().String()})
}

func (a api) cacheStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, a.s.CacheStatus())
}

func (a api) cacheDrop(w http.ResponseWriter, r *http.Request) {
	name, err := a.s.DropCached(r.URL.Query().Get("id"))
	if err != nil {
		httpError(w, err)
		return
	}
	a.changed()
	writeJSON(w, map[string]string{"name": name})
}
