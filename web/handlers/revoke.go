package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// userParam returns the {name} segment of /users/{name}/revoke, unescaped. It is read from the
// escaped path, since echo hands out the parameter escaped or not depending on whether the
// URL needed a RawPath (a name with "/" does, one with "%" does not).
func userParam(c echo.Context) (string, error) {
	seg := strings.TrimSuffix(strings.TrimPrefix(c.Request().URL.EscapedPath(), "/users/"), "/revoke")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" || strings.Contains(seg, "/") {
		return "", echo.NewHTTPError(http.StatusBadRequest, "Invalid username in the address.")
	}
	// The confirmation and the revoke refuse the same names: those no user can have.
	if err := sessionstore.CheckUsername(name); err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest,
			"Invalid username in the address: "+strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")+".")
	}
	return name, nil
}

func idParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusNotFound, "No such session.")
	}
	return id, nil
}

// confirmQuery is the view a confirmation returns to (its `return` query parameter).
func confirmReturn(c echo.Context) (sessionsQuery, string) {
	q := returnQuery(c)
	return q, q.values().Encode()
}

func (h *Handler) confirmRevokeUser(c echo.Context) error {
	name, err := userParam(c)
	if err != nil {
		return err
	}
	q, ret := confirmReturn(c)
	counts, err := h.sessions.CountNow(c.Request().Context(), sessionstore.Filter{Username: name})
	if err != nil {
		return err
	}
	shown := templates.ShowName(h.sessions.Username(name))
	msg := fmt.Sprintf("This ends %s of %s. Sessions revoked before keep their revocation time.",
		plural(counts.Active, "active session"), shown)
	if counts.Active == 0 {
		msg = fmt.Sprintf("%s has no active session. Revoking still marks the expired ones as revoked.", shown)
	}
	return h.confirm(c, templates.Confirm{
		Title:     "Revoke all sessions of " + shown + "?",
		Message:   msg,
		Action:    "/users/" + url.PathEscape(name) + "/revoke",
		Return:    ret,
		CancelURL: q.url("/sessions"),
		Button:    "Revoke all sessions",
	})
}

func (h *Handler) confirmRevokeSession(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	s, err := h.sessions.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	q, ret := confirmReturn(c)
	now := h.now()
	msg := fmt.Sprintf("Session %d of %s (%s, expires %s) stops working at once.", s.ID, templates.ShowName(s.Username), s.StatusAt(now),
		templates.Relative(s.ExpiresAt, now))
	return h.confirm(c, templates.Confirm{
		Title:     "Revoke session " + strconv.FormatInt(id, 10) + "?",
		Message:   msg,
		Action:    "/sessions/" + strconv.FormatInt(id, 10) + "/revoke",
		Return:    ret,
		CancelURL: q.url("/sessions"),
		Button:    "Revoke session",
	})
}

func (h *Handler) confirm(c echo.Context, v templates.Confirm) error {
	varyOnHTMX(c)
	v.Page = h.page(c, v.Title, "sessions")
	if isPartial(c) {
		return h.render(c, http.StatusOK, templates.ConfirmFragment(v))
	}
	return h.render(c, http.StatusOK, templates.ConfirmView(v))
}

func (h *Handler) revokeUserSessions(c echo.Context) error {
	name, err := userParam(c)
	if err != nil {
		return err
	}
	revoked, active, err := h.actions.EndUserSessions(c.Request().Context(), h.actor(c), name, actions.Note{})
	if err != nil {
		return err
	}
	user := h.sessions.Username(name)
	notice := fmt.Sprintf("Revoked %s of %s (%d were active).", plural(revoked, "session"), templates.ShowName(user), active)
	if revoked == 0 {
		notice = fmt.Sprintf("%s had no session left to revoke.", templates.ShowName(user))
	}
	return h.afterChange(c, notice)
}

func (h *Handler) revokeSession(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	r, err := h.actions.RevokeSession(c.Request().Context(), h.actor(c), id, actions.Note{})
	if err != nil {
		return err
	}
	notice := fmt.Sprintf("Revoked session %d of %s.", r.ID, templates.ShowName(r.Username))
	if !r.Newly {
		notice = fmt.Sprintf("Session %d of %s was already revoked at %s UTC.", r.ID, templates.ShowName(r.Username), r.RevokedAt.Format("2006-01-02 15:04:05"))
	}
	return h.afterChange(c, notice)
}

// afterChange answers a revoke: htmx gets the refreshed table with the notice; a plain form
// post is redirected to the view it came from, the notice kept for it in a flash cookie.
func (h *Handler) afterChange(c echo.Context, notice string) error {
	q := returnQuery(c)
	if isPartial(c) {
		table, err := h.sessionsTable(c.Request().Context(), q, notice)
		if err != nil {
			return err
		}
		c.Response().Header().Set("HX-Trigger", "dialog-done")
		return h.render(c, http.StatusOK, templates.Table(table))
	}
	h.setFlash(c, notice)
	return c.Redirect(http.StatusSeeOther, q.url("/sessions"))
}

// actor is the signed-in admin of the request, as audited actions name them.
func (h *Handler) actor(c echo.Context) actions.Actor {
	if a := signedInFrom(c); a.token != "" {
		return actions.Actor{Kind: actions.Token, Name: a.token, RemoteAddr: c.RealIP()}
	}
	return actions.Actor{Kind: actions.Admin, Name: adminFrom(c), RemoteAddr: c.RealIP()}
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}
