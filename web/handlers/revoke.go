package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
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

// backRE is what a confirmation may return to instead of a sessions view: a session's or a
// user's page (its path, escaped).
var backRE = regexp.MustCompile(`^/(?:sessions/[0-9]+|users/[^/?#\\]+)$`)

// backParam is the `back` parameter of a revoke asked for on a session's or a user's page:
// the page to go back to, or "" (the sessions view of `return`).
func backParam(c echo.Context) string {
	if b := c.FormValue("back"); backRE.MatchString(b) {
		return b
	}
	return ""
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
	v, _, err := h.revokeUserConfirm(c, name)
	if err != nil {
		return err
	}
	return h.confirm(c, http.StatusOK, v)
}

// revokeUserConfirm builds the confirmation of a revoke-all from a fresh count (someone acts on
// these numbers) and returns that count too.
func (h *Handler) revokeUserConfirm(c echo.Context, name string) (templates.Confirm, sessionstore.Counts, error) {
	q, ret := confirmReturn(c)
	counts, err := h.sessions.CountNow(c.Request().Context(), sessionstore.Filter{Username: name})
	if err != nil {
		return templates.Confirm{}, counts, err
	}
	user := h.sessions.Username(name)
	shown := templates.ShowName(user)
	v := templates.Confirm{
		Title:     "Revoke all sessions of " + shown + "?",
		Action:    "/users/" + url.PathEscape(name) + "/revoke",
		Return:    ret,
		CancelURL: q.url("/sessions"),
		Cancel:    "Cancel",
		Button:    "Revoke all sessions",
	}
	switch {
	case counts.Active > 0:
		v.Message = fmt.Sprintf("This ends %s of %s.", plural(counts.Active, "active session"), shown)
		if counts.Expired > 0 {
			v.Message = fmt.Sprintf("This ends %s of %s; %s %s marked revoked too.", plural(counts.Active, "active session"), shown,
				plural(counts.Expired, "expired session"), isAre(counts.Expired))
		}
		if counts.Revoked > 0 {
			v.Message += " Sessions revoked before keep their revocation time."
		}
		if counts.Active > h.cfg.ConfirmByNameOver {
			v.ConfirmName = shown
		}
	case counts.Expired > 0:
		v.Message = fmt.Sprintf("%s has no active session, so nobody is signed out. Revoking marks %s as revoked.",
			shown, plural(counts.Expired, "expired session"))
	case counts.Revoked > 0:
		v.Title = shown + " has nothing left to revoke"
		v.Message = fmt.Sprintf("%s has nothing left to revoke: %s already revoked.", shown, isAreCount(counts.Revoked, "session"))
		v.Action, v.Cancel = "", "Close"
	default:
		v.Title = shown + " has no sessions"
		v.Message = fmt.Sprintf("%s has no sessions: there is nothing to revoke.", shown)
		v.Action, v.Cancel = "", "Close"
	}
	return v, counts, nil
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
	ids := strconv.FormatInt(id, 10)
	shown := templates.ShowName(s.Username)
	v := templates.Confirm{
		Title:     "Revoke session " + ids + "?",
		Action:    "/sessions/" + ids + "/revoke",
		Return:    ret,
		CancelURL: q.url("/sessions"),
		Cancel:    "Cancel",
		Button:    "Revoke session",
	}
	switch s.StatusAt(now) {
	case sessionstore.StatusActive:
		v.Message = fmt.Sprintf("Session %d of %s (active, expires %s) stops working at once.", s.ID, shown,
			templates.Relative(s.ExpiresAt, now))
	case sessionstore.StatusExpired:
		v.Message = fmt.Sprintf("Session %d of %s expired %s and no longer works; revoking marks it revoked.", s.ID, shown,
			templates.Relative(s.ExpiresAt, now))
	default:
		v.Title = "Session " + ids + " is already revoked"
		v.Message = fmt.Sprintf("Session %d of %s was already revoked at %s. There is nothing to do.", s.ID, shown,
			templates.CellTime(*s.RevokedAt))
		v.Action, v.Cancel = "", "Close"
	}
	return h.confirm(c, http.StatusOK, v)
}

// withBack makes a confirmation asked for on a session's or a user's page go back there.
func withBack(c echo.Context, v templates.Confirm) templates.Confirm {
	if b := backParam(c); b != "" {
		v.Back, v.CancelURL = b, b
	}
	return v
}

func (h *Handler) confirm(c echo.Context, status int, v templates.Confirm) error {
	v = withBack(c, v)
	varyOnHTMX(c)
	v.Page = h.page(c, v.Title, "sessions")
	if isPartial(c) {
		return h.render(c, status, templates.ConfirmFragment(v))
	}
	v.Plain = true // a page of its own: no table here for htmx to swap
	return h.render(c, status, templates.ConfirmView(v))
}

func (h *Handler) revokeUserSessions(c echo.Context) error {
	name, err := userParam(c)
	if err != nil {
		return err
	}
	user := h.sessions.Username(name)
	shown := templates.ShowName(user)
	// A large revoke-all needs the name typed (as shown): checked against a fresh count, since
	// more sessions may have come since the confirmation was shown.
	if typed := c.FormValue("confirm_name"); typed != shown && strings.TrimSpace(typed) != shown {
		v, counts, err := h.revokeUserConfirm(c, name)
		var fse *sessionstore.FullScanError
		if err != nil && !errors.As(err, &fse) { // refused to count: the revoke-all says why
			return err
		}
		if err == nil && counts.Active > h.cfg.ConfirmByNameOver {
			v.NameError = fmt.Sprintf("Type %s exactly as shown to revoke its %s.", shown, plural(counts.Active, "active session"))
			if isPartial(c) {
				c.Response().Header().Set("HX-Retarget", "#confirm-dialog")
				c.Response().Header().Set("HX-Reswap", "innerHTML")
			}
			return h.confirm(c, http.StatusUnprocessableEntity, v)
		}
	}
	revoked, active, err := h.actions.EndUserSessions(c.Request().Context(), h.actor(c), name, actions.Note{})
	if err != nil {
		return err
	}
	if revoked == 0 {
		return h.afterChange(c, noticeInfo, fmt.Sprintf("%s had no session left to revoke.", shown))
	}
	return h.afterChange(c, noticeSuccess, fmt.Sprintf("Revoked %s of %s (%s active).", plural(revoked, "session"), shown, wereActive(active)))
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
	shown := templates.ShowName(r.Username)
	if !r.Newly {
		return h.afterChange(c, noticeInfo, fmt.Sprintf("Session %d of %s was already revoked at %s.", r.ID, shown, templates.CellTime(r.RevokedAt)))
	}
	return h.afterChange(c, noticeSuccess, fmt.Sprintf("Revoked session %d of %s.", r.ID, shown))
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

func isAre(n int64) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// isAreCount: "1 session is", "3 sessions are".
func isAreCount(n int64, noun string) string { return plural(n, noun) + " " + isAre(n) }

// wereActive: "1 was", "7,200 were".
func wereActive(n int64) string {
	if n == 1 {
		return "1 was"
	}
	return thousands(n) + " were"
}
