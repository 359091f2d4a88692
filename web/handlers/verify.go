package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/sessionstore"
)

// verifySession answers a reverse proxy's sub-request (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth): 200 with X-Auth-User and X-Auth-Session-Id for a valid session, 401
// with no detail otherwise, 503 when the database cannot say. The session comes from the
// X-Cockroach-API-Session header (the value, or "cookie" to mean the cookie) or the `session`
// cookie.
func (h *Handler) verifySession(c echo.Context) error {
	resp := c.Response()
	resp.Header().Set("Cache-Control", "no-store")
	var candidates []string
	header := strings.TrimSpace(c.Request().Header.Get("X-Cockroach-API-Session"))
	if header != "" && header != "cookie" {
		candidates = append(candidates, header)
	} else {
		for _, ck := range c.Request().Cookies() {
			if ck.Name == sessionstore.CookieName {
				candidates = append(candidates, ck.Value)
			}
		}
	}
	ctx := c.Request().Context()
	for _, cand := range candidates {
		v, err := h.sessions.Verify(ctx, cand)
		if errors.Is(err, sessionstore.ErrInvalidSession) {
			continue
		}
		if err != nil {
			return err
		}
		if h.now().Sub(v.LastUsedAt) > time.Minute {
			h.sessions.NoteUsed(v.SessionID)
		}
		resp.Header().Set("X-Auth-User", headerSafe(v.Username))
		resp.Header().Set("X-Auth-Session-Id", strconv.FormatInt(v.SessionID, 10))
		return c.NoContent(http.StatusOK)
	}
	return c.String(http.StatusUnauthorized, "unauthorized\n")
}

// headerSafe keeps a username usable as a header value: printable ASCII as is, anything else
// percent-encoded.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f || s[i] == '%' {
			var b strings.Builder
			for j := 0; j < len(s); j++ {
				ch := s[j]
				if ch < 0x20 || ch >= 0x7f || ch == '%' {
					b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(ch)|0x100, 16)[1:]))
				} else {
					b.WriteByte(ch)
				}
			}
			return b.String()
		}
	}
	return s
}
