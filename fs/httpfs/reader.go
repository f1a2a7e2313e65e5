package httpfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// ReadChunk is the largest read a file request makes of the torrent's
// Reader: as large as the mount's reads (max_read), so readahead and
// throughput match.
const ReadChunk = 1 << 20

// freeChunks keeps a few ReadChunk buffers between requests. Not a
// sync.Pool, which every GC empties: a fresh megabyte costs its page
// faults (milliseconds on a loaded VM), which the first byte of a request
// would wait for.
var freeChunks = make(chan *[]byte, 4)

// getChunk returns a ReadChunk buffer, its pages already mapped.
func getChunk() *[]byte {
	select {
	case b := <-freeChunks:
		return b
	default:
	}
	b := make([]byte, ReadChunk)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0 // fault the page in now, not under the first fill
	}
	return &b
}

// putBuf gives a buffer back; only ReadChunk ones are kept.
func putBuf(b *[]byte) {
	if b == nil || len(*b) != ReadChunk {
		return
	}
	select {
	case freeChunks <- b:
	default:
	}
}

// smallFill is the largest fill made into a buffer of its own size rather
// than a ReadChunk one: a short range (a player's probe, a first-byte
// check) allocates only what it sends.
const smallFill = 128 << 10

// errClosed is a Read after Close.
var errClosed = errors.New("httpfs: reader closed")

// readSeeker is the io.ReadSeeker ServeContent reads a file through. It
// opens the torrent's Reader at the first Read (or takes the one its
// connection kept, see connReaders), reads through a buffer that never
// crosses a piece boundary, and passes the request's context to
// every read. Read and Seek come from one goroutine at a time (the
// handler's, or ServeContent's multi-range writer), but Close may come
// while that writer is still reading: see Close.
type readSeeker struct {
	// read-only after construction
	parent   context.Context // the request's
	ctx      context.Context
	cancel   context.CancelFunc
	s        *Server
	t        Torrent
	file     int
	media    bool
	size     int64
	start    int64 // the file's offset in the torrent
	pieceLen int64
	// conn is where the Reader waits for the connection's next request
	// (nil: it is closed with the request); set before the first Read.
	conn *connReaders

	// used by the one reading goroutine only
	r      Reader
	off    int64
	buf    *[]byte
	bufOff int64 // file offset of (*buf)[0]
	bufN   int   // valid bytes in the buffer

	mu     sync.Mutex // guards closed; taken after any reads started
	closed bool
	reads  sync.WaitGroup // Reads in flight
}

func newReadSeeker(ctx context.Context, s *Server, t Torrent, info *metainfo.Info, file int, media bool) *readSeeker {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	f := info.Files[file]
	return &readSeeker{parent: parent, ctx: ctx, cancel: cancel, s: s, t: t, file: file, media: media,
		size: f.Length, start: f.Offset, pieceLen: info.PieceLength}
}

// MediaHead is how far into a media file a request may start and still
// have the torrent's Reader fetch the file's head and tail at once (where
// containers keep their indexes). A player opens a file from its start;
// a request that starts further on is a seek by a client that has read
// the head already, and it must not spend the swarm on the head (or on
// the tail, for a seek near the end).
const MediaHead = 1 << 20

func (rs *readSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += rs.off
	case io.SeekEnd:
		offset += rs.size
	default:
		return 0, errors.New("httpfs: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("httpfs: negative offset")
	}
	rs.off = offset
	return offset, nil
}

func (rs *readSeeker) Read(p []byte) (int, error) {
	// Not len(p): io.Copy reads 32 KiB at a time, and each fill is a
	// read of the engine's.
	b, err := rs.next(ReadChunk)
	if err != nil {
		return 0, err
	}
	n := copy(p, b)
	rs.off += int64(n)
	return n, nil
}

// writeTo writes the next n bytes of the file to w straight from the
// buffer the torrent's Reader filled, without the copy into a caller's
// buffer that Read makes: one write of up to ReadChunk bytes per fill
// where net/http's own copy would make 32 KiB ones. Each write is
// flushed at once (flush, if not nil): the next fill may wait for the
// swarm, and bytes a player could already use must not sit in net/http's
// buffers meanwhile (a range that starts just before a missing piece).
func (rs *readSeeker) writeTo(w io.Writer, flush func() error, n int64) (int64, error) {
	var sent int64
	for sent < n {
		b, err := rs.next(n - sent)
		if err == io.EOF {
			return sent, io.ErrUnexpectedEOF
		}
		if err != nil {
			return sent, err
		}
		b = b[:min(int64(len(b)), n-sent)]
		m, err := w.Write(b)
		rs.off += int64(m)
		sent += int64(m)
		if err != nil {
			return sent, err
		}
		if flush != nil {
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
	return sent, nil
}

// next returns the bytes from the current offset to the end of the
// buffer, filling the buffer first if it does not hold the offset. A fill
// reads no more than want bytes (what the caller is about to send): the
// first byte of a small range waits only for the bytes under it. The
// slice is valid until the next call.
func (rs *readSeeker) next(want int64) ([]byte, error) {
	if rs.off >= rs.size {
		return nil, io.EOF
	}
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return nil, errClosed
	}
	rs.reads.Add(1)
	rs.mu.Unlock()
	defer rs.reads.Done()
	if rs.bufN > 0 && rs.off >= rs.bufOff && rs.off < rs.bufOff+int64(rs.bufN) {
		return (*rs.buf)[rs.off-rs.bufOff : rs.bufN], nil
	}
	if rs.r == nil {
		if err := rs.open(); err != nil {
			return nil, err
		}
		if rs.bufN > 0 && rs.off >= rs.bufOff && rs.off < rs.bufOff+int64(rs.bufN) {
			return (*rs.buf)[rs.off-rs.bufOff : rs.bufN], nil
		}
	}
	// Fill the buffer up to the next piece boundary, at most ReadChunk,
	// so a small range never waits for a piece beyond it.
	n := int64(ReadChunk)
	if rs.pieceLen > 0 {
		abs := rs.start + rs.off
		n = min(n, rs.pieceLen-abs%rs.pieceLen)
	}
	n = min(n, rs.size-rs.off, max(want, 1))
	if rs.buf == nil || int64(len(*rs.buf)) < n {
		putBuf(rs.buf)
		if n <= smallFill && want <= smallFill {
			b := make([]byte, n)
			rs.buf = &b
		} else {
			rs.buf = getChunk()
		}
		rs.bufN = 0
	}
	ctx, cancel := context.WithTimeout(rs.ctx, rs.s.opts.ReadTimeout)
	done := rs.s.metrics.startRead("http")
	got, err := rs.r.ReadAt(ctx, (*rs.buf)[:n], rs.off)
	done()
	cancel()
	if got < int(n) && err == nil {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		rs.bufN = 0
		if errors.Is(err, context.DeadlineExceeded) && rs.ctx.Err() == nil {
			rs.s.logf("swarmfs: http: read of file %d of %s timed out after %v", rs.file, rs.t.InfoHash(), rs.s.opts.ReadTimeout)
		}
		return nil, err
	}
	rs.bufOff, rs.bufN = rs.off, got
	return (*rs.buf)[:got], nil
}

// ready tells whether the piece under the offset is verified, so the
// next fill will not wait for the swarm (unless it is evicted meanwhile).
func (rs *readSeeker) ready() bool {
	if rs.off >= rs.size || rs.pieceLen <= 0 {
		return true
	}
	if rs.bufN > 0 && rs.off >= rs.bufOff && rs.off < rs.bufOff+int64(rs.bufN) {
		return true
	}
	return rs.t.HavePiece(int((rs.start + rs.off) / rs.pieceLen))
}

// open takes the Reader the connection kept from its last request for
// this file, with its buffer, or opens one.
func (rs *readSeeker) open() error {
	if rs.conn != nil {
		if ir := rs.conn.take(rs.t.InfoHash(), rs.file); ir != nil {
			rs.r, rs.buf, rs.bufOff, rs.bufN = ir.r, ir.buf, ir.bufOff, ir.bufN
			return nil
		}
	}
	r, err := rs.t.NewReader(rs.file, rs.media && rs.off < MediaHead)
	if err != nil {
		return fmt.Errorf("httpfs: open: %w", err)
	}
	rs.r = r
	rs.bufN = 0
	return nil
}

// directWriter is the ResponseWriter ServeContent gets: when it copies
// a single range of rs (io.CopyN hands ReadFrom an io.LimitedReader over
// rs), the bytes go from rs's buffer to the connection in writes of up
// to ReadChunk. Anything else (a multi-range body) takes the
// ResponseWriter's own path.
type directWriter struct {
	http.ResponseWriter
	rs *readSeeker
}

func (w directWriter) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok && lr.R == io.Reader(w.rs) {
		rc := http.NewResponseController(w.ResponseWriter)
		if lr.N > 0 && !w.rs.ready() {
			// The body waits for the swarm: send the headers now. A
			// player that seeks by opening a new connection (ffmpeg)
			// closes the old one once the new one's headers arrive,
			// which cancels the old request's reads: they no longer
			// compete with the new position's.
			if err := rc.Flush(); err != nil {
				return 0, err
			}
		}
		n, err := w.rs.writeTo(w.ResponseWriter, rc.Flush, lr.N)
		lr.N -= n
		return n, err
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Close cancels the reads in flight, waits for them to return and closes
// the torrent's Reader, or leaves it to the connection's next request if
// the client is still there. It may be called while ServeContent's
// multi-range goroutine is inside Read.
func (rs *readSeeker) Close() error {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return nil
	}
	rs.closed = true
	rs.mu.Unlock()
	// Whether the client went away, before our own cancel hides it.
	gone := rs.parent.Err() != nil
	rs.cancel()
	rs.reads.Wait()
	// No Read runs now, nor can one start: the fields are ours.
	if rs.r == nil {
		return nil
	}
	r, buf := rs.r, rs.buf
	rs.r, rs.buf = nil, nil
	if rs.conn != nil && !gone {
		rs.conn.park(&idleReader{ih: rs.t.InfoHash(), file: rs.file, r: r, buf: buf, bufOff: rs.bufOff, bufN: rs.bufN})
		return nil
	}
	err := r.Close()
	putBuf(buf)
	return err
}
