package webseed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Preconnect opens a connection to the seed's server before a piece is
// wanted, so that the first read does not wait for a DNS lookup and a TCP
// (and TLS) handshake: it sends a HEAD for the first file the seed serves,
// follows redirects as a request would, and reads nothing else. The
// client keeps the connection for the seed's next request. A request made
// while the HEAD is still under way is not held up by it: net/http dials
// for it too and takes whichever connection is ready first.
//
// The error is for the log only: the answer does not count for or against
// the seed (a server may refuse HEAD yet serve ranges). A successful answer
// without "Accept-Ranges: bytes" marks the seed's ranges as doubtful
// (Stats.RangesDoubtful) until a request for a range tells. The HEAD gives
// up after ProgressTimeout.
func (s *Seed) Preconnect(ctx context.Context) error {
	file := -1
	s.mu.Lock()
	dropped := s.dropped
	if !dropped {
		for i, f := range s.layout.info.Files {
			if !f.Pad && f.Length > 0 && !s.disabled[i] {
				file = i
				break
			}
		}
	}
	s.mu.Unlock()
	if file < 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProgressTimeout)
	defer cancel()
	resp, err := s.cfg.Client.Do(s.request(ctx, http.MethodHead, file))
	if err != nil {
		return fmt.Errorf("webseed %s: connecting ahead: %w", s.shown, withoutURL(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 && !acceptsByteRanges(resp.Header) {
		s.mu.Lock()
		s.doubtful = true
		s.mu.Unlock()
	}
	return nil
}

// acceptsByteRanges reports whether h says "Accept-Ranges: bytes" (RFC
// 9110, 14.3: a list of range units; "none" says no).
func acceptsByteRanges(h http.Header) bool {
	for _, v := range h.Values("Accept-Ranges") {
		for u := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(u), "bytes") {
				return true
			}
		}
	}
	return false
}

// Origin is the scheme and host (with its port, when the URL has one) of
// the seed's URL: seeds with the same origin share the client's
// connections.
func (s *Seed) Origin() string { return s.url.base.Scheme + "://" + s.url.base.Host }

// withoutURL returns the cause of a *url.Error, whose own text holds the
// URL with its query (which may carry credentials), or err itself.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}
