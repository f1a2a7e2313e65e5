//go:build !linux

package engine

import (
	"io"
	"net"
)

// newQuickAckReader is the connection itself where TCP_QUICKACK does not
// exist.
func newQuickAckReader(nc net.Conn) io.Reader { return nc }
