package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/tokens"
)

// Roles are enforced here, on the server, for every route: routes.go gives each route the
// least role it needs with allow. A request whose role falls short answers 403, changes
// nothing and is audited as refused.

// allow lets a request through when its actor's role is at least need. An admin signed in
// with a one-time password reaches only its account page until it has chosen its own.
func (h *Handler) allow(need admins.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a := signedInFrom(c)
			if a.MustChangePassword && !passwordChangeRoutes[c.Path()] {
				return h.mustChangePassword(c)
			}
			if a.Role.Allows(need) {
				return next(c)
			}
			target := ""
			if names := c.ParamNames(); len(names) > 0 {
				target = storableText(c.Param(names[0]), 256)
			}
			h.note(c, h.actor(c), audit.Entry{Action: audit.Refused, Target: target,
				Detail: c.Request().Method + " " + c.Path() + " needs " + string(need) + ", has " + string(a.Role)})
			return &apiError{Status: http.StatusForbidden, Code: "forbidden",
				Message: "Your role (" + roleName(a.Role) + ") may not do this: it needs " + string(need) + "."}
		}
	}
}

// roleIn returns the role of whoever a request's context acts for ("" outside the signed-in
// routes).
func roleIn(ctx context.Context) admins.Role {
	a, _ := ctx.Value(adminKey{}).(signedIn)
	return a.Role
}

// note writes an audit entry that changes nothing else (a refusal, a failed sign-in); a
// failure to write it is logged, and refuses nothing more.
func (h *Handler) note(c echo.Context, by actions.Actor, e audit.Entry) {
	if err := h.actions.Record(c.Request().Context(), by, e); err != nil {
		h.log.Error("audit record failed", "action", e.Action, "err", err)
	}
}

func roleName(r admins.Role) string {
	if r.Valid() {
		return string(r)
	}
	return "none"
}

// passwordChangeRoutes are the routes an admin signed in with a one-time password may use
// before it has chosen its own password.
var passwordChangeRoutes = map[string]bool{"/account": true, "/account/password": true, "/logout": true}

// mustChangePassword sends an admin that signed in with a one-time password to its account
// page.
func (h *Handler) mustChangePassword(c echo.Context) error {
	if c.Request().Method == http.MethodGet && !isPartial(c) {
		return c.Redirect(http.StatusSeeOther, "/account")
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", "/account")
	}
	return echo.NewHTTPError(http.StatusForbidden, "Choose your own password first, on your account page.")
}

// bearer returns the token of an "Authorization: Bearer" header; ok is false when the header
// is absent, and a malformed header is an error.
func bearer(r *http.Request) (string, bool, error) {
	v := r.Header.Get(echo.HeaderAuthorization)
	if v == "" {
		return "", false, nil
	}
	scheme, tok, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, errBadToken
	}
	return strings.TrimSpace(tok), true, nil
}

var errBadToken = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
	Message: "Invalid, expired or revoked API token (send it as: Authorization: Bearer <token>)."}

// requireAdminOrToken is requireAdmin for the routes that also take API tokens (the exports
// and the JSON API): with an Authorization header the token decides, without one the admin
// cookie does. The JSON API answers 401 instead of sending anyone to the sign-in page.
func (h *Handler) requireAdminOrToken(next echo.HandlerFunc) echo.HandlerFunc {
	withCookie := h.requireAdmin(next)
	return func(c echo.Context) error {
		secret, ok, err := bearer(c.Request())
		if !ok {
			return withCookie(c)
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="console"`)
		if err != nil {
			return err
		}
		t, err := h.tokens.Authenticate(c.Request().Context(), secret)
		if errors.Is(err, tokens.ErrUnauthorized) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="console", error="invalid_token"`)
			return errBadToken
		}
		if err != nil {
			return err
		}
		r := c.Request()
		a := signedIn{Identity: admins.Identity{Admin: "token:" + t.Name, Role: t.Role}, token: t.Name}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), adminKey{}, a)))
		return next(c)
	}
}

// isAPI reports whether the request is for the JSON API, or for /metrics (a scraper is not
// sent to the sign-in page either).
func isAPI(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/api/") || p == "/metrics"
}

// apiError is an error with its status, a stable code for scripts and a message for people.
// The JSON API answers it as {"error": {"code": ..., "message": ...}}; pages show the message.
type apiError struct {
	Status        int
	Code, Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }
