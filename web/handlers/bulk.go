package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// Bounds of bulk revokes from the sessions list.
const (
	// bulkConfirmTTL: a confirmation of "all matching" older than this is asked for again
	// (its count would be stale).
	bulkConfirmTTL = 15 * time.Minute
	// bulkRunTimeout bounds a bulk revoke running in the background.
	bulkRunTimeout = 30 * time.Minute
	// bulkKeep is how long a finished background run's progress stays to be looked at.
	bulkKeep = time.Hour
	// bulkSample is how many sessions a bulk confirmation names.
	bulkSample = 5
)

// bulkRuns are the bulk revokes running (or lately finished) in this process's background.
type bulkRuns struct {
	mu   sync.Mutex
	runs map[string]*bulkRun
}

type bulkRun struct {
	mu                   sync.Mutex
	done, revoked, total int64
	finished             time.Time
	err, result, view    string
}

func newBulkRuns() *bulkRuns { return &bulkRuns{runs: map[string]*bulkRun{}} }

// start registers a run and returns its handle (random: the progress URL names it).
func (b *bulkRuns) start(total int64, view string) (string, *bulkRun) {
	buf := make([]byte, 12)
	rand.Read(buf)
	id := hex.EncodeToString(buf)
	r := &bulkRun{total: total, view: view}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, old := range b.runs {
		old.mu.Lock()
		gone := !old.finished.IsZero() && time.Since(old.finished) > bulkKeep
		old.mu.Unlock()
		if gone {
			delete(b.runs, k)
		}
	}
	b.runs[id] = r
	return id, r
}

func (b *bulkRuns) get(id string) *bulkRun {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[id]
}

// bulkForm is what a bulk revoke posts: the scope (selected, page or all), the selection or
// the view's filter, whether it is the confirmed second step, and for "all" the moment of
// the confirmation.
type bulkForm struct {
	scope     string
	ids       []int64
	view      sessionsQuery
	confirmed bool
	at        time.Time
	typed     string
}

func parseBulkForm(c echo.Context) (bulkForm, error) {
	var f bulkForm
	bad := func(what string) error {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid "+what+" in the form.")
	}
	form, err := c.FormParams()
	if err != nil {
		return f, bad("form")
	}
	// The view's filter: the list's own fields (user, status, rule, ...), or all of them in
	// one `view` field, as the sessions list's form sends them.
	v := url.Values{}
	if c.FormValue("scope") == "all" {
		v = form // (a selection's own id fields are no filter)
	}
	if view := c.FormValue("view"); view != "" {
		if v, err = url.ParseQuery(view); err != nil {
			return f, bad("view")
		}
	}
	if f.view, err = parseSessionsQuery(v); err != nil {
		return f, err
	}
	f.scope = c.FormValue("scope")
	switch f.scope {
	case "", "selected", "page":
		field := "id"
		if f.scope == "page" {
			field = "page_id"
		}
		f.scope = "selected"
		seen := map[int64]bool{}
		for _, s := range form[field] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				return f, bad("session ID")
			}
			if !seen[id] {
				seen[id] = true
				f.ids = append(f.ids, id)
			}
		}
		if len(f.ids) > actions.MaxSelected {
			return f, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Select at most %d sessions at once, or revoke all matching the filter.", actions.MaxSelected))
		}
	case "all":
	default:
		return f, bad("scope")
	}
	f.confirmed = c.FormValue("confirmed") == "1"
	f.typed = strings.ReplaceAll(strings.TrimSpace(c.FormValue("confirm_name")), ",", "")
	if f.confirmed && f.scope == "all" {
		if f.at, err = time.Parse(time.RFC3339Nano, c.FormValue("at")); err != nil {
			return f, bad("confirmation time")
		}
	}
	return f, nil
}

// revokeSessionsBulk is POST /sessions/revoke: without `confirmed`, the confirmation (the
// exact count, some of the sessions, the count to type when over ConfirmByNameOver); with
// it, the revocation: at once for a selection and for up to one batch, else in the
// background with a progress page.
func (h *Handler) revokeSessionsBulk(c echo.Context) error {
	f, err := parseBulkForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := f.view.firstPage()
	if f.scope == "selected" {
		if len(f.ids) == 0 {
			return h.bulkConfirm(c, http.StatusOK, q, templates.Confirm{Title: "No session selected",
				Message: "Select sessions with their checkboxes first, or revoke all matching the filter.", Cancel: "Close"})
		}
		n := int64(len(f.ids))
		if !f.confirmed || !h.typedCount(f, n) {
			return h.confirmSelected(c, q, f)
		}
		res, err := h.actions.RevokeBulk(ctx, h.actor(c), actions.Bulk{IDs: f.ids, Batch: h.cfg.BulkBatch,
			Note: actions.Note{Detail: fmt.Sprintf("web: %s selected", plural(n, "session"))}})
		if err != nil {
			return err
		}
		return h.afterChange(c, noticeSuccess, bulkResult(res))
	}
	vf, err := h.viewFilter(q)
	if err != nil {
		return err
	}
	if !f.confirmed {
		f.at = h.now().UTC()
	} else if age := h.now().Sub(f.at); age < -time.Minute || age > bulkConfirmTTL {
		f.confirmed = false // stale (or from the future): count again and ask again
		f.at = h.now().UTC()
	}
	vf.At = f.at
	n, err := h.revocable(ctx, vf)
	if err != nil {
		return err
	}
	if !f.confirmed || !h.typedCount(f, n) {
		return h.confirmAll(c, q, vf, f, n)
	}
	by := h.actor(c)
	bulk := actions.Bulk{All: true, Filter: vf, Rule: string(q.Rule), Batch: h.cfg.BulkBatch,
		Note: actions.Note{Detail: "web: all matching " + orAll(q.values().Encode())}}
	if n <= int64(h.cfg.BulkBatch) {
		res, err := h.actions.RevokeBulk(ctx, by, bulk)
		if err != nil {
			return err
		}
		return h.afterChange(c, noticeSuccess, bulkResult(res))
	}
	id, run := h.bulks.start(n, q.url("/sessions"))
	bulk.Progress = func(done, revoked, total int64) {
		run.mu.Lock()
		run.done, run.revoked, run.total = done, revoked, total
		run.mu.Unlock()
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bulkRunTimeout)
		defer cancel()
		res, err := h.actions.RevokeBulk(ctx, by, bulk)
		run.mu.Lock()
		defer run.mu.Unlock()
		run.finished, run.revoked, run.result = time.Now(), res.Revoked, bulkResult(res)
		if err != nil {
			run.err = "Stopped by an error after " + plural(res.Revoked, "session") + " revoked: " + userError(err)
			h.log.Warn("bulk revoke", "err", err)
		}
	}()
	to := "/sessions/revoke/" + id
	if isPartial(c) {
		c.Response().Header().Set("HX-Redirect", to)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// revocable counts the sessions a bulk revoke of vf acts on: those matching it that are not
// revoked.
func (h *Handler) revocable(ctx context.Context, vf sessionstore.Filter) (int64, error) {
	if vf.Status != sessionstore.StatusAll && vf.Status != "" {
		if vf.Status == sessionstore.StatusRevoked {
			return 0, nil
		}
		return h.sessions.CountMatching(ctx, vf)
	}
	var n int64
	for _, st := range []sessionstore.Status{sessionstore.StatusActive, sessionstore.StatusExpired} {
		vf.Status = st
		m, err := h.sessions.CountMatching(ctx, vf)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// typedCount reports whether a confirmation of n sessions may go ahead: n is small, or the
// count was typed.
func (h *Handler) typedCount(f bulkForm, n int64) bool {
	return n <= h.cfg.ConfirmByNameOver || f.typed == strconv.FormatInt(n, 10)
}

func (h *Handler) confirmSelected(c echo.Context, q sessionsQuery, f bulkForm) error {
	n := int64(len(f.ids))
	v := templates.Confirm{
		Title:   fmt.Sprintf("Revoke %s?", plural(n, "selected session")),
		Message: fmt.Sprintf("The %s stop working at once (those revoked meanwhile are left as they are).", plural(n, "selected session")),
		Button:  "Revoke " + plural(n, "session"),
		Fields:  []templates.HiddenField{{Name: "scope", Value: "selected"}, {Name: "view", Value: q.values().Encode()}, {Name: "confirmed", Value: "1"}},
	}
	for _, id := range f.ids {
		v.Fields = append(v.Fields, templates.HiddenField{Name: "id", Value: strconv.FormatInt(id, 10)})
	}
	now := h.now()
	for _, id := range f.ids[:min(len(f.ids), bulkSample)] {
		s, err := h.sessions.Get(c.Request().Context(), id)
		if errors.Is(err, sessionstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		v.Sample = append(v.Sample, sampleRow(s, now, nil))
	}
	return h.askCount(c, q, f, n, v)
}

func (h *Handler) confirmAll(c echo.Context, q sessionsQuery, vf sessionstore.Filter, f bulkForm, n int64) error {
	what := "matching this filter"
	if q.Rule != "" {
		what = "breaking the policy rule " + string(q.Rule)
	}
	if n == 0 {
		return h.bulkConfirm(c, http.StatusOK, q, templates.Confirm{Title: "Nothing to revoke",
			Message: "No session " + what + " is left to revoke.", Cancel: "Close"})
	}
	v := templates.Confirm{
		Title: fmt.Sprintf("Revoke all %s %s?", plural(n, "session"), what),
		Message: fmt.Sprintf("This revokes the %s that %s now; sessions that start matching later are left alone.",
			plural(n, "session"), map[bool]string{true: "matches", false: "match"}[n == 1]),
		Button: "Revoke " + plural(n, "session"),
		Fields: []templates.HiddenField{{Name: "scope", Value: "all"}, {Name: "view", Value: q.values().Encode()},
			{Name: "at", Value: f.at.UTC().Format(time.RFC3339Nano)}, {Name: "confirmed", Value: "1"}},
	}
	if n > int64(h.cfg.BulkBatch) {
		v.Message += fmt.Sprintf(" It runs in batches of %s, with its progress shown.", thousands(int64(h.cfg.BulkBatch)))
	}
	sample := vf
	sample.Limit, sample.Sort, sample.Desc = bulkSample, sessionstore.SortCreated, true
	if sample.Status == sessionstore.StatusAll || sample.Status == "" {
		sample.Status = sessionstore.StatusActive
	}
	page, err := h.sessions.List(c.Request().Context(), sample)
	if err != nil {
		return err
	}
	for _, s := range page.Sessions {
		v.Sample = append(v.Sample, sampleRow(s, page.Now, nil))
	}
	return h.askCount(c, q, f, n, v)
}

// askCount shows confirmation v, asking for the count n to be typed when it is large (and
// saying so when the last try did not match).
func (h *Handler) askCount(c echo.Context, q sessionsQuery, f bulkForm, n int64, v templates.Confirm) error {
	status := http.StatusOK
	if n > h.cfg.ConfirmByNameOver {
		v.ConfirmName = thousands(n)
		if f.confirmed {
			v.NameError = fmt.Sprintf("Type %s, the number of sessions, to revoke them.", thousands(n))
			status = http.StatusUnprocessableEntity
			if isPartial(c) {
				c.Response().Header().Set("HX-Retarget", "#confirm-dialog")
				c.Response().Header().Set("HX-Reswap", "innerHTML")
			}
		}
	}
	return h.bulkConfirm(c, status, q, v)
}

func (h *Handler) bulkConfirm(c echo.Context, status int, q sessionsQuery, v templates.Confirm) error {
	v.Return, v.CancelURL = q.values().Encode(), q.url("/sessions")
	if v.Cancel == "" {
		v.Cancel = "Cancel"
	}
	if v.Button != "" {
		v.Action = "/sessions/revoke"
	}
	v.CSRF = h.csrfToken(c)
	return h.confirm(c, status, v)
}

// showBulkProgress is GET /sessions/revoke/{run}: a background bulk revoke's progress.
func (h *Handler) showBulkProgress(c echo.Context) error {
	run := h.bulks.get(c.Param("run"))
	if run == nil {
		return echo.NewHTTPError(http.StatusNotFound, "No such bulk revoke here: it finished over an hour ago, or ran in another console process.")
	}
	run.mu.Lock()
	p := templates.BulkProgress{Done: thousands(run.done), Total: thousands(run.total), Revoked: thousands(run.revoked),
		Finished: !run.finished.IsZero(), Error: run.err, RefreshURL: c.Request().URL.Path, ResultURL: run.view}
	if run.total > 0 {
		p.Percent = int(run.done * 100 / run.total)
	}
	result := run.result
	run.mu.Unlock()
	v := templates.Confirm{Title: "Revoking sessions…", Message: "The revocation runs in batches; this page follows it.", Progress: &p}
	if p.Finished {
		v.Title, v.Message, p.Percent = "Bulk revoke finished", result, 100
	}
	v.Page = h.page(c, v.Title, "sessions")
	noStore(c)
	return h.render(c, http.StatusOK, templates.BulkProgressView(v))
}

// bulkResult is a bulk revoke's notice.
func bulkResult(r actions.BulkResult) string {
	if r.Revoked == 0 {
		return "No session was left to revoke: they had been revoked meanwhile."
	}
	s := fmt.Sprintf("Revoked %s (%s active).", plural(r.Revoked, "session"), wereActive(r.Active))
	if left := r.Matched - r.Revoked; left > 0 {
		s += fmt.Sprintf(" %s had been revoked or had stopped matching meanwhile.", plural(left, "other session"))
	}
	return s
}

func orAll(query string) string {
	if query == "" {
		return "(the default view)"
	}
	return query
}

// userError is an error's message for an admin, without internals.
func userError(err error) string {
	var fse *sessionstore.FullScanError
	if errors.As(err, &fse) || errors.Is(err, sessionstore.ErrInvalidInput) {
		return err.Error()
	}
	return "the database failed"
}
