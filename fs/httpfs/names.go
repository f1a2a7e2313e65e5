package httpfs

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/fs"
)

// folder is a torrent under the name the server shows it by.
type folder struct {
	name string
	t    Torrent
}

// folders names every torrent of the host as the mount does: the torrent's
// name sanitised (fs.FolderName), made unique with the start of its
// info-hash. Collisions go by info-hash order (the mount goes by the order
// torrents came in, so a rare clash of names may be resolved the other
// way round). Sorted by name.
func folders(h Host) []folder {
	ts := h.Torrents()
	slices.SortFunc(ts, func(a, b Torrent) int {
		ha, hb := a.InfoHash(), b.InfoHash()
		return strings.Compare(string(ha[:]), string(hb[:]))
	})
	used := map[string]bool{}
	out := make([]folder, 0, len(ts))
	for _, t := range ts {
		ih := t.InfoHash()
		hexs := ih.String()
		want := fs.FolderName(t.Name(), ih)
		name := hexs + " (" + hexs[:8] + ")"
		for _, n := range []string{want, want + " (" + hexs[:8] + ")", hexs} {
			if !used[n] {
				name = n
				break
			}
		}
		used[name] = true
		out = append(out, folder{name: name, t: t})
	}
	slices.SortFunc(out, func(a, b folder) int { return strings.Compare(a.name, b.name) })
	return out
}

// findFolder returns the torrent shown as name.
func findFolder(h Host, name string) (Torrent, bool) {
	for _, f := range folders(h) {
		if f.name == name {
			return f.t, true
		}
	}
	return nil, false
}

// errBadPath is a path the server refuses to look up (400).
var errBadPath = errors.New("bad path")

// splitPath decodes an escaped path (after its route's prefix) into its
// segments, refusing anything that could mean another place than it says:
// empty, "." or ".." segments, an encoded '/', a '\', NUL, an invalid
// escape, a segment over MaxSegmentBytes, a
// path over MaxPathBytes. A trailing '/' is reported as dir.
func splitPath(escaped string) (segs []string, dir bool, err error) {
	if len(escaped) > MaxPathBytes {
		return nil, false, errBadPath
	}
	if escaped == "" {
		return nil, true, nil
	}
	if strings.HasSuffix(escaped, "/") {
		dir = true
		escaped = escaped[:len(escaped)-1]
	}
	for _, e := range strings.Split(escaped, "/") {
		s, err := url.PathUnescape(e)
		if err != nil || s == "" || s == "." || s == ".." || len(s) > MaxSegmentBytes ||
			strings.ContainsAny(s, "/\\\x00") {
			return nil, false, errBadPath
		}
		segs = append(segs, s)
	}
	return segs, dir, nil
}

// escapePath escapes each segment of a "/"-separated path for a URL.
func escapePath(segs ...string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return strings.Join(out, "/")
}

// fileURL is the path of a file of a torrent shown as folder.
func fileURL(folder string, f *metainfo.File) string {
	return "/files/" + escapePath(append([]string{folder}, f.Path...)...)
}

// mediaTypes names the types of media files mime.TypeByExtension may not
// know (it depends on the system's mime.types).
var mediaTypes = map[string]string{
	".mkv": "video/x-matroska", ".mk3d": "video/x-matroska", ".mka": "audio/x-matroska",
	".mp4": "video/mp4", ".m4v": "video/mp4", ".m4a": "audio/mp4", ".m4b": "audio/mp4",
	".webm": "video/webm", ".avi": "video/x-msvideo", ".mov": "video/quicktime",
	".ts": "video/mp2t", ".m2ts": "video/mp2t", ".mts": "video/mp2t",
	".flac": "audio/flac", ".opus": "audio/ogg", ".ogg": "audio/ogg", ".oga": "audio/ogg",
	".ogv": "video/ogg", ".mp3": "audio/mpeg", ".srt": "application/x-subrip",
	".vtt": "text/vtt", ".m3u": "audio/x-mpegurl", ".torrent": "application/x-bittorrent",
}
