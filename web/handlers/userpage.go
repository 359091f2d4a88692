package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// userPageRows is how many live and how many purged sessions the user page lists (the rest
// is a link to the sessions and history pages).
const userPageRows = 50

func (h *Handler) showUserPage(c echo.Context) error {
	name, err := userParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	info, err := h.sessions.LookupUser(ctx, name)
	if errors.Is(err, sessionstore.ErrInvalidInput) {
		return echo.NewHTTPError(http.StatusBadRequest, "Invalid username in the address.")
	}
	if err != nil {
		return err
	}
	user := info.Name
	// The sessions still in the table: from the table itself where it has a username index
	// (PostgreSQL); on CockroachDB from the history's rows not purged (its username index
	// spares a scan of system.web_sessions), as of the last sync.
	inTable := sessionstore.Filter{Username: user}
	fromHistory := !h.sessions.IndexedByUser()
	if fromHistory {
		inTable.From, inTable.Purged = history.Source, sessionstore.PurgedNot
	}
	counts, err := h.sessions.Counts(ctx, inTable)
	if err != nil {
		return err
	}
	seen, purgedN, err := h.history.UserCounts(ctx, user)
	if err != nil {
		return err
	}
	newest := inTable
	newest.Status, newest.Sort, newest.Desc, newest.Limit = sessionstore.StatusAll, sessionstore.SortCreated, true, userPageRows
	live, err := h.sessions.List(ctx, newest)
	if err != nil {
		return err
	}
	gone := newest
	gone.From, gone.Purged = history.Source, sessionstore.PurgedOnly
	purged, err := h.sessions.List(ctx, gone)
	if err != nil {
		return err
	}
	entries, err := h.audit.List(ctx, audit.Filter{Target: user, Limit: maxAuditShown})
	if err != nil {
		return err
	}
	now := live.Now
	v := templates.UserPage{
		Page: h.page(c, "User "+user, "sessions"),
		Name: user,
		Counts: templates.Counts{Active: thousands(counts.Active), Expired: thousands(counts.Expired),
			Revoked: thousands(counts.Revoked), Total: thousands(counts.Total())},
		PurgedCount:   thousands(purgedN),
		SeenCount:     thousands(max(seen, counts.Total())),
		LiveMoreURL:   "/sessions?" + url.Values{"user": {user}, "status": {"all"}}.Encode(),
		PurgedMoreURL: "/history?" + url.Values{"user": {user}, "purged": {"yes"}}.Encode(),
		AuditURL:      "/audit?" + url.Values{"target": {user}}.Encode(),
		Notice:        h.takePageNotice(c, userURL(user)),
	}
	any := seen > 0 || counts.Total() > 0
	shown := templates.ShowName(user)
	switch {
	case info.Exists && info.CanLogin:
		v.State, v.StateText = "exists", fmt.Sprintf("%s is a user: sessions can be issued for it.", shown)
	case info.Exists:
		v.State, v.StateText = "role", fmt.Sprintf("%s is a role that cannot log in, so no session can be issued for it.", shown)
	case any:
		v.State, v.StateText = "dropped", fmt.Sprintf("No user %s exists now, but the console has seen sessions of that name: the user was dropped (or renamed).", shown)
	default:
		v.State, v.StateText = "unknown", fmt.Sprintf("No user %s exists, and the console has never seen a session of that name.", shown)
	}
	if counts.Active+counts.Expired > 0 && roleIn(ctx).Allows(admins.Operator) {
		v.RevokeAllURL = "/users/" + url.PathEscape(user) + "/revoke?" + url.Values{"back": {userURL(user)}}.Encode()
	}
	if fromHistory {
		v.LiveNote = fmt.Sprintf("As the console's history last saw them (it syncs every %s): CockroachDB's table has no index on username.",
			sessionstore.FormatDuration(h.cfg.Background.SyncEvery))
	}
	for _, s := range live.Sessions {
		s.PurgedAt = nil
		v.Live = append(v.Live, listRow(s, now))
	}
	for _, s := range purged.Sessions {
		v.Purged = append(v.Purged, listRow(s, now))
	}
	for _, e := range entries.Entries {
		v.Audit = append(v.Audit, auditRow(e, now))
	}
	return h.render(c, http.StatusOK, templates.UserView(v))
}
