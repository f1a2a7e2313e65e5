package fs

import (
	"context"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Host is the set of torrents the filesystem shows. The command line adapts
// the engine to it. Its methods are called from FUSE request goroutines,
// concurrently, and must not call back into the filesystem synchronously
// except through Server.Refresh, which is safe from anywhere.
type Host interface {
	// Torrents returns the torrents to show, in any order. Called at mount
	// (once Options.HostReady is closed, if set) and by Refresh.
	Torrents() []Torrent
	// AddTorrentFile adds the torrent whose .torrent bytes were copied into
	// the mount's root. An error wrapping metainfo.ErrInvalid means the
	// bytes are not a torrent (the close(2) fails with EINVAL); one wrapping
	// os.ErrExist means it is already added (EEXIST).
	AddTorrentFile(data []byte) (Torrent, error)
	// AddMagnet adds a torrent by magnet URI: the content of a .magnet file,
	// or "magnet:?xt=urn:btih:<hex>" for a mkdir of a 40-hex name. Errors
	// as for AddTorrentFile (metainfo.ErrInvalidMagnet gives EINVAL).
	AddMagnet(uri string) (Torrent, error)
	// Remove stops and forgets the torrent (rmdir of its folder). An error
	// wrapping os.ErrNotExist gives ENOENT.
	Remove(ih metainfo.Hash) error
}

// Torrent is one torrent as the filesystem sees it. All methods must be safe
// for concurrent use and cheap, except NewReader, which may do a little work.
// They are called from FUSE request goroutines: none may wait on the swarm.
//
// A Torrent may also implement interface{ Time() time.Time } to give the
// time shown as the mtime of its folder and files (the .torrent's creation
// date, or when it was added); otherwise the time it first appeared in this
// mount is used.
type Torrent interface {
	// InfoHash identifies the torrent; the filesystem keeps the first Torrent
	// it sees for a given hash.
	InfoHash() metainfo.Hash
	// Name is the folder name wanted: the info name, or the magnet's dn,
	// or the hex info-hash until the metadata arrives. The filesystem
	// sanitises it and makes it unique among the root's entries.
	Name() string
	// Info returns the metadata, or nil until it is known. Once non-nil it
	// never changes.
	Info() *metainfo.Info
	// InfoReady is closed when Info becomes non-nil (already closed if it
	// is).
	InfoReady() <-chan struct{}
	// NewReader returns a reader of file (an index into Info().Files). It
	// is called once per open(2) and the reader lives until the last
	// close; media is set for audio and video files, whose head and tail
	// are worth fetching at open (container indexes live there).
	NewReader(file int, media bool) Reader
	// Stats returns a snapshot for the extended attributes.
	Stats() TorrentStats
	// FileCachedBytes returns how many bytes of file are verified and
	// cached; it becomes st_blocks, so du(1) shows progress.
	FileCachedBytes(file int) int64
}

// TorrentStats is a snapshot of a torrent's progress.
type TorrentStats struct {
	Progress     float64 // fraction of the wanted bytes verified, 0..1
	Peers        int     // connected peers
	DownloadRate float64 // bytes per second
	UploadRate   float64 // bytes per second
	// Waiting names a read waiting for a piece no source has ("" when
	// none): the user.swarmfs.waiting attribute.
	Waiting string
	// Swarm is what the trackers count, e.g. "seeders 0 leechers 3
	// completed 5 (no seeders)"; "" while unknown.
	Swarm string
}

// Reader reads one file of a torrent for one open file handle.
type Reader interface {
	// ReadAt reads len(p) bytes at off, an offset within the file. It
	// blocks until the pieces under the range are verified, and fills p
	// fully unless the range reaches end of file, where it returns the
	// bytes up to the end and io.EOF. When ctx is done (the reading program
	// was interrupted, the read timed out, the torrent was removed, or the
	// filesystem is unmounting) it returns ctx.Err() promptly. It may be
	// called concurrently (like io.ReaderAt) and must not retain ctx or p
	// after returning.
	//
	// The ctx's Done channel is made lazily: a reader that checks whether
	// the data is there before it waits, and calls ctx.Done only to wait,
	// makes a cached read cost no allocation.
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	// Close releases the reader; it is called once, after the last ReadAt.
	Close() error
}

// Options configure a mount. The zero value is usable.
type Options struct {
	// ReadTimeout bounds how long a read, or a lookup inside a folder
	// whose metadata has not arrived, waits for the swarm before failing
	// with EIO. Zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// Debug logs every FUSE request and reply.
	Debug bool
	// AllowOther lets other local users read the mount: list it, read its
	// files, get their extended attributes. Only the mounting user and
	// root may add or remove torrents (see perm.go); others get EACCES.
	// Unless swarmfs runs as root, it needs user_allow_other in
	// /etc/fuse.conf.
	AllowOther bool
	// Logf receives one line per notable event (a bad torrent copied in,
	// a read that timed out). Nil means log.Printf.
	Logf func(format string, args ...any)
	// FsName is the source shown by mount(8) and df(1). Empty means
	// "swarmfs".
	FsName string
	// HostReady, if set, lets the mount come up before the Host can
	// answer (its cache still opening): the Host is not called until
	// HostReady is closed, and until its torrents are shown every lookup,
	// listing and change in the root waits, so a program started with
	// the mount finds them rather than an empty folder. Nil means the
	// Host answers at once.
	HostReady <-chan struct{}
}

// DefaultReadTimeout is the ReadTimeout used when Options leave it zero: long
// enough for a slow swarm, short enough that a file manager is not stuck
// forever on a torrent nobody seeds.
const DefaultReadTimeout = 10 * time.Minute

// Limits on what can be written into the root.
const (
	// MaxTorrentFileSize bounds a .torrent copied into the root; it is
	// held in memory until closed. It is the limit of every other way in.
	MaxTorrentFileSize = metainfo.MaxTorrentSize
	// MaxMagnetFileSize bounds a .magnet file copied into the root.
	MaxMagnetFileSize = 64 << 10
)
