package handlers

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/web/templates"
)

// parseAuditQuery reads the audit view from the URL: admin, action, target, and the keyset
// positions before/after (entry IDs).
func parseAuditQuery(c echo.Context) (audit.Filter, error) {
	f := audit.Filter{Admin: c.QueryParam("admin"), Target: c.QueryParam("target"), Limit: 50}
	if err := checkText("admin filter", f.Admin); err != nil {
		return f, err
	}
	if err := checkText("target filter", f.Target); err != nil {
		return f, err
	}
	if a := c.QueryParam("action"); a != "" {
		ok := false
		for _, known := range audit.Actions {
			ok = ok || string(known) == a
		}
		if !ok {
			return f, echo.NewHTTPError(http.StatusBadRequest, "Invalid action in the address.")
		}
		f.Action = audit.Action(a)
	}
	for name, dst := range map[string]*int64{"before": &f.Before, "after": &f.After} {
		if s := c.QueryParam(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return f, echo.NewHTTPError(http.StatusBadRequest, "Invalid page position in the address.")
			}
			*dst = n
		}
	}
	return f, nil
}

func auditURL(path string, f audit.Filter) string {
	v := url.Values{}
	if f.Admin != "" {
		v.Set("admin", f.Admin)
	}
	if f.Action != "" {
		v.Set("action", string(f.Action))
	}
	if f.Target != "" {
		v.Set("target", f.Target)
	}
	if f.Before > 0 {
		v.Set("before", strconv.FormatInt(f.Before, 10))
	}
	if f.After > 0 {
		v.Set("after", strconv.FormatInt(f.After, 10))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func (h *Handler) showAuditPage(c echo.Context) error {
	f, err := parseAuditQuery(c)
	if err != nil {
		return err
	}
	page, err := h.audit.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	now := h.now()
	base := audit.Filter{Admin: f.Admin, Action: f.Action, Target: f.Target}
	v := templates.AuditPage{
		Page: h.page(c, "Audit log", "audit"), Admin: f.Admin, Target: f.Target,
		CSVURL: auditURL("/audit.csv", base), SelfURL: auditURL("/audit", f),
		Actions: []templates.Option{{Value: "", Label: "any", Selected: f.Action == ""}},
	}
	for _, a := range audit.Actions {
		v.Actions = append(v.Actions, templates.Option{Value: string(a), Label: string(a), Selected: f.Action == a})
	}
	if page.Older > 0 {
		o := base
		o.Before = page.Older
		v.OlderURL = auditURL("/audit", o)
	}
	if page.Newer > 0 {
		n := base
		n.After = page.Newer
		v.NewerURL = auditURL("/audit", n)
	}
	for _, e := range page.Entries {
		r := templates.AuditRow{At: timeCell(e.At, now), Admin: e.Admin, Action: string(e.Action), Target: e.Target, Remote: e.RemoteAddr}
		if e.SessionID != 0 {
			r.SessionID = strconv.FormatInt(e.SessionID, 10)
		}
		if e.ExpiresAt != nil {
			r.Expires = templates.CellTime(*e.ExpiresAt)
		}
		if e.Action == audit.RevokeAll || e.Action == audit.Revoke {
			r.Count = thousands(e.Count)
		}
		v.Rows = append(v.Rows, r)
	}
	return h.render(c, http.StatusOK, templates.AuditView(v))
}
