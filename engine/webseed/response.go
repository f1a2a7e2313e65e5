package webseed

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// contentRange is a parsed Content-Range header. Length is -1 when the
// server wrote "*" for the complete length; First and Last are -1 for an
// unsatisfied-range ("*/N", sent with 416).
type contentRange struct {
	First, Last, Length int64
}

// maxDigits bounds a number in a header: 18 decimal digits always fit int64.
const maxDigits = 18

// parseContentRange parses a Content-Range value strictly (RFC 9110 §14.4):
//
//	bytes first-last/length   bytes first-last/*   bytes */length
//
// with decimal digits only (no sign, no spaces inside), first <= last and,
// when the length is given, last < length. Anything else is an error: the
// header comes from an untrusted server and decides where bytes go.
func parseContentRange(s string) (contentRange, error) {
	bad := func(why string) (contentRange, error) {
		return contentRange{}, fmt.Errorf("%w: Content-Range %.64q: %s", ErrRangeMismatch, s, why)
	}
	unit, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return bad("not a bytes range")
	}
	rng, length, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no complete length")
	}
	cr := contentRange{First: -1, Last: -1, Length: -1}
	if length != "*" {
		n, ok := parseDigits(length)
		if !ok {
			return bad("bad complete length")
		}
		cr.Length = n
	}
	if rng == "*" {
		if cr.Length < 0 {
			return bad("neither range nor length")
		}
		return cr, nil
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("no '-' in range")
	}
	if cr.First, ok = parseDigits(first); !ok {
		return bad("bad first byte")
	}
	if cr.Last, ok = parseDigits(last); !ok {
		return bad("bad last byte")
	}
	if cr.First > cr.Last {
		return bad("first byte after last")
	}
	if cr.Length >= 0 && cr.Last >= cr.Length {
		return bad("last byte past the length")
	}
	return cr, nil
}

// parseDigits parses 1 to maxDigits decimal digits.
func parseDigits(s string) (int64, bool) {
	if len(s) > maxDigits || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// span is what one request asks of one file: bytes [Off, Off+Len) of a file
// of FileLen bytes. Len is at least 1.
type span struct {
	Off, Len, FileLen int64
}

// wholePlan is the plan for reading sp from a body of the whole file whose
// next byte is the file's byte at from (a 200's body: 0).
func (sp span) wholePlan(from int64) plan {
	return plan{Skip: sp.Off - from, CheckEnd: sp.Off+sp.Len == sp.FileLen, Whole: true}
}

// plan is how to read a response body that passed checkResponse: discard
// Skip bytes, read the span's Len bytes, then (when CheckEnd) make sure the
// body ends there. Whole marks a 200, the whole file: its body may serve
// later spans of the file too.
type plan struct {
	Skip     int64
	CheckEnd bool
	Whole    bool
}

// checkResponse decides, from the status and headers alone and before any
// byte of the body is used, whether a response carries exactly sp. It
// returns an *Error (without URL and File, which the caller fills in) when
// it does not. A 200 is the whole file (a server that ignores Range): its
// plan skips the bytes before the span. contentLength is
// http.Response.ContentLength (-1 when unknown).
func checkResponse(status int, h http.Header, contentLength int64, sp span, now time.Time) (plan, *Error) {
	fail := func(k Kind, err error) (plan, *Error) {
		return plan{}, &Error{Kind: k, Status: status, Err: err}
	}
	switch {
	case status == http.StatusPartialContent, status == http.StatusOK:
	case status == http.StatusNotFound, status == http.StatusGone, status == http.StatusForbidden:
		return fail(FileGone, errors.New(http.StatusText(status)))
	case status == http.StatusRequestedRangeNotSatisfiable:
		return fail(FileGone, fmt.Errorf("%w: range not satisfiable", ErrSizeMismatch))
	case status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests:
		d, ok := parseRetryAfter(h.Get("Retry-After"), now)
		if !ok {
			if status == http.StatusTooManyRequests {
				// 429 without a delay: our own back-off, but still RetryAfter.
				return plan{}, &Error{Kind: RetryAfter, Status: status, RetryAfter: -1, Err: errors.New("too many requests")}
			}
			return fail(Transient, errors.New("service unavailable"))
		}
		return plan{}, &Error{Kind: RetryAfter, Status: status, RetryAfter: d, Err: errors.New(http.StatusText(status))}
	case status == http.StatusRequestTimeout, status >= 500 && status <= 599:
		return fail(Transient, fmt.Errorf("server error %d", status))
	default:
		return fail(Bad, fmt.Errorf("unexpected status %d", status))
	}
	// Go's transport decodes only the gzip it asked for itself, and we never
	// ask (DisableCompression, Accept-Encoding: identity); a range of an
	// encoded body is a range of the wrong bytes.
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fail(Bad, fmt.Errorf("%w: Content-Encoding %.32q", ErrRangeMismatch, ce))
	}
	if status == http.StatusOK {
		// The whole file: usable when it is the file we know. The bytes
		// before the span are read and discarded (see cursor.go for how
		// a file is then not read from its start for every run).
		if contentLength >= 0 && contentLength != sp.FileLen {
			return fail(FileGone, fmt.Errorf("%w: 200 with %d bytes for a file of %d", ErrSizeMismatch, contentLength, sp.FileLen))
		}
		return sp.wholePlan(0), nil
	}
	v := h.Values("Content-Range")
	if len(v) != 1 {
		return fail(Bad, fmt.Errorf("%w: 206 with %d Content-Range headers", ErrRangeMismatch, len(v)))
	}
	cr, err := parseContentRange(v[0])
	if err != nil {
		return fail(Bad, err)
	}
	if cr.Length >= 0 && cr.Length != sp.FileLen {
		return fail(FileGone, fmt.Errorf("%w: Content-Range says %d bytes, the torrent %d", ErrSizeMismatch, cr.Length, sp.FileLen))
	}
	if cr.First != sp.Off || cr.Last != sp.Off+sp.Len-1 {
		return fail(Bad, fmt.Errorf("%w: asked %d-%d, got %d-%d", ErrRangeMismatch, sp.Off, sp.Off+sp.Len-1, cr.First, cr.Last))
	}
	if contentLength >= 0 && contentLength != sp.Len {
		return fail(Bad, fmt.Errorf("%w: Content-Length %d for a range of %d", ErrRangeMismatch, contentLength, sp.Len))
	}
	return plan{CheckEnd: true}, nil
}
