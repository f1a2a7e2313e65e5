package httpfs

import (
	"context"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Host is the set of torrents the server shows. The command line adapts the
// session to it. Its methods are called from request goroutines,
// concurrently.
type Host interface {
	// Torrents returns the torrents to show, in any order.
	Torrents() []Torrent
	// Add adds a torrent from .torrent bytes or a magnet URI. Errors
	// wrapping metainfo.ErrInvalid or metainfo.ErrInvalidMagnet answer
	// 400, os.ErrExist 409.
	Add(data []byte) (Torrent, error)
	// Remove stops and forgets a torrent; os.ErrNotExist answers 404.
	Remove(ih metainfo.Hash) error
	// Cache describes the piece cache.
	Cache() CacheStats
}

// Torrent is one torrent as the server sees it. All methods must be safe
// for concurrent use and must not wait on the swarm.
//
// A Torrent may also implement interface{ Time() time.Time }, the time
// served as Last-Modified (the FUSE mount shows the same as the mtime).
type Torrent interface {
	InfoHash() metainfo.Hash
	// Name is the folder name wanted (untrusted; sanitised by the server
	// exactly as the FUSE mount does, see fs.FolderName).
	Name() string
	// Info returns the metadata, or nil until it is known; once non-nil
	// it never changes.
	Info() *metainfo.Info
	// NewReader returns a reader of file (an index into Info().Files);
	// media asks for its head and tail at once.
	NewReader(file int, media bool) (Reader, error)
	// Stats returns a snapshot of the torrent's progress and swarm.
	Stats() TorrentStats
	// FileCachedBytes counts the verified bytes of file.
	FileCachedBytes(file int) int64
	// HavePiece tells whether piece i is verified and cached.
	HavePiece(i int) bool
}

// Reader reads one file of a torrent (see fs.Reader, whose contract it
// shares): ReadAt blocks until the range is verified, fills p unless it
// reaches end of file, and returns ctx.Err() promptly once ctx is done.
type Reader interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close() error
}

// TorrentStats is a snapshot of one torrent, served by the JSON API and
// exported as metrics.
type TorrentStats struct {
	Size         int64   `json:"size"`
	Completed    int64   `json:"completed"`
	Downloaded   int64   `json:"downloaded"`
	Uploaded     int64   `json:"uploaded"`
	Wasted       int64   `json:"wasted"`
	DownloadRate float64 `json:"download_rate"`
	UploadRate   float64 `json:"upload_rate"`
	Peers        int     `json:"peers"`
	Seeds        int     `json:"seeds"`
	Banned       int     `json:"banned"`
	Pieces       int     `json:"pieces"`
	PiecesHave   int     `json:"pieces_have"`
	CachedBytes  int64   `json:"cached_bytes"`
	HashFailures int64   `json:"hash_failures"`
	// Requests counts the picker's costly decisions (duplicates, cancels).
	Requests RequestCounters `json:"requests"`
	// EncryptedPeers and PlainPeers split Peers by MSE/PE; TCPPeers and
	// UTPPeers by transport.
	EncryptedPeers int `json:"encrypted_peers"`
	PlainPeers     int `json:"plain_peers"`
	TCPPeers       int `json:"tcp_peers"`
	UTPPeers       int `json:"utp_peers"`
	// Downloading lists the pieces being fetched, ascending; the JSON
	// shows them in the piece map's cells (TorrentJSON.Downloading).
	Downloading []int `json:"-"`
	// Readers are the torrent's open readers (FUSE handles and HTTP
	// requests); the JSON shows them as TorrentJSON.Readers.
	Readers []ReaderStats `json:"-"`
	// Ratio is uploaded over downloaded (or completed, when more);
	// SeedState "downloading", "seeding" or "goal reached".
	Ratio     float64 `json:"ratio"`
	SeedState string  `json:"seed_state,omitempty"`
	// Swarm is what the trackers count (scrape); nil while unknown.
	// NoSeeders: the torrent waits while they count no seeder.
	Swarm     *SwarmCounts `json:"swarm,omitempty"`
	NoSeeders bool         `json:"no_seeders,omitempty"`
	// SeedGoal is the seeding goal ("" for none); SuperSeeding says
	// BEP 16 is on.
	SeedGoal     string `json:"seed_goal,omitempty"`
	SuperSeeding bool   `json:"super_seeding,omitempty"`
	// Waiting names a read waiting for a piece no source has.
	Waiting string `json:"waiting,omitempty"`
	// WebSeeds and Trackers are the host's own records of the torrent's
	// web seeds and trackers, shown as "swarmfs status --json" shows them
	// (this package does not know the engine's types).
	WebSeeds any `json:"web_seeds,omitempty"`
	Trackers any `json:"trackers,omitempty"`
}

// RequestCounters count the block requests that cost bandwidth: asked of
// a second peer (late urgent blocks, endgame), withdrawn, timed out. The
// same as "swarmfs status --json" shows.
type RequestCounters struct {
	DupLate    int `json:"dup_late"`
	DupEndgame int `json:"dup_endgame"`
	Withdrawn  int `json:"withdrawn"`
	TimedOut   int `json:"timed_out"`
}

// ReaderStats is where an open reader of a torrent is.
type ReaderStats struct {
	File int // index in the info's Files
	// Pos is the file offset just past its last sequential read; -1
	// before its first read.
	Pos int64
	// Window is how many bytes past Pos are being fetched ahead.
	Window int64
}

// SwarmCounts is what a tracker counts in a torrent's swarm.
type SwarmCounts struct {
	Seeders   int `json:"seeders"`
	Leechers  int `json:"leechers"`
	Completed int `json:"completed"`
}

// CacheStats describes the piece cache.
type CacheStats struct {
	Size     int64 `json:"size"`
	Capacity int64 `json:"capacity"`
	Disk     int64 `json:"disk"`
}

// Options configure a Server. The zero value serves loopback clients with
// no authentication.
type Options struct {
	// Auth is "USER:PASSWORD" for HTTP basic authentication; empty means
	// none.
	Auth string
	// Token, if set, is accepted as "Authorization: Bearer TOKEN", or as
	// the password of basic authentication with any user name (so a
	// player can open http://x:TOKEN@host/files/...).
	Token string
	// ReadTimeout bounds how long one read waits for the swarm; zero
	// means DefaultReadTimeout.
	ReadTimeout time.Duration
	// Metrics receives the read latencies of the server; nil makes one.
	Metrics *Metrics
	// Logf receives one line per notable event; nil means log.Printf.
	Logf func(format string, args ...any)
}

// DefaultReadTimeout is the ReadTimeout used when Options leave it zero,
// as for the FUSE mount.
const DefaultReadTimeout = 10 * time.Minute

// Limits on requests.
const (
	// MaxPathBytes bounds the path of a request under /files/.
	MaxPathBytes = 8 << 10
	// MaxSegmentBytes bounds one decoded path segment (NAME_MAX).
	MaxSegmentBytes = 255
	// MaxBodyBytes bounds a POST body: a .torrent or a magnet.
	MaxBodyBytes = metainfo.MaxTorrentSize
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers.
	ReadHeaderTimeout = 10 * time.Second
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes = 64 << 10
)
