package webseed

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failed fetch by what the engine should do about it. The
// zero Kind means the error is not the server's doing (the caller's context
// ended, the seed was dropped, a bad argument) and must not count against
// the seed.
type Kind int

const (
	// Transient failures (5xx, connection refused or cut, a stalled body, a
	// short body) are retried after an exponential back-off.
	Transient Kind = iota + 1
	// RetryAfter is the server asking us to wait (503 or 429); Error.RetryAfter
	// holds how long (from Retry-After, or the back-off when it is absent).
	RetryAfter
	// FileGone is one file missing or different on this server (404, 410,
	// 403, 416, or a total length that is not the torrent's): that file is
	// disabled on this seed for good; other files are still served.
	FileGone
	// Bad is the server breaking the protocol (a Content-Range other than the
	// one asked for, a body longer than declared, an ignored Range, too many
	// redirects): it counts as a strike, and MaxStrikes strikes drop the seed.
	Bad
)

// String returns the kind's name as the status line shows it.
func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case RetryAfter:
		return "retry-after"
	case FileGone:
		return "file-gone"
	case Bad:
		return "bad"
	}
	return "none"
}

// Sentinel errors, found with errors.Is through an *Error.
var (
	// ErrDropped is returned by Fetch on a seed that has been dropped (too
	// many strikes, or every file gone). It is not an *Error.
	ErrDropped = errors.New("webseed: seed dropped")
	// ErrFileDisabled is the cause of a FileGone error returned without a
	// request, for a run that touches a file this seed no longer serves.
	ErrFileDisabled = errors.New("file disabled on this seed")
	// ErrStalled is the cause of a Transient error when no byte arrived for
	// Config.ProgressTimeout.
	ErrStalled = errors.New("no progress")
	// ErrShortBody is the cause of a Transient error when the body ended
	// before the range did.
	ErrShortBody = errors.New("body shorter than the range")
	// ErrLongBody is the cause of a Bad error when the body went on past the
	// range.
	ErrLongBody = errors.New("body longer than the range")
	// ErrRangeMismatch is the cause of a Bad error when the response does not
	// describe exactly the range asked for.
	ErrRangeMismatch = errors.New("response range mismatch")
	// ErrSizeMismatch is the cause of a FileGone error when the server's file
	// is not the torrent's length.
	ErrSizeMismatch = errors.New("file size differs from the torrent")
	// ErrTooManyRedirects is the cause of a Bad error when a request was
	// redirected more than the client allows.
	ErrTooManyRedirects = errors.New("too many redirects")
)

// Error is a failed web-seed request, classified by Kind.
type Error struct {
	Kind Kind
	// URL is the seed's URL without its query (which may hold a token).
	URL string
	// File is the index in Info.Files of the file the request was for, or -1.
	File int
	// Status is the HTTP status, or 0 when none was received.
	Status int
	// RetryAfter is how long the server asked us to wait (Kind RetryAfter).
	RetryAfter time.Duration
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webseed %s: %s", e.URL, e.Kind)
	if e.File >= 0 {
		fmt.Fprintf(&b, ": file %d", e.File)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Kind == RetryAfter {
		fmt.Fprintf(&b, ": retry after %v", e.RetryAfter)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or 0 when err is not an *Error (nil, a
// cancelled context, ErrDropped).
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return 0
}

// MaxRetryAfterSeconds bounds a delay-seconds Retry-After before it is turned
// into a duration, so a huge number cannot overflow.
const maxRetryAfterSeconds = 1 << 31

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): either
// delay-seconds or an HTTP-date. ok is false when v is neither. A date in the
// past yields 0.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > maxRetryAfterSeconds {
			n = maxRetryAfterSeconds // overflow: "a very long time"
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d = t.Sub(now); d < 0 {
		d = 0
	}
	return d, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
