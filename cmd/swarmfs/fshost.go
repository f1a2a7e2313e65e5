package main

import (
	"context"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/session"
	"github.com/swarmfs/swarmfs/fs"
	"github.com/swarmfs/swarmfs/fs/httpfs"
)

// fsHost shows a session's torrents in the FUSE filesystem: it adapts
// session.Session to fs.Host, so neither package imports the other.
//
// AddTorrentFile, AddMagnet and Remove do not refresh the mount: when the
// filesystem calls them (a .torrent copied in, mkdir, rmdir) it updates its
// own tree afterwards, and a refresh from inside its handler would get there
// first (mkdir of an info-hash then found the folder already there and failed
// with EEXIST). The control socket refreshes after its own changes.
type fsHost struct {
	s *session.Session
	m *httpfs.Metrics // counts reads when the HTTP front-end runs; may be nil
}

var _ fs.Host = fsHost{}

func (h fsHost) Torrents() []fs.Torrent {
	ts := h.s.Torrents()
	out := make([]fs.Torrent, 0, len(ts))
	for _, t := range ts {
		out = append(out, fsTorrent{t, h.m})
	}
	return out
}

func (h fsHost) AddTorrentFile(data []byte) (fs.Torrent, error) {
	t, err := h.s.AddTorrentFile(data)
	if err != nil {
		return nil, err
	}
	return fsTorrent{t, h.m}, nil
}

func (h fsHost) AddMagnet(uri string) (fs.Torrent, error) {
	t, err := h.s.AddMagnet(uri)
	if err != nil {
		return nil, err
	}
	return fsTorrent{t, h.m}, nil
}

func (h fsHost) Remove(ih metainfo.Hash) error { return h.s.Remove(ih) }

// fsTorrent is a session torrent as the filesystem sees it; the embedded
// torrent gives InfoHash, Name, Info, InfoReady and Time.
type fsTorrent struct {
	*session.Torrent
	m *httpfs.Metrics
}

var _ fs.Torrent = fsTorrent{}

func (f fsTorrent) FileCachedBytes(i int) int64 { return f.Torrent.FileBytesCompleted(i) }

func (f fsTorrent) NewReader(file int, media bool) fs.Reader {
	r, err := f.Torrent.NewReader(file, media)
	if err != nil {
		return errReader{err}
	}
	if f.m != nil {
		return meteredReader{r, f.m}
	}
	return r
}

func (f fsTorrent) Stats() fs.TorrentStats {
	s := f.Torrent.Stats()
	var p float64
	if s.TotalLength > 0 {
		p = float64(s.BytesCompleted) / float64(s.TotalLength)
	}
	return fs.TorrentStats{Progress: p, Peers: s.Peers, DownloadRate: s.DownloadRate, UploadRate: s.UploadRate, Waiting: s.Waiting, Swarm: swarmString(s)}
}

// errReader fails every read with the error that prevented opening.
type errReader struct{ err error }

func (e errReader) ReadAt(context.Context, []byte, int64) (int, error) { return 0, e.err }
func (e errReader) Close() error                                       { return nil }
