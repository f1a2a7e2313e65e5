package httpfs

import (
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// entry is one line of a folder listing.
type entry struct {
	Name      string `json:"name"`
	Dir       bool   `json:"dir"`
	Size      int64  `json:"size"`
	Completed int64  `json:"completed"`
	URL       string `json:"url"`
}

// listing is a folder listing, as JSON.
type listing struct {
	Path    string  `json:"path"`
	Entries []entry `json:"entries"`
}

// serveFiles serves /files/...: the torrent folders, a folder inside a
// torrent, or a file.
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	esc := strings.TrimPrefix(strings.TrimPrefix(r.URL.EscapedPath(), "/files"), "/")
	segs, dir, err := splitPath(esc)
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if len(segs) == 0 {
		if r.URL.EscapedPath() == "/files" {
			http.Redirect(w, r, "/files/", http.StatusMovedPermanently)
			return
		}
		s.listRoot(w, r)
		return
	}
	t, ok := findFolder(s.host, segs[0])
	if !ok {
		http.NotFound(w, r)
		return
	}
	info := t.Info()
	if info == nil {
		waitingForInfo(w, r)
		return
	}
	rel := segs[1:]
	if !dir {
		for i := range info.Files {
			f := &info.Files[i]
			if !f.Pad && slices.Equal(f.Path, rel) {
				s.serveFile(w, r, t, info, i)
				return
			}
		}
	}
	var ents []entry
	seen := map[string]bool{}
	for i := range info.Files {
		f := &info.Files[i]
		if f.Pad || len(f.Path) <= len(rel) || !slices.Equal(f.Path[:len(rel)], rel) {
			continue
		}
		name := f.Path[len(rel)]
		if seen[name] {
			continue
		}
		seen[name] = true
		if len(f.Path) == len(rel)+1 {
			ents = append(ents, entry{Name: name, Size: f.Length, Completed: t.FileCachedBytes(i), URL: fileURL(segs[0], f)})
		} else {
			ents = append(ents, entry{Name: name, Dir: true, URL: "/files/" + escapePath(append(slices.Clone(segs), name)...) + "/"})
		}
	}
	if ents == nil && len(rel) > 0 {
		http.NotFound(w, r)
		return
	}
	if !dir {
		http.Redirect(w, r, "/files/"+escapePath(segs...)+"/", http.StatusMovedPermanently)
		return
	}
	s.list(w, r, segs, ents)
}

// InfoRetryAfter is the Retry-After of a 503 for a torrent whose metadata
// (a magnet's) has not arrived yet.
const InfoRetryAfter = 5 * time.Second

// waitingForInfo answers a request for a torrent whose metadata has not
// arrived: its files are not known yet, neither there nor missing, so
// the answer is 503 with a Retry-After, which players and scripts retry,
// rather than a 404 they would give up on.
func waitingForInfo(w http.ResponseWriter, r *http.Request) {
	const msg = "waiting for metadata: this torrent was added by magnet and its file list has not arrived from the swarm yet; retry shortly"
	w.Header().Set("Retry-After", fmt.Sprint(int(InfoRetryAfter.Seconds())))
	if wantsJSON(r) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": msg})
		return
	}
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// listRoot lists the torrent folders.
func (s *Server) listRoot(w http.ResponseWriter, r *http.Request) {
	var ents []entry
	for _, f := range folders(s.host) {
		e := entry{Name: f.name, Dir: true, URL: "/files/" + escapePath(f.name) + "/"}
		st := f.t.Stats()
		e.Size, e.Completed = st.Size, st.Completed
		ents = append(ents, e)
	}
	s.list(w, r, nil, ents)
}

var listTmpl = template.Must(template.New("list").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Path}}</title><style>body{font-family:sans-serif;margin:1em}td{padding:.2em .6em}</style></head>
<body><h1>{{.Path}}</h1><p><a href="/">status</a>{{if .Up}} · <a href="{{.Up}}">..</a>{{end}}</p><table>
{{range .Entries}}<tr><td><a href="{{.URL}}">{{.Name}}{{if .Dir}}/{{end}}</a></td><td>{{if not .Dir}}{{.Size}} bytes{{end}}</td></tr>
{{end}}</table></body></html>
`))

// list answers a listing as JSON (Accept: application/json) or HTML.
func (s *Server) list(w http.ResponseWriter, r *http.Request, segs []string, ents []entry) {
	slices.SortFunc(ents, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	if ents == nil {
		ents = []entry{}
	}
	l := listing{Path: "/" + strings.Join(segs, "/"), Entries: ents}
	w.Header().Set("Vary", "Accept")
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, l)
		return
	}
	up := ""
	if len(segs) > 0 {
		up = "/files/" + escapePath(segs[:len(segs)-1]...)
		if len(segs) > 1 {
			up += "/"
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	listTmpl.Execute(w, struct {
		listing
		Up string
	}{l, up})
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// serveFile serves file i of t with ServeContent, over a reader that opens
// the torrent's Reader at the first byte sent.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, t Torrent, info *metainfo.Info, i int) {
	f := &info.Files[i]
	name := f.Path[len(f.Path)-1]
	ih := t.InfoHash()
	// The content of a torrent's file never changes: the info-hash and
	// the index name it for good.
	w.Header().Set("ETag", fmt.Sprintf(`"%s-%d"`, ih.String(), i))
	w.Header().Set("Accept-Ranges", "bytes")
	// A Content-Type set here keeps ServeContent from sniffing, which
	// would read the file's head before the range asked for.
	ct := mediaTypes[strings.ToLower(path.Ext(name))]
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	// A torrent's HTML or SVG opened in the browser must not run scripts
	// with this origin's rights (the API trusts same-origin requests):
	// sandboxed, it gets an origin of its own and no scripts.
	w.Header().Set("Content-Security-Policy", "sandbox")
	var mtime time.Time
	if tt, ok := t.(interface{ Time() time.Time }); ok {
		mtime = tt.Time()
	}
	rs := newReadSeeker(r.Context(), s, t, info, i, fs.IsMedia(name))
	rs.conn = connReadersOf(r)
	defer rs.Close()
	http.ServeContent(directWriter{w, rs}, r, name, mtime, rs)
}
