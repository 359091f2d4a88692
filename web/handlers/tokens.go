package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// API tokens on /admins (owners): make one (shown once), revoke one.

// tokenPresets are the expiry choices of a new token.
var tokenPresets = []struct{ value, label string }{
	{"24h", "1 day"}, {"168h", "7 days"}, {"720h", "30 days"}, {"2160h", "90 days"}, {"8760h", "365 days"},
}

const defaultTokenPreset = "720h"

func (h *Handler) tokenForm(name string, role admins.Role, preset, custom string) templates.TokenForm {
	if preset == "" {
		preset = defaultTokenPreset
	}
	f := templates.TokenForm{Name: name, Roles: roleOptions(role), Custom: custom, Max: sessionstore.FormatDuration(h.tokens.MaxTTL())}
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

func (h *Handler) createToken(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("name"))
	role, rerr := admins.ParseRole(c.FormValue("role"))
	preset, custom := c.FormValue("expire_after"), strings.TrimSpace(c.FormValue("expire_custom"))
	form := h.tokenForm(name, role, preset, custom)
	text := preset
	if custom != "" {
		text = custom
	}
	ttl, err := sessionstore.ParseExpiry(text)
	if err == nil {
		err = h.tokens.CheckTTL(ttl)
	}
	if err != nil {
		form.ExpireError = strings.TrimPrefix(strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": "), tokens.ErrInvalid.Error()+": ")
	}
	if rerr != nil {
		form.NameError = "Choose a role: viewer, operator or owner."
	} else if err := tokens.CheckName(name); err != nil {
		form.NameError = strings.TrimPrefix(err.Error(), tokens.ErrInvalid.Error()+": ") + "."
	}
	var (
		secret string
		tok    tokens.Token
	)
	if form.NameError == "" && form.ExpireError == "" {
		secret, tok, err = h.tokens.Create(c.Request().Context(), name, role, ttl, h.by(c))
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
