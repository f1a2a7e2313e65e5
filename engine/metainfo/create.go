package metainfo

import (
	"cmp"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
	"github.com/swarmfs/swarmfs/engine/merkle"
)

// Piece lengths Create picks from when CreateOptions.PieceLength is 0.
const (
	MinAutoPieceLength = 16 << 10
	MaxAutoPieceLength = 16 << 20
	// targetPieces is the most pieces an automatic piece length aims for:
	// the smallest power of two giving at most this many, so a torrent
	// lands between 1000 and 2000 pieces unless a bound is hit.
	targetPieces = 2000
)

// CreateOptions tunes Create. The zero value makes a public torrent without
// trackers, dated now, with an automatic piece length.
type CreateOptions struct {
	// PieceLength must be a power of two from 16 KiB to MaxPieceLength; 0
	// picks one with DefaultPieceLength.
	PieceLength int64
	// Trackers are announce tiers (BEP 12); the first URL also becomes
	// announce. Empty URLs and tiers are dropped.
	Trackers [][]string
	// WebSeeds become url-list (BEP 19).
	WebSeeds []string
	Comment  string
	// Private sets the BEP 27 flag (part of the info-hash).
	Private bool
	// CreatedBy defaults to "swarmfs".
	CreatedBy string
	// NoDate leaves out the creation date, so the same input always gives
	// the same .torrent bytes.
	NoDate bool
	// Name defaults to the base name of root.
	Name string
	// FollowSymlinks includes symlinks (inside a folder) that point at
	// regular files, with the target's content. Symlinks to folders are
	// never followed (they can loop). Without it every symlink inside the
	// folder is left out; see the package documentation.
	FollowSymlinks bool
	// Format chooses v1 (the zero value, read by every client), v2 or
	// hybrid (BEP 52).
	Format Format
}

// DefaultPieceLength returns the piece length Create picks for total bytes:
// the smallest power of two from 16 KiB to 16 MiB giving at most 2000 pieces.
func DefaultPieceLength(total int64) int64 {
	pl := int64(MinAutoPieceLength)
	for pl < MaxAutoPieceLength && (total+pl-1)/pl > targetPieces {
		pl *= 2
	}
	return pl
}

// srcFile is one file to hash: where it is on disk and where it goes in the
// torrent. A pad file (BEP 47) has no osPath and reads as zeros.
type srcFile struct {
	osPath string
	path   []string // components inside the torrent
	length int64
	pad    bool
}

// Create builds a torrent from root, a file or a folder. See CreateContext.
func Create(root string, opts CreateOptions) (*MetaInfo, error) {
	return CreateContext(context.Background(), root, opts)
}

// CreateContext builds a torrent from root. A folder yields a multi-file
// torrent (even with one file inside) whose files are sorted by path; a file
// yields a single-file torrent. Empty files are included; a torrent with no
// bytes at all is an error. Pieces are hashed with large sequential reads and
// SHA-1 (and for v2 SHA-256) runs on every core. Hashing stops when ctx is
// done.
//
// A v2 or hybrid torrent comes with its piece layers (Info.Files[i].V2) and
// has the info-hashes libtorrent gives the same files with the same piece
// length: a hybrid's v1 list carries a pad file (".pad/<size>", attr "p")
// after every file that does not end on a piece boundary, the last one
// included, unless the torrent has a single file.
func CreateContext(ctx context.Context, root string, opts CreateOptions) (*MetaInfo, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("metainfo: create: %w", err)
		}
		name = filepath.Base(abs)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("metainfo: create: %q cannot name a torrent; set CreateOptions.Name", name)
	}

	var files []srcFile
	single := false
	switch {
	case st.Mode().IsRegular():
		single = true
		files = []srcFile{{osPath: root, path: []string{name}, length: st.Size()}}
	case st.IsDir():
		files, err = listFiles(root, opts.FollowSymlinks)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("metainfo: create: %s holds no files", root)
		}
		if len(files) > MaxFiles {
			return nil, fmt.Errorf("metainfo: create: %s holds %d files, more than %d", root, len(files), MaxFiles)
		}
	default:
		return nil, fmt.Errorf("metainfo: create: %s is neither a regular file nor a folder", root)
	}
	var total int64
	for _, f := range files {
		total += f.length
	}
	if total == 0 {
		return nil, fmt.Errorf("metainfo: create: %s holds no data (%d files, all empty); a torrent needs at least one byte", root, len(files))
	}

	pl := opts.PieceLength
	if pl == 0 {
		pl = DefaultPieceLength(total)
	}
	if pl < MinAutoPieceLength || pl > MaxPieceLength || pl&(pl-1) != 0 {
		return nil, fmt.Errorf("metainfo: create: piece length %d is not a power of two from %d to %d", pl, MinAutoPieceLength, MaxPieceLength)
	}

	if opts.Format < FormatV1 || opts.Format > FormatHybrid {
		return nil, fmt.Errorf("metainfo: create: unknown format %d", opts.Format)
	}
	stream, total := files, total
	if opts.Format != FormatV1 {
		stream, total = padFiles(files, pl)
		if (total-1)/pl+1 > MaxPieces {
			return nil, fmt.Errorf("metainfo: create: %d pieces of %d bytes, more than %d; choose a larger piece length", (total-1)/pl+1, pl, MaxPieces)
		}
	}
	pieces, nodes, err := hashPieces(ctx, stream, total, pl, opts.Format != FormatV2, opts.Format != FormatV1)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}

	oi := outInfo{Name: name, PieceLength: pl, Pieces: pieces}
	if opts.Private {
		oi.Private = 1
	}
	var layers map[[32]byte][]byte
	if opts.Format != FormatV1 {
		oi.MetaVersion = 2
		oi.FileTree, layers = fileTreeOf(stream, nodes, pl)
	}
	switch {
	case opts.Format == FormatV2:
	case single:
		oi.Length = total
	default:
		oi.Files = make([]outFile, len(stream))
		for i, f := range stream {
			oi.Files[i] = outFile{Length: f.length, Path: f.path}
			if f.pad {
				oi.Files[i].Attr = "p"
			}
		}
	}
	infoBytes, err := bencode.Marshal(oi)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	info, err := ParseInfo(infoBytes)
	if err == nil && layers != nil {
		err = info.setPieceLayers(layers)
	}
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: own info dictionary rejected: %w", err)
	}

	m := &MetaInfo{
		InfoBytes:  infoBytes,
		Info:       info,
		InfoHash:   info.InfoHash(),
		InfoHashV2: info.InfoHashV2,
		Comment:    opts.Comment,
		CreatedBy:  cmp.Or(opts.CreatedBy, "swarmfs"),
		URLList:    cleanList(opts.WebSeeds),
	}
	if !opts.NoDate {
		m.CreationDate = time.Now().Truncate(time.Second).UTC()
	}
	var tiers [][]string
	urls := 0
	for _, t := range opts.Trackers {
		if t = cleanList(t); len(t) > 0 {
			tiers = append(tiers, t)
			urls += len(t)
		}
	}
	if len(tiers) > 0 {
		m.Announce = tiers[0][0]
		if urls > 1 {
			m.AnnounceList = tiers
		}
	}
	return m, nil
}

// outInfo is the info dictionary Create writes; zeebo sorts the keys.
type outInfo struct {
	FileTree    map[string]any `bencode:"file tree,omitempty"`
	Files       []outFile      `bencode:"files,omitempty"`
	Length      int64          `bencode:"length,omitempty"`
	MetaVersion int64          `bencode:"meta version,omitempty"`
	Name        string         `bencode:"name"`
	PieceLength int64          `bencode:"piece length"`
	Pieces      []byte         `bencode:"pieces,omitempty"`
	Private     int64          `bencode:"private,omitempty"`
}

type outFile struct {
	Attr   string   `bencode:"attr,omitempty"`
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

// cleanList trims URLs and drops empty and repeated ones.
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// listFiles walks the folder root and returns its regular files sorted by
// path, component by component. Anything that is neither a folder, a regular
// file nor a symlink is an error: a FIFO or device cannot be shared.
func listFiles(root string, followSymlinks bool) ([]srcFile, error) {
	// WalkDir does not follow a root that is a link; the caller named it,
	// so resolve it first.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	var files []srcFile
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("metainfo: create: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		var size int64
		switch t := d.Type(); {
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("metainfo: create: %w", err)
			}
			size = fi.Size()
		case t&fs.ModeSymlink != 0:
			if !followSymlinks {
				return nil
			}
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("metainfo: create: symlink %s: %w", p, err)
			}
			if !fi.Mode().IsRegular() {
				return nil // a link to a folder (or worse) is never followed
			}
			size = fi.Size()
		default:
			return fmt.Errorf("metainfo: create: %s is not a regular file (%v)", p, t)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("metainfo: create: %w", err)
		}
		files = append(files, srcFile{osPath: p, path: strings.Split(filepath.ToSlash(rel), "/"), length: size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b srcFile) int { return slices.Compare(a.path, b.path) })
	return files, nil
}

// hashPieces reads the files as one stream and returns, as asked, the
// concatenated SHA-1 of each piece (v1) and each piece's v2 node: the root
// of the piece's part of its file's Merkle tree (v2; files must then be
// piece-aligned by pad files, see padFiles). One goroutine reads chunks of
// whole pieces (at least 4 MiB, so small pieces still get large reads);
// one worker per core hashes them. Memory is bounded by the chunk buffers,
// which are recycled.
func hashPieces(ctx context.Context, files []srcFile, total, pl int64, v1, v2 bool) ([]byte, []merkle.Hash, error) {
	numPieces := (total + pl - 1) / pl
	var pieces []byte
	if v1 {
		pieces = make([]byte, numPieces*sha1.Size)
	}
	var nodes []merkle.Hash
	var spans pieceSpans
	if v2 {
		nodes = make([]merkle.Hash, numPieces)
		spans = newPieceSpans(files, pl)
	}

	perChunk := max(1, (4<<20)/pl)
	chunk := min(perChunk*pl, numPieces*pl)
	workers := runtime.GOMAXPROCS(0)
	nbuf := max(2, min(workers+2, int((256<<20)/chunk)))

	type job struct {
		first int64 // index of the chunk's first piece
		buf   []byte
	}
	free := make(chan []byte, nbuf)
	for range nbuf {
		free <- make([]byte, chunk)
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				for off := int64(0); off < int64(len(j.buf)); off += pl {
					end := min(off+pl, int64(len(j.buf)))
					idx := j.first + off/pl
					if v1 {
						sum := sha1.Sum(j.buf[off:end])
						copy(pieces[idx*sha1.Size:], sum[:])
					}
					if v2 {
						n, levels := spans.at(idx)
						nodes[idx] = merkle.DataRoot(j.buf[off:off+n], levels)
					}
				}
				free <- j.buf[:cap(j.buf)]
			}
		})
	}

	r := &concatReader{files: files}
	var err error
	for done := int64(0); done < total; {
		if err = ctx.Err(); err != nil {
			break
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		n := min(chunk, total-done)
		if _, err = io.ReadFull(r, buf[:n]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = errors.New("files shrank while hashing")
			}
			break
		}
		jobs <- job{first: done / pl, buf: buf[:n]}
		done += n
	}
	if err == nil {
		// Visit the files past the last byte read: the last file must not
		// have grown, and trailing empty files need no reading.
		var one [1]byte
		if _, rerr := r.Read(one[:]); rerr != io.EOF {
			err = cmp.Or(rerr, errors.New("files grew while hashing"))
		}
	}
	close(jobs)
	wg.Wait()
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	return pieces, nodes, nil
}

// concatReader reads files one after another as a single stream, insisting
// that each holds exactly the length listed when the walk saw it.
type concatReader struct {
	files   []srcFile
	i       int
	cur     *os.File
	left    int64
	padDone int64 // bytes of the current pad file given out
}

func (c *concatReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if c.i >= len(c.files) {
				return 0, io.EOF
			}
			f := c.files[c.i]
			if f.length == 0 {
				c.i++
				continue
			}
			if f.pad {
				n := min(int64(len(p)), f.length-c.padDone)
				clear(p[:n])
				c.padDone += n
				if c.padDone == f.length {
					c.i++
					c.padDone = 0
				}
				return int(n), nil
			}
			fh, err := os.Open(f.osPath)
			if err != nil {
				return 0, err
			}
			c.cur, c.left = fh, f.length
		}
		if c.left == 0 {
			if err := c.finishFile(); err != nil {
				return 0, err
			}
			continue
		}
		if int64(len(p)) > c.left {
			p = p[:c.left]
		}
		n, err := c.cur.Read(p)
		c.left -= int64(n)
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			return 0, fmt.Errorf("%s shrank while hashing", c.files[c.i].osPath)
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.files[c.i].osPath, err)
		}
	}
}

// finishFile checks the current file did not grow and moves to the next.
func (c *concatReader) finishFile() error {
	f := c.files[c.i]
	st, err := c.cur.Stat()
	c.cur.Close()
	c.cur = nil
	c.i++
	if err != nil {
		return fmt.Errorf("%s: %w", f.osPath, err)
	}
	if st.Size() != f.length {
		return fmt.Errorf("%s changed size while hashing (%d bytes, then %d)", f.osPath, f.length, st.Size())
	}
	return nil
}

// Close closes the file being read, if any.
func (c *concatReader) Close() error {
	if c.cur == nil {
		return nil
	}
	err := c.cur.Close()
	c.cur = nil
	return err
}
