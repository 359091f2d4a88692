package history

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

func TestOriginOf(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		by   string
		info *string
		want Origin
	}{
		{"alice", nil, FromConsole},
		{"oidc:alice@example.com", nil, FromConsole},
		{"token:deploy", s("token deploy"), FromConsole},
		{"cli:ops", s("cli ops: restore test"), FromCLI},
		{"", s("cli ops"), FromCLI},
		{"", s("console alice: ticket 42"), FromConsole},
		{"", s("policy max-per-user"), FromConsole},
		{"", nil, FromOther},
		{"", s(""), FromOther},
		{"", s(`{"source":"db-console"}`), FromOther},
		{"", s("clipboard"), FromOther},
	} {
		if got := OriginOf(c.by, c.info); got != c.want {
			t.Errorf("OriginOf(%q, %v) = %s, want %s", c.by, c.info, got, c.want)
		}
	}
}

// insertWith puts a session with an "auditInfo" straight into the live table (times relative
// to now).
func (e *env) insertWith(t testing.TB, user, auditInfo string, created, expires time.Duration, revoked *time.Duration) int64 {
	t.Helper()
	id := e.insert(t, user, created, expires, revoked)
	if auditInfo != "" {
		e.exec(t, `UPDATE `+e.live.Table()+` SET "auditInfo" = $2 WHERE id = $1`, id, auditInfo)
	}
	return id
}

// rollupRows reads the rollup table, or what the rollups of the history as it is should be
// (the backfill's own query), without hours that are all zero.
func (e *env) rollupRows(t testing.TB, fromHistory bool) map[time.Time][5]int64 {
	t.Helper()
	sql := `SELECT hour, created_console, created_cli, created_other, revoked, ended FROM ` + RollupTable
	if fromHistory {
		m := rollupMigrations(pgdb.Postgres)[1].SQL
		sql = m[len(`DELETE FROM `+RollupTable+` WHERE true;
INSERT INTO `+RollupTable+` (hour, created_console, created_cli, created_other, revoked, ended)
`):]
	}
	rows, err := e.direct.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out := map[time.Time][5]int64{}
	var h time.Time
	var v [5]int64
	if _, err := pgx.ForEachRow(rows, []any{&h, &v[0], &v[1], &v[2], &v[3], &v[4]}, func() error {
		if v != ([5]int64{}) {
			out[h.UTC()] = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRollups compares the rollups the sync kept with the history they summarise, and the
// buckets' active counts with a count of the history at each bucket's start.
func (e *env) checkRollups(t testing.TB, step time.Duration, span time.Duration) []Bucket {
	t.Helper()
	kept, want := e.rollupRows(t, false), e.rollupRows(t, true)
	if !reflect.DeepEqual(kept, want) {
		t.Errorf("rollups kept by the sync\n%v\ndiffer from the history's\n%v", kept, want)
	}
	now := time.Now().UTC()
	bs, err := e.h.Buckets(context.Background(), now.Add(-span), now, step)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		n := e.count(t, `SELECT count(*) FROM `+Table+` WHERE "createdAt" < $1 AND ended_at >= $1`, b.Start)
		if b.ActiveAtStart != n {
			t.Errorf("bucket %s: %d active at its start, the history says %d", b.Start, b.ActiveAtStart, n)
		}
		c := e.count(t, `SELECT count(*) FROM `+Table+` WHERE "createdAt" >= $1 AND "createdAt" < $2`, b.Start, b.Start.Add(step))
		if b.CreatedTotal() != c {
			t.Errorf("bucket %s: %d created, the history says %d", b.Start, b.CreatedTotal(), c)
		}
	}
	return bs
}

// The sync keeps the hourly rollups equal to the history: sessions created by origin, revoked
// and ended, moved when a session is revoked after it was recorded; the buckets' active
// counts agree with a count of the history at every bucket's start.
func TestRollupsFollowTheHistory(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u, v := e.user(t), e.user(t)
		e.insertWith(t, u, "console alice: ticket 42", -5*time.Hour, 3*time.Hour, nil)
		e.insertWith(t, u, "cli ops: restore", -5*time.Hour, -time.Hour, nil)
		e.insertWith(t, v, "", -3*time.Hour, 24*time.Hour, dur(-2*time.Hour))
		late := e.insertWith(t, v, "", -2*time.Hour, 48*time.Hour, nil)
		is, err := e.live.Issue(ctx, v, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.direct.Exec(ctx, `INSERT INTO console.audit_log (admin, action, target, session_id)
			VALUES ('cli:ops', 'issue', $1, $2)`, v, is.ID); err != nil {
			t.Fatal(err)
		}
		e.sync(t)
		bs := e.checkRollups(t, time.Hour, 24*time.Hour)
		var created [numOrigins]int64
		var revoked int64
		for _, b := range bs {
			for o, n := range b.Created {
				created[o] += n
			}
			revoked += b.Revoked
		}
		if created != [numOrigins]int64{1, 2, 2} || revoked != 1 {
			t.Errorf("24h: created by origin %v (want console 1, cli 2, other 2), revoked %d (want 1)", created, revoked)
		}
		if _, err := e.live.RevokeSession(ctx, late); err != nil {
			t.Fatal(err)
		}
		e.sync(t)
		bs = e.checkRollups(t, time.Hour, 24*time.Hour)
		if last := bs[len(bs)-1]; last.Revoked != 1 {
			t.Errorf("this hour's bucket %+v, want the revocation in it", last)
		}
		e.checkRollups(t, 24*time.Hour, 7*24*time.Hour)
	})
}

// The rollups of a history recorded before they existed come from the migration's backfill,
// the same as the sync would have kept.
func TestRollupsBackfill(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	for i := range 50 {
		e.insertWith(t, u, []string{"", "cli ops", "console a"}[i%3], -time.Duration(i)*37*time.Minute,
			time.Duration(i%7-3)*time.Hour, map[bool]*time.Duration{true: dur(-time.Duration(i) * 11 * time.Minute)}[i%4 == 0])
	}
	e.sync(t)
	kept := e.rollupRows(t, false)
	if len(kept) == 0 {
		t.Fatal("no rollups")
	}
	e.exec(t, `DELETE FROM `+RollupTable+` WHERE true`)
	e.exec(t, `DELETE FROM console.schema_migrations WHERE component = 'history-rollups' AND version = 2`)
	if _, err := Open(ctx, e.pool, Options{Live: e.live}); err != nil {
		t.Fatal(err)
	}
	if got := e.rollupRows(t, false); !reflect.DeepEqual(got, kept) {
		t.Errorf("backfilled rollups\n%v\nwant\n%v", got, kept)
	}
}

// A sync and a purge writing rollups at once add up (their upserts are commutative and lock
// hours in order).
func TestRollupsConcurrentWriters(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	for i := range 300 {
		e.insertWith(t, u, "", -time.Duration(i)*time.Minute-3*time.Hour, -time.Duration(i)*time.Minute-2*time.Hour, nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, err := e.h.Sync(ctx, e.tx); errs <- err }()
	go func() { defer wg.Done(); _, err := e.h.Purge(ctx, e.tx, time.Hour); errs <- err }()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.sync(t)
	e.checkRollups(t, time.Hour, 6*time.Hour)
}

// OnFresh hears of the sessions the sync records for the first time that are fresh, by
// origin, not of the old ones a first pass finds.
func TestOnFresh(t *testing.T) {
	e := newEnv(t, "postgres")
	var mu sync.Mutex
	heard := map[Origin]int64{}
	e.h.OnFresh(func(o Origin, n int64) { mu.Lock(); heard[o] += n; mu.Unlock() })
	u := e.user(t)
	e.insertWith(t, u, "", -time.Hour, time.Hour, nil)
	e.insertWith(t, u, "cli ops", -time.Minute, time.Hour, nil)
	e.insertWith(t, u, "", -time.Minute, time.Hour, nil)
	e.insertWith(t, u, "console a", -time.Minute, time.Hour, nil)
	e.sync(t)
	e.sync(t)
	if want := map[Origin]int64{FromCLI: 1, FromOther: 1, FromConsole: 1}; !reflect.DeepEqual(heard, want) {
		t.Errorf("heard %v, want %v", heard, want)
	}
}

// The top users are counted from the history's active sessions, most first, and read back with
// when they were counted.
func TestTopUsers(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if top, at, err := e.h.TopUsers(ctx); err != nil || len(top) != 0 || !at.IsZero() {
			t.Fatalf("before a count: %v %v %v", top, at, err)
		}
		users := []string{e.user(t), e.user(t), e.user(t)}
		for i, u := range users {
			for range 3 - i {
				e.insert(t, u, -time.Minute, time.Hour, nil)
			}
			e.insert(t, u, -2*time.Hour, -time.Hour, nil)            // expired
			e.insert(t, u, -2*time.Hour, time.Hour, dur(-time.Hour)) // revoked
		}
		e.sync(t)
		got, err := e.h.RefreshTopUsers(ctx, e.tx, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []UserCount{{users[0], 3}, {users[1], 2}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("refresh: %v, want %v", got, want)
		}
		top, at, err := e.h.TopUsers(ctx)
		if err != nil || !reflect.DeepEqual(top, want) || time.Since(at) > time.Minute {
			t.Errorf("TopUsers: %v at %v (%v), want %v now", top, at, err, want)
		}
		e.exec(t, `UPDATE `+Table+` SET purged_at = now() WHERE true`)
		if got, err := e.h.RefreshTopUsers(ctx, e.tx, 2); err != nil || len(got) != 0 {
			t.Errorf("after every session left: %v %v", got, err)
		}
		if top, at, _ := e.h.TopUsers(ctx); len(top) != 0 || at.IsZero() {
			t.Errorf("empty count: %v at %v", top, at)
		}
	})
}
