package httpfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// TorrentJSON is one torrent in GET /api/torrents.
type TorrentJSON struct {
	Name     string `json:"name"`
	Folder   string `json:"folder"`
	InfoHash string `json:"info_hash"`
	// InfoHashV2 is the full SHA-256 info-hash of a v2 or hybrid torrent.
	InfoHashV2 string `json:"info_hash_v2,omitempty"`
	HasInfo    bool   `json:"has_info"`
	// Progress is the fraction of the torrent verified, 0..1.
	Progress float64 `json:"progress"`
	TorrentStats
	URL      string `json:"url"`
	Playlist string `json:"playlist,omitempty"`
	// PieceMap shows the pieces in at most PieceMapCells characters,
	// each a run of pieces: '0' none cached, '9' all, '1'..'8' some.
	PieceMap string `json:"piece_map"`
	// Downloading marks, cell for cell with PieceMap, the cells with a
	// piece being fetched ('1') or none ('0').
	Downloading string `json:"downloading"`
	// Readers are the open readers, each placed on the piece map.
	Readers []ReaderJSON `json:"readers"`
	Files   []FileJSON   `json:"files"`
}

// ReaderJSON is an open reader (a FUSE handle, an HTTP request) of a
// torrent in GET /api/torrents.
type ReaderJSON struct {
	Path string `json:"path"`
	// Position is the file offset just past its last sequential read, -1
	// before its first read.
	Position int64 `json:"position"`
	// Window is how many bytes past Position are fetched ahead.
	Window int64 `json:"window"`
	// Cell is the piece-map cell of the reader's last byte, Position-1
	// (where a waiting read waits: a read that ends on a piece boundary
	// waits on the piece before Position's); the file's start before the
	// first read. WindowEnd is the cell of the window's last byte (Cell
	// when there is no window).
	Cell      int `json:"cell"`
	WindowEnd int `json:"window_end"`
}

// FileJSON is one file of a torrent in GET /api/torrents.
type FileJSON struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Completed int64  `json:"completed"`
	URL       string `json:"url"`
	Media     bool   `json:"media"`
}

// PieceMapCells bounds the length of TorrentJSON.PieceMap.
const PieceMapCells = 400

func (s *Server) apiTorrents(w http.ResponseWriter, r *http.Request) {
	out := []TorrentJSON{}
	for _, f := range folders(s.host) {
		out = append(out, describe(f))
	}
	writeJSON(w, http.StatusOK, out)
}

// describe builds a torrent's JSON.
func describe(f folder) TorrentJSON {
	t := f.t
	st := t.Stats()
	j := TorrentJSON{Name: t.Name(), Folder: f.name, InfoHash: t.InfoHash().String(),
		TorrentStats: st, URL: "/files/" + escapePath(f.name) + "/", Files: []FileJSON{}, Readers: []ReaderJSON{}}
	if st.Size > 0 {
		j.Progress = float64(st.Completed) / float64(st.Size)
	}
	info := t.Info()
	if info == nil {
		return j
	}
	j.HasInfo = true
	if info.HasV2() {
		j.InfoHashV2 = info.InfoHashV2.String()
	}
	media := false
	for i := range info.Files {
		fi := &info.Files[i]
		if fi.Pad {
			continue
		}
		m := fs.IsMedia(fi.Path[len(fi.Path)-1])
		media = media || m
		j.Files = append(j.Files, FileJSON{Path: fi.DisplayPath(), Size: fi.Length,
			Completed: t.FileCachedBytes(i), URL: fileURL(f.name, fi), Media: m})
	}
	if media {
		j.Playlist = "/playlist/" + escapePath(f.name+".m3u")
	}
	n := info.NumPieces()
	j.PieceMap = pieceMap(t, n)
	j.Downloading, j.Readers = activityMap(info, n, st)
	return j
}

// cellOf is the piece-map cell of piece i of n: cell c shows pieces
// [c*n/cells, (c+1)*n/cells).
func cellOf(i, n int) int {
	cells := min(n, PieceMapCells)
	i = min(max(i, 0), n-1)
	return ((i+1)*cells - 1) / n
}

// activityMap places the pieces in flight and the readers of st on the
// piece map of n pieces.
func activityMap(info *metainfo.Info, n int, st TorrentStats) (string, []ReaderJSON) {
	readers := []ReaderJSON{}
	if n == 0 {
		return "", readers
	}
	cells := []byte(strings.Repeat("0", min(n, PieceMapCells)))
	for _, p := range st.Downloading {
		if p >= 0 && p < n {
			cells[cellOf(p, n)] = '1'
		}
	}
	for _, r := range st.Readers {
		if r.File < 0 || r.File >= len(info.Files) {
			continue
		}
		f := &info.Files[r.File]
		pos := min(max(r.Pos, 0), f.Length)
		at := f.Offset + max(pos-1, 0)
		end := at
		if r.Window > 0 {
			end = f.Offset + min(pos+r.Window, max(f.Length, 1)) - 1
		}
		rj := ReaderJSON{Path: f.DisplayPath(), Position: r.Pos, Window: r.Window,
			Cell: cellOf(int(at/info.PieceLength), n)}
		rj.WindowEnd = max(rj.Cell, cellOf(int(end/info.PieceLength), n))
		readers = append(readers, rj)
	}
	return string(cells), readers
}

// pieceMap draws n pieces in at most PieceMapCells cells.
func pieceMap(t Torrent, n int) string {
	cells := min(n, PieceMapCells)
	var b strings.Builder
	for c := range cells {
		lo, hi := c*n/cells, (c+1)*n/cells
		have := 0
		for i := lo; i < hi; i++ {
			if t.HavePiece(i) {
				have++
			}
		}
		switch {
		case have == 0:
			b.WriteByte('0')
		case have == hi-lo:
			b.WriteByte('9')
		default:
			b.WriteByte(byte('1' + have*8/(hi-lo)))
		}
	}
	return b.String()
}

func (s *Server) apiCache(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.host.Cache())
}

// apiAdd adds a torrent: a .torrent body (application/x-bittorrent) or
// {"magnet": URI} (application/json). Other content types are refused: a
// form or text/plain is what a cross-site page can send without asking.
func (s *Server) apiAdd(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("body over the %d MiB limit", MaxBodyBytes>>20), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var data []byte
	switch mt {
	case "application/x-bittorrent":
		data = body
	case "application/json":
		var req struct {
			Magnet string `json:"magnet"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Magnet == "" {
			http.Error(w, `want {"magnet": "magnet:?..."}`, http.StatusBadRequest)
			return
		}
		data = []byte(req.Magnet)
	default:
		http.Error(w, "Content-Type must be application/x-bittorrent or application/json", http.StatusUnsupportedMediaType)
		return
	}
	t, err := s.host.Add(data)
	if err != nil {
		apiError(w, err)
		return
	}
	name := t.Name()
	for _, f := range folders(s.host) {
		if f.t.InfoHash() == t.InfoHash() {
			name = f.name
		}
	}
	writeJSON(w, http.StatusCreated, map[string]string{"name": t.Name(), "folder": name, "info_hash": t.InfoHash().String()})
}

func (s *Server) apiRemove(w http.ResponseWriter, r *http.Request) {
	ih, err := metainfo.ParseHash(r.PathValue("ih"))
	if err != nil {
		http.Error(w, "want a 40-hex info-hash", http.StatusBadRequest)
		return
	}
	if err := s.host.Remove(ih); err != nil {
		apiError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiError answers err with the status its kind calls for.
func apiError(w http.ResponseWriter, err error) {
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

// servePlaylist answers /playlist/<folder>.m3u: the torrent's media files
// in path order, as absolute URLs on the host the client asked.
func (s *Server) servePlaylist(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	segs, dir, err := splitPath(strings.TrimPrefix(r.URL.EscapedPath(), "/playlist/"))
	if err != nil || dir || len(segs) != 1 || !strings.HasSuffix(segs[0], ".m3u") {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	t, ok := findFolder(s.host, strings.TrimSuffix(segs[0], ".m3u"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	info := t.Info()
	if info == nil {
		waitingForInfo(w, r)
		return
	}
	folder := strings.TrimSuffix(segs[0], ".m3u")
	var files []*metainfo.File
	for i := range info.Files {
		f := &info.Files[i]
		if !f.Pad && fs.IsMedia(f.Path[len(f.Path)-1]) {
			files = append(files, f)
		}
	}
	sortByPath(files)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	for _, f := range files {
		fmt.Fprintf(&b, "#EXTINF:-1,%s\n%s://%s%s\n", strings.ReplaceAll(f.DisplayPath(), "\n", " "), scheme, r.Host, fileURL(folder, f))
	}
	w.Header().Set("Content-Type", "audio/x-mpegurl; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="playlist.m3u"`)
	io.WriteString(w, b.String())
}

// sortByPath sorts files by their path, component by component, so a
// season's episodes play in order whatever order the torrent lists them.
func sortByPath(files []*metainfo.File) {
	less := func(a, b []string) int {
		for i := 0; i < len(a) && i < len(b); i++ {
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
		return len(a) - len(b)
	}
	slices.SortFunc(files, func(a, b *metainfo.File) int { return less(a.Path, b.Path) })
}
