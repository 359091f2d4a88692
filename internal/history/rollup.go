package history

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Origin is where a session came from, as the overview splits the sessions created.
type Origin uint8

// The origins. The audit log names who issued a session the console issued (copied into the
// history's issued_by); for the others, the "auditInfo" the console writes says it; a session
// with neither came from elsewhere.
const (
	// FromConsole: issued by `console serve`: the web console or the JSON API (a password or
	// SSO admin, an API token).
	FromConsole Origin = iota
	// FromCLI: issued by the console's command line (`console auth-session login`).
	FromCLI
	// FromOther: anything else: the DB Console's sign-ins, `cockroach auth-session login`, SQL.
	FromOther
	numOrigins
)

// Origins lists every origin, in the order the overview shows them.
var Origins = [numOrigins]Origin{FromConsole, FromCLI, FromOther}

// String is the origin's name in URLs and metrics: console, cli, other.
func (o Origin) String() string {
	switch o {
	case FromConsole:
		return "console"
	case FromCLI:
		return "cli"
	}
	return "other"
}

// OriginOf tells where a session came from: from who the audit log says issued it (issuedBy:
// "cli:<account>" is the command line, any other name an admin or token of the console), else
// from its "auditInfo" as the console writes it ("cli <account>: ...", "console <admin>: ...",
// "token <name>", "oidc <subject>", "policy ...").
func OriginOf(issuedBy string, auditInfo *string) Origin {
	switch {
	case strings.HasPrefix(issuedBy, "cli:"):
		return FromCLI
	case issuedBy != "":
		return FromConsole
	case auditInfo == nil:
		return FromOther
	case strings.HasPrefix(*auditInfo, "cli "):
		return FromCLI
	}
	for _, p := range []string{"console ", "token ", "oidc ", "policy "} {
		if strings.HasPrefix(*auditInfo, p) {
			return FromConsole
		}
	}
	return FromOther
}

// originSQL is OriginOf in SQL, over the history's columns (for the rollups' backfill).
const originSQL = `CASE WHEN issued_by LIKE 'cli:%' THEN 1 WHEN issued_by <> '' THEN 0
	WHEN "auditInfo" LIKE 'cli %' THEN 1
	WHEN "auditInfo" LIKE 'console %' OR "auditInfo" LIKE 'token %' OR "auditInfo" LIKE 'oidc %' OR "auditInfo" LIKE 'policy %' THEN 0
	ELSE 2 END`

// RollupTable keeps, per UTC hour, the sessions the history recorded as created (by origin),
// revoked and ended (expired or revoked) in that hour: the overview's charts. The sync writes
// it in the transactions that change the history, so it always agrees with the history;
// hours in the future hold the expiries to come, from which the active sessions at any past
// hour follow without reading the history (see Buckets).
const RollupTable = "console.session_hourly"

// rollupMigrations create the hourly rollups and fill them from the history recorded before
// (a one-time read of the whole history: no process writes rollups before this step ran).
func rollupMigrations(server pgdb.Flavor) []pgdb.Migration {
	scanOn, scanOff := "", ""
	if server == pgdb.Cockroach {
		// The backfill reads the whole history once; clusters that refuse full scans let
		// this statement through.
		scanOn, scanOff = "SET disallow_full_table_scans = off;\n", ";\nRESET disallow_full_table_scans"
	}
	return []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS ` + RollupTable + ` (
	hour TIMESTAMP PRIMARY KEY,
	created_console INT8 NOT NULL DEFAULT 0,
	created_cli INT8 NOT NULL DEFAULT 0,
	created_other INT8 NOT NULL DEFAULT 0,
	revoked INT8 NOT NULL DEFAULT 0,
	ended INT8 NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS console.history_top_users (
	rank INT8 PRIMARY KEY,
	username TEXT NOT NULL,
	active INT8 NOT NULL,
	counted_at TIMESTAMPTZ NOT NULL
);
`}, {Version: 2, SQL: scanOn + `DELETE FROM ` + RollupTable + ` WHERE true;
INSERT INTO ` + RollupTable + ` (hour, created_console, created_cli, created_other, revoked, ended)
SELECT hour, sum(cc), sum(cl), sum(co), sum(rv), sum(en) FROM (
	SELECT date_trunc('hour', "createdAt") AS hour,
		CASE WHEN o = 0 THEN 1 ELSE 0 END AS cc, CASE WHEN o = 1 THEN 1 ELSE 0 END AS cl,
		CASE WHEN o = 2 THEN 1 ELSE 0 END AS co, 0 AS rv, 0 AS en
	FROM (SELECT "createdAt", ` + originSQL + ` AS o FROM ` + Table + `) AS c
	UNION ALL
	SELECT date_trunc('hour', "revokedAt"), 0, 0, 0, 1, 0 FROM ` + Table + ` WHERE "revokedAt" IS NOT NULL
	UNION ALL
	SELECT date_trunc('hour', ended_at), 0, 0, 0, 0, 1 FROM ` + Table + `
) AS t GROUP BY hour` + scanOff}}
}

// hour is t's UTC hour.
func hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// hourDelta is what one transaction adds to one hour of the rollups.
type hourDelta struct {
	created        [numOrigins]int64
	revoked, ended int64
}

// rollup collects the changes of one transaction, per hour.
type rollup map[time.Time]*hourDelta

func (r rollup) at(t time.Time) *hourDelta {
	h := hour(t)
	d := r[h]
	if d == nil {
		d = &hourDelta{}
		r[h] = d
	}
	return d
}

// added counts a session the history records for the first time.
func (r rollup) added(created, ended time.Time, revoked *time.Time, o Origin) {
	r.at(created).created[o]++
	r.at(ended).ended++
	if revoked != nil {
		r.at(*revoked).revoked++
	}
}

// changed moves a known session's end and revocation from their old hours to the new ones.
func (r rollup) changed(oldEnded, newEnded time.Time, oldRevoked, newRevoked *time.Time) {
	if !oldEnded.Equal(newEnded) {
		r.at(oldEnded).ended--
		r.at(newEnded).ended++
	}
	if oldRevoked != nil && (newRevoked == nil || !oldRevoked.Equal(*newRevoked)) {
		r.at(*oldRevoked).revoked--
	}
	if newRevoked != nil && (oldRevoked == nil || !oldRevoked.Equal(*newRevoked)) {
		r.at(*newRevoked).revoked++
	}
}

// write adds the changes to the rollup table in tx, hour by hour in order (so that concurrent
// writers, the sync and the purge, lock the rows in the same order).
func (r rollup) write(ctx context.Context, tx pgx.Tx) error {
	if len(r) == 0 {
		return nil
	}
	hours := make([]time.Time, 0, len(r))
	for h, d := range r {
		if *d != (hourDelta{}) {
			hours = append(hours, h)
		}
	}
	if len(hours) == 0 {
		return nil
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i].Before(hours[j]) })
	n := len(hours)
	cc, cl, co, rv, en := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, h := range hours {
		d := r[h]
		cc[i], cl[i], co[i], rv[i], en[i] = d.created[FromConsole], d.created[FromCLI], d.created[FromOther], d.revoked, d.ended
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+RollupTable+` AS s (hour, created_console, created_cli, created_other, revoked, ended)
		SELECT v.hour, v.cc, v.cl, v.co, v.rv, v.en
		FROM unnest($1::TIMESTAMP[], $2::INT8[], $3::INT8[], $4::INT8[], $5::INT8[], $6::INT8[]) AS v(hour, cc, cl, co, rv, en)
		ON CONFLICT (hour) DO UPDATE SET created_console = s.created_console + excluded.created_console,
			created_cli = s.created_cli + excluded.created_cli, created_other = s.created_other + excluded.created_other,
			revoked = s.revoked + excluded.revoked, ended = s.ended + excluded.ended`, hours, cc, cl, co, rv, en)
	if err != nil {
		return fmt.Errorf("rollups: %w", err)
	}
	return nil
}

// Bucket is one hour or one day of the overview's charts.
type Bucket struct {
	// Start is the bucket's first instant (UTC); it lasts one step.
	Start time.Time
	// Created counts the sessions created in the bucket, by Origin.
	Created [numOrigins]int64
	// Revoked and Ended count the sessions revoked, and ended (expired or revoked), in it.
	Revoked, Ended int64
	// ActiveAtStart is how many sessions were active at Start: created before it, ended at or
	// after it.
	ActiveAtStart int64
}

// CreatedTotal is the sessions created in the bucket, from all origins.
func (b Bucket) CreatedTotal() int64 {
	var n int64
	for _, c := range b.Created {
		n += c
	}
	return n
}

// Buckets returns the buckets of step (time.Hour, or 24 hours: UTC days) from `from` until
// `to` (from is truncated to the step), from the rollups: at most one row per hour of the range
// plus one sum over the hours after it. A session is active at an instant T when it was created
// before T and ends at or after T, so the sessions active at a bucket's start are those ending
// at or after it less those created at or after it; both are sums over the hours from there on.
func (s *Store) Buckets(ctx context.Context, from, to time.Time, step time.Duration) ([]Bucket, error) {
	unit := "hour"
	switch step {
	case time.Hour:
	case 24 * time.Hour:
		unit = "day"
	default:
		return nil, fmt.Errorf("history: buckets of %s: want an hour or a day", step)
	}
	from, to = from.UTC().Truncate(step), to.UTC()
	var out []Bucket
	for t := from; t.Before(to); t = t.Add(step) {
		out = append(out, Bucket{Start: t})
	}
	if len(out) == 0 {
		return nil, nil
	}
	end := out[len(out)-1].Start.Add(step)
	rows, err := s.pool.Query(ctx, `SELECT date_trunc($3, hour), sum(created_console), sum(created_cli), sum(created_other), sum(revoked), sum(ended)
		FROM `+RollupTable+` WHERE hour >= $1 AND hour < $2 GROUP BY 1
		UNION ALL
		SELECT NULL, sum(created_console), sum(created_cli), sum(created_other), sum(revoked), sum(ended)
		FROM `+RollupTable+` WHERE hour >= $2`, from, end, unit)
	if err != nil {
		return nil, dbErr("buckets", err)
	}
	var at *time.Time
	var cc, cl, co, rv, en *int64
	var tailCreated, tailEnded int64
	byStart := make(map[time.Time]*Bucket, len(out))
	for i := range out {
		byStart[out[i].Start] = &out[i]
	}
	v := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	if _, err := pgx.ForEachRow(rows, []any{&at, &cc, &cl, &co, &rv, &en}, func() error {
		if at == nil {
			tailCreated, tailEnded = v(cc)+v(cl)+v(co), v(en)
			return nil
		}
		if b := byStart[at.UTC()]; b != nil {
			b.Created = [numOrigins]int64{v(cc), v(cl), v(co)}
			b.Revoked, b.Ended = v(rv), v(en)
		}
		return nil
	}); err != nil {
		return nil, dbErr("buckets", err)
	}
	created, ended := tailCreated, tailEnded
	for i := len(out) - 1; i >= 0; i-- {
		created += out[i].CreatedTotal()
		ended += out[i].Ended
		out[i].ActiveAtStart = ended - created
	}
	return out, nil
}

// UserCount is one user's number of active sessions.
type UserCount struct {
	Username string
	Active   int64
}

// RefreshTopUsers counts the active sessions per user in the history (through its index of the
// sessions still in the live table by end) and keeps the n users with the most, through tx.
// It is the overview job's pass: a read of every active session, once per period for every
// replica's overview instead of once per view.
func (s *Store) RefreshTopUsers(ctx context.Context, tx Txer, n int) ([]UserCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT username, count(*) FROM `+Table+`
		WHERE purged_at IS NULL AND ended_at > now() AT TIME ZONE 'UTC'
		GROUP BY username ORDER BY count(*) DESC, username LIMIT $1`, n)
	if err != nil {
		return nil, dbErr("top users", err)
	}
	top, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserCount, error) {
		var u UserCount
		return u, r.Scan(&u.Username, &u.Active)
	})
	if err != nil {
		return nil, dbErr("top users", err)
	}
	err = tx.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console.history_top_users WHERE true`); err != nil {
			return err
		}
		ranks, names, counts := make([]int64, len(top)), make([]string, len(top)), make([]int64, len(top))
		for i, u := range top {
			ranks[i], names[i], counts[i] = int64(i+1), u.Username, u.Active
		}
		// A row with rank 0 says when it was counted, even when nobody holds a session.
		_, err = tx.Exec(ctx, `INSERT INTO console.history_top_users (rank, username, active, counted_at)
			SELECT 0, '', 0, now() UNION ALL
			SELECT v.rank, v.username, v.active, now() FROM unnest($1::INT8[], $2::TEXT[], $3::INT8[]) AS v(rank, username, active)`,
			ranks, names, counts)
		return err
	})
	if err != nil {
		return nil, dbErr("top users", err)
	}
	return top, nil
}

// TopUsers returns the users with the most active sessions as the overview job last counted
// them, most first, and when it counted (zero: never).
func (s *Store) TopUsers(ctx context.Context) ([]UserCount, time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT rank, username, active, counted_at FROM console.history_top_users ORDER BY rank`)
	if err != nil {
		return nil, time.Time{}, dbErr("top users", err)
	}
	var out []UserCount
	var at time.Time
	var rank int64
	var u UserCount
	var counted time.Time
	if _, err := pgx.ForEachRow(rows, []any{&rank, &u.Username, &u.Active, &counted}, func() error {
		if rank == 0 {
			at = counted.UTC()
			return nil
		}
		out = append(out, u)
		return nil
	}); err != nil {
		return nil, time.Time{}, dbErr("top users", err)
	}
	return out, at, nil
}
