package handlers

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/web/templates"
)

// securecookieEncode signs and encrypts v under the current key pair.
func securecookieEncode(h *Handler, name, v string) (string, error) {
	return securecookie.EncodeMulti(name, []byte(v), h.codecs...)
}

// securecookieDecode checks and decrypts a cookie value under any configured key pair.
func securecookieDecode(h *Handler, name, value string) (string, error) {
	var b []byte
	err := securecookie.DecodeMulti(name, value, &b, h.codecs...)
	return string(b), err
}

type loginForm struct {
	Username string `form:"username"`
	Password string `form:"password"`
	Next     string `form:"next"`
}

func (h *Handler) showLogin(c echo.Context) error {
	if sid, ok := h.readAdminCookie(c); ok {
		if _, err := h.admins.CheckSession(c.Request().Context(), sid, h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout); err == nil {
			return c.Redirect(http.StatusSeeOther, "/sessions")
		}
	}
	return h.render(c, http.StatusOK, templates.LoginView(templates.Login{
		Page: h.page(c, "Sign in", ""), Next: localPath(c.QueryParam("next")),
	}))
}

func (h *Handler) login(c echo.Context) error {
	var f loginForm
	if err := c.Bind(&f); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "Malformed sign-in form.")
	}
	ctx := c.Request().Context()
	addr := c.RealIP()
	f.Username = strings.TrimSpace(f.Username)
	view := templates.Login{Page: h.page(c, "Sign in", ""), Username: f.Username, Next: localPath(f.Next)}
	if wait := h.throttle.blocked(time.Now(), "admin:"+f.Username, "addr:"+addr); wait > 0 {
		view.Error = fmt.Sprintf("Too many failed sign-ins for this account or from this address. Try again in %d minutes.",
			int(math.Ceil(wait.Minutes())))
		return h.render(c, http.StatusTooManyRequests, templates.LoginView(view))
	}
	err := h.admins.Authenticate(ctx, f.Username, f.Password)
	if errors.Is(err, admins.ErrBadCredentials) {
		h.throttle.fail(time.Now(), "admin:"+f.Username, "addr:"+addr)
		h.record(c, audit.Entry{Admin: f.Username, Action: audit.SignInFailed})
		view.Error = "Wrong admin name or password."
		return h.render(c, http.StatusUnauthorized, templates.LoginView(view))
	}
	if err != nil {
		return err
	}
	h.throttle.reset("admin:" + f.Username)
	sid, err := h.admins.StartSession(ctx, f.Username)
	if err != nil {
		return err
	}
	if err := h.setAdminCookie(c, sid); err != nil {
		return err
	}
	h.record(c, audit.Entry{Admin: f.Username, Action: audit.SignIn})
	next := view.Next
	if next == "" {
		next = "/sessions"
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (h *Handler) logout(c echo.Context) error {
	a, _ := c.Request().Context().Value(adminKey{}).(signedIn)
	if err := h.admins.EndSession(c.Request().Context(), a.sessionID); err != nil {
		return err
	}
	h.clearCookie(c, adminCookie)
	h.record(c, audit.Entry{Admin: a.name, Action: audit.SignOut})
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", "/login")
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// localPath returns p if it is a path on this site ("/sessions?..."), "" otherwise, so that
// ?next= cannot send anyone elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n") || strings.HasPrefix(p, "/login") {
		return ""
	}
	return p
}

// record writes an audit entry; a failure is logged, not shown (the action itself happened).
func (h *Handler) record(c echo.Context, e audit.Entry) {
	e.RemoteAddr = c.RealIP()
	if e.Admin == "" {
		e.Admin = adminFrom(c)
	}
	if err := h.audit.Record(c.Request().Context(), e); err != nil {
		h.log.Error("audit record failed", "action", e.Action, "err", err)
	}
}

// throttle counts failed sign-ins per key (an account, an address) in a sliding window.
type throttle struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	fails  map[string][]time.Time
}

func newThrottle(max int, window time.Duration) *throttle {
	return &throttle{max: max, window: window, fails: map[string][]time.Time{}}
}

// blocked returns how long until the first blocked key frees up (0: none is blocked).
func (t *throttle) blocked(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		recent := t.prune(now, k)
		if len(recent) >= t.max {
			if w := recent[len(recent)-t.max].Add(t.window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	return wait
}

func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) > 100000 { // bound memory under a flood of distinct names
		for k := range t.fails {
			if len(t.prune(now, k)) == 0 {
				delete(t.fails, k)
			}
		}
	}
	for _, k := range keys {
		t.fails[k] = append(t.prune(now, k), now)
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.fails, key)
	t.mu.Unlock()
}

func (t *throttle) prune(now time.Time, key string) []time.Time {
	list := t.fails[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= t.window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = list
	return list
}
