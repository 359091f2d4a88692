package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// sessionsQuery is the sessions view's state. All of it lives in the URL query, so a bookmark
// or a pasted link shows the same view.
type sessionsQuery struct {
	User   string
	Prefix bool
	Status sessionstore.Status
	Sort   sessionstore.SortKey
	Desc   bool
	Limit  int
	After  *sessionstore.Cursor
	Before *sessionstore.Cursor
	// History is the view of /history (the console's history) instead of /sessions.
	History bool
	// More are the auditors' filters (ID, time ranges, purged).
	More auditorFilters
	// Rule shows only the active sessions breaking that policy rule (/sessions?rule=idle).
	Rule policy.Rule
}

var pageSizes = []int{25, 50, 100, 200}

func defaultSessionsQuery() sessionsQuery {
	return sessionsQuery{Status: sessionstore.StatusActive, Sort: sessionstore.SortCreated, Desc: true, Limit: 50}
}

// defaultViewQuery is the default view of /sessions, or of /history (every status).
func defaultViewQuery(inHistory bool) sessionsQuery {
	q := defaultSessionsQuery()
	if inHistory {
		q.History, q.Status = true, sessionstore.StatusAll
	}
	return q
}

// parseSessionsQuery reads the view of /sessions from URL values; a value that cannot be is a
// 400 naming it.
func parseSessionsQuery(v url.Values) (sessionsQuery, error) { return parseViewQuery(v, false) }

// parseViewQuery reads the view of /sessions or /history from URL values.
func parseViewQuery(v url.Values, inHistory bool) (sessionsQuery, error) {
	q := defaultViewQuery(inHistory)
	bad := func(name string) error {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid %s in the address.", name))
	}
	q.User = v.Get("user")
	if len(q.User) > 256 {
		return q, bad("user filter")
	}
	if err := checkText("user filter", q.User); err != nil {
		return q, err
	}
	switch v.Get("match") {
	case "", "exact":
	case "prefix":
		q.Prefix = true
	default:
		return q, bad("match")
	}
	if s := v.Get("status"); s != "" {
		st, err := sessionstore.ParseStatus(s)
		if err != nil {
			return q, bad("status")
		}
		q.Status = st
	}
	if s := v.Get("sort"); s != "" {
		k, err := sessionstore.ParseSort(s)
		if err != nil {
			return q, bad("sort")
		}
		q.Sort = k
	}
	switch v.Get("dir") {
	case "", "desc":
	case "asc":
		q.Desc = false
	default:
		return q, bad("order")
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > sessionstore.MaxPageSize {
			return q, bad("page size")
		}
		q.Limit = n
	}
	for name, dst := range map[string]**sessionstore.Cursor{"after": &q.After, "before": &q.Before} {
		if s := v.Get(name); s != "" {
			c, err := sessionstore.ParseCursor(s)
			if err != nil {
				return q, bad("page position")
			}
			*dst = &c
		}
	}
	if q.After != nil && q.Before != nil {
		return q, bad("page position")
	}
	more, err := parseAuditorFilters(v, inHistory)
	if err != nil {
		return q, err
	}
	q.More = more
	if r := v.Get("rule"); r != "" {
		rule, err := policy.ParseRule(r)
		if err != nil || inHistory {
			return q, bad("policy rule")
		}
		// A rule covers active sessions only.
		q.Rule, q.Status = rule, sessionstore.StatusActive
	}
	return q, nil
}

// values encodes the view canonically, leaving defaults out.
func (q sessionsQuery) values() url.Values {
	v := url.Values{}
	d := defaultViewQuery(q.History)
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Prefix {
		v.Set("match", "prefix")
	}
	if q.Status != d.Status {
		v.Set("status", string(q.Status))
	}
	if q.Sort != d.Sort {
		v.Set("sort", string(q.Sort))
	}
	if !q.Desc {
		v.Set("dir", "asc")
	}
	if q.Limit != d.Limit {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != nil {
		v.Set("after", q.After.String())
	}
	if q.Before != nil {
		v.Set("before", q.Before.String())
	}
	q.More.set(v)
	if q.Rule != "" {
		v.Set("rule", string(q.Rule))
	}
	return v
}

func (q sessionsQuery) url(path string) string {
	if enc := q.values().Encode(); enc != "" {
		return path + "?" + enc
	}
	return path
}

// path is the view's page: /sessions or /history.
func (q sessionsQuery) path() string {
	if q.History {
		return "/history"
	}
	return "/sessions"
}

// firstPage is the view without its page position.
func (q sessionsQuery) firstPage() sessionsQuery {
	q.After, q.Before = nil, nil
	return q
}

// filter is the view's store filter, without its policy rule (see Handler.viewFilter).
func (q sessionsQuery) filter() sessionstore.Filter {
	f := sessionstore.Filter{Username: q.User, Prefix: q.Prefix, Status: q.Status, Sort: q.Sort, Desc: q.Desc,
		Limit: q.Limit, After: q.After, Before: q.Before}
	q.More.apply(&f, q.History)
	return f
}

// viewFilter is the view's store filter with its policy rule's condition; a rule that is not
// enabled is a 400 saying so.
func (h *Handler) viewFilter(q sessionsQuery) (sessionstore.Filter, error) {
	f := q.filter()
	if q.Rule == "" {
		return f, nil
	}
	rf, err := h.policy.Filter(q.Rule)
	if err != nil {
		return f, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("The policy rule %s is not enabled on this console (serve --policy-%s).", q.Rule, q.Rule))
	}
	f.Cond, f.Status = rf.Cond, rf.Status
	return f, nil
}

// returnQuery reads the `return` form field: the sessions view to show after an action.
func returnQuery(c echo.Context) sessionsQuery {
	v, err := url.ParseQuery(c.FormValue("return"))
	if err != nil {
		return defaultSessionsQuery()
	}
	q, err := parseSessionsQuery(v)
	if err != nil {
		return defaultSessionsQuery()
	}
	return q
}

func (h *Handler) showHistoryPage(c echo.Context) error {
	q, err := parseViewQuery(c.QueryParams(), true)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q.User = h.filterName(ctx, q.User)
	varyOnHTMX(c)
	table, err := h.sessionsTable(ctx, q)
	if err != nil {
		return err
	}
	if isPartial(c) {
		if c.Request().Header.Get("HX-Trigger") == "filters" {
			c.Response().Header().Set("HX-Push-Url", q.url(q.path()))
		}
		return h.render(c, http.StatusOK, templates.Table(table))
	}
	return h.render(c, http.StatusOK, templates.HistoryView(templates.HistoryPage{
		Page: h.page(c, "History", "history"), Filters: filters(q), Table: table,
		SyncEvery: sessionstore.FormatDuration(h.cfg.Background.SyncEvery),
	}))
}

func (h *Handler) showSessionsPage(c echo.Context) error {
	q, err := parseSessionsQuery(c.QueryParams())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q.User = h.filterName(ctx, q.User)
	varyOnHTMX(c)
	notice := h.takeNotice(c, q)
	table, err := h.sessionsTable(ctx, q)
	if err != nil {
		return err
	}
	if isPartial(c) {
		if c.Request().Header.Get("HX-Trigger") == "filters" {
			// The filter form pushes its raw query (every field, defaults too); push the
			// canonical URL of the same view instead.
			c.Response().Header().Set("HX-Push-Url", q.url("/sessions"))
		}
		return h.render(c, http.StatusOK, templates.Table(table))
	}
	return h.render(c, http.StatusOK, templates.SessionsView(templates.SessionsPage{
		Page: h.page(c, "Sessions", "sessions"), Filters: filters(q), Notice: notice, Table: table, Issue: h.issueForm(c, q),
	}))
}

// filterName is the username filter as typed, without surrounding space, unless a user has the
// name with that space (then it is that user's name, as a row's link gives it).
func (h *Handler) filterName(ctx context.Context, name string) string {
	trimmed := strings.TrimSpace(name)
	if trimmed == name || trimmed == "" {
		return trimmed
	}
	users, err := h.sessions.Users(ctx, name, 1)
	if err == nil && len(users) == 1 && users[0] == h.sessions.Username(name) {
		return name
	}
	return trimmed
}

// sessionsTable loads one page and the counts, and builds the table fragment's view.
func (h *Handler) sessionsTable(ctx context.Context, q sessionsQuery) (templates.SessionsTable, error) {
	vf, err := h.viewFilter(q)
	if err != nil {
		return templates.SessionsTable{}, err
	}
	page, err := h.sessions.List(ctx, vf)
	if err != nil {
		return templates.SessionsTable{}, err
	}
	counts, err := h.pageCounts(ctx, q, page)
	var fse *sessionstore.FullScanError
	refused := errors.As(err, &fse)
	if err != nil && !refused {
		return templates.SessionsTable{}, err
	}
	now := page.Now
	first := q.firstPage()
	ret := q.values().Encode()
	t := templates.SessionsTable{
		SelfURL:    q.url(q.path()),
		FirstURL:   first.url(q.path()),
		CSVURL:     first.url(q.path() + ".csv"),
		JSONURL:    first.url(q.path() + ".json"),
		UpdatedAt:  now.Format("15:04:05") + " UTC",
		StatusName: string(q.Status),
		Now:        now,
		Rows:       make([]templates.SessionRow, 0, len(page.Sessions)),
		CanOperate: roleIn(ctx).Allows(admins.Operator),
	}
	statusURL := func(s sessionstore.Status) string {
		v := first
		v.Status = s
		return v.url(q.path())
	}
	t.Counts = templates.Counts{
		Active: thousands(counts.Active), Expired: thousands(counts.Expired), Revoked: thousands(counts.Revoked),
		Total:     thousands(counts.Total()),
		ActiveURL: statusURL(sessionstore.StatusActive), ExpiredURL: statusURL(sessionstore.StatusExpired),
		RevokedURL: statusURL(sessionstore.StatusRevoked), AllURL: statusURL(sessionstore.StatusAll),
		At: templates.Relative(counts.At, now), AtISO: counts.At.UTC().Format(time.RFC3339Nano),
	}
	if refused { // the rows still show; the counts would read the whole table
		t.Counts.Active, t.Counts.Expired, t.Counts.Revoked, t.Counts.Total = "–", "–", "–", "–"
		t.Counts.Off = "Not counted: counting reads the whole session table, and the console runs with --refuse-full-scans."
	}
	if page.Next != nil {
		n := first
		n.After = page.Next
		t.NextURL = n.url(q.path())
	}
	if page.Prev != nil {
		p := first
		p.Before = page.Prev
		t.PrevURL = p.url(q.path())
	}
	t.ReturnQuery = "?" + url.Values{"return": {ret}}.Encode()
	total := countOf(counts, q.Status)
	if refused {
		total = -1
	}
	if q.Rule != "" { // the rule's cached count, for the rule alone; with more filters, none
		total = -1
		if q.User == "" && !q.More.any() {
			if pc, err := h.policy.Counts(ctx); err == nil {
				total = max(pc.Rules[q.Rule], int64(len(page.Sessions)))
			}
		}
	}
	t.Heading, t.Summary = viewHeading(q, templates.ShowName(h.sessions.Username(q.User)), len(page.Sessions), total)
	if q.Rule != "" {
		t.Heading += " breaking " + string(q.Rule)
		t.Summary = strings.TrimSuffix(t.Summary, ".") + " breaking the policy rule " + string(q.Rule) + "."
	}
	if q.User != "" && !q.Prefix && !q.History {
		t.User = h.sessions.Username(q.User)
		switch {
		case refused && len(page.Sessions) > 0, counts.Active+counts.Expired > 0:
			t.UserRevokeAllURL = "/users/" + url.PathEscape(t.User) + "/revoke" + t.ReturnQuery
		case !refused && counts.Total() == 0:
			p := first
			p.Prefix = true
			t.PrefixURL = p.url(q.path())
		}
	}
	t.CanOperate = t.CanOperate && !q.History
	if t.Bulk = t.CanOperate; t.Bulk {
		t.BulkView = first.values().Encode()
		t.CSRF, _ = ctx.Value(csrfKey{}).(string)
		if total >= 0 && !q.More.any() && (q.Status == sessionstore.StatusActive || q.Status == sessionstore.StatusExpired) {
			t.BulkAll = thousands(total)
		}
	}
	for _, s := range page.Sessions {
		t.Rows = append(t.Rows, templates.SessionRow{ID: s.ID, Username: s.Username, CreatedAt: s.CreatedAt,
			ExpiresAt: s.ExpiresAt, RevokedAt: s.RevokedAt, LastUsedAt: s.LastUsedAt, PurgedAt: s.PurgedAt})
	}
	if err := h.recordedLastUse(ctx, t.Rows, q.History); err != nil {
		return templates.SessionsTable{}, err
	}
	return t, nil
}

// pageCounts returns the status counts to show above a page of rows. Cached counts serve as
// long as they cannot be wrong about the page: when the rows shown contradict them (sessions
// written elsewhere since they were counted, such as CLI logins, or sessions that expired),
// they are counted again; and as the page and the count are two reads, counts are never shown
// below what the page itself shows. Their time is when they were counted.
func (h *Handler) pageCounts(ctx context.Context, q sessionsQuery, page sessionstore.Page) (sessionstore.Counts, error) {
	f := sessionstore.Filter{Username: q.User, Prefix: q.Prefix}
	if q.History {
		f.From, f.Purged = history.Source, q.More.Purged
	}
	var seen sessionstore.Counts // lower bounds from the page
	for _, s := range page.Sessions {
		switch s.StatusAt(page.Now) {
		case sessionstore.StatusActive:
			seen.Active++
		case sessionstore.StatusExpired:
			seen.Expired++
		case sessionstore.StatusRevoked:
			seen.Revoked++
		}
	}
	// More pages in either direction: the view's status has at least one more session.
	more := int64(0)
	if page.Next != nil || page.Prev != nil {
		more = 1
	}
	covers := func(c sessionstore.Counts) bool {
		return c.Active >= seen.Active && c.Expired >= seen.Expired && c.Revoked >= seen.Revoked &&
			countOf(c, q.Status) >= int64(len(page.Sessions))+more
	}
	counts, err := h.sessions.Counts(ctx, f)
	if err != nil || covers(counts) {
		return counts, err
	}
	if counts, err = h.sessions.CountNow(ctx, f); err != nil {
		return counts, err
	}
	counts.Active, counts.Expired, counts.Revoked = max(counts.Active, seen.Active), max(counts.Expired, seen.Expired), max(counts.Revoked, seen.Revoked)
	return counts, nil
}

// countOf is the count of one status (all: the total).
func countOf(c sessionstore.Counts, s sessionstore.Status) int64 {
	switch s {
	case sessionstore.StatusActive:
		return c.Active
	case sessionstore.StatusExpired:
		return c.Expired
	case sessionstore.StatusRevoked:
		return c.Revoked
	}
	return c.Total()
}

// viewHeading names a view ("Active sessions of alice") and says what a page of it shows, for
// the status region ("Showing 2 of 2 active sessions of alice."; total < 0: not counted).
func viewHeading(q sessionsQuery, user string, shown int, total int64) (heading, summary string) {
	status := string(q.Status)
	if q.Status == sessionstore.StatusAll {
		status = "all"
	}
	whose := ""
	switch {
	case q.User != "" && q.Prefix:
		whose = " of users starting with " + user
	case q.User != "":
		whose = " of " + user
	}
	noun := "sessions"
	if q.Status == sessionstore.StatusAll {
		heading = "All sessions" + whose
	} else {
		heading = strings.ToUpper(status[:1]) + status[1:] + " sessions" + whose
	}
	if total == 1 {
		noun = "session"
	}
	if q.Status == sessionstore.StatusAll {
		status = ""
	} else {
		status += " "
	}
	if total < 0 {
		if shown == 1 {
			noun = "session"
		}
		return heading, fmt.Sprintf("Showing %s %s%s%s.", thousands(int64(shown)), status, noun, whose)
	}
	return heading, fmt.Sprintf("Showing %s of %s %s%s%s.", thousands(int64(shown)), thousands(total), status, noun, whose)
}

func filters(q sessionsQuery) templates.Filters {
	f := templates.Filters{User: q.User, Prefix: q.Prefix, Path: q.path(), More: q.More.form(q.History)}
	for _, s := range []sessionstore.Status{sessionstore.StatusActive, sessionstore.StatusExpired, sessionstore.StatusRevoked, sessionstore.StatusAll} {
		f.Statuses = append(f.Statuses, templates.Option{Value: string(s), Label: string(s), Selected: q.Status == s})
	}
	for _, s := range []struct {
		k     sessionstore.SortKey
		label string
	}{{sessionstore.SortCreated, "created"}, {sessionstore.SortExpires, "expires"}, {sessionstore.SortLastUsed, "last used"}} {
		f.Sorts = append(f.Sorts, templates.Option{Value: string(s.k), Label: s.label, Selected: q.Sort == s.k})
	}
	f.Dirs = []templates.Option{{Value: "desc", Label: "newest first", Selected: q.Desc}, {Value: "asc", Label: "oldest first", Selected: !q.Desc}}
	known := false
	for _, n := range pageSizes {
		known = known || n == q.Limit
		f.Limits = append(f.Limits, templates.Option{Value: strconv.Itoa(n), Label: strconv.Itoa(n), Selected: n == q.Limit})
	}
	if !known {
		f.Limits = append(f.Limits, templates.Option{Value: strconv.Itoa(q.Limit), Label: strconv.Itoa(q.Limit), Selected: true})
	}
	return f
}

// timeCell renders a timestamp as the table's cells do, with a relative hint.
func timeCell(t, now time.Time) templates.TimeCell {
	return templates.TimeCell{Text: templates.CellTime(t), Hint: templates.Relative(t, now), ISO: t.UTC().Format(time.RFC3339Nano)}
}

// thousands formats n with comma separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
