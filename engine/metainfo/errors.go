package metainfo

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns for bad input wraps one of
// them, so callers can tell "this torrent is broken" from "we cannot do this
// yet" with errors.Is; the message names the exact problem.
var (
	// ErrInvalid is wrapped by every error about a malformed .torrent file or
	// info dictionary.
	ErrInvalid = errors.New("invalid torrent")

	// ErrInvalidMagnet is wrapped by every error about a malformed magnet URI.
	ErrInvalidMagnet = errors.New("invalid magnet link")

	// ErrUnsupported is wrapped when the input is well formed but uses a
	// feature we do not implement yet (a meta version above 2, a btmh
	// magnet hashed with something other than SHA2-256).
	ErrUnsupported = errors.New("not supported yet")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("metainfo: %w: "+format, append([]any{ErrInvalid}, args...)...)
}

func badMagnetf(format string, args ...any) error {
	return fmt.Errorf("metainfo: %w: "+format, append([]any{ErrInvalidMagnet}, args...)...)
}
