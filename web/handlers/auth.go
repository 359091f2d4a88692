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
	f.Username = strings.TrimSpace(f.Username)
	view := templates.Login{Page: h.page(c, "Sign in", ""), Username: f.Username, Next: localPath(f.Next)}
	account := "admin:" + f.Username
	if admins.CheckName(f.Username) != nil {
		account = "admin:?" // names that cannot exist share one key (and keep the map small)
	}
	// Each attempt is counted before the password is checked, so that parallel attempts
	// cannot all slip through the same free slot; a success takes its count back.
	now := time.Now()
	keys := []string{account, "addr:" + c.RealIP()}
	if wait := h.throttle.attempt(now, keys...); wait > 0 {
		minutes := int(math.Ceil(wait.Minutes()))
		view.Error = fmt.Sprintf("Too many failed sign-ins for this account or from this address. Try again in %d minutes.", minutes)
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		return h.render(c, http.StatusTooManyRequests, templates.LoginView(view))
	}
	err := h.admins.Authenticate(ctx, f.Username, f.Password)
	if errors.Is(err, admins.ErrBadCredentials) {
		h.record(c, audit.Entry{Admin: f.Username, Action: audit.SignInFailed})
		view.Error = "Wrong admin name or password."
		return h.render(c, http.StatusUnauthorized, templates.LoginView(view))
	}
	h.throttle.undo(now, keys...)
	if err != nil {
		return err
	}
	h.throttle.reset(account)
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
// ?next= cannot send anyone elsewhere. Control characters and backslashes are refused
// outright: browsers drop tabs and read "\\" as "/", so "/\t/evil" would become "//evil".
func localPath(p string) string {
	bad := func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsFunc(p, bad) ||
		strings.HasPrefix(p, "/login") {
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

// attempt counts one attempt for every key, unless a key is blocked already: then it counts
// nothing and returns how long until that key frees up.
func (t *throttle) attempt(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := t.blockedLocked(now, keys...); wait > 0 {
		return wait
	}
	t.addLocked(now, keys...)
	return 0
}

// undo takes back the attempt counted at now (a successful sign-in).
func (t *throttle) undo(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		list := t.fails[k]
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].Equal(now) {
				t.fails[k] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}
}

// blockedLocked returns how long until the first blocked key frees up (0: none is blocked).
func (t *throttle) blockedLocked(now time.Time, keys ...string) time.Duration {
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

func (t *throttle) addLocked(now time.Time, keys ...string) {
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
