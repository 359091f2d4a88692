package handlers

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
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
			return c.Redirect(http.StatusSeeOther, "/overview")
		}
	}
	return h.render(c, http.StatusOK, templates.LoginView(h.loginView(c, localPath(c.QueryParam("next")))))
}

// loginView is the sign-in page's view: single sign-on when configured, the password form
// unless turned off.
func (h *Handler) loginView(c echo.Context, next string) templates.Login {
	v := templates.Login{Page: h.page(c, "Sign in", ""), Next: next, LocalLogin: !h.cfg.NoLocalLogin}
	if h.sso != nil {
		v.SSOName, v.SSOURL = h.sso.Name(), "/login/oidc"
		if next != "" {
			v.SSOURL += "?" + url.Values{"next": {next}}.Encode()
		}
	}
	return v
}

func (h *Handler) login(c echo.Context) error {
	var f loginForm
	if err := c.Bind(&f); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "Malformed sign-in form.")
	}
	if h.cfg.NoLocalLogin {
		return echo.NewHTTPError(http.StatusForbidden, "Password sign-in is turned off here: sign in with "+h.sso.Name()+".")
	}
	ctx := c.Request().Context()
	f.Username = strings.TrimSpace(f.Username)
	view := h.loginView(c, localPath(f.Next))
	view.Username = f.Username
	account := f.Username
	if admins.CheckName(f.Username) != nil {
		account = admins.UnknownAccount // names that cannot exist share one counter
	}
	addr := c.RealIP()
	att, err := h.admins.StartSignIn(ctx, h.cfg.Throttle, account, addr)
	if err != nil {
		return err
	}
	if att.Wait > 0 {
		view.Error = "Too many failed sign-ins from this address. Try again in " + waitText(att.Wait) + "."
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(att.Wait.Seconds()))))
		return h.render(c, http.StatusTooManyRequests, templates.LoginView(view))
	}
	err = h.admins.Authenticate(ctx, f.Username, f.Password)
	if errors.Is(err, admins.ErrBadCredentials) {
		// Nothing else changes: the row stands alone; failing to write it refuses nothing more.
		by := actions.Actor{Kind: actions.Admin, Name: storableText(f.Username, 128), RemoteAddr: addr}
		if err := h.actions.Record(ctx, by, audit.Entry{Action: audit.SignInFailed}); err != nil {
			h.log.Error("audit record failed", "action", audit.SignInFailed, "err", err)
		}
		view.Error = "Wrong admin name or password. " + triesLeftText(att)
		return h.render(c, http.StatusUnauthorized, templates.LoginView(view))
	}
	if err != nil {
		return err
	}
	if err := h.admins.SignInSucceeded(ctx, account, addr); err != nil {
		return err
	}
	// The admin session and its audit row commit together.
	var sid string
	by := actions.Actor{Kind: actions.Admin, Name: f.Username, RemoteAddr: addr}
	if err := h.actions.Do(ctx, by, func(t *sessionstore.Tx) (audit.Entry, error) {
		var err error
		sid, err = h.admins.StartSessionIn(ctx, t.DB(), f.Username,
			admins.SessionMeta{Method: admins.MethodPassword, RemoteAddr: addr, UserAgent: c.Request().UserAgent()})
		return audit.Entry{Action: audit.SignIn}, err
	}); err != nil {
		return err
	}
	if err := h.setAdminCookie(c, sid); err != nil {
		return err
	}
	h.clearCookie(c, csrfCookie) // the pre-session ends: pages now carry the session's token
	next := view.Next
	if next == "" {
		next = "/overview"
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (h *Handler) logout(c echo.Context) error {
	a, _ := c.Request().Context().Value(adminKey{}).(signedIn)
	ctx := c.Request().Context()
	if err := h.actions.Do(ctx, h.actor(c), func(t *sessionstore.Tx) (audit.Entry, error) {
		return audit.Entry{Action: audit.SignOut}, h.admins.EndSessionIn(ctx, t.DB(), a.sessionID)
	}); err != nil {
		return err
	}
	h.clearCookie(c, adminCookie)
	h.clearCookie(c, csrfCookie)
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

// triesLeftText says what a failed sign-in leaves: tries before the delay, or the delay.
func triesLeftText(a admins.Attempt) string {
	switch {
	case a.TriesLeft == 1:
		return "1 try left before further sign-ins from this address are delayed."
	case a.TriesLeft > 1:
		return fmt.Sprintf("%d tries left before further sign-ins from this address are delayed.", a.TriesLeft)
	}
	return "The next sign-in from this address must wait " + waitText(a.NextWait) + "."
}

// waitText says a wait in whole seconds (under two minutes) or minutes, rounded up.
func waitText(d time.Duration) string {
	if s := int(math.Ceil(d.Seconds())); s < 120 {
		if s <= 1 {
			return "1 second"
		}
		return strconv.Itoa(s) + " seconds"
	}
	return strconv.Itoa(int(math.Ceil(d.Minutes()))) + " minutes"
}
