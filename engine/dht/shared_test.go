package dht

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/utp"
)

// TestNewOnSharedSocket: a node on a uTP socket's non-uTP share answers a
// ping and bootstraps another node through the shared port.
func TestNewOnSharedSocket(t *testing.T) {
	s, err := utp.Listen("udp4", "127.0.0.40:0", utp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local := s.Addr().(*net.UDPAddr).AddrPort()
	shared, err := NewOn(Config{Bootstrap: []string{}, QueryTimeout: 500 * time.Millisecond}, s.Others(), local)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	if shared.Addr() != local {
		t.Errorf("node address %v, want the socket's %v", shared.Addr(), local)
	}
	other := newTestNode(t, 41, []string{local.String()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := other.query(ctx, local, "ping", &msgArgs{}); err != nil {
		t.Fatalf("ping through the shared socket: %v", err)
	}
	if err := other.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap from the shared node: %v", err)
	}
}
