package sessionstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// DefaultMaxBulk bounds how many sessions one bulk revocation takes on (MatchingIDs): their
// IDs are held in memory while it runs, eight bytes each.
const DefaultMaxBulk = 1_000_000

// ErrTooMany: more sessions match a bulk action than it takes on; the error says how to narrow it.
var ErrTooMany = fmt.Errorf("%w: too many sessions", ErrInvalidInput)

// MatchingIDs returns the IDs of the sessions that match f and are not revoked, in ascending
// order: what a bulk revocation of f acts on. With f.At set, the sessions that matched at that
// moment (see Filter.At). More than max of them is ErrTooMany. It streams the rows as Each
// does (and reads all of system.web_sessions where Each does).
func (s *Store) MatchingIDs(ctx context.Context, f Filter, max int) ([]int64, error) {
	if f.From != nil {
		return nil, fmt.Errorf("%w: only live sessions can be revoked", ErrInvalidInput)
	}
	f.Sort, f.Desc = SortID, false
	var ids []int64
	err := s.Each(ctx, f, func(sess Session) error {
		if sess.RevokedAt != nil {
			return nil
		}
		if len(ids) == max {
			return fmt.Errorf("%w: more than %d sessions match; narrow the filter", ErrTooMany, max)
		}
		ids = append(ids, sess.ID)
		return nil
	})
	return ids, err
}

// BulkRevoked is what one RevokeIDs statement changed.
type BulkRevoked struct {
	// Revoked is how many sessions it revoked; Active how many of those were active.
	Revoked, Active int64
	// Users is how many sessions it revoked per username.
	Users map[string]int64
}

// maxAdjustUsers: a batch that revoked sessions of more users than this invalidates the count
// cache instead of adjusting it user by user.
const maxAdjustUsers = 16

// RevokeIDs revokes, at the transaction's time, those of ids that are not revoked yet and still
// match f (judged at f.At when set, else now; f's order, paging and limit are ignored), and
// says how many it revoked. The IDs come from MatchingIDs, one batch at a time: a session that
// stopped matching meanwhile (revoked by someone else, used again, expired) is left as it is.
// Every statement finds its rows by primary key, so none reads the whole table.
func (t *Tx) RevokeIDs(ctx context.Context, ids []int64, f Filter) (BulkRevoked, error) {
	out := BulkRevoked{Users: map[string]int64{}}
	if len(ids) == 0 {
		return out, nil
	}
	if f.From != nil {
		return out, fmt.Errorf("%w: only live sessions can be revoked", ErrInvalidInput)
	}
	s := t.s
	var clock time.Time
	if err := t.tx.QueryRow(ctx, `SELECT now() AT TIME ZONE 'UTC'`).Scan(&clock); err != nil {
		return out, s.dbErr("revoke sessions", err)
	}
	clock = clock.UTC()
	args := []any{ids, clock}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where, err := s.where(f, f.judgedAt(clock), arg)
	if err != nil {
		return out, err
	}
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	rows, err := t.tx.Query(ctx, `WITH r AS (
			UPDATE `+s.table+` SET "revokedAt" = $2
			WHERE id = ANY($1::INT8[]) AND "revokedAt" IS NULL`+cond+`
			RETURNING username, "expiresAt" > $2 AS active)
		SELECT username, count(*), count(*) FILTER (WHERE active) FROM r GROUP BY username`, args...)
	if err != nil {
		return out, s.dbErr("revoke sessions", err)
	}
	type perUser struct {
		name            string
		revoked, active int64
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (perUser, error) {
		var u perUser
		return u, r.Scan(&u.name, &u.revoked, &u.active)
	})
	if err != nil {
		return out, s.dbErr("revoke sessions", err)
	}
	for _, u := range users {
		out.Revoked += u.revoked
		out.Active += u.active
		out.Users[u.name] = u.revoked
	}
	if out.Revoked == 0 {
		return out, nil
	}
	t.after = append(t.after, func() {
		if len(users) > maxAdjustUsers {
			s.counts.invalidate()
			return
		}
		for _, u := range users {
			s.counts.adjust(u.name, countDelta{active: -u.active, expired: -(u.revoked - u.active), revoked: u.revoked})
		}
	})
	return out, nil
}

// CountMatching counts the sessions that match f (judged at f.At when set, else now; order,
// paging and limit are ignored), exactly and at once: a bulk action's confirmation shows it,
// and the policy's counts cache it. A filter that needs a username predicate reads all of
// system.web_sessions on CockroachDB (see FullScanError); one on the active sessions reads a
// range of the expiresAt index.
func (s *Store) CountMatching(ctx context.Context, f Filter) (int64, error) {
	now := f.judgedAt(s.now().UTC())
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where, err := s.where(f, now, arg)
	if err != nil {
		return 0, err
	}
	table := s.table
	if f.From != nil {
		table = f.From.Table
	}
	sql := `SELECT count(*) FROM ` + table
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	read := func(q pgdb.DBTX) error {
		return pgdb.Retry(ctx, func() error { return q.QueryRow(ctx, sql, args...).Scan(&n) })
	}
	// As Each: a username filter, or no status, reads every row; a status alone has an index.
	if f.From == nil && (f.Username != "" || f.Status == StatusAll || f.Status == "") {
		err = s.scanning(ctx, scanCounts, read)
	} else if f.From != nil {
		err = pgdb.WithFullScan(ctx, s.pool, s.server, read)
	} else {
		err = read(s.pool)
	}
	if err != nil {
		return 0, s.listErr(err)
	}
	return n, nil
}

// CountsMaxAge is how long this store reuses its status counts (Options.CountsMaxAge): caches
// of other numbers about the table follow the same rule.
func (s *Store) CountsMaxAge() time.Duration { return s.counts.maxAge }
