package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fetch fetches the run of whole pieces [first, first+count) into buf, which
// must hold at least the run's length (the sum of the pieces' lengths; the
// run's bytes land at the start of buf, piece after piece). It is FetchPieces
// with buf cut into the run's pieces.
func (s *Seed) Fetch(ctx context.Context, first, count int, buf []byte, piece func(index int, data []byte) error) error {
	info := s.layout.info
	if first < 0 || count <= 0 || count > info.NumPieces()-first {
		return fmt.Errorf("webseed: pieces %d+%d out of 0..%d", first, count, info.NumPieces())
	}
	start := info.PieceOffset(first)
	bufs := make([][]byte, count)
	for i := range bufs {
		lo := info.PieceOffset(first+i) - start
		hi := lo + info.PieceLen(first+i)
		if int64(len(buf)) < hi {
			return fmt.Errorf("webseed: buffer of %d bytes for a run of %d", len(buf), info.PieceOffset(first+count-1)+info.PieceLen(first+count-1)-start)
		}
		bufs[i] = buf[lo:hi:hi]
	}
	return s.FetchPieces(ctx, first, count, bufs, nil, piece)
}

// FetchPieces fetches the run of whole pieces [first, first+count), piece
// first+i into bufs[i], which must hold at least that piece's length: the
// body is read straight into the caller's piece buffers, with no copy in
// between. Each request's response is checked before a byte of it is used,
// and a body is never read past the bytes asked for (plus one, to catch a
// server that sends more).
//
// When arrived is not nil, it is called with the bytes of a piece that are
// in so far, bufs[index-first][:n], each time they grow short of the whole
// piece, so the caller can hash a piece as it arrives and have its verdict
// the moment its last byte is in. It is called as the body of a run inside
// one file arrives; a run across files calls it only as the run's complete
// prefix grows. It runs on FetchPieces's goroutine, before piece is called
// with the same index, and must not write to the buffer.
//
// When piece is not nil, it is called with each piece, in order, as soon as
// all of the piece's bytes are in (a request's last piece once nothing
// follows it: a body longer than its range hands out no more); data is
// bufs[i] cut to the piece's length, which FetchPieces never writes again,
// and the piece is not hash-checked yet. It runs on FetchPieces's
// goroutine, while later parts of the run may still be arriving (a
// request's body is read on once it returns); an error from it stops the
// fetch and is returned as is.
//
// A run inside one file is one request; a run across files is one request
// per file, up to Config.MaxParallel at a time. Pad files (BEP 47) are
// filled with zeros, never requested. A run that touches a disabled file
// fails at once with a FileGone error, without a request (check Has first).
//
// The error is nil, an *Error (see Kind), ErrDropped, an argument error, the
// context's error when ctx ended, or piece's error. FetchPieces updates the
// seed's standing itself (back-off, disabled files, strikes, rate); only a
// piece that fails its hash check must be reported, with BadPiece. On error,
// the pieces not passed to piece may hold partial or no data.
func (s *Seed) FetchPieces(ctx context.Context, first, count int, bufs [][]byte, arrived func(index, n int), piece func(index int, data []byte) error) error {
	info := s.layout.info
	if first < 0 || count <= 0 || count > info.NumPieces()-first {
		return fmt.Errorf("webseed: pieces %d+%d out of 0..%d", first, count, info.NumPieces())
	}
	if len(bufs) != count {
		return fmt.Errorf("webseed: %d buffers for %d pieces", len(bufs), count)
	}
	run := make(vec, count)
	for i := range bufs {
		n := info.PieceLen(first + i)
		if int64(len(bufs[i])) < n {
			return fmt.Errorf("webseed: buffer of %d bytes for piece %d of %d", len(bufs[i]), first+i, n)
		}
		run[i] = bufs[i][:n:n]
	}
	last := first + count - 1
	start := info.PieceOffset(first)
	end := info.PieceOffset(last) + info.PieceLen(last)
	segs := s.layout.segments(start, end)
	if err := s.usable(segs); err != nil {
		return err
	}
	for _, sg := range segs {
		if sg.pad {
			run.sub(sg.bufOff, sg.sp.Len).clear()
		}
	}

	// deliver hands out every piece whose bytes all lie below done, and
	// tells arrived of the part of the next one that does.
	next, lo := first, int64(0)
	deliver := func(done int64) error {
		for ; next <= last; next++ {
			data := run[next-first]
			if lo+int64(len(data)) > done {
				if arrived != nil && done > lo {
					arrived(next, int(done-lo))
				}
				break
			}
			lo += int64(len(data))
			if piece != nil {
				if err := piece(next, data); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := s.run(ctx, segs, run, end-start, deliver)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	var e *Error
	if err == nil || errors.As(err, &e) {
		s.record(err, s.cfg.Now())
	}
	return err
}

// usable returns an error when the seed is dropped or a segment's file is
// disabled.
func (s *Seed) usable(segs []segment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return ErrDropped
	}
	for _, sg := range segs {
		if !sg.pad && s.disabled[sg.file] {
			return &Error{Kind: FileGone, URL: s.shown, File: sg.file, Err: ErrFileDisabled}
		}
	}
	return nil
}

// run fetches every segment into buf (size bytes) and calls deliver with
// the length of the prefix of buf that is complete, each time it grows.
func (s *Seed) run(ctx context.Context, segs []segment, buf vec, size int64, deliver func(done int64) error) error {
	dst := func(sg segment) vec { return buf.sub(sg.bufOff, sg.sp.Len) }
	var nreq int
	for _, sg := range segs {
		if !sg.pad {
			nreq++
		}
	}
	if nreq <= 1 {
		// One file (the common case): no goroutine.
		// Its pieces are handed on as the body arrives, not once all
		// of it is in: a run's first piece is a reader's next.
		for _, sg := range segs {
			if !sg.pad {
				got := func(n int64) error { return deliver(sg.bufOff + n) }
				if err := s.get(ctx, sg, dst(sg), got); err != nil {
					return err
				}
			}
		}
		return deliver(size)
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type result struct {
		i   int
		err error
	}
	// Buffered for every segment, so a worker never blocks on a send and
	// always gets to its next check of ctx.
	results := make(chan result, len(segs))
	var taken atomic.Int64
	for range min(s.cfg.MaxParallel, nreq) {
		wg.Go(func() {
			for {
				i := int(taken.Add(1) - 1)
				if i >= len(segs) || ctx.Err() != nil {
					return
				}
				var err error
				if sg := segs[i]; !sg.pad {
					err = s.get(ctx, sg, dst(sg), nil)
				}
				results <- result{i, err}
			}
		})
	}
	done := make([]bool, len(segs))
	prefix := 0 // segs[:prefix] are all done
	for range segs {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			cancel()
			return r.err
		}
		done[r.i] = true
		if r.i != prefix {
			continue
		}
		for prefix < len(segs) && done[prefix] {
			prefix++
		}
		upTo := size
		if prefix < len(segs) {
			upTo = segs[prefix].bufOff
		}
		if err := deliver(upTo); err != nil {
			cancel()
			return err
		}
	}
	return nil
}

// get reads sg's bytes into dst: from the body parked for the next run
// when it can serve them (cursor.go), else with one request. When got is
// not nil, it is called with the length of dst filled so far as the body
// arrives; its error ends the request and is returned as is.
func (s *Seed) get(ctx context.Context, sg segment, dst vec, got func(n int64) error) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if c := s.takeCursor(sg.file, sg.sp.Off); c != nil {
		// got's errors come only once bytes are in (filled > 0).
		filled, err := s.read(ctx, sg, c, sg.sp.wholePlan(c.pos), http.StatusOK, dst, got, time.Now())
		if err == nil || filled > 0 || ctx.Err() != nil {
			return err
		}
		// The parked body failed before any of its bytes reached dst:
		// the server most likely closed it while it waited. Ask again.
	}
	// The request outlives get when its body is parked, so its context is
	// not the caller's: the caller's end ends it only while get runs.
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	st := &stream{file: sg.file, ctx: rctx, cancel: cancel}
	stop := context.AfterFunc(ctx, func() { cancel(ctx.Err()) })
	// The wait for the headers is bounded by ProgressTimeout too.
	watchdog := time.AfterFunc(s.cfg.ProgressTimeout, func() { cancel(ErrStalled) })
	req := s.request(rctx, http.MethodGet, sg.file)
	req.Header.Set("Range", "bytes="+strconv.FormatInt(sg.sp.Off, 10)+"-"+strconv.FormatInt(sg.sp.Off+sg.sp.Len-1, 10))
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	t0 := time.Now()
	resp, err := s.cfg.Client.Do(req)
	watchdog.Stop()
	stop()
	if err != nil {
		err = s.ioErr(ctx, st, sg.file, 0, err)
		cancel(nil)
		return err
	}
	p, perr := checkResponse(resp.StatusCode, resp.Header, resp.ContentLength, sg.sp, s.cfg.Now())
	if perr != nil {
		perr.URL, perr.File = s.shown, sg.file
		if resp.ContentLength >= 0 && resp.ContentLength <= 4<<10 {
			// A short error body is read so the connection can be kept.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		}
		resp.Body.Close()
		cancel(nil)
		return perr
	}
	s.mu.Lock()
	s.answered = true
	s.noRanges = s.noRanges || p.Whole && (sg.sp.Off > 0 || sg.sp.Len < sg.sp.FileLen)
	s.mu.Unlock()
	st.body, st.whole = resp.Body, p.Whole
	_, err = s.read(ctx, sg, st, p, resp.StatusCode, dst, got, t0)
	return err
}

// read reads sg's bytes into dst from st's body as p says (a whole-file
// body standing at st.pos first discards the bytes before sg), then parks
// a whole-file body that has more of its file to give, and closes any
// other. It returns how much of dst it filled and got's error as is, or
// the body's as an *Error. The time from t0 to sg's first byte is the
// sample's time to first byte.
func (s *Seed) read(ctx context.Context, sg segment, st *stream, p plan, status int, dst vec, got func(n int64) error, t0 time.Time) (filled int64, err error) {
	stop := context.AfterFunc(ctx, func() { st.cancel(ctx.Err()) })
	defer stop()
	// Every wait for the body is bounded by ProgressTimeout, restarted
	// by each byte that arrives.
	watchdog := time.AfterFunc(s.cfg.ProgressTimeout, func() { st.cancel(ErrStalled) })
	defer watchdog.Stop()
	keep := false
	defer func() {
		if !keep {
			st.close()
		}
	}()
	body := &progressReader{r: st.body, t: watchdog, d: s.cfg.ProgressTimeout}
	if p.Skip > 0 {
		n, err := io.CopyN(io.Discard, countReader{body, &s.bytes}, p.Skip)
		st.pos += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if ctx.Err() != nil && n > 0 {
				// Cut short while it skipped: what it took so far is a
				// lower bound of this seed's time to reach such bytes.
				s.sampleTTFB(time.Since(t0))
			}
			return 0, s.ioErr(ctx, st, sg.file, status, err)
		}
	}
	t1 := time.Now()
	var counted int64 // of dst's bytes in, those added to s.bytes
	count := func(n int64) {
		s.bytes.Add(n - counted)
		counted = n
	}
	progress := func(n int64) error {
		count(n)
		if got == nil {
			return nil
		}
		// The caller may wait (a download rate limit): that is not the
		// server stalling.
		watchdog.Stop()
		defer watchdog.Reset(s.cfg.ProgressTimeout)
		if err := got(n); err != nil {
			return callerError{err}
		}
		return nil
	}
	if err := readBody(body, plan{CheckEnd: p.CheckEnd}, dst, progress); err != nil {
		if ce, ok := errors.AsType[callerError](err); ok {
			return counted, ce.err
		}
		if errors.Is(err, ErrLongBody) {
			return counted, &Error{Kind: Bad, URL: s.shown, File: sg.file, Status: status, Err: err}
		}
		return counted, s.ioErr(ctx, st, sg.file, status, err)
	}
	count(sg.sp.Len) // the last read, which readBody does not report
	s.sample(sg.sp.Len, t1.Sub(t0), time.Since(t1))
	st.pos += sg.sp.Len
	// Parked only when no other request of the seed's is under way: one
	// may be waiting for the connection or the server thread this body
	// holds (a server that ignores Range is often a simple one).
	if st.whole && !p.CheckEnd && s.inflight.Load() == 1 && stop() {
		keep = true
		watchdog.Stop()
		s.park(st)
	}
	return sg.sp.Len, nil
}

// ioErr turns an I/O failure of st's request into the error Fetch
// returns: the caller's context's error when it ended, a Transient error
// otherwise (Bad for too many redirects).
func (s *Seed) ioErr(ctx context.Context, st *stream, file, status int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fail := func(k Kind, err error) *Error {
		return &Error{Kind: k, URL: s.shown, File: file, Status: status, Err: err}
	}
	if errors.Is(context.Cause(st.ctx), ErrStalled) {
		return fail(Transient, fmt.Errorf("%w for %v", ErrStalled, s.cfg.ProgressTimeout))
	}
	err = withoutURL(err)
	if errors.Is(err, ErrTooManyRedirects) {
		return fail(Bad, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = ErrShortBody
	}
	return fail(Transient, err)
}

// countReader adds the bytes read through it to n.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	c.n.Add(int64(k))
	return k, err
}

// request is a request of method for the seed's URL of file, with the
// headers every request carries.
func (s *Seed) request(ctx context.Context, method string, file int) *http.Request {
	req := &http.Request{
		Method: method,
		URL:    s.url.fileURL(s.layout, file),
		Header: http.Header{
			"Accept-Encoding": {"identity"},
			"User-Agent":      {s.cfg.UserAgent},
		},
	}
	return req.WithContext(ctx)
}

// callerError carries an error of get's caller through readBody.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// readBody reads a checked response's body as p says: it discards p.Skip
// bytes, fills dst, and with p.CheckEnd makes sure nothing follows. It never
// reads more than p.Skip+len(dst)+1 bytes. A body that ends early yields
// io.ErrUnexpectedEOF or io.EOF, one that goes on ErrLongBody. progress, when
// not nil, is called with the length of dst filled so far each time it
// grows, short of full; its error stops the read and is returned as is.
func readBody(body io.Reader, p plan, dst vec, progress func(int64) error) error {
	if p.Skip > 0 {
		if n, err := io.CopyN(io.Discard, body, p.Skip); err != nil {
			if err == io.EOF && n < p.Skip {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if err := readFull(body, dst, progress); err != nil {
		return err
	}
	if p.CheckEnd {
		var one [1]byte
		switch n, err := io.ReadFull(body, one[:]); {
		case n > 0:
			return ErrLongBody
		case err != io.EOF:
			return err
		}
	}
	return nil
}

// readFull is io.ReadFull into the slices of dst in turn, calling progress
// with the bytes in so far as dst fills (not when it is full: the caller
// learns that from readBody's return).
func readFull(body io.Reader, dst vec, progress func(int64) error) error {
	total := dst.len()
	var n int64
	for _, d := range dst {
		for k := 0; k < len(d); {
			m, err := body.Read(d[k:])
			k += m
			n += int64(m)
			if m > 0 && n < total && progress != nil {
				// Not once full: readBody checks the end first.
				if perr := progress(n); perr != nil {
					return perr
				}
			}
			switch {
			case k == len(d):
				// this slice is full; a pending error shows on the next read
			case err == io.EOF && n == 0:
				return io.EOF
			case err == io.EOF:
				return io.ErrUnexpectedEOF
			case err != nil:
				return err
			}
		}
	}
	return nil
}

// vec is a buffer in pieces: a run's bytes, slice after slice.
type vec [][]byte

// len returns the bytes v holds.
func (v vec) len() int64 {
	var n int64
	for _, b := range v {
		n += int64(len(b))
	}
	return n
}

// sub returns the slices of v that hold its bytes [off, off+n).
func (v vec) sub(off, n int64) vec {
	var out vec
	for _, b := range v {
		if n <= 0 {
			break
		}
		if off >= int64(len(b)) {
			off -= int64(len(b))
			continue
		}
		k := min(int64(len(b))-off, n)
		out = append(out, b[off:off+k])
		off, n = 0, n-k
	}
	return out
}

// clear zeroes v's bytes.
func (v vec) clear() {
	for _, b := range v {
		clear(b)
	}
}

// progressReader restarts the watchdog whenever bytes arrive.
type progressReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.t.Reset(p.d)
	}
	return n, err
}
