package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/metrics"
	"github.com/sessionconsole/console/sessionstore"
)

// MaxVerifyCookies is how many decodable `session` cookies of one request /auth/verify looks
// up at most, in order; undecodable ones are skipped without a lookup (CockroachDB v23.1+
// tries every cookie: one request with thousands would cost thousands of queries here).
const MaxVerifyCookies = 3

// tenantHeader names the tenant of a request, before the `tenant` cookie (as in CockroachDB).
const tenantHeader = "X-Cockroach-Tenant"

// verifySession answers a reverse proxy's sub-request (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth), whatever its method: 200 with X-Auth-User and X-Auth-Session-Id for a
// valid session, 401 with no detail otherwise, 503 when the database cannot say. The session
// comes from the X-Cockroach-API-Session header (the value, or "cookie" to mean the cookie) or
// the `session` cookies; an aggregated DB Console cookie gives the segment of the tenant that
// X-Cockroach-Tenant or the `tenant` cookie names (else "system").
func (h *Handler) verifySession(c echo.Context) error {
	start := time.Now()
	resp := c.Response()
	resp.Header().Set("Cache-Control", "no-store")
	r := c.Request()
	var candidates []string
	header := strings.TrimSpace(r.Header.Get("X-Cockroach-API-Session"))
	if header != "" && header != "cookie" {
		candidates = append(candidates, header) // the header form is a single session
	} else {
		tenant := r.Header.Get(tenantHeader)
		if tenant == "" {
			if ck, err := r.Cookie("tenant"); err == nil {
				tenant = ck.Value
			}
		}
		for _, ck := range r.CookiesNamed(sessionstore.CookieName) {
			v, ok := sessionstore.TenantSession(ck.Value, tenant)
			if !ok {
				continue
			}
			if _, err := sessionstore.DecodeCookie(v); err != nil {
				continue
			}
			if candidates = append(candidates, v); len(candidates) == MaxVerifyCookies {
				break
			}
		}
	}
	// What the metrics count this request as, once it is answered.
	result := metrics.Missing
	if len(candidates) > 0 {
		result = metrics.Rejected
	}
	defer func() { h.meter.Verified(result, time.Since(start)) }()
	ctx := r.Context()
	for _, cand := range candidates {
		v, err := h.sessions.Verify(ctx, cand)
		if errors.Is(err, sessionstore.ErrInvalidSession) {
			continue
		}
		if err != nil {
			result = metrics.Failed
			return err
		}
		if h.cfg.Activity != nil {
			h.cfg.Activity.Note(v.SessionID, h.now(), c.RealIP(), r.UserAgent(), r.Header.Get("X-Forwarded-Host"), forwardedURI(r))
		}
		resp.Header().Set("X-Auth-User", headerSafe(v.Username))
		resp.Header().Set("X-Auth-Session-Id", strconv.FormatInt(v.SessionID, 10))
		result = metrics.Valid
		return c.NoContent(http.StatusOK)
	}
	return c.String(http.StatusUnauthorized, "unauthorized\n")
}

// forwardedURI is the path the proxy says the client asked for: X-Forwarded-Uri (Traefik,
// Caddy), else X-Original-URI (nginx's usual auth_request header).
func forwardedURI(r *http.Request) string {
	if u := r.Header.Get("X-Forwarded-Uri"); u != "" {
		return u
	}
	return r.Header.Get("X-Original-URI")
}

// headerSafe keeps a username exact in a header value: printable ASCII as is, but every byte
// a header cannot carry, or would lose, percent-encoded (%XX, upper-case hex): control bytes,
// bytes of non-ASCII characters, '%' itself, and spaces at either end (HTTP trims those).
// Percent-decoding (not form decoding: '+' stays '+') gives the name back.
func headerSafe(s string) string {
	lead := len(s) - len(strings.TrimLeft(s, " "))
	trail := len(strings.TrimRight(s, " "))
	encode := func(i int) bool {
		ch := s[i]
		return ch < 0x20 || ch >= 0x7f || ch == '%' || ch == ' ' && (i < lead || i >= trail)
	}
	for i := 0; i < len(s); i++ {
		if encode(i) {
			const hex = "0123456789ABCDEF"
			b := make([]byte, 0, len(s)+8)
			for j := 0; j < len(s); j++ {
				if encode(j) {
					b = append(b, '%', hex[s[j]>>4], hex[s[j]&15])
				} else {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}
