package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// maxClientsShown bounds the clients listed on a session page (the history keeps at most
// history.MaxClientsPerSession).
const maxClientsShown = history.MaxClientsPerSession

// maxAuditShown bounds the audit entries on the session and user pages (the rest is a link).
const maxAuditShown = 20

// auditRow is one audit entry as the pages show it.
func auditRow(e audit.Entry, now time.Time) templates.AuditRow {
	r := templates.AuditRow{At: timeCell(e.At, now), Admin: e.Admin, Action: string(e.Action), Target: e.Target,
		Remote: e.RemoteAddr, Reason: e.Reason}
	if e.Target != "" {
		r.TargetURL = userURL(e.Target)
	}
	if e.SessionID != 0 {
		r.SessionID = strconv.FormatInt(e.SessionID, 10)
		r.SessionURL = sessionURL(e.SessionID)
	}
	if e.ExpiresAt != nil {
		r.Expires = templates.CellTime(*e.ExpiresAt)
	}
	if e.Action == audit.RevokeAll || e.Action == audit.Revoke {
		r.Count = thousands(e.Count)
	}
	return r
}

func (h *Handler) showSessionPage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	live, err := h.sessions.GetDetail(ctx, id)
	inTable := err == nil
	if err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		return err
	}
	rec, err := h.history.Get(ctx, id)
	recorded := err == nil
	if err != nil && !errors.Is(err, history.ErrNotFound) {
		return err
	}
	if !inTable && !recorded {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("No session %d: it is not in the session table, and the console's history never saw it.", id))
	}
	act, used, err := h.history.Activity(ctx, id)
	if err != nil {
		return err
	}
	clients, err := h.history.Clients(ctx, id, maxClientsShown)
	if err != nil {
		return err
	}
	entries, err := h.audit.List(ctx, audit.Filter{SessionID: id, Limit: maxAuditShown})
	if err != nil {
		return err
	}
	now := h.now().UTC()
	// The live row is the present; the history knows the rest (and all of it once purged).
	s, auditInfo, userID := rec.Session, rec.AuditInfo, rec.UserID
	if inTable {
		s, auditInfo, userID = live.Session, live.AuditInfo, live.UserID
		s.PurgedAt = nil
	}
	v := templates.SessionPage{
		Page: h.page(c, "Session "+strconv.FormatInt(id, 10), "sessions"),
		ID:   strconv.FormatInt(id, 10), Username: s.Username, UserURL: userURL(s.Username),
		Status: string(s.StatusAt(now)), Purged: !inTable, Recorded: recorded,
		SyncEvery: sessionstore.FormatDuration(h.cfg.Background.SyncEvery),
		AuditURL:  "/audit?" + url.Values{"session": {strconv.FormatInt(id, 10)}}.Encode(),
		Notice:    h.takePageNotice(c, sessionURL(id)),
	}
	if inTable && s.RevokedAt == nil && roleIn(ctx).Allows(admins.Operator) {
		v.RevokeURL = "/sessions/" + v.ID + "/revoke?" + url.Values{"back": {sessionURL(id)}}.Encode()
	}
	text := func(label, value, testid string) templates.Field {
		return templates.Field{Label: label, Text: value, TestID: testid}
	}
	at := func(label string, t *time.Time, testid string) templates.Field {
		if t == nil {
			return templates.Field{Label: label, Null: true, TestID: testid}
		}
		tc := timeCell(*t, now)
		return templates.Field{Label: label, Time: &tc, TestID: testid}
	}
	lastUsed := s.LastUsedAt
	v.Fields = []templates.Field{
		{Label: "username", Text: templates.ShowName(s.Username), Link: userURL(s.Username), TestID: "f-username"},
		{Label: "id", Text: v.ID, Code: true, TestID: "f-id"},
		at("createdAt", &s.CreatedAt, "f-created"),
		at("expiresAt", &s.ExpiresAt, "f-expires"),
		at("revokedAt", s.RevokedAt, "f-revoked"),
		at("lastUsedAt", &lastUsed, "f-lastused"),
	}
	if auditInfo == nil {
		v.Fields = append(v.Fields, templates.Field{Label: "auditInfo", Null: true, TestID: "f-auditinfo"})
	} else {
		v.Fields = append(v.Fields, templates.Field{Label: "auditInfo", Text: *auditInfo, Code: true, TestID: "f-auditinfo"})
	}
	if userID != nil {
		v.Fields = append(v.Fields, templates.Field{Label: "user_id", Text: strconv.FormatInt(*userID, 10), Code: true, TestID: "f-userid"})
	} else if h.sessions.HasUserID() {
		v.Fields = append(v.Fields, templates.Field{Label: "user_id", Null: true, TestID: "f-userid"})
	}
	if used {
		v.Fields = append(v.Fields, at("last use seen at /auth/verify", &act.LastUsedAt, "f-seen-last"),
			text("uses seen", thousands(act.Uses), "f-uses"))
		if act.LastHost != "" || act.LastPath != "" {
			v.Fields = append(v.Fields, text("last host and path", act.LastHost+act.LastPath, "f-last-path"))
		}
	}
	if recorded {
		v.Fields = append(v.Fields, at("first seen by the console", &rec.FirstSeenAt, "f-first-seen"))
		if rec.IssuedBy != "" {
			v.Fields = append(v.Fields, text("issued by", rec.IssuedBy, "f-issued-by"), text("reason", orDash(rec.IssueReason), "f-reason"))
		}
		if !inTable && rec.PurgedAt != nil {
			v.Fields = append(v.Fields, at("left the table (purged)", rec.PurgedAt, "f-purged"))
		} else if !inTable {
			v.Fields = append(v.Fields, text("left the table (purged)", "just now: the history records when at its next sync", "f-purged"))
		}
	}
	v.Timeline = timeline(s, rec, recorded, !inTable, act, used, now)
	for _, cl := range clients {
		v.Clients = append(v.Clients, templates.ClientRow{Addr: cl.Addr, UserAgent: orDash(cl.UserAgent), Uses: thousands(cl.Uses),
			First: timeCell(cl.FirstUsedAt, now), Last: timeCell(cl.LastUsedAt, now)})
	}
	for _, e := range entries.Entries {
		v.Audit = append(v.Audit, auditRow(e, now))
	}
	return h.render(c, http.StatusOK, templates.SessionView(v))
}

// timeline orders what is known of a session's life: created, first and last use, revoked
// or expired (or to expire), left the table.
func timeline(s sessionstore.Session, rec history.Record, recorded, purged bool, act history.Activity, used bool, now time.Time) []templates.Event {
	type ev struct {
		at time.Time
		e  templates.Event
	}
	var evs []ev
	add := func(t time.Time, label, testid, note string) {
		evs = append(evs, ev{t, templates.Event{Label: label, At: timeCell(t, now), TestID: testid, Note: note, Future: t.After(now)}})
	}
	add(s.CreatedAt, "Created", "t-created", "")
	if used {
		add(act.FirstUsedAt, "First use", "t-first-use", act.LastAddr)
		if !act.LastUsedAt.Equal(act.FirstUsedAt) {
			add(act.LastUsedAt, "Last use", "t-last-use", "")
		}
	}
	if s.RevokedAt != nil {
		add(*s.RevokedAt, "Revoked", "t-revoked", "")
	}
	if s.RevokedAt == nil || s.ExpiresAt.Before(*s.RevokedAt) {
		label := "Expired"
		if s.ExpiresAt.After(now) {
			label = "Expires"
		}
		add(s.ExpiresAt, label, "t-expires", "")
	}
	if purged && rec.PurgedAt != nil {
		add(*rec.PurgedAt, "Left the session table", "t-purged", "purged")
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	out := make([]templates.Event, len(evs))
	for i, e := range evs {
		out[i] = e.e
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
