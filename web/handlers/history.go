package handlers

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// HistoryStore is what the handlers need of history.Store.
type HistoryStore interface {
	Get(ctx context.Context, id int64) (history.Record, error)
	Activity(ctx context.Context, id int64) (history.Activity, bool, error)
	Clients(ctx context.Context, id int64, limit int) ([]history.Client, error)
	LastUses(ctx context.Context, ids []int64) (map[int64]time.Time, error)
	UserCounts(ctx context.Context, username string) (seen, purged int64, err error)
	Health(ctx context.Context, liveRows int64, ttl, every time.Duration) (history.Health, error)
}

var _ HistoryStore = (*history.Store)(nil)

// HistoryConfig is what the history pages show of the background jobs' settings, and where
// they read the jobs' state.
type HistoryConfig struct {
	// SyncEvery is the history sync's period; PurgeTTL and PurgeEvery the PostgreSQL purge's
	// (PurgeEvery 0: off).
	SyncEvery, PurgeTTL, PurgeEvery time.Duration
	// Jobs returns the background jobs' leases and last passes.
	Jobs func(ctx context.Context) ([]jobs.Status, error)
}

// sessionURL is the page of a session.
func sessionURL(id int64) string { return "/sessions/" + strconv.FormatInt(id, 10) }

// userURL is the page of a username.
func userURL(name string) string { return "/users/" + url.PathEscape(name) }

// optTime is a time cell, or NULL for nil.
func optTime(t *time.Time, now time.Time) templates.TimeCell {
	if t == nil {
		return templates.TimeCell{Text: output.Null}
	}
	return timeCell(*t, now)
}

// listRow turns a session (live or from the history) into a row of a plain session list; an
// unset time is a dash, as in the sessions table.
func listRow(s sessionstore.Session, now time.Time) templates.ListRow {
	st := string(s.StatusAt(now))
	dash := func(t *time.Time) templates.TimeCell {
		if t == nil {
			return templates.TimeCell{Text: "—"}
		}
		return timeCell(*t, now)
	}
	return templates.ListRow{ID: strconv.FormatInt(s.ID, 10), URL: sessionURL(s.ID), Status: st, Purged: s.PurgedAt != nil,
		Created: timeCell(s.CreatedAt, now), Expires: timeCell(s.ExpiresAt, now), Revoked: dash(s.RevokedAt),
		LastUsed: timeCell(s.LastUsedAt, now), PurgedAt: dash(s.PurgedAt)}
}

// recordedLastUse shows, on CockroachDB (whose table's "lastUsedAt" never changes, and which
// the console never writes from verify), the last use the console recorded at /auth/verify
// in the rows' last-used column. The history's rows have it already.
func (h *Handler) recordedLastUse(ctx context.Context, rows []templates.SessionRow, inHistory bool) error {
	if inHistory || h.sessions.Flavor() != pgdb.Cockroach || h.history == nil || len(rows) == 0 {
		return nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	uses, err := h.history.LastUses(ctx, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		if t, ok := uses[rows[i].ID]; ok && t.After(rows[i].LastUsedAt) {
			rows[i].LastUsedAt = t
		}
	}
	return nil
}
