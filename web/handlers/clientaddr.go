package handlers

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientAddress returns how the console tells a request's client address: with no trusted
// proxy, the connection's peer; otherwise echo's X-Forwarded-For extractor (or, when a request
// has only X-Real-IP, echo's X-Real-IP extractor) trusting only the given ranges (not echo's default of every loopback, link-local and private address). It
// walks the chain from the right, starting at the peer, and returns the first address that is
// not a trusted proxy, so a client cannot put an address of its choice in front of the
// proxies' own entries; an entry that does not parse stops the walk at the peer.
func clientAddress(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff, realIP := echo.ExtractIPFromXFFHeader(opts...), echo.ExtractIPFromRealIPHeader(opts...)
	return func(r *http.Request) string {
		// A proxy that sends X-Real-IP and no X-Forwarded-For (nginx's common set-up): believe
		// it under the same rule, only from a trusted peer.
		if r.Header.Get(echo.HeaderXForwardedFor) == "" && r.Header.Get(echo.HeaderXRealIP) != "" {
			return realIP(r)
		}
		return xff(r)
	}
}

// ParseTrustedProxies parses --trusted-proxy values: CIDR ranges (10.0.0.0/8, fd00::/8) or
// single addresses (127.0.0.1).
func ParseTrustedProxies(values []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !strings.Contains(s, "/") {
				ip := net.ParseIP(s)
				if ip == nil {
					return nil, fmt.Errorf("--trusted-proxy %q: not an address or a CIDR range such as 10.0.0.0/8", s)
				}
				bits := 128
				if ip.To4() != nil {
					ip, bits = ip.To4(), 32
				}
				out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
				continue
			}
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxy %q: not an address or a CIDR range such as 10.0.0.0/8", s)
			}
			out = append(out, n)
		}
	}
	return out, nil
}
