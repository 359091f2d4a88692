package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// auditQuery is the audit view's state, all of it in the URL: admin and target (exact, or
// prefixes with admin_match / target_match=prefix), action, session (an ID), a time range
// (after inclusive, before exclusive: UTC dates or date-times), and the keyset positions
// older / newer (entry IDs).
type auditQuery struct {
	audit.Filter
	// AfterText and BeforeText are the time bounds as given (for the form).
	AfterText, BeforeText string
}

// parseAuditQuery reads the audit view from the URL; a value that cannot be is a 400 naming it.
func parseAuditQuery(c echo.Context) (auditQuery, error) {
	q := auditQuery{Filter: audit.Filter{Admin: c.QueryParam("admin"), Target: c.QueryParam("target"), Limit: 50}}
	bad := func(what string) error {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid "+what+" in the address.")
	}
	if err := checkText("admin filter", q.Admin); err != nil {
		return q, err
	}
	if err := checkText("target filter", q.Target); err != nil {
		return q, err
	}
	for name, dst := range map[string]*bool{"admin_match": &q.AdminPrefix, "target_match": &q.TargetPrefix} {
		switch c.QueryParam(name) {
		case "", "exact":
		case "prefix":
			*dst = true
		default:
			return q, bad(name)
		}
	}
	if a := c.QueryParam("action"); a != "" {
		ok := false
		for _, known := range audit.Actions {
			ok = ok || string(known) == a
		}
		if !ok {
			return q, bad("action")
		}
		q.Action = audit.Action(a)
	}
	if s := c.QueryParam("session"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return q, bad("session ID")
		}
		q.SessionID = n
	}
	for _, b := range []struct {
		name string
		text *string
		dst  *time.Time
	}{{"after", &q.AfterText, &q.Since}, {"before", &q.BeforeText, &q.Until}} {
		if s := c.QueryParam(b.name); s != "" {
			t, err := sessionstore.ParseTimeBound(s)
			if err != nil {
				return q, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid %s time in the address: use 2026-11-03, 2026-11-03T14:05 or 2026-11-03 14:05:09 (UTC).", b.name))
			}
			*b.text, *b.dst = s, t
		}
	}
	for name, dst := range map[string]*int64{"older": &q.Before, "newer": &q.After} {
		if s := c.QueryParam(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return q, bad("page position")
			}
			*dst = n
		}
	}
	if q.Before > 0 && q.After > 0 {
		return q, bad("page position")
	}
	return q, nil
}

// url encodes the view canonically, leaving defaults out.
func (q auditQuery) url(path string) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("admin", q.Admin)
	if q.AdminPrefix {
		v.Set("admin_match", "prefix")
	}
	set("action", string(q.Action))
	set("target", q.Target)
	if q.TargetPrefix {
		v.Set("target_match", "prefix")
	}
	if q.SessionID != 0 {
		v.Set("session", strconv.FormatInt(q.SessionID, 10))
	}
	set("after", q.AfterText)
	set("before", q.BeforeText)
	if q.Before > 0 {
		v.Set("older", strconv.FormatInt(q.Before, 10))
	}
	if q.After > 0 {
		v.Set("newer", strconv.FormatInt(q.After, 10))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// firstPage is the view without its page position.
func (q auditQuery) firstPage() auditQuery {
	q.Before, q.After = 0, 0
	return q
}

func (h *Handler) showAuditPage(c echo.Context) error {
	q, err := parseAuditQuery(c)
	if err != nil {
		return err
	}
	page, err := h.audit.List(c.Request().Context(), q.Filter)
	if err != nil {
		return err
	}
	now := h.now()
	base := q.firstPage()
	v := templates.AuditPage{
		Page: h.page(c, "Audit log", "audit"), Admin: q.Admin, Target: q.Target,
		AdminPrefix: q.AdminPrefix, TargetPrefix: q.TargetPrefix, After: q.AfterText, Before: q.BeforeText,
		CSVURL: base.url("/audit.csv"), SelfURL: q.url("/audit"),
		Actions: []templates.Option{{Value: "", Label: "any", Selected: q.Action == ""}},
	}
	if q.SessionID != 0 {
		v.Session = strconv.FormatInt(q.SessionID, 10)
	}
	for _, a := range audit.Actions {
		v.Actions = append(v.Actions, templates.Option{Value: string(a), Label: string(a), Selected: q.Action == a})
	}
	if page.Older > 0 {
		o := base
		o.Before = page.Older
		v.OlderURL = o.url("/audit")
	}
	if page.Newer > 0 {
		n := base
		n.After = page.Newer
		v.NewerURL = n.url("/audit")
	}
	for _, e := range page.Entries {
		v.Rows = append(v.Rows, auditRow(e, now))
	}
	return h.render(c, http.StatusOK, templates.AuditView(v))
}
