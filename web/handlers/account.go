package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/web/templates"
)

// /account (every admin): change one's own password (the current one first; other sessions
// end), see one's sessions and end those on other devices. /set-password: the page of a
// one-time set-password link.

func (h *Handler) accountPage(c echo.Context) (templates.AccountPage, error) {
	a := signedInFrom(c)
	list, err := h.admins.Sessions(c.Request().Context(), a.Admin, h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout)
	if err != nil {
		return templates.AccountPage{}, err
	}
	v := templates.AccountPage{
		Page: h.page(c, "Your account", "account"), Notice: h.takeFlash(c), Name: a.Admin, Method: "password",
		CanChangePassword: a.Method == admins.MethodPassword, MustChangePassword: a.MustChangePassword,
	}
	if a.Method == admins.MethodOIDC {
		v.Method = "single sign-on"
		if h.sso != nil {
			v.Method += " (" + h.sso.Name() + ")"
		}
	}
	current := admins.Handle(a.sessionID)
	now := h.now()
	for _, s := range list {
		ua := templates.ShowName(s.UserAgent)
		if ua == "" {
			ua = "unknown browser"
		}
		method := "password"
		if s.Method == admins.MethodOIDC {
			method = "SSO"
		}
		v.Sessions = append(v.Sessions, templates.AccountSession{Handle: s.Handle, Current: s.Handle == current, Method: method,
			Created: timeCell(s.CreatedAt, now), LastSeen: timeCell(s.LastSeen, now), Address: s.RemoteAddr, UserAgent: ua})
	}
	return v, nil
}

func (h *Handler) showAccount(c echo.Context) error {
	v, err := h.accountPage(c)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, templates.AccountView(v))
}

func (h *Handler) accountFailed(c echo.Context, status int, edit func(*templates.AccountPage)) error {
	v, err := h.accountPage(c)
	if err != nil {
		return err
	}
	edit(&v)
	return h.render(c, status, templates.AccountView(v))
}

// changeOwnPassword checks the current password as a sign-in does, throttled the same way, so
// that a borrowed session cannot guess it quickly.
func (h *Handler) changeOwnPassword(c echo.Context) error {
	a := signedInFrom(c)
	if a.Method != admins.MethodPassword {
		return echo.NewHTTPError(http.StatusConflict, "You sign in by single sign-on: there is no console password to change.")
	}
	current, password, repeat := c.FormValue("current"), c.FormValue("password"), c.FormValue("repeat")
	if password != repeat {
		return h.accountFailed(c, http.StatusUnprocessableEntity, func(v *templates.AccountPage) { v.NewError = "The two new passwords differ." })
	}
	if err := admins.CheckPassword(password); err != nil {
		return h.accountFailed(c, http.StatusUnprocessableEntity, func(v *templates.AccountPage) {
			v.NewError = strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": ") + "."
		})
	}
	ctx := c.Request().Context()
	addr := c.RealIP()
	att, err := h.admins.StartSignIn(ctx, h.cfg.Throttle, a.Admin, addr)
	if err != nil {
		return err
	}
	if att.Wait > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(att.Wait.Seconds())+1))
		return h.accountFailed(c, http.StatusTooManyRequests, func(v *templates.AccountPage) {
			v.CurrentError = "Too many wrong passwords. Try again in " + waitText(att.Wait) + "."
		})
	}
	err = h.admins.ChangeOwnPassword(ctx, a.Admin, current, password, a.sessionID, h.by(c))
	switch {
	case errors.Is(err, admins.ErrBadCredentials):
		return h.accountFailed(c, http.StatusUnprocessableEntity, func(v *templates.AccountPage) {
			v.CurrentError = "That is not your current password."
		})
	case errors.Is(err, admins.ErrInvalid):
		return h.accountFailed(c, http.StatusUnprocessableEntity, func(v *templates.AccountPage) {
			v.NewError = strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": ") + "."
		})
	case err != nil:
		return err
	}
	if err := h.admins.SignInSucceeded(ctx, a.Admin, addr); err != nil {
		return err
	}
	h.setFlash(c, "Your password is changed. Your other sessions have ended.")
	return c.Redirect(http.StatusSeeOther, "/account")
}

func (h *Handler) endOwnSession(c echo.Context) error {
	a := signedInFrom(c)
	handle := c.Param("handle")
	if handle == admins.Handle(a.sessionID) {
		return echo.NewHTTPError(http.StatusConflict, "That is this session: sign out instead.")
	}
	err := h.admins.EndOwnSession(c.Request().Context(), a.Admin, handle, h.by(c))
	if errors.Is(err, admins.ErrNoSession) {
		return echo.NewHTTPError(http.StatusNotFound, "You have no such session (it may have ended already).")
	}
	if err != nil {
		return err
	}
	h.setFlash(c, "Ended that session.")
	return c.Redirect(http.StatusSeeOther, "/account")
}

func (h *Handler) showSetPassword(c echo.Context) error {
	return h.render(c, http.StatusOK, templates.SetPasswordView(templates.SetPasswordPage{Page: h.page(c, "Set your password", "")}))
}

func (h *Handler) setPasswordByLink(c echo.Context) error {
	code, password, repeat := strings.TrimSpace(c.FormValue("code")), c.FormValue("password"), c.FormValue("repeat")
	code = strings.TrimPrefix(code, "#")
	v := templates.SetPasswordPage{Page: h.page(c, "Set your password", ""), Code: code}
	fail := func(status int, edit func()) error {
		edit()
		noStore(c)
		return h.render(c, status, templates.SetPasswordView(v))
	}
	if password != repeat {
		return fail(http.StatusUnprocessableEntity, func() { v.NewError = "The two passwords differ." })
	}
	if err := admins.CheckPassword(password); err != nil {
		return fail(http.StatusUnprocessableEntity, func() { v.NewError = strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": ") + "." })
	}
	name, err := h.admins.SetPasswordByLink(c.Request().Context(), code, password, h.by(c))
	switch {
	case errors.Is(err, admins.ErrLinkInvalid), errors.Is(err, admins.ErrSSO), errors.Is(err, admins.ErrNotFound):
		return fail(http.StatusUnprocessableEntity, func() {
			v.Code, v.CodeError = "", "This link is not valid: it was used already, has expired, or was mistyped. Ask an owner for a new one."
		})
	case err != nil:
		return err
	}
	v.Code, v.Done = "", name
	return h.render(c, http.StatusOK, templates.SetPasswordView(v))
}
