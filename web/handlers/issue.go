package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// expiryPresets are the one-click choices; values are what the custom field takes too.
var expiryPresets = []templates.Option{
	{Value: "15m", Label: "15m"}, {Value: "1h", Label: "1h"}, {Value: "8h", Label: "8h"},
	{Value: "24h", Label: "24h"}, {Value: "7d", Label: "7d"}, {Value: "custom", Label: "Custom"},
}

const defaultPreset = "1h"

type issueRequest struct {
	Username    string `form:"username"`
	ExpireAfter string `form:"expire_after"`
	Custom      string `form:"expire_custom"`
	Once        string `form:"form_once"`
	Reason      string `form:"reason"`
}

// issueForm returns the empty form for a sessions view, with a fresh one-time token. Username
// suggestions are fetched as the admin types (suggestUsers), not sent with every page.
func (h *Handler) issueForm(c echo.Context, q sessionsQuery) templates.IssueForm {
	return templates.IssueForm{
		Once:           h.newFormToken(c),
		Presets:        presets(defaultPreset),
		Max:            sessionstore.FormatWebDuration(h.sessions.MaxTTL()),
		Return:         q.values().Encode(),
		DismissURL:     q.url("/sessions"),
		CSRF:           h.csrfToken(c),
		ReasonRequired: h.actions.ReasonRequired(),
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
	ctx := c.Request().Context()
	q := returnQuery(c)
	form := h.issueForm(c, q)
	form.Open = true
	// Without htmx the answer is the whole page: load its table before issuing, so that a
	// failure there cannot swallow a cookie that was already issued.
	var table templates.SessionsTable
	if !isPartial(c) {
		var err error
		if table, err = h.sessionsTable(ctx, q); err != nil {
			return err
		}
	}
	choice, text := req.expiry()
	form.Username = req.Username
	form.Presets = presets(choice)
	if choice == "custom" {
		form.Custom = text
	}
	ttl, err := sessionstore.ParseWebExpiry(text)
	if err == nil {
		err = h.sessions.CheckTTL(ttl)
	}
	if err != nil {
		form.ExpireError = strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")
	}
	if form.Username == "" {
		form.UsernameError = "Enter the username to issue a session for."
	}
	form.Reason = req.Reason
	switch err := h.actions.CheckReason(req.Reason); {
	case errors.Is(err, actions.ErrReasonRequired):
		form.ReasonError = "Say why this session is issued: this console requires a reason."
	case err != nil:
		form.ReasonError = "For the reason, " + strings.TrimPrefix(err.Error(), actions.ErrBadReason.Error()+": ") + "."
	}
	status := http.StatusOK
	if form.ExpireError == "" && form.UsernameError == "" && form.ReasonError == "" {
		if status, err = h.issueOnce(c, req.Once, form.Username, ttl, req.Reason, &form); err != nil {
			return err
		}
	} else {
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
		if fresh, err := h.sessionsTable(ctx, q); err == nil {
			table = fresh // with the new session; on failure the one loaded before will do
		}
	}
	return h.render(c, status, templates.SessionsView(templates.SessionsPage{
		Page: h.page(c, "Sessions", "sessions"), Filters: filters(q), Table: table, Issue: form,
	}))
}

// issueFor issues a session for the exact name typed; only when no user has that name, for the
// name without the spaces around it.
func (h *Handler) issueFor(c echo.Context, name string, ttl time.Duration, reason string) (sessionstore.Issued, error) {
	ctx := c.Request().Context()
	note := actions.Note{Reason: reason}
	issued, err := h.actions.Issue(ctx, h.actor(c), actions.IssueRequest{User: name, TTL: ttl, Note: note})
	if trimmed := strings.TrimSpace(name); trimmed != name && trimmed != "" && errors.Is(err, sessionstore.ErrNoSuchUser) {
		is, err2 := h.actions.Issue(ctx, h.actor(c), actions.IssueRequest{User: trimmed, TTL: ttl, Note: note})
		if !errors.Is(err2, sessionstore.ErrNoSuchUser) {
			return is, err2
		}
	}
	return issued, err
}

// issueOnce issues a session for a valid form, once per one-time token (see formonce.go): it
// fills in form's result or errors and returns the status to answer with.
func (h *Handler) issueOnce(c echo.Context, once, user string, ttl time.Duration, reason string, form *templates.IssueForm) (int, error) {
	ctx := c.Request().Context()
	key := ""
	if once != "" {
		var ok bool
		if key, ok = h.formTokenKey(c, once); !ok {
			form.Repeated = "This form belongs to another sign-in, so nothing was issued. Fill it in again here."
			return http.StatusConflict, nil
		}
		prior, err := h.admins.ClaimForm(ctx, adminSessionID(c), key)
		if errors.Is(err, admins.ErrFormUsed) {
			// A fresh, empty form below the message: another session is a deliberate act.
			form.Repeated = h.repeatedIssue(ctx, prior)
			form.Username, form.Custom, form.Presets = "", "", presets(defaultPreset)
			return http.StatusConflict, nil
		}
		if err != nil {
			return 0, err
		}
	}
	issued, err := h.issueFor(c, user, ttl, reason)
	var nsu *sessionstore.NoSuchUserError
	switch {
	case errors.As(err, &nsu):
		form.UsernameError = nsu.Error()
	case errors.Is(err, sessionstore.ErrInvalidInput):
		form.UsernameError = strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")
	}
	if err != nil {
		if key != "" { // nothing was issued: the same form may be sent again
			h.admins.ReleaseForm(context.WithoutCancel(ctx), key)
		}
		if form.UsernameError == "" {
			return 0, err
		}
		return http.StatusUnprocessableEntity, nil
	}
	if key != "" {
		if err := h.admins.FinishForm(context.WithoutCancel(ctx), key, strconv.FormatInt(issued.ID, 10)); err != nil {
			h.log.Warn("recording a used issue form failed", "err", err)
		}
	}
	form.Result = h.issuedView(c, issued)
	form.Username, form.Custom, form.Reason, form.Presets = "", "", "", presets(defaultPreset)
	return http.StatusOK, nil
}

// repeatedIssue says what a repeated submission of a used issue form had issued: prior is the
// session ID recorded for the form ("" while its first submission runs).
func (h *Handler) repeatedIssue(ctx context.Context, prior string) string {
	const nothing = "This form was sent before, so nothing new was issued. "
	id, err := strconv.ParseInt(prior, 10, 64)
	if err != nil {
		return nothing + "Its cookie, if one was issued, was shown once and is not shown again."
	}
	who := ""
	if s, err := h.sessions.Get(ctx, id); err == nil {
		who = " for " + templates.ShowName(s.Username)
	}
	return fmt.Sprintf(nothing+"The cookie of session %d%s was already shown and is not shown again; "+
		"issue a new session if you need another cookie.", id, who)
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
