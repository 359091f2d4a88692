package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/web/templates"
)

// /admins (owners): every admin and API token, and the changes to them. Changes that show a
// secret (a new admin's one-time password or set-password link, a reset, a new token) answer
// with the page and the secret once, never through a redirect; the others redirect back with
// a notice.

// adminParam returns the {name} of /admins/{name}/..., unescaped (from the escaped path, as
// userParam does).
func adminParam(c echo.Context) (string, error) {
	rest := strings.TrimPrefix(c.Request().URL.EscapedPath(), "/admins/")
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" {
		return "", echo.NewHTTPError(http.StatusBadRequest, "Invalid admin name in the address.")
	}
	if err := checkText("admin name", name); err != nil {
		return "", err
	}
	return name, nil
}

// by is the audit actor of the request, as the admin and token stores take it.
func (h *Handler) by(c echo.Context) audit.Entry {
	a := h.actor(c)
	return audit.Entry{Admin: a.AuditName(), RemoteAddr: a.RemoteAddr}
}

func roleOptions(selected admins.Role) []templates.Option {
	out := make([]templates.Option, 0, len(admins.Roles))
	for _, r := range admins.Roles {
		out = append(out, templates.Option{Value: string(r), Label: string(r), Selected: r == selected})
	}
	return out
}

func credentialOptions(selected string) []templates.Option {
	return []templates.Option{
		{Value: "password", Label: "one-time password", Selected: selected != "link"},
		{Value: "link", Label: "set-password link", Selected: selected == "link"},
	}
}

func parseCredential(s string) (admins.Credential, error) {
	switch s {
	case "", "password":
		return admins.OneTimePassword, nil
	case "link":
		return admins.SetPasswordLink, nil
	}
	return 0, echo.NewHTTPError(http.StatusUnprocessableEntity, "Choose a one-time password or a set-password link.")
}

// listAdmins returns every admin with its count of active admin sessions and whether it is
// throttled now (by name), as /admins and /api/v1/admins show them.
func (h *Handler) listAdmins(ctx context.Context) ([]admins.Admin, map[string]int, map[string]bool, error) {
	list, err := h.admins.List(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	active, err := h.admins.ActiveSessions(ctx, h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout)
	if err != nil {
		return nil, nil, nil, err
	}
	throttled, err := h.admins.Throttled(ctx, h.cfg.Throttle)
	if err != nil {
		return nil, nil, nil, err
	}
	return list, active, throttled, nil
}

// adminsPage loads the whole /admins view.
func (h *Handler) adminsPage(c echo.Context) (templates.AdminsPage, error) {
	ctx := c.Request().Context()
	list, active, throttled, err := h.listAdmins(ctx)
	if err != nil {
		return templates.AdminsPage{}, err
	}
	toks, err := h.tokens.List(ctx)
	if err != nil {
		return templates.AdminsPage{}, err
	}
	now := h.now()
	me := signedInFrom(c).Admin
	v := templates.AdminsPage{
		Page:       h.page(c, "Admins", "admins"),
		Notice:     h.takeFlash(c),
		LocalLogin: !h.cfg.NoLocalLogin,
		Add:        templates.AddAdminForm{Roles: roleOptions(admins.Viewer), Credentials: credentialOptions("")},
		TokenForm:  h.tokenForm("", admins.Viewer, "", ""),
	}
	for _, a := range list {
		row := templates.AdminRow{Name: a.Name, Role: string(a.Role), Method: "password", SSO: a.Method == admins.MethodOIDC,
			Sessions: active[a.Name], Throttled: throttled[a.Name], Self: a.Name == me, Roles: roleOptions(a.Role),
			MustChangePassword: a.MustChangePassword}
		if row.SSO {
			row.Method = "SSO"
		}
		if a.LastSignIn != nil {
			tc := timeCell(*a.LastSignIn, now)
			row.LastSignIn = &tc
		}
		v.Admins = append(v.Admins, row)
	}
	for _, t := range toks {
		row := templates.TokenRow{Name: t.Name, Role: string(t.Role), CreatedBy: t.CreatedBy,
			Created: timeCell(t.CreatedAt, now), Expires: timeCell(t.ExpiresAt, now), Expired: t.Expired(now)}
		if t.LastUsedAt != nil {
			tc := timeCell(*t.LastUsedAt, now)
			row.LastUsed = &tc
		}
		v.Tokens = append(v.Tokens, row)
	}
	return v, nil
}

func (h *Handler) showAdminsPage(c echo.Context) error {
	v, err := h.adminsPage(c)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, templates.AdminsView(v))
}

// adminsAnswer shows the page after a change: with a secret shown once (no-store), or with an
// error and its status.
func (h *Handler) adminsAnswer(c echo.Context, status int, edit func(*templates.AdminsPage)) error {
	v, err := h.adminsPage(c)
	if err != nil {
		return err
	}
	edit(&v)
	noStore(c)
	return h.render(c, status, templates.AdminsView(v))
}

// adminsDone redirects back to /admins with a notice (POST-redirect-GET).
func (h *Handler) adminsDone(c echo.Context, notice string) error {
	h.setFlash(c, notice)
	return c.Redirect(http.StatusSeeOther, "/admins")
}

// adminsFailed answers a refused change: the page with the reason, and its status.
func (h *Handler) adminsFailed(c echo.Context, name string, err error) error {
	status, msg := http.StatusInternalServerError, ""
	shown := templates.ShowName(name)
	switch {
	case errors.Is(err, admins.ErrNotFound):
		status, msg = http.StatusNotFound, fmt.Sprintf("There is no admin %s.", shown)
	case errors.Is(err, admins.ErrLastOwner):
		status, msg = http.StatusConflict, fmt.Sprintf("%s is the last owner: make another admin an owner first.", shown)
	case errors.Is(err, admins.ErrSSO):
		status, msg = http.StatusConflict, fmt.Sprintf("%s signs in by single sign-on: its role comes from the identity provider at each sign-in, and it has no password here.", shown)
	case errors.Is(err, admins.ErrInvalid):
		status, msg = http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": ")
	default:
		return err
	}
	return h.adminsAnswer(c, status, func(v *templates.AdminsPage) { v.Error = msg })
}

func (h *Handler) addAdmin(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	role, rerr := admins.ParseRole(c.FormValue("role"))
	cred, cerr := parseCredential(c.FormValue("credential"))
	form := templates.AddAdminForm{Name: name, Roles: roleOptions(role), Credentials: credentialOptions(c.FormValue("credential"))}
	fail := func(msg string) error {
		return h.adminsAnswer(c, http.StatusUnprocessableEntity, func(v *templates.AdminsPage) {
			form.NameError = msg
			v.Add = form
		})
	}
	switch {
	case rerr != nil:
		return fail("Choose a role: viewer, operator or owner.")
	case cerr != nil:
		return fail("Choose a one-time password or a set-password link.")
	}
	if err := admins.CheckName(name); err != nil {
		return fail(strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": ") + ".")
	}
	secret, err := h.admins.Create(c.Request().Context(), admins.NewAdmin{Name: name, Role: role, Credential: cred, LinkTTL: h.cfg.LinkTTL}, h.by(c))
	if errors.Is(err, admins.ErrExists) {
		return fail(fmt.Sprintf("There is an admin %s already.", templates.ShowName(name)))
	}
	if err != nil {
		return err
	}
	return h.adminsAnswer(c, http.StatusOK, func(v *templates.AdminsPage) {
		v.Notice = fmt.Sprintf("Added admin %s with role %s.", name, role)
		v.Result = h.oneTime(c, name, cred, secret)
	})
}

// oneTime is the result panel of a one-time password or set-password link.
func (h *Handler) oneTime(c echo.Context, name string, cred admins.Credential, secret string) *templates.OneTime {
	if cred == admins.SetPasswordLink {
		return &templates.OneTime{Kind: "link", For: name, Secret: secret, Link: h.siteURL(c) + "/set-password#" + secret,
			Expires: output.Timestamp(h.now().Add(h.cfg.LinkTTL))[:19]}
	}
	return &templates.OneTime{Kind: "password", For: name, Secret: secret}
}

// siteURL is the console's address as the browser reached it (scheme and host), for links
// that an owner passes on.
func (h *Handler) siteURL(c echo.Context) string {
	scheme := "http"
	if h.cfg.Secure {
		scheme = "https"
	}
	return scheme + "://" + c.Request().Host
}

func (h *Handler) setAdminRole(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	role, err := admins.ParseRole(c.FormValue("role"))
	if err != nil {
		return h.adminsFailed(c, name, err)
	}
	if err := h.admins.SetRole(c.Request().Context(), name, role, h.by(c)); err != nil {
		return h.adminsFailed(c, name, err)
	}
	return h.adminsDone(c, fmt.Sprintf("%s now has role %s.", templates.ShowName(name), role))
}

func (h *Handler) resetAdminPassword(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	cred, err := parseCredential(c.FormValue("credential"))
	if err != nil {
		return err
	}
	if name == signedInFrom(c).Admin {
		return h.adminsAnswer(c, http.StatusConflict, func(v *templates.AdminsPage) {
			v.Error = "Change your own password on your account page (a reset would end this session)."
		})
	}
	secret, err := h.admins.ResetPassword(c.Request().Context(), name, cred, h.cfg.LinkTTL, h.by(c))
	if err != nil {
		return h.adminsFailed(c, name, err)
	}
	return h.adminsAnswer(c, http.StatusOK, func(v *templates.AdminsPage) {
		v.Notice = fmt.Sprintf("Reset the password of %s and ended its sessions.", templates.ShowName(name))
		v.Result = h.oneTime(c, name, cred, secret)
	})
}

func (h *Handler) endAdminSessions(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	n, err := h.admins.EndSessions(c.Request().Context(), name, h.by(c))
	if err != nil {
		return h.adminsFailed(c, name, err)
	}
	if name == signedInFrom(c).Admin {
		return c.Redirect(http.StatusSeeOther, "/login") // that ended this session too
	}
	return h.adminsDone(c, fmt.Sprintf("Ended %s of %s.", plural(n, "session"), templates.ShowName(name)))
}

func (h *Handler) clearAdminThrottle(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	if err := h.admins.ClearThrottle(c.Request().Context(), name, h.by(c)); err != nil {
		return err
	}
	return h.adminsDone(c, fmt.Sprintf("Cleared the failed sign-ins of %s.", templates.ShowName(name)))
}

// adminConfirm answers a confirmation: the dialog's content for htmx, a page otherwise.
func (h *Handler) adminConfirm(c echo.Context, v templates.AdminConfirm) error {
	varyOnHTMX(c)
	v.Page = h.page(c, v.Title, "admins")
	if isPartial(c) {
		return h.render(c, http.StatusOK, templates.AdminConfirmFragment(v))
	}
	return h.render(c, http.StatusOK, templates.AdminConfirmView(v))
}

func (h *Handler) confirmRemoveAdmin(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	a, err := h.admins.Get(c.Request().Context(), name)
	if err != nil {
		if errors.Is(err, admins.ErrNotFound) {
			return echo.NewHTTPError(http.StatusNotFound, "There is no admin "+templates.ShowName(name)+".")
		}
		return err
	}
	shown := templates.ShowName(name)
	msg := fmt.Sprintf("%s (%s) can no longer sign in, and its sessions end at once.", shown, a.Role)
	if a.Method == admins.MethodOIDC {
		msg += " Single sign-on lets it in again (with the provider's role) unless the provider stops mapping it to a role."
	}
	return h.adminConfirm(c, templates.AdminConfirm{Title: "Remove admin " + shown + "?", Message: msg,
		Action: templates.AdminURL(name, "remove"), Button: "Remove admin"})
}

func (h *Handler) removeAdmin(c echo.Context) error {
	name, err := adminParam(c)
	if err != nil {
		return err
	}
	if err := h.admins.Remove(c.Request().Context(), name, h.by(c)); err != nil {
		return h.adminsFailed(c, name, err)
	}
	if name == signedInFrom(c).Admin {
		return c.Redirect(http.StatusSeeOther, "/login")
	}
	return h.adminsDone(c, fmt.Sprintf("Removed admin %s.", templates.ShowName(name)))
}
