package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// API tokens on /admins (owners): make one (shown once), revoke one.

// tokenPresets are the expiry choices of a new token, in the syntax the custom field takes too.
var tokenPresets = []struct{ value, label string }{
	{"1d", "1 day"}, {"7d", "7 days"}, {"30d", "30 days"}, {"90d", "90 days"}, {"365d", "365 days"},
}

const defaultTokenPreset = "30d"

func (h *Handler) tokenForm(name string, role admins.Role, preset, custom string) templates.TokenForm {
	if preset == "" {
		preset = defaultTokenPreset
	}
	f := templates.TokenForm{Name: name, Roles: roleOptions(role), Custom: custom, Max: sessionstore.FormatWebDuration(h.tokens.MaxTTL())}
	for _, p := range tokenPresets {
		f.Presets = append(f.Presets, templates.Option{Value: p.value, Label: p.label, Selected: p.value == preset})
	}
	return f
}

// tokenParam returns the {name} of /tokens/{name}/revoke (token names need no escaping).
func tokenParam(c echo.Context) (string, error) {
	name := c.Param("name")
	if tokens.CheckName(name) != nil {
		return "", echo.NewHTTPError(http.StatusNotFound, "No such API token.")
	}
	return name, nil
}

// newToken is a token to make, as the form or the API sent it, checked: each field's error
// is a message for people ("" when the field is fine).
type newToken struct {
	name                        string
	role                        admins.Role
	ttl                         time.Duration
	nameErr, roleErr, expireErr string
}

func (t newToken) ok() bool { return t.nameErr == "" && t.roleErr == "" && t.expireErr == "" }

// checkNewToken checks a new token's name, role and expiry (the web's syntax).
func (h *Handler) checkNewToken(name, role, expiry string) newToken {
	t := newToken{name: name}
	var err error
	if t.role, err = admins.ParseRole(role); err != nil {
		t.roleErr = "Choose a role: viewer, operator or owner."
	}
	if err := tokens.CheckName(name); err != nil {
		t.nameErr = strings.TrimPrefix(err.Error(), tokens.ErrInvalid.Error()+": ") + "."
	}
	t.ttl, err = sessionstore.ParseWebExpiry(expiry)
	if err == nil {
		err = h.tokens.CheckTTL(t.ttl)
	}
	if err != nil {
		t.expireErr = strings.TrimPrefix(strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": "), tokens.ErrInvalid.Error()+": ")
	}
	return t
}

func (h *Handler) createToken(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	role, _ := admins.ParseRole(c.FormValue("role"))
	preset, custom := c.FormValue("expire_after"), strings.TrimSpace(c.FormValue("expire_custom"))
	form := h.tokenForm(name, role, preset, custom)
	text := preset
	if custom != "" {
		text = custom
	}
	in := h.checkNewToken(name, c.FormValue("role"), text)
	form.ExpireError = in.expireErr
	form.NameError = in.roleErr // (the form shows a role's error under the name)
	if form.NameError == "" {
		form.NameError = in.nameErr
	}
	var (
		secret string
		tok    tokens.Token
		err    error
	)
	if in.ok() {
		secret, tok, err = h.tokens.Create(c.Request().Context(), name, in.role, in.ttl, h.by(c))
		switch {
		case errors.Is(err, tokens.ErrExists):
			form.NameError = "There is a token " + name + " already."
		case err != nil:
			return err
		}
	}
	if secret == "" {
		return h.adminsAnswer(c, http.StatusUnprocessableEntity, func(v *templates.AdminsPage) { v.TokenForm = form })
	}
	return h.adminsAnswer(c, http.StatusOK, func(v *templates.AdminsPage) {
		v.Notice = fmt.Sprintf("Made API token %s with role %s.", name, role)
		v.Result = &templates.OneTime{Kind: "token", For: name, Secret: secret, Expires: output.Timestamp(tok.ExpiresAt)[:19],
			Curl: "curl -H 'Authorization: Bearer " + secret + "' " + h.siteURL(c) + "/api/v1/sessions"}
	})
}

func (h *Handler) confirmRevokeToken(c echo.Context) error {
	name, err := tokenParam(c)
	if err != nil {
		return err
	}
	return h.adminConfirm(c, templates.AdminConfirm{Title: "Revoke API token " + name + "?",
		Message: "Scripts that use it get 401 from now on.", Action: "/tokens/" + name + "/revoke", Button: "Revoke token"})
}

func (h *Handler) revokeToken(c echo.Context) error {
	name, err := tokenParam(c)
	if err != nil {
		return err
	}
	err = h.tokens.Revoke(c.Request().Context(), name, h.by(c))
	if errors.Is(err, tokens.ErrNotFound) {
		return h.adminsAnswer(c, http.StatusNotFound, func(v *templates.AdminsPage) { v.Error = "There is no API token " + name + "." })
	}
	if err != nil {
		return err
	}
	return h.adminsDone(c, "Revoked API token "+name+".")
}
