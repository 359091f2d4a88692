// Package history is the console's own record of the sessions of the live table: every
// session it has seen, kept after the live table purges it (CockroachDB deletes ended sessions
// server.web_session.purge.ttl after they end), with who issued it and why, and the activity
// that /auth/verify saw (first and last use, client addresses, user agents, counts).
//
// What is kept where, and for how long:
//   - console.session_history: one row per session ever seen, with the live table's columns as
//     last seen, when the console first saw it, when it ended (or will: the first of expiresAt
//     and revokedAt), when it left the live table, and who issued it and why. Kept until
//     the retention (default 400 days) after it ended and left the live table, then deleted
//     in batches with its activity (Expire).
//   - console.session_activity and console.session_clients: per session, uses seen at
//     /auth/verify, and the distinct (address, user agent) pairs with counts (at most
//     MaxClientsPerSession per session). Deleted with the session's history.
//   - console.history_daily: per UTC day, sessions created, purged and revoked, as the sync
//     recorded them (for health and the overview).
//   - console.session_hourly: per UTC hour, sessions created (by origin), revoked and ended,
//     written with the history's changes (the overview's charts); console.history_top_users:
//     the users holding the most active sessions, counted by the overview job.
//   - console.history_sync: the sync's watermarks and what it last saw of the cluster's purge.
//   - console.session_counts: the latest counts per status of the live table and of the
//     history, made by the counts job (Counter) for every replica.
//
// The background passes (Sync, Purge, Expire, and the activity Recorder's Flush) are written to
// run under a jobs lease: each writes through the Txer it is given, which for a leased job
// commits only while the lease holds.
package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
)

// Table is the history table, listed by sessionstore with the live table's filters (Source).
const Table = "console.session_history"

// Source lets sessionstore list the history with the live table's filters, sorting and paging.
var Source = &sessionstore.Source{Table: Table, Purged: "purged_at"}

// Defaults.
const (
	// DefaultSyncEvery is how often the sync reads what changed in the live table.
	DefaultSyncEvery = 30 * time.Second
	// DefaultRetention is how long history is kept after a session ended and was purged.
	DefaultRetention = 400 * 24 * time.Hour
	// DefaultPurgeTTL is how long after it ended (expired or was revoked) a session stays in
	// the live table on PostgreSQL: CockroachDB's server.web_session.purge.ttl default.
	DefaultPurgeTTL = time.Hour
	// DefaultPurgeEvery is how often the PostgreSQL purge runs (CockroachDB's
	// server.log_gc.period default).
	DefaultPurgeEvery = time.Hour
	// PurgeBatch is the most rows one purge statement deletes (as CockroachDB's
	// server.log_gc.max_deletions_per_cycle default).
	PurgeBatch = 1000
	// syncBatch is the most live rows one sync statement reads.
	syncBatch = 500
	// syncOverlap is how far behind its watermarks the sync looks again, for rows written by
	// transactions that committed after a later row was seen (their createdAt or revokedAt is
	// their transaction's time, not their commit's).
	syncOverlap = 2 * time.Minute
	// retentionBatch is the most history rows one retention statement deletes.
	retentionBatch = 1000
	// MaxClientsPerSession bounds the (address, user agent) pairs kept per session.
	MaxClientsPerSession = 100
)

// migrations are the history tables. username sorts bytewise (COLLATE "C" on PostgreSQL;
// CockroachDB's default), as in the live table, so prefix ranges match it.
func migrations(server pgdb.Flavor) []pgdb.Migration {
	collate := ""
	if server == pgdb.Postgres {
		collate = ` COLLATE "C"`
	}
	return []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS console.session_history (
	id INT8 PRIMARY KEY,
	username TEXT` + collate + ` NOT NULL,
	user_id INT8 NULL,
	"createdAt" TIMESTAMP NOT NULL,
	"expiresAt" TIMESTAMP NOT NULL,
	"revokedAt" TIMESTAMP NULL,
	"lastUsedAt" TIMESTAMP NOT NULL,
	"auditInfo" TEXT NULL,
	ended_at TIMESTAMP NOT NULL,
	first_seen_at TIMESTAMP NOT NULL,
	changed_at TIMESTAMP NOT NULL,
	purged_at TIMESTAMP NULL,
	issued_by TEXT NOT NULL DEFAULT '',
	issue_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS session_history_createdAt_idx ON console.session_history ("createdAt", id);
CREATE INDEX IF NOT EXISTS session_history_expiresAt_idx ON console.session_history ("expiresAt", id);
CREATE INDEX IF NOT EXISTS session_history_lastUsedAt_idx ON console.session_history ("lastUsedAt", id);
CREATE INDEX IF NOT EXISTS session_history_revokedAt_idx ON console.session_history ("revokedAt", id);
CREATE INDEX IF NOT EXISTS session_history_username_idx ON console.session_history (username, "createdAt", id);
CREATE INDEX IF NOT EXISTS session_history_ended_idx ON console.session_history (ended_at, id);
CREATE INDEX IF NOT EXISTS session_history_live_expires_idx ON console.session_history ("expiresAt") WHERE purged_at IS NULL;
CREATE INDEX IF NOT EXISTS session_history_live_revoked_idx ON console.session_history ("revokedAt") WHERE purged_at IS NULL AND "revokedAt" IS NOT NULL;
CREATE INDEX IF NOT EXISTS session_history_purged_idx ON console.session_history (purged_at) WHERE purged_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS session_history_live_ended_idx ON console.session_history (ended_at, id) WHERE purged_at IS NULL;
CREATE TABLE IF NOT EXISTS console.session_activity (
	session_id INT8 PRIMARY KEY,
	first_used_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP NOT NULL,
	uses INT8 NOT NULL,
	last_addr TEXT NOT NULL DEFAULT '',
	last_user_agent TEXT NOT NULL DEFAULT '',
	last_host TEXT NOT NULL DEFAULT '',
	last_path TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS console.session_clients (
	session_id INT8 NOT NULL,
	addr TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	uses INT8 NOT NULL,
	first_used_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP NOT NULL,
	PRIMARY KEY (session_id, addr, user_agent)
);
CREATE TABLE IF NOT EXISTS console.history_daily (
	day DATE PRIMARY KEY,
	created INT8 NOT NULL DEFAULT 0,
	revoked INT8 NOT NULL DEFAULT 0,
	purged INT8 NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS console.history_sync (
	id INT8 PRIMARY KEY,
	created_mark TIMESTAMP NULL,
	revoked_mark TIMESTAMP NULL,
	check_after_at TIMESTAMP NULL,
	check_after_id INT8 NOT NULL DEFAULT 0,
	last_pass_at TIMESTAMP NULL,
	last_purge_seen_at TIMESTAMP NULL,
	last_purge_seen_rows INT8 NOT NULL DEFAULT 0,
	purged_rows INT8 NOT NULL DEFAULT 0
);
INSERT INTO console.history_sync (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
`}, {Version: 2, SQL: `
CREATE TABLE IF NOT EXISTS console.session_counts (
	table_name TEXT PRIMARY KEY,
	active INT8 NOT NULL DEFAULT 0,
	expired INT8 NOT NULL DEFAULT 0,
	revoked INT8 NOT NULL DEFAULT 0,
	counted_at TIMESTAMPTZ NULL,
	wanted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
`}, {Version: 3, SQL: `
-- A user's purged rows, counted from the index alone (the user page's counts).
CREATE INDEX IF NOT EXISTS session_history_purged_user_idx ON console.session_history (username) WHERE purged_at IS NOT NULL;
`}}
}

// Options configure a Store.
type Options struct {
	// Live is the session store whose table the history follows.
	Live *sessionstore.Store
	// Server is what the database really is (SELECT version()), which may differ from the
	// session dialect on the CockroachDB test fixtures: it decides AS OF SYSTEM TIME and
	// SHOW CLUSTER SETTING.
	Server pgdb.Flavor
}

// Store reads and writes the history. It is safe for concurrent use. Open it after the audit
// log (the sync reads who issued a session from there).
type Store struct {
	pool   *pgxpool.Pool
	live   *sessionstore.Store
	server pgdb.Flavor
	now    func() time.Time

	settingsMu sync.Mutex
	settings   PurgeConfig
	settingsAt time.Time

	// onFresh hears of sessions the sync records for the first time (see OnFresh).
	onFresh func(o Origin, n int64)
}

// FreshFor is how recent a session's creation must be for OnFresh to hear of it when the sync
// first records it: older ones are the first pass over an existing table, or a sync that was
// stopped, not sessions being issued now.
const FreshFor = 10 * time.Minute

// OnFresh sets fn to be called, after each transaction of the sync that commits, with how many
// sessions of each origin it recorded for the first time that were created at most FreshFor
// before (for the metrics). Set it before the jobs start.
func (s *Store) OnFresh(fn func(o Origin, n int64)) { s.onFresh = fn }

// Open migrates the history tables and returns the store.
func Open(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if o.Live == nil {
		return nil, errors.New("history: no live session store")
	}
	if o.Server == 0 {
		o.Server = o.Live.Flavor()
	}
	if err := pgdb.Migrate(ctx, pool, o.Server, "history", migrations(o.Server)); err != nil {
		return nil, err
	}
	if err := pgdb.Migrate(ctx, pool, o.Server, "history-rollups", rollupMigrations(o.Server)); err != nil {
		return nil, err
	}
	return &Store{pool: pool, live: o.Live, server: o.Server, now: time.Now}, nil
}

// Txer runs fn in a transaction; a *jobs.Pass is one (its transactions commit only under the
// job's lease).
type Txer interface {
	Tx(ctx context.Context, fn func(tx pgx.Tx) error) error
}

// PlainTx is a Txer without a lease, for tests and one-off commands: pgdb.RunTx on Pool for
// the server's Flavor (0: PostgreSQL).
type PlainTx struct {
	Pool   *pgxpool.Pool
	Flavor pgdb.Flavor
}

// Tx runs fn in a transaction on the pool.
func (p PlainTx) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgdb.RunTx(ctx, p.Pool, p.Flavor, fn)
}

// Record is one session as the history knows it.
type Record struct {
	sessionstore.Session
	// UserID is the live row's user_id (CockroachDB v23.1+), nil where the table has none.
	UserID *int64
	// AuditInfo is the live row's "auditInfo" (the console writes who issued it and why).
	AuditInfo *string
	// EndedAt is when the session ended, or will: the first of ExpiresAt and RevokedAt.
	EndedAt time.Time
	// FirstSeenAt is when the sync first recorded it; ChangedAt when it last recorded a change.
	FirstSeenAt, ChangedAt time.Time
	// IssuedBy and IssueReason are the console admin (or "cli:<os user>") who issued it and
	// why, for sessions the console issued.
	IssuedBy, IssueReason string
}

// Purged reports whether the session has left the live table.
func (r Record) Purged() bool { return r.PurgedAt != nil }

const recordColumns = `id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt", purged_at,
	user_id, "auditInfo", ended_at, first_seen_at, changed_at, issued_by, issue_reason`

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	err := row.Scan(&r.ID, &r.Username, &r.CreatedAt, &r.ExpiresAt, &r.RevokedAt, &r.LastUsedAt, &r.PurgedAt,
		&r.UserID, &r.AuditInfo, &r.EndedAt, &r.FirstSeenAt, &r.ChangedAt, &r.IssuedBy, &r.IssueReason)
	r.CreatedAt, r.ExpiresAt, r.LastUsedAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC(), r.LastUsedAt.UTC()
	r.RevokedAt, r.PurgedAt = utcPtr(r.RevokedAt), utcPtr(r.PurgedAt)
	r.EndedAt, r.FirstSeenAt, r.ChangedAt = r.EndedAt.UTC(), r.FirstSeenAt.UTC(), r.ChangedAt.UTC()
	return r, err
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ErrNotFound: the history has no such session.
var ErrNotFound = errors.New("history: session not recorded")

// Get returns the history of one session; a session the history never saw is ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM `+Table+` WHERE id = $1`, id)
	if err != nil {
		return Record{}, dbErr("get", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRecord)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("history: session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Record{}, dbErr("get", err)
	}
	return r, nil
}

func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("history: %s: %w", op, pgdb.Unavailable(err))
}

// UserCounts returns how many sessions of username (as the dialect stores it) the history has
// seen, and how many of those left the live table.
func (s *Store) UserCounts(ctx context.Context, username string) (seen, purged int64, err error) {
	// Two index counts: every row of the user from the username index, the purged ones from
	// their partial index; neither reads the table's rows (one count with a FILTER on
	// purged_at read each of a heavy user's rows: 47 ms for 10,000 at 1M sessions).
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+Table+` WHERE username = $1),
	(SELECT count(*) FROM `+Table+` WHERE username = $1 AND purged_at IS NOT NULL)`, username).
		Scan(&seen, &purged)
	return seen, purged, dbErr("user counts", err)
}
