package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// expiryPresets are the one-click choices; values are in the CLI's syntax.
var expiryPresets = []templates.Option{
	{Value: "15m", Label: "15m"}, {Value: "1h", Label: "1h"}, {Value: "8h", Label: "8h"},
	{Value: "24h", Label: "24h"}, {Value: "168h", Label: "7d"}, {Value: "custom", Label: "Custom"},
}

const defaultPreset = "1h"

type issueRequest struct {
	Username    string `form:"username"`
	ExpireAfter string `form:"expire_after"`
	Custom      string `form:"expire_custom"`
}

// issueForm returns the empty form for a sessions view. Username suggestions are fetched as
// the admin types (suggestUsers), not sent with every page.
func (h *Handler) issueForm(c echo.Context, q sessionsQuery) templates.IssueForm {
	return templates.IssueForm{
		Presets: presets(defaultPreset),
		Max:     sessionstore.FormatDuration(h.sessions.MaxTTL()),
		Return:  q.values().Encode(),
		CSRF:    h.csrfToken(c),
	}
}

// suggestUsers answers the username field's suggestions: <option>s of users starting with q.
func (h *Handler) suggestUsers(c echo.Context) error {
	prefix := c.QueryParam("username")
	if err := checkText("username", prefix); err != nil {
		return err
	}
	users, err := h.sessions.Users(c.Request().Context(), prefix, 20)
	if err != nil {
		return err
	}
	return h.render(c, http.StatusOK, templates.UserOptions(users))
}

func presets(selected string) []templates.Option {
	out := make([]templates.Option, len(expiryPresets))
	for i, p := range expiryPresets {
		p.Selected = p.Value == selected
		out[i] = p
	}
	return out
}

// expiry picks the duration text of the form: a filled-in custom field wins (without
// JavaScript nobody can tick "Custom" while typing; with it, choosing a preset clears the
// field), then the chosen preset; a bare API call may put any duration in expire_after.
func (r issueRequest) expiry() (choice, text string) {
	switch {
	case strings.TrimSpace(r.Custom) != "" || r.ExpireAfter == "custom":
		return "custom", strings.TrimSpace(r.Custom)
	case r.ExpireAfter == "":
		return defaultPreset, defaultPreset
	}
	for _, p := range expiryPresets {
		if p.Value == r.ExpireAfter {
			return p.Value, p.Value
		}
	}
	return "custom", r.ExpireAfter
}

func (h *Handler) issueSession(c echo.Context) error {
	var req issueRequest
	if err := c.Bind(&req); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "Malformed form.")
	}
	q := returnQuery(c)
	form := h.issueForm(c, q)
	// Without htmx the answer is the whole page: load its table before issuing, so that a
	// failure there cannot swallow a cookie that was already issued.
	var table templates.SessionsTable
	if !isPartial(c) {
		var err error
		if table, err = h.sessionsTable(c.Request().Context(), q, ""); err != nil {
			return err
		}
	}
	choice, text := req.expiry()
	form.Username = req.Username
	form.Presets = presets(choice)
	if choice == "custom" {
		form.Custom = text
	}
	ttl, err := sessionstore.ParseExpiry(text)
	if err == nil {
		err = h.sessions.CheckTTL(ttl)
	}
	if err != nil {
		form.ExpireError = strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")
	}
	if form.Username == "" {
		form.UsernameError = "Enter the username to issue a session for."
	}
	if form.ExpireError == "" && form.UsernameError == "" {
		issued, err := h.issueFor(c, form.Username, ttl)
		var nsu *sessionstore.NoSuchUserError
		switch {
		case errors.As(err, &nsu):
			form.UsernameError = nsu.Error()
		case errors.Is(err, sessionstore.ErrInvalidInput):
			form.UsernameError = strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")
		case err != nil:
			return err
		default:
			form.Result = h.issuedView(c, issued)
			form.Username, form.Custom, form.Presets = "", "", presets(defaultPreset)
		}
	}
	status := http.StatusOK
	if form.Result == nil {
		status = http.StatusUnprocessableEntity
	}
	noStore(c)
	varyOnHTMX(c)
	if isPartial(c) {
		if form.Result != nil {
			c.Response().Header().Set("HX-Trigger", "sessions-changed")
		}
		return h.render(c, status, templates.IssuePanel(form))
	}
	if form.Result != nil {
		if fresh, err := h.sessionsTable(c.Request().Context(), q, ""); err == nil {
			table = fresh // with the new session; on failure the one loaded before will do
		}
	}
	return h.render(c, status, templates.SessionsView(templates.SessionsPage{
		Page: h.page(c, "Sessions", "sessions"), Filters: filters(q), Table: table, Issue: form,
	}))
}

// issueFor issues a session for the exact name typed; only when no user has that name, for the
// name without the spaces around it.
func (h *Handler) issueFor(c echo.Context, name string, ttl time.Duration) (sessionstore.Issued, error) {
	ctx := c.Request().Context()
	issued, err := h.actions.Issue(ctx, h.actor(c), actions.IssueRequest{User: name, TTL: ttl})
	if trimmed := strings.TrimSpace(name); trimmed != name && trimmed != "" && errors.Is(err, sessionstore.ErrNoSuchUser) {
		is, err2 := h.actions.Issue(ctx, h.actor(c), actions.IssueRequest{User: trimmed, TTL: ttl})
		if !errors.Is(err2, sessionstore.ErrNoSuchUser) {
			return is, err2
		}
	}
	return issued, err
}

func (h *Handler) issuedView(c echo.Context, is sessionstore.Issued) *templates.Issued {
	cookie := is.Cookie.SetCookie()
	return &templates.Issued{
		Username:  is.Username,
		SessionID: strconv.FormatInt(is.ID, 10),
		Expires:   timeCell(is.ExpiresAt, h.now()),
		Cookie:    cookie,
		Value:     is.Cookie.Value(),
		Curl:      "curl --cookie '" + cookie + "' " + h.curlTarget(c).String(),
		Header:    "X-Cockroach-API-Session: " + is.Cookie.Value(),
		FileName:  "session-" + strconv.FormatInt(is.ID, 10) + ".cookies",
	}
}

// downloadCookieFile turns a cookie (posted back from the result panel, never put in a URL)
// into a Netscape cookie file for `curl --cookie FILE`.
func (h *Handler) downloadCookieFile(c echo.Context) error {
	ck, err := sessionstore.DecodeCookie(c.FormValue("cookie"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "That is not a session cookie.")
	}
	target := h.curlTarget(c)
	httpsOnly := "FALSE" // curl would not send an HTTPS-only cookie to an http:// target
	if target.Scheme == "https" {
		httpsOnly = "TRUE"
	}
	var b strings.Builder
	b.WriteString("# Netscape HTTP Cookie File\n")
	fmt.Fprintf(&b, "# CockroachDB HTTP session %d. Use: curl --cookie THIS-FILE %s\n", ck.ID, target)
	// domain, include subdomains, path, HTTPS only, expiry (0: session cookie), name, value
	fmt.Fprintf(&b, "#HttpOnly_%s\tFALSE\t/\t%s\t0\t%s\t%s\n", target.Hostname(), httpsOnly, sessionstore.CookieName, ck.Value())
	noStore(c)
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="session-%d.cookies"`, ck.ID))
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(b.String()))
}
