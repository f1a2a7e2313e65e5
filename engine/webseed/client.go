package webseed

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ClientConfig sets up the HTTP client web seeds share. Zero fields take the
// defaults written beside them.
type ClientConfig struct {
	// MaxConnsPerHost bounds the connections to one host, idle or busy
	// (default 4): a mirror is shared with everyone else.
	MaxConnsPerHost int
	// MaxRedirects bounds the redirects one request follows (default 5).
	MaxRedirects int
	// DialTimeout bounds a TCP connect (default 10 s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake (default 10 s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers once
	// the request is written (default 20 s).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes a keep-alive connection unused this long
	// (default 90 s).
	IdleConnTimeout time.Duration
	// TLSConfig is cloned into the transport; nil uses the system roots.
	TLSConfig *tls.Config
}

func (c *ClientConfig) withDefaults() ClientConfig {
	d := *c
	setDefault(&d.MaxConnsPerHost, 4)
	setDefault(&d.MaxRedirects, 5)
	setDefault(&d.DialTimeout, 10*time.Second)
	setDefault(&d.TLSHandshakeTimeout, 10*time.Second)
	setDefault(&d.ResponseHeaderTimeout, 20*time.Second)
	setDefault(&d.IdleConnTimeout, 90*time.Second)
	return d
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// NewClient returns an HTTP client for web seeds: keep-alive, at most
// MaxConnsPerHost connections per host, bounded redirects, dial, TLS and
// response-header timeouts, the environment's proxy (never for loopback),
// and no transparent compression (a byte range of a gzip body is a range of
// the wrong bytes). The engine should make one and share it between all
// seeds, and close its idle connections when it shuts down. The body itself
// has no overall timeout: Fetch bounds it by progress instead, so a large
// run on a slow link is not cut short.
func NewClient(cfg ClientConfig) *http.Client {
	c := cfg.withDefaults()
	dialer := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   c.MaxConnsPerHost,
		MaxConnsPerHost:       c.MaxConnsPerHost,
		IdleConnTimeout:       c.IdleConnTimeout,
		TLSHandshakeTimeout:   c.TLSHandshakeTimeout,
		ResponseHeaderTimeout: c.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// Headers come from untrusted servers: 64 KiB is plenty.
		MaxResponseHeaderBytes: 64 << 10,
	}
	if c.TLSConfig != nil {
		tr.TLSClientConfig = c.TLSConfig.Clone()
	}
	max := c.MaxRedirects
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > max {
				return fmt.Errorf("%w (%d)", ErrTooManyRedirects, max)
			}
			return nil
		},
	}
}
