//go:build !(linux && (amd64 || arm64))

package utp

import "net"

func newPacketIO(pc net.PacketConn, _ bool) packetIO {
	uc, _ := pc.(*net.UDPConn)
	return &udpIO{pc: pc, uc: uc}
}
