package tracker

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// dialFrom dials addr from local where the host has an address of
// local's family, and from any address otherwise: a client listening on
// [::1] (or on a global IPv6 address) cannot bind its announce to that
// address and reach a tracker that has only IPv4 addresses, nor can one
// bound to an IPv4 address reach an IPv6-only tracker. Addresses of
// local's family are tried first. An unset or unspecified local dials
// as d would.
func dialFrom(ctx context.Context, d net.Dialer, network, addr string, local netip.Addr) (net.Conn, error) {
	if !local.IsValid() || local.IsUnspecified() {
		return d.DialContext(ctx, network, addr)
	}
	local = local.Unmap()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	var same, other []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() == local.Is4() {
			same = append(same, ip)
		} else {
			other = append(other, ip)
		}
	}
	var firstErr error
	try := func(ips []netip.Addr, from netip.Addr) net.Conn {
		dd := d
		if from.IsValid() {
			if network == "udp" {
				dd.LocalAddr = &net.UDPAddr{IP: from.AsSlice()}
			} else {
				dd.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
			}
		}
		for _, ip := range ips {
			c, err := dd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c
			}
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		return nil
	}
	if c := try(same, local); c != nil {
		return c, nil
	}
	if c := try(other, netip.Addr{}); c != nil {
		return c, nil
	}
	if firstErr == nil {
		firstErr = errors.New("no address")
	}
	return nil, firstErr
}

// announceIPv6 is the address BEP 7's "ipv6=" may carry: an IPv6 address
// (not IPv4-mapped) that is not link-local (a link-local address means
// nothing outside its link, and would tell a tracker about our LAN).
func announceIPv6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsLinkLocalUnicast() && !a.IsMulticast()
}
