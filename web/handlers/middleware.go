package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/web/static"
)

const (
	adminCookie = "console_admin"
	csrfCookie  = "console_csrf"
	flashCookie = "console_flash"
)

// contentSecurityPolicy allows only the console's own script and style files: no inline
// script or style, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if h.cfg.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(c.Request().URL.Path, static.Prefix) {
			// Pages carry CSRF tokens and session data: never cache them.
			hd.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// logRequests logs each request once, by its route (/users/:name/revoke), not its URL: query
// strings and path values hold nothing secret by design, but usernames are nobody's business
// in a log.
func (h *Handler) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		path := c.Path()
		if path == "" {
			path = "(no route)"
		}
		if path == "/healthz" || strings.HasPrefix(path, static.Prefix) {
			return nil
		}
		// A reverse proxy asks /auth/verify once per request it proxies: log only its failures.
		if path == "/auth/verify" && c.Response().Status < http.StatusInternalServerError {
			return nil
		}
		h.log.Info("request", "method", c.Request().Method, "path", path,
			"status", c.Response().Status, "duration", time.Since(start).Round(time.Microsecond),
			"remote", c.RealIP())
		return nil
	}
}

// deriveKey derives a purpose-specific key from a master key.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("session-console/" + purpose))
	return m.Sum(nil)
}

// csrf keeps a random per-browser cookie and requires every state-changing request to carry
// the token derived from it (HMAC under a server key), in the form field _csrf or the header
// X-CSRF-Token. Written here rather than taken from echo's middleware, which lets a same-origin
// request through on its Sec-Fetch-Site header alone, without any token.
func (h *Handler) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		seed := ""
		if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
			seed = ck.Value
		} else {
			b := make([]byte, 32)
			rand.Read(b)
			seed = base64.RawURLEncoding.EncodeToString(b)
			c.SetCookie(&http.Cookie{Name: csrfCookie, Value: seed, Path: "/", HttpOnly: true,
				Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode})
		}
		token := h.tokenFor(seed)
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), csrfKey{}, token)))
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return echo.NewHTTPError(http.StatusForbidden, "Cross-site request refused.")
		}
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "Missing or invalid CSRF token: reload the page and try again.")
		}
		return next(c)
	}
}

func (h *Handler) tokenFor(seed string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type csrfKey struct{}
type adminKey struct{}

// signedIn is the admin behind a request.
type signedIn struct {
	name      string
	sessionID string
}

// csrfToken returns the request's CSRF token ("" outside the csrf middleware).
func (h *Handler) csrfToken(c echo.Context) string {
	t, _ := c.Request().Context().Value(csrfKey{}).(string)
	return t
}

// adminFrom returns the signed-in admin's name ("" when nobody is signed in).
func adminFrom(c echo.Context) string {
	a, _ := c.Request().Context().Value(adminKey{}).(signedIn)
	return a.name
}

// requireAdmin lets a request through only with a valid admin cookie of a live session.
// Others go to the sign-in page (htmx: told to go there with HX-Redirect).
func (h *Handler) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sid, ok := h.readAdminCookie(c)
		if ok {
			name, err := h.admins.CheckSession(c.Request().Context(), sid, h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout)
			switch {
			case err == nil:
				r := c.Request()
				c.SetRequest(r.WithContext(context.WithValue(r.Context(), adminKey{}, signedIn{name: name, sessionID: sid})))
				return next(c)
			case !errors.Is(err, admins.ErrNoSession):
				return err
			}
			h.clearCookie(c, adminCookie)
		}
		if c.Request().Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Redirect", "/login")
			return c.NoContent(http.StatusUnauthorized)
		}
		if c.Request().Method != http.MethodGet {
			return echo.NewHTTPError(http.StatusUnauthorized, "Your console session has ended: sign in again.")
		}
		next := url.Values{"next": {c.Request().URL.RequestURI()}}
		return c.Redirect(http.StatusSeeOther, "/login?"+next.Encode())
	}
}

func (h *Handler) readAdminCookie(c echo.Context) (string, bool) {
	ck, err := c.Cookie(adminCookie)
	if err != nil {
		return "", false
	}
	sid, err := securecookieDecode(h, adminCookie, ck.Value)
	if err != nil || sid == "" {
		return "", false
	}
	return sid, true
}

func (h *Handler) setAdminCookie(c echo.Context, sid string) error {
	enc, err := securecookieEncode(h, adminCookie, sid)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: adminCookie, Value: enc, Path: "/", HttpOnly: true,
		Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode})
	return nil
}

func (h *Handler) clearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode})
}

// setFlash keeps a notice for the next page (after a redirect without JavaScript).
func (h *Handler) setFlash(c echo.Context, msg string) {
	if enc, err := securecookieEncode(h, flashCookie, msg); err == nil {
		c.SetCookie(&http.Cookie{Name: flashCookie, Value: enc, Path: "/", HttpOnly: true,
			Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: 60})
	}
}

// takeFlash returns and clears the pending notice.
func (h *Handler) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	h.clearCookie(c, flashCookie)
	msg, err := securecookieDecode(h, flashCookie, ck.Value)
	if err != nil {
		return ""
	}
	return msg
}
