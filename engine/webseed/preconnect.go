package webseed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
// the seed (a server may refuse HEAD yet serve ranges). The HEAD gives up
// after ProgressTimeout.
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
	return nil
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
