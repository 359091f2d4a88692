package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/tokens"
)

// The owners' part of the JSON API (/api/v1/admins, /api/v1/tokens): what /admins shows of
// the admins, and the API tokens listed, made (the secret answered once, no-store) and
// revoked, by an owner's token or session. Token changes go through the token store, which
// writes the audit row (token:<name> for a token) in the change's transaction.

// apiAdmin is an admin as the API shows it.
type apiAdmin struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Method string `json:"method"` // password or oidc
	// LastSignIn is null before the first sign-in.
	LastSignIn *time.Time `json:"last_sign_in"`
	// Sessions counts the admin sessions that are still active (not idle or too old).
	Sessions           int  `json:"sessions"`
	Throttled          bool `json:"throttled"`
	MustChangePassword bool `json:"must_change_password"`
}

func (h *Handler) apiListAdmins(c echo.Context) error {
	list, active, throttled, err := h.listAdmins(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]apiAdmin, 0, len(list))
	for _, a := range list {
		out = append(out, apiAdmin{Name: a.Name, Role: string(a.Role), Method: string(a.Method), LastSignIn: utcOrNil(a.LastSignIn),
			Sessions: active[a.Name], Throttled: throttled[a.Name], MustChangePassword: a.MustChangePassword})
	}
	return c.JSON(http.StatusOK, map[string][]apiAdmin{"admins": out})
}

// apiToken is an API token as the API shows it (never its secret).
type apiToken struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// LastUsedAt is null until the first use, and at most tokens.LastUseEvery behind.
	LastUsedAt *time.Time `json:"last_used_at"`
	Expired    bool       `json:"expired"`
}

func toAPIToken(t tokens.Token, now time.Time) apiToken {
	return apiToken{Name: t.Name, Role: string(t.Role), CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: t.ExpiresAt.UTC(), LastUsedAt: utcOrNil(t.LastUsedAt), Expired: t.Expired(now)}
}

func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (h *Handler) apiListTokens(c echo.Context) error {
	list, err := h.tokens.List(c.Request().Context())
	if err != nil {
		return err
	}
	now := h.now()
	out := make([]apiToken, 0, len(list))
	for _, t := range list {
		out = append(out, toAPIToken(t, now))
	}
	return c.JSON(http.StatusOK, map[string][]apiToken{"tokens": out})
}

// apiTokenRequest is the body of POST /api/v1/tokens (JSON, or a form).
type apiTokenRequest struct {
	Name        string `json:"name" form:"name"`
	Role        string `json:"role" form:"role"`
	ExpireAfter string `json:"expire_after" form:"expire_after"`
}

// apiNewToken is a new token with its secret, shown only in this answer.
type apiNewToken struct {
	Token  apiToken `json:"token"`
	Secret string   `json:"secret"`
}

func (h *Handler) apiCreateToken(c echo.Context) error {
	var req apiTokenRequest
	if err := c.Bind(&req); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "Malformed request body: send JSON such as {\"name\": \"ci-export\", \"role\": \"viewer\", \"expire_after\": \"30d\"}."}
	}
	if req.ExpireAfter == "" {
		req.ExpireAfter = defaultTokenPreset
	}
	in := h.checkNewToken(req.Name, req.Role, req.ExpireAfter)
	switch {
	case in.nameErr != "":
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_name", Message: in.nameErr}
	case in.roleErr != "":
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_role", Message: in.roleErr}
	case in.expireErr != "":
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_expiry", Message: in.expireErr}
	}
	secret, tok, err := h.tokens.Create(c.Request().Context(), in.name, in.role, in.ttl, h.by(c))
	if errors.Is(err, tokens.ErrExists) {
		return &apiError{Status: http.StatusConflict, Code: "token_exists", Message: "There is a token " + in.name + " already."}
	}
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, apiNewToken{Token: toAPIToken(tok, h.now()), Secret: secret})
}

// apiRevokedToken answers a revoke of a token (it is deleted: it stops working at once).
type apiRevokedToken struct {
	Name    string `json:"name"`
	Revoked bool   `json:"revoked"`
}

func (h *Handler) apiRevokeToken(c echo.Context) error {
	name := c.Param("name")
	notFound := &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "No such API token."}
	if tokens.CheckName(name) != nil {
		return notFound
	}
	err := h.tokens.Revoke(c.Request().Context(), name, h.by(c))
	if errors.Is(err, tokens.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiRevokedToken{Name: name, Revoked: true})
}
