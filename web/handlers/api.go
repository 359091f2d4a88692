package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/sessionstore"
)

// The JSON API (/api/v1) for scripts, beside the pages: list sessions (the page's filters),
// get one, issue one, revoke one, revoke a user's. It takes an API token (Authorization:
// Bearer) or the admin session (then with its CSRF token, X-CSRF-Token). Errors answer
// {"error": {"code": ..., "message": ...}} with the status (see handleError).

// apiSession is a session as the API shows it. IDs are strings: CockroachDB's exceed what a
// JSON number keeps exactly in JavaScript.
type apiSession struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt time.Time  `json:"last_used_at"`
	Status     string     `json:"status"`
}

func toAPI(s sessionstore.Session, now time.Time) apiSession {
	return apiSession{ID: strconv.FormatInt(s.ID, 10), Username: s.Username, CreatedAt: s.CreatedAt.UTC(),
		ExpiresAt: s.ExpiresAt.UTC(), RevokedAt: s.RevokedAt, LastUsedAt: s.LastUsedAt.UTC(), Status: string(s.StatusAt(now))}
}

// apiList is a page of sessions; Next and Prev are the URLs of the neighbouring pages (null at
// either end).
type apiList struct {
	Sessions []apiSession `json:"sessions"`
	Next     *string      `json:"next"`
	Prev     *string      `json:"prev"`
}

func (h *Handler) apiListSessions(c echo.Context) error {
	q, err := parseSessionsQuery(c.QueryParams())
	if err != nil {
		return asAPIError(err, "bad_request")
	}
	vf, err := h.viewFilter(q)
	if err != nil {
		return asAPIError(err, "bad_request")
	}
	page, err := h.sessions.List(c.Request().Context(), vf)
	if err != nil {
		return err
	}
	out := apiList{Sessions: make([]apiSession, 0, len(page.Sessions))}
	for _, s := range page.Sessions {
		out.Sessions = append(out.Sessions, toAPI(s, page.Now))
	}
	if page.Next != nil {
		n := q.firstPage()
		n.After = page.Next
		u := n.url("/api/v1/sessions")
		out.Next = &u
	}
	if page.Prev != nil {
		p := q.firstPage()
		p.Before = page.Prev
		u := p.url("/api/v1/sessions")
		out.Prev = &u
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) apiGetSession(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "No such session."}
	}
	s, err := h.sessions.Get(c.Request().Context(), id)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "No such session."}
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]apiSession{"session": toAPI(s, h.now())})
}

// apiIssueRequest is the body of POST /api/v1/sessions (JSON, or a form).
type apiIssueRequest struct {
	Username    string `json:"username" form:"username"`
	ExpireAfter string `json:"expire_after" form:"expire_after"`
	// Reason is why (optional, or required with --require-reason).
	Reason string `json:"reason"`
}

// apiIssued is an issued session with its cookie, shown only in this answer.
type apiIssued struct {
	Session apiSession `json:"session"`
	// Cookie is the Set-Cookie form (session=...; Path=/; HttpOnly; Secure); Value the bare
	// value, for the X-Cockroach-API-Session header.
	Cookie string `json:"cookie"`
	Value  string `json:"value"`
}

func (h *Handler) apiIssueSession(c echo.Context) error {
	var req apiIssueRequest
	if err := c.Bind(&req); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "Malformed request body: send JSON such as {\"username\": \"web_user\", \"expire_after\": \"1h\"}."}
	}
	if req.Username == "" {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_username", Message: "username is required."}
	}
	if req.ExpireAfter == "" {
		req.ExpireAfter = defaultPreset
	}
	ttl, err := sessionstore.ParseWebExpiry(req.ExpireAfter)
	if err == nil {
		err = h.sessions.CheckTTL(ttl)
	}
	if err != nil {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_expiry",
			Message: strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")}
	}
	is, err := h.issueFor(c, req.Username, ttl, req.Reason)
	var nsu *sessionstore.NoSuchUserError
	switch {
	case errors.Is(err, actions.ErrReasonRequired):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "reason_required", Message: "reason is required: this console runs with --require-reason."}
	case errors.Is(err, actions.ErrBadReason):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_reason",
			Message: "reason: " + strings.TrimPrefix(err.Error(), actions.ErrBadReason.Error()+": ") + "."}
	case errors.As(err, &nsu):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "no_such_user", Message: nsu.Error()}
	case errors.Is(err, sessionstore.ErrInvalidInput):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_username",
			Message: strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")}
	case err != nil:
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, apiIssued{Session: toAPI(is.Session, h.now()), Cookie: is.Cookie.SetCookie(), Value: is.Cookie.Value()})
}

// apiRevoked answers a revoke of one session: Revoked is false when it had been revoked before
// (nothing changed).
type apiRevoked struct {
	Session apiSession `json:"session"`
	Revoked bool       `json:"revoked"`
}

func (h *Handler) apiRevokeSession(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "No such session."}
	}
	ctx := c.Request().Context()
	r, err := h.actions.RevokeSession(ctx, h.actor(c), id, actions.Note{})
	if errors.Is(err, sessionstore.ErrNotFound) {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "No such session."}
	}
	if err != nil {
		return err
	}
	s, err := h.sessions.Get(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiRevoked{Session: toAPI(s, h.now()), Revoked: r.Newly})
}

// apiRevokedUser answers a revoke of a user's sessions.
type apiRevokedUser struct {
	Username string `json:"username"`
	// Revoked counts the sessions this revoked (earlier revocations are kept); Active how
	// many of those were active.
	Revoked int64 `json:"revoked"`
	Active  int64 `json:"active"`
}

func (h *Handler) apiRevokeUserSessions(c echo.Context) error {
	seg := strings.TrimSuffix(strings.TrimPrefix(c.Request().URL.EscapedPath(), "/api/v1/users/"), "/revoke")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" || strings.Contains(seg, "/") {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_username", Message: "Invalid username in the address."}
	}
	if err := sessionstore.CheckUsername(name); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_username",
			Message: "Invalid username in the address: " + strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ") + "."}
	}
	revoked, active, err := h.actions.EndUserSessions(c.Request().Context(), h.actor(c), name, actions.Note{})
	if err != nil {
		return err
	}
	user := h.sessions.Username(name)
	return c.JSON(http.StatusOK, apiRevokedUser{Username: user, Revoked: revoked, Active: active})
}

// asAPIError keeps an echo error's status and message under code.
func asAPIError(err error, code string) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := he.Message.(string); ok {
			return &apiError{Status: he.Code, Code: code, Message: m}
		}
	}
	return err
}
