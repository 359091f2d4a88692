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

// logRequests logs each request once (see logPath for what it says of the path). Health
// checks and static assets that were found are not logged; /auth/verify only when it fails.
func (h *Handler) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route, status := c.Path(), c.Response().Status
		if route == "/healthz" || strings.HasPrefix(route, static.Prefix) && status < http.StatusBadRequest {
			return nil
		}
		// A reverse proxy asks /auth/verify once per request it proxies: log only its failures.
		if route == "/auth/verify" && status < http.StatusInternalServerError {
			return nil
		}
		h.log.Info("request", "method", c.Request().Method, "path", logPath(c),
			"status", c.Response().Status, "duration", time.Since(start).Round(time.Microsecond),
			"remote", c.RealIP())
		return nil
	}
}

// maxLoggedPath caps the path in a log line.
const maxLoggedPath = 200

// logPath is what the log says a request was for: its path, never the query, so that a 404 or
// a static asset says what was asked; but under /users/ (whose paths hold a username, nobody's
// business in a log) the route, /users/:name/revoke, or /users/* for a path that matched none.
func logPath(c echo.Context) string {
	p := c.Request().URL.EscapedPath()
	if strings.HasPrefix(p, "/users/") {
		if route := c.Path(); strings.HasPrefix(route, "/users/:") {
			return route
		}
		return "/users/*"
	}
	if len(p) > maxLoggedPath {
		return p[:maxLoggedPath] + "..."
	}
	return p
}

// deriveKey derives a purpose-specific key from a master key.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("session-console/" + purpose))
	return m.Sum(nil)
}

// The CSRF tokens. After sign-in a page's token is bound to the server-side admin session (an
// HMAC of its ID under a server key): it changes at every sign-in, dies at sign-out and is
// worth nothing in another session. Before sign-in only the login form has a token, bound to
// a pre-session: a random seed in a cookie that the console signs itself (so a client cannot
// choose it), cleared at sign-in and at sign-out. Tokens come only in the X-CSRF-Token header
// (htmx) or the _csrf field of a form body, never from the query string. Before any token is
// looked at, Go's net/http.CrossOriginProtection refuses state changes that a browser marks as
// cross-origin (Sec-Fetch-Site other than same-origin or none, so same-site too) or whose
// Origin is not this host. Written here rather than taken from echo's middleware, which lets a
// same-origin request through on its Sec-Fetch-Site header alone, without any token.

const (
	tokenPreSession = "login\x00"
	tokenSession    = "session\x00"
)

func safeMethod(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// checkToken refuses a state change that is cross-origin or lacks the token want.
func (h *Handler) checkToken(c echo.Context, want string) error {
	r := c.Request()
	if safeMethod(r) {
		return nil
	}
	if err := h.crossOrigin.Check(r); err != nil {
		return echo.NewHTTPError(http.StatusForbidden, "Cross-site request refused.")
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("_csrf")
	}
	if got == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return echo.NewHTTPError(http.StatusForbidden, "Missing or invalid CSRF token: reload the page and try again.")
	}
	return nil
}

// loginCSRF guards the sign-in form with the pre-session token, making a pre-session when the
// browser has none (or one the console did not sign).
func (h *Handler) loginCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		seed := ""
		if ck, err := c.Cookie(h.cookieName(csrfCookie)); err == nil {
			seed, _ = securecookieDecode(h, csrfCookie, ck.Value)
		}
		if seed == "" {
			b := make([]byte, 32)
			rand.Read(b)
			seed = base64.RawURLEncoding.EncodeToString(b)
			enc, err := securecookieEncode(h, csrfCookie, seed)
			if err != nil {
				return err
			}
			c.SetCookie(h.cookie(csrfCookie, enc, 0))
		}
		// The token goes on every page, an error page too; a new seed cannot match any.
		want := h.tokenFor(tokenPreSession + seed)
		h.setCSRFToken(c, want)
		if err := h.checkToken(c, want); err != nil {
			return err
		}
		return next(c)
	}
}

// sessionCSRF guards the signed-in routes with the token of the admin session (it runs after
// requireAdmin or requireAdminOrToken). A request with an API token needs none: it carries no
// cookie, so no other site can make a browser send it.
func (h *Handler) sessionCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a := signedInFrom(c)
		if a.token != "" {
			return next(c)
		}
		want := ""
		if a.sessionID != "" {
			want = h.tokenFor(tokenSession + a.sessionID)
		}
		h.setCSRFToken(c, want)
		if err := h.checkToken(c, want); err != nil {
			return err
		}
		return next(c)
	}
}

func (h *Handler) setCSRFToken(c echo.Context, token string) {
	r := c.Request()
	c.SetRequest(r.WithContext(context.WithValue(r.Context(), csrfKey{}, token)))
}

func (h *Handler) tokenFor(binding string) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type csrfKey struct{}
type adminKey struct{}

// signedIn is who a request acts for: an admin signed in with a browser session, or an API
// token (token set, sessionID empty).
type signedIn struct {
	admins.Identity
	sessionID string
	token     string // the API token's name
}

// auditName is the actor as the audit log names it: the admin, or token:<name>.
func (a signedIn) auditName() string {
	if a.token != "" {
		return "token:" + a.token
	}
	return a.Admin
}

// signedInFrom returns who the request acts for (the zero value outside the signed-in routes).
func signedInFrom(c echo.Context) signedIn {
	a, _ := c.Request().Context().Value(adminKey{}).(signedIn)
	return a
}

// csrfToken returns the request's CSRF token ("" outside the csrf middleware).
func (h *Handler) csrfToken(c echo.Context) string {
	t, _ := c.Request().Context().Value(csrfKey{}).(string)
	return t
}

// adminFrom returns the actor's audit name ("" when nobody is signed in).
func adminFrom(c echo.Context) string {
	return signedInFrom(c).auditName()
}

// requireAdmin lets a request through only with a valid admin cookie of a live session.
// Others go to the sign-in page (htmx: told to go there with HX-Redirect). API tokens are
// refused here: these are the HTML pages.
func (h *Handler) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Header.Get(echo.HeaderAuthorization) != "" {
			return echo.NewHTTPError(http.StatusUnauthorized,
				"API tokens are not accepted on the HTML pages: use the JSON API (/api/v1/...) or the exports.")
		}
		sid, ok := h.readAdminCookie(c)
		if ok {
			check := h.admins.CheckSession
			if isBackground(c) {
				check = h.admins.PeekSession // not activity: the idle clock keeps running
			}
			ident, err := check(c.Request().Context(), sid, h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout)
			switch {
			case err == nil:
				r := c.Request()
				c.SetRequest(r.WithContext(context.WithValue(r.Context(), adminKey{}, signedIn{Identity: ident, sessionID: sid})))
				return next(c)
			case !errors.Is(err, admins.ErrNoSession):
				return err
			}
			h.clearCookie(c, adminCookie)
		}
		if isAPI(c) {
			return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "Sign in, or send an API token as: Authorization: Bearer <token>."}
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
	ck, err := c.Cookie(h.cookieName(adminCookie))
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
	c.SetCookie(h.cookie(adminCookie, enc, 0))
	return nil
}

// cookieName is the name of one of the console's cookies: under TLS with the __Host- prefix,
// which browsers accept only from a secure origin, for the whole host (Path=/, no Domain), so
// that no other site of the domain can set or replace it.
func (h *Handler) cookieName(name string) string {
	if h.cfg.Secure {
		return "__Host-" + name
	}
	return name
}

// cookie is one of the console's cookies: HttpOnly, SameSite=Strict, Path=/, Secure under TLS.
// maxAge as in http.Cookie (0: until the browser closes; negative: delete).
func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: h.cookieName(name), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.cfg.Secure, SameSite: http.SameSiteStrictMode}
}

func (h *Handler) clearCookie(c echo.Context, name string) {
	c.SetCookie(h.cookie(name, "", -1))
}

// setFlash keeps a notice for the next page (after a redirect without JavaScript).
func (h *Handler) setFlash(c echo.Context, msg string) {
	if enc, err := securecookieEncode(h, flashCookie, msg); err == nil {
		c.SetCookie(h.cookie(flashCookie, enc, 60))
	}
}

// takeFlash returns and clears the pending notice.
func (h *Handler) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(h.cookieName(flashCookie))
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
