package fs

import (
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Attribute policy: everything under a torrent folder is immutable, so the
// kernel may cache entries and attributes for a long time. The exception is
// st_blocks of a file still downloading, which moves; its attributes get a
// short timeout so du(1) shows progress.
const (
	longTimeout  = time.Hour
	shortTimeout = time.Second
	// blockSize is st_blksize: programs size their buffers by it (cat, cp),
	// and it matches the largest FUSE read we negotiate.
	blockSize = 1 << 20
	// maxRead is the largest read request the kernel sends (max_read).
	maxRead = 1 << 20
)

// Modes. The root accepts .torrent and .magnet files and mkdir of info-hashes,
// so it is writable by its owner; everything else is read-only.
const (
	modeRoot = syscall.S_IFDIR | 0o755
	modeDir  = syscall.S_IFDIR | 0o555
	modeFile = syscall.S_IFREG | 0o444
	// modeUpload is a .torrent or .magnet file being written into the root.
	modeUpload = syscall.S_IFREG | 0o644
)

// inoOf derives the inode number of a torrent folder (no parts) or of a path
// inside it from the info-hash and the path, so it is the same at every mount.
// FNV-1a, 64 bits; the top bit is cleared because go-fuse hands out automatic
// numbers (used for files being written into the root) from 2^63 up, and 0
// and 1 (the root) are avoided. salt separates the rare collision within one
// torrent (see buildTree).
func inoOf(ih metainfo.Hash, parts []string, salt uint32) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, b := range ih {
		h = (h ^ uint64(b)) * prime64
	}
	for _, p := range parts {
		h = (h ^ '/') * prime64
		for i := 0; i < len(p); i++ {
			h = (h ^ uint64(p[i])) * prime64
		}
	}
	for s := salt; s > 0; s >>= 8 {
		h = (h ^ uint64(s&0xff)) * prime64
	}
	h &^= 1 << 63
	if h < 2 {
		h += 2
	}
	return h
}

// setTimes sets all three times of out to t.
func setTimes(out *fuse.Attr, t time.Time) {
	sec, nsec := uint64(t.Unix()), uint32(t.Nanosecond())
	out.Atime, out.Atimensec = sec, nsec
	out.Mtime, out.Mtimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
}

// fillDirAttr fills the attributes of a read-only folder.
func fillDirAttr(out *fuse.Attr, ino uint64, nlink uint32, mtime time.Time) {
	out.Ino = ino
	out.Mode = modeDir
	out.Nlink = nlink
	out.Size = 4096
	out.Blocks = 0
	out.Blksize = blockSize
	setTimes(out, mtime)
}

// IsMedia tells whether a file name is audio or video, whose readers ask for
// the head and tail at open (and whose heads and tails a session may fetch
// before any open: session.Config.IndexFile).
func IsMedia(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	switch ext {
	case ".mp4", ".m4v", ".mkv", ".mk3d", ".webm", ".avi", ".mov", ".qt",
		".wmv", ".asf", ".flv", ".f4v", ".mpg", ".mpeg", ".m2v", ".vob",
		".ts", ".m2ts", ".mts", ".3gp", ".3g2", ".ogv", ".divx", ".rm", ".rmvb",
		".mp3", ".m4a", ".m4b", ".aac", ".flac", ".ogg", ".oga", ".opus",
		".wav", ".wma", ".ape", ".wv", ".mka", ".alac", ".aiff", ".aif", ".dsf":
		return true
	}
	return false
}

// FolderName is the name the mount gives a torrent's folder before making
// it unique among the root's entries: the HTTP front-end serves the same
// names.
func FolderName(name string, ih metainfo.Hash) string { return sanitizeName(name, ih) }

// sanitizeName turns a torrent's wanted folder name into a valid single path
// component: no '/', no NUL, not "." or "..", not empty, at most nameMax
// bytes of valid UTF-8 where the input was valid.
func sanitizeName(name string, ih metainfo.Hash) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if len(name) > nameMax {
		cut := nameMax
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	if name == "" || name == "." || name == ".." {
		return ih.String()
	}
	return name
}

// nameMax is NAME_MAX less room for the " (abcdef12)" that makes a name
// unique.
const nameMax = 255 - 11

// Extended attributes, on torrent folders, their sub-folders and files.
const (
	xattrInfoHash = "user.swarmfs.infohash"
	// xattrInfoHashV2 is the full v2 (SHA-256) info-hash of a v2 or
	// hybrid torrent; absent otherwise.
	xattrInfoHashV2 = "user.swarmfs.infohash_v2"
	xattrProgress   = "user.swarmfs.progress"
	xattrPeers      = "user.swarmfs.peers"
	// xattrWaiting says why a read of the torrent is stuck, when it waits
	// for a piece no source has; empty otherwise.
	xattrWaiting = "user.swarmfs.waiting"
	// xattrSwarm is what the trackers count in the swarm (scrape), or
	// "unknown".
	xattrSwarm = "user.swarmfs.swarm"
	// xattrList is what listxattr returns: the names, each NUL-terminated.
	xattrList = xattrInfoHash + "\x00" + xattrProgress + "\x00" + xattrPeers + "\x00" + xattrSwarm + "\x00" + xattrWaiting + "\x00"
)

// xattrValue appends the value of attr to buf. progress returns the
// fraction downloaded of the node (file or torrent).
func xattrValue(buf []byte, attr string, t Torrent, progress func() float64) ([]byte, bool) {
	switch attr {
	case xattrInfoHash:
		ih := t.InfoHash()
		return append(buf, ih.String()...), true
	case xattrProgress:
		return strconv.AppendFloat(buf, progress(), 'f', 4, 64), true
	case xattrPeers:
		return strconv.AppendInt(buf, int64(t.Stats().Peers), 10), true
	case xattrWaiting:
		return append(buf, t.Stats().Waiting...), true
	case xattrSwarm:
		if s := t.Stats().Swarm; s != "" {
			return append(buf, s...), true
		}
		return append(buf, "unknown"...), true
	case xattrInfoHashV2:
		if info := t.Info(); info != nil && info.HasV2() {
			return append(buf, info.InfoHashV2.String()...), true
		}
	}
	return buf, false
}

// copyXattr implements the getxattr/listxattr size protocol: an empty dest
// asks for the size, a short one gets ERANGE.
func copyXattr(dest, value []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(value)), 0
	}
	if len(dest) < len(value) {
		return uint32(len(value)), syscall.ERANGE
	}
	return uint32(copy(dest, value)), 0
}

// torrentXattr serves getxattr for any node of torrent t.
func torrentXattr(attr string, dest []byte, t Torrent, progress func() float64) (uint32, syscall.Errno) {
	var buf [80]byte
	v, ok := xattrValue(buf[:0], attr, t, progress)
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyXattr(dest, v)
}

// torrentListxattr serves listxattr for any node of torrent t.
func torrentListxattr(dest []byte, t Torrent) (uint32, syscall.Errno) {
	if info := t.Info(); info != nil && info.HasV2() {
		return copyXattr(dest, []byte(xattrList+xattrInfoHashV2+"\x00"))
	}
	return copyXattr(dest, []byte(xattrList))
}

// clamp01 keeps a progress fraction within [0, 1].
func clamp01(f float64) float64 {
	if !(f >= 0) { // also NaN
		return 0
	}
	if f > 1 {
		return 1
	}
	return f
}
