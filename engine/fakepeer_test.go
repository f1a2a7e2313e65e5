package engine

import (
	"net"
	"net/netip"
	"testing"
)

// fakePeer is a listener for a peer written in a test: every accepted
// connection is handed to serve on its own goroutine, and is closed when
// the test ends.
type fakePeer struct {
	ln   net.Listener
	done chan struct{} // closed when the listener has stopped
}

func listenFake(t *testing.T, ip string, serve func(net.Conn)) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePeer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(fp.done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				go func() { <-fp.done; nc.Close() }()
				serve(nc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-fp.done })
	return fp
}

func (fp *fakePeer) addr() netip.AddrPort { return fp.ln.Addr().(*net.TCPAddr).AddrPort() }
