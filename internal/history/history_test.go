package history

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a history over a fresh database: on PostgreSQL, on the CockroachDB v23.1 fixture
// (the CockroachDB dialect on a server that says it is PostgreSQL), or on that fixture behind
// the CockroachDB v26.1 personality proxy (the server says CockroachDB: reads of the live table
// carry AS OF SYSTEM TIME, which the proxy records and removes; full scans of
// system.web_sessions are refused).
type env struct {
	dialect string
	pool    *pgxpool.Pool // the console's
	direct  *pgxpool.Pool // the test's own statements, straight to the database
	proxy   *pgtest.Proxy // cockroach-proxy only
	live    *sessionstore.Store
	h       *Store
	tx      Txer
}

var dialects = []string{"postgres", "cockroach", "cockroach-proxy"}

func eachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, d))
		})
	}
}

func newEnv(t testing.TB, dialect string) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	direct, err := pgdb.Connect(ctx, db, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	e := &env{dialect: dialect, direct: direct, pool: direct}
	opts := sessionstore.Options{}
	if dialect != "postgres" {
		sql, err := os.ReadFile("../../sessionstore/testdata/crdb_v23.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Exec(ctx, string(sql)); err != nil {
			t.Fatal(err)
		}
		opts.Flavor = pgdb.Cockroach
	}
	if dialect == "cockroach-proxy" {
		e.proxy = pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
		if e.pool, err = pgdb.Connect(ctx, e.proxy.URL(db), pgdb.Config{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pool.Close)
	}
	if e.live, err = sessionstore.Open(ctx, e.pool, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.live.Close)
	server := e.live.Server()
	if _, err := audit.Open(ctx, e.pool, server); err != nil {
		t.Fatal(err)
	}
	if e.h, err = Open(ctx, e.pool, Options{Live: e.live, Server: server}); err != nil {
		t.Fatal(err)
	}
	e.tx = PlainTx{Pool: e.pool, Flavor: server}
	return e
}

func (e *env) exec(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	tag, err := e.direct.Exec(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func (e *env) count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.direct.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

var userSeq atomic.Int64

// user makes a user who can log in and returns its name.
func (e *env) user(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("hist_user_%d", userSeq.Add(1))
	if e.dialect == "postgres" {
		e.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
		t.Cleanup(func() { e.direct.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
	} else {
		e.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, false, $2)`, name, 1000+userSeq.Load())
	}
	return name
}

// insert puts a session straight into the live table, with the given times (relative to now),
// as the cluster or a script would, and returns its ID.
func (e *env) insert(t testing.TB, user string, created, expires time.Duration, revoked *time.Duration) int64 {
	t.Helper()
	var rev any
	if revoked != nil {
		rev = *revoked
	}
	sql := `INSERT INTO ` + e.live.Table() + ` ("hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt")
		SELECT '\x00', $1, n + $2::INTERVAL, n + $3::INTERVAL, n + $4::INTERVAL, n + $2::INTERVAL FROM (SELECT now() AT TIME ZONE 'UTC' AS n) t RETURNING id`
	if e.dialect != "postgres" {
		sql = `INSERT INTO system.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt", user_id)
		SELECT '\x00', $1, n + $2::INTERVAL, n + $3::INTERVAL, n + $4::INTERVAL, n + $2::INTERVAL, 1 FROM (SELECT now() AT TIME ZONE 'UTC' AS n) t RETURNING id`
	}
	var id int64
	if err := e.direct.QueryRow(context.Background(), sql, user, created, expires, rev).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func dur(d time.Duration) *time.Duration { return &d }

func (e *env) sync(t testing.TB) SyncResult {
	t.Helper()
	r, err := e.h.Sync(context.Background(), e.tx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return r
}

func (e *env) get(t testing.TB, id int64) Record {
	t.Helper()
	r, err := e.h.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return r
}

// The sync records new sessions, then revocations, and a pass with nothing new records
// nothing; sessions the console issued carry who issued them and why.
func TestSyncRecordsNewAndRevoked(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := e.user(t)
		a := e.insert(t, u, -time.Minute, time.Hour, nil)
		b := e.insert(t, u, -time.Minute, time.Hour, nil)
		is, err := e.live.Issue(ctx, u, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.direct.Exec(ctx, `INSERT INTO console.audit_log (admin, action, target, session_id, reason)
			VALUES ('alice', 'issue', $1, $2, 'ticket 42')`, u, is.ID); err != nil {
			t.Fatal(err)
		}
		if r := e.sync(t); r.New != 3 || r.Changed != 0 || r.Purged != 0 {
			t.Fatalf("first pass %+v, want 3 new", r)
		}
		rec := e.get(t, is.ID)
		if rec.IssuedBy != "alice" || rec.IssueReason != "ticket 42" || rec.Username != u || rec.Purged() {
			t.Errorf("issued session's history %+v", rec)
		}
		if e.dialect != "postgres" && (rec.UserID == nil || *rec.UserID == 0) {
			t.Errorf("user_id not kept: %+v", rec.UserID)
		}
		if r := e.sync(t); r != (SyncResult{}) {
			t.Errorf("pass with nothing new: %+v", r)
		}
		if _, err := e.live.RevokeSession(ctx, a); err != nil {
			t.Fatal(err)
		}
		if r := e.sync(t); r.New != 0 || r.Changed != 1 {
			t.Fatalf("after a revoke: %+v, want 1 changed", r)
		}
		if rec := e.get(t, a); rec.RevokedAt == nil || !rec.EndedAt.Equal(*rec.RevokedAt) {
			t.Errorf("revoked session's history %+v", rec)
		}
		if rec := e.get(t, b); rec.RevokedAt != nil || !rec.EndedAt.Equal(rec.ExpiresAt) {
			t.Errorf("untouched session's history %+v", rec)
		}
		if n := e.count(t, `SELECT created FROM console.history_daily WHERE day = (now() AT TIME ZONE 'UTC')::DATE`); n != 3 {
			t.Errorf("daily created %d, want 3", n)
		}
	})
}

// The first pass over an existing table records all of it, in batches, across passes if it
// must; sessions created long ago included.
func TestSyncBackfillsAnExistingTable(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		u := e.user(t)
		e.exec(t, `INSERT INTO `+e.live.Table()+` ("hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`+
			map[bool]string{true: `, user_id`, false: ``}[e.dialect != "postgres"]+`)
			SELECT '\x00', $1, n - i * INTERVAL '1 hour', n - i * INTERVAL '1 hour' + INTERVAL '30 minutes',
				CASE WHEN i % 3 = 0 THEN n - i * INTERVAL '1 hour' + INTERVAL '1 minute' END, n - i * INTERVAL '1 hour'`+
			map[bool]string{true: `, 1`, false: ``}[e.dialect != "postgres"]+`
			FROM generate_series(1, 1234) AS i, (SELECT now() AT TIME ZONE 'UTC' AS n) t`, u)
		r := e.sync(t)
		if r.New != 1234 {
			t.Fatalf("backfill %+v, want 1234 new", r)
		}
		if n := e.count(t, `SELECT count(*) FROM `+Table+` WHERE "revokedAt" IS NOT NULL`); n != 411 {
			t.Errorf("%d revoked in the history, want 411", n)
		}
		if r := e.sync(t); r != (SyncResult{}) {
			t.Errorf("second pass %+v", r)
		}
	})
}

// PostgreSQL: the purge deletes rows ended more than the TTL ago, never before the history
// recorded them as they are (it records those the sync has not, such as back-dated rows), and
// marks them purged in the same transaction.
func TestPurgeOnPostgres(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	expired := e.insert(t, u, -3*time.Hour, -2*time.Hour, nil)
	revoked := e.insert(t, u, -3*time.Hour, time.Hour, dur(-2*time.Hour))
	recent := e.insert(t, u, -time.Hour, -30*time.Minute, nil)
	active := e.insert(t, u, -time.Hour, time.Hour, nil)
	e.sync(t)
	unseen := e.insert(t, u, -3*time.Hour, -2*time.Hour, nil) // back-dated: the sync cannot see it
	e.exec(t, `UPDATE console.web_sessions SET "expiresAt" = "expiresAt" - INTERVAL '1 second' WHERE id = $1`, expired)
	n, err := e.h.Purge(ctx, e.tx, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v; want 3", n, err)
	}
	for id, want := range map[int64]bool{expired: false, revoked: false, recent: true, active: true, unseen: false} {
		if got := e.count(t, `SELECT count(*) FROM console.web_sessions WHERE id = $1`, id) == 1; got != want {
			t.Errorf("session %d in the live table: %v, want %v", id, got, want)
		}
		if !want {
			if rec := e.get(t, id); !rec.Purged() {
				t.Errorf("purged session %d not marked purged", id)
			}
		}
	}
	if rec := e.get(t, revoked); rec.RevokedAt == nil {
		t.Errorf("purged revoked session %+v", rec)
	}
	if rec, _ := e.h.Get(ctx, expired); !rec.ExpiresAt.Before(rec.CreatedAt.Add(time.Hour)) {
		t.Errorf("the history lacks the state the row was purged in: %+v", rec)
	}
	if n := e.count(t, `SELECT purged FROM console.history_daily WHERE day = (now() AT TIME ZONE 'UTC')::DATE`); n != 3 {
		t.Errorf("daily purged %d, want 3", n)
	}
	// The next sync finds nothing purged behind its back.
	if r := e.sync(t); r != (SyncResult{}) {
		t.Errorf("sync after the purge: %+v", r)
	}
	if n, err := e.h.Purge(ctx, e.tx, time.Hour); err != nil || n != 0 {
		t.Errorf("second purge: %d %v", n, err)
	}
}

// The purge on CockroachDB is the cluster's; the console refuses to delete there.
func TestPurgeRefusedOnCockroach(t *testing.T) {
	e := newEnv(t, "cockroach")
	if _, err := e.h.Purge(context.Background(), e.tx, time.Hour); err != ErrNotPostgres {
		t.Fatalf("Purge on the CockroachDB dialect: %v", err)
	}
}

// The cluster's purge (simulated by deleting rows) is noticed without scanning the table, and
// the purged sessions stay in the history with their last known state. A row that merely
// changed is not taken for purged.
func TestSyncNoticesThePurge(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		u := e.user(t)
		old1 := e.insert(t, u, -5*time.Hour, -3*time.Hour, nil)
		old2 := e.insert(t, u, -5*time.Hour, time.Hour, dur(-4*time.Hour))
		kept := e.insert(t, u, -2*time.Hour, -90*time.Minute, nil)
		extended := e.insert(t, u, -6*time.Hour, -5*time.Hour, nil)
		active := e.insert(t, u, -time.Hour, time.Hour, nil)
		e.sync(t)
		e.exec(t, `DELETE FROM `+e.live.Table()+` WHERE id = ANY($1)`, []int64{old1, old2})
		e.exec(t, `UPDATE `+e.live.Table()+` SET "expiresAt" = "expiresAt" + INTERVAL '10 hours' WHERE id = $1`, extended)
		r := e.sync(t)
		if r.Purged != 2 || r.Changed != 1 {
			t.Fatalf("sync after the purge: %+v, want 2 purged, 1 changed", r)
		}
		for _, id := range []int64{old1, old2} {
			rec := e.get(t, id)
			if !rec.Purged() {
				t.Errorf("session %d not marked purged", id)
			}
		}
		if rec := e.get(t, old2); rec.RevokedAt == nil {
			t.Errorf("purged revoked session lost its revocation: %+v", rec)
		}
		for _, id := range []int64{kept, extended, active} {
			if rec := e.get(t, id); rec.Purged() {
				t.Errorf("session %d marked purged but still in the table", id)
			}
		}
		if rec := e.get(t, extended); rec.ExpiresAt.Before(time.Now().UTC()) {
			t.Errorf("extended session's new expiry not recorded: %+v", rec)
		}
		// An empty live table: everything left.
		e.exec(t, `DELETE FROM `+e.live.Table())
		if r := e.sync(t); r.Purged != 3 {
			t.Errorf("sync over an empty table: %+v, want the last 3 purged", r)
		}
		if r := e.sync(t); r != (SyncResult{}) {
			t.Errorf("idle pass %+v", r)
		}
	})
}

// History is kept Retention after the session ended and left the live table, then deleted
// with its activity; history of a session still in the live table stays.
func TestExpireRetention(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	gone := e.insert(t, u, -500*24*time.Hour, -499*24*time.Hour, nil)
	stays := e.insert(t, u, -500*24*time.Hour, -499*24*time.Hour, nil)
	fresh := e.insert(t, u, -2*time.Hour, -90*time.Minute, nil)
	e.sync(t)
	e.exec(t, `DELETE FROM console.web_sessions WHERE id = ANY($1)`, []int64{gone, fresh})
	e.sync(t)
	e.exec(t, `UPDATE `+Table+` SET purged_at = purged_at - INTERVAL '498 days' WHERE id = $1`, gone)
	rec := e.h.NewRecorder()
	rec.Note(gone, time.Now(), "192.0.2.1", "curl/8", "", "")
	if err := rec.Flush(ctx, e.tx); err != nil {
		t.Fatal(err)
	}
	n, err := e.h.Expire(ctx, e.tx, DefaultRetention)
	if err != nil || n != 1 {
		t.Fatalf("Expire: %d, %v; want 1", n, err)
	}
	for id, want := range map[int64]int64{gone: 0, stays: 1, fresh: 1} {
		if got := e.count(t, `SELECT count(*) FROM `+Table+` WHERE id = $1`, id); got != want {
			t.Errorf("history of %d: %d rows, want %d", id, got, want)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM console.session_activity WHERE session_id = $1`, gone); n != 0 {
		t.Errorf("activity of an expired history kept")
	}
}

// Uses noted by two processes add up exactly; times take the least and the greatest; the
// client table keeps (address, user agent) pairs with counts; the query string is dropped and
// junk bytes cleaned; PostgreSQL's lastUsedAt gets the time of the use, CockroachDB's table is
// never written.
func TestActivityFlush(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := e.user(t)
		id := e.insert(t, u, -2*time.Hour, time.Hour, nil)
		e.sync(t)
		before := e.get(t, id)
		r1, r2 := e.h.NewRecorder(), e.h.NewRecorder()
		base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Microsecond)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := r1
				if i%2 == 1 {
					r = r2
				}
				r.Note(id, base.Add(time.Duration(i)*time.Second), fmt.Sprintf("192.0.2.%d", i%3), "Mozilla/5.0", "app.example", "/x?token=secret")
			}()
		}
		wg.Wait()
		r1.Note(id, base.Add(-time.Hour), "198.51.100.7", "bad\xffagent\x00", "", "")
		for _, r := range []*Recorder{r1, r2} {
			if err := r.Flush(ctx, e.tx); err != nil {
				t.Fatal(err)
			}
		}
		a, ok, err := e.h.Activity(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Activity: %v %v", ok, err)
		}
		if a.Uses != 101 || !a.FirstUsedAt.Equal(base.Add(-time.Hour)) || !a.LastUsedAt.Equal(base.Add(99*time.Second)) {
			t.Errorf("activity %+v", a)
		}
		if a.LastAddr != "192.0.2.0" || a.LastHost != "app.example" || a.LastPath != "/x" || a.LastUserAgent != "Mozilla/5.0" {
			t.Errorf("last client %+v", a)
		}
		clients, err := e.h.Clients(ctx, id, 10)
		if err != nil || len(clients) != 4 {
			t.Fatalf("clients %+v, %v", clients, err)
		}
		var total int64
		for _, c := range clients {
			total += c.Uses
			if c.Addr == "198.51.100.7" && c.UserAgent != "bad\uFFFDagent\uFFFD" {
				t.Errorf("junk user agent stored as %q", c.UserAgent)
			}
		}
		if total != 101 {
			t.Errorf("client uses add up to %d", total)
		}
		// lastUsedAt columns hold the time of a use within lastUsedGrain of the last one (the
		// second flush's later use is less than a minute after the first's).
		last := base.Add(99 * time.Second)
		near := func(t time.Time) bool { return !t.After(last) && t.After(last.Add(-lastUsedGrain)) }
		rec := e.get(t, id)
		if !near(rec.LastUsedAt) {
			t.Errorf("history lastUsedAt %s, want a use near %s", rec.LastUsedAt, last)
		}
		var liveUsed time.Time
		if err := e.direct.QueryRow(ctx, `SELECT "lastUsedAt" FROM `+e.live.Table()+` WHERE id = $1`, id).Scan(&liveUsed); err != nil {
			t.Fatal(err)
		}
		if e.dialect == "postgres" && (!near(liveUsed) || liveUsed.Second() != base.Add(98*time.Second).Second()) {
			t.Errorf("live lastUsedAt %s, want the time of a use (not of the write) near %s", liveUsed, last)
		}
		if e.dialect != "postgres" && !liveUsed.Equal(before.LastUsedAt) {
			t.Errorf("system.web_sessions written from verify: lastUsedAt %s, was %s", liveUsed, before.LastUsedAt)
		}
		uses, _ := e.h.LastUses(ctx, []int64{id, 12345})
		if len(uses) != 1 || !uses[id].Equal(base.Add(99*time.Second)) {
			t.Errorf("LastUses %v", uses)
		}
	})
}

// A session used from more clients than MaxClientsPerSession keeps the first ones' rows but
// counts every use.
func TestActivityClientCap(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	id := e.insert(t, u, -time.Hour, time.Hour, nil)
	r := e.h.NewRecorder()
	for batch := range 3 {
		for i := range MaxClientsPerSession / 2 {
			r.Note(id, time.Now(), fmt.Sprintf("10.%d.0.%d", batch, i), "ua", "", "")
		}
		if err := r.Flush(ctx, e.tx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM console.session_clients WHERE session_id = $1`, id); n != MaxClientsPerSession {
		t.Errorf("%d client rows, want the cap %d", n, MaxClientsPerSession)
	}
	if a, _, _ := e.h.Activity(ctx, id); a.Uses != int64(3*MaxClientsPerSession/2) {
		t.Errorf("uses %d", a.Uses)
	}
}

// A failed write keeps the uses for the next flush.
func TestActivityFlushFailureKeepsUses(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	r := e.h.NewRecorder()
	r.Note(7, time.Now(), "192.0.2.1", "ua", "", "")
	failing := failTx{}
	if err := r.Flush(ctx, failing); err == nil {
		t.Fatal("flush through a failing transaction: no error")
	}
	if n, _ := r.Pending(); n != 1 {
		t.Fatalf("pending after a failed flush: %d", n)
	}
	if err := r.Flush(ctx, e.tx); err != nil {
		t.Fatal(err)
	}
	if a, ok, _ := e.h.Activity(ctx, 7); !ok || a.Uses != 1 {
		t.Errorf("activity after the retry: %+v %v", a, ok)
	}
}

type failTx struct{}

func (failTx) Tx(context.Context, func(pgx.Tx) error) error { return fmt.Errorf("database down") }

// History lists with the live table's filters and paging, purged rows marked.
func TestListHistory(t *testing.T) {
	e := newEnv(t, "cockroach")
	ctx := context.Background()
	u := e.user(t)
	var ids []int64
	for i := range 5 {
		ids = append(ids, e.insert(t, u, -time.Duration(10-i)*time.Hour, -time.Duration(9-i)*time.Hour, nil))
	}
	e.sync(t)
	e.exec(t, `DELETE FROM system.web_sessions WHERE id = ANY($1)`, ids[:2])
	e.sync(t)
	p, err := e.live.List(ctx, sessionstore.Filter{From: Source, Username: strings.ToUpper(u), Sort: sessionstore.SortCreated, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sessions) != 3 || p.Sessions[0].ID != ids[0] || p.Sessions[0].PurgedAt == nil || p.Sessions[2].PurgedAt != nil || p.Next == nil {
		t.Fatalf("first page %+v", p)
	}
	p, err = e.live.List(ctx, sessionstore.Filter{From: Source, Username: u, Sort: sessionstore.SortCreated, Limit: 3, After: p.Next})
	if err != nil || len(p.Sessions) != 2 || p.Sessions[1].ID != ids[4] {
		t.Fatalf("second page %+v %v", p, err)
	}
	for pf, want := range map[sessionstore.PurgedFilter]int{sessionstore.PurgedOnly: 2, sessionstore.PurgedNot: 3, sessionstore.PurgedAny: 5} {
		n := 0
		if err := e.live.Each(ctx, sessionstore.Filter{From: Source, Purged: pf}, func(s sessionstore.Session) error {
			n++
			if (s.PurgedAt != nil) != (pf == sessionstore.PurgedOnly) && pf != sessionstore.PurgedAny {
				t.Errorf("purged=%s listed %+v", pf, s)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("purged=%q: %d rows, want %d", pf, n, want)
		}
	}
	c, err := e.live.Counts(ctx, sessionstore.Filter{From: Source})
	if err != nil || c.Total() != 5 || c.Expired != 5 {
		t.Errorf("history counts %+v %v", c, err)
	}
	if _, err := e.live.List(ctx, sessionstore.Filter{Purged: sessionstore.PurgedOnly}); err == nil {
		t.Error("purged filter on the live table: no error")
	}
}

// Purge health: the oldest ended row still in the table, the days' counts, the last purge
// seen, and the warnings (purge behind, purge off, growth).
func TestHealth(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := e.user(t)
		old := e.insert(t, u, -30*time.Hour, -26*time.Hour, nil)
		e.insert(t, u, -time.Hour, time.Hour, nil)
		gone := e.insert(t, u, -3*time.Hour, -2*time.Hour, nil)
		e.sync(t)
		if e.dialect != "postgres" {
			// The cluster purged a row but not an older one (stuck below a node's bound): the
			// sync finds the purged one by walking the ended rows.
			e.exec(t, `DELETE FROM `+e.live.Table()+` WHERE id = $1`, gone)
			e.sync(t)
		} else {
			// The console's purge takes both; then a stuck old row appears.
			if n, err := e.h.Purge(ctx, e.tx, time.Hour); err != nil || n != 2 {
				t.Fatalf("purge %d %v", n, err)
			}
			old = e.insert(t, u, -time.Minute, -26*time.Hour, nil)
			e.sync(t)
		}
		h, err := e.h.Health(ctx, 2, time.Hour, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rec := e.get(t, old)
		if h.OldestEnded == nil || !h.OldestEnded.Equal(rec.ExpiresAt) {
			t.Errorf("oldest ended %v, want %s", h.OldestEnded, rec.ExpiresAt)
		}
		wantPurged := map[string]int64{"cockroach": 1, "cockroach-proxy": 1, "postgres": 2}[e.dialect]
		if h.LastPurgeSeenAt == nil || h.LastPurgeSeenRows != wantPurged || h.PurgedRows != wantPurged {
			t.Errorf("last purge seen %v, %d, %d", h.LastPurgeSeenAt, h.LastPurgeSeenRows, h.PurgedRows)
		}
		var created, ended int64
		for _, d := range h.Days {
			created += d.Created
			ended += d.Ended
		}
		wantCreated := map[string]int64{"cockroach": 3, "cockroach-proxy": 3, "postgres": 4}[e.dialect]
		if len(h.Days) != healthDays || h.Days[0].Purged != wantPurged || created != wantCreated || ended != wantCreated-1 {
			t.Errorf("days %+v", h.Days[:2])
		}
		if len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "is behind") {
			t.Errorf("warnings %q, want the purge behind", h.Warnings)
		}
		if e.dialect == "cockroach" && (h.Purge.ByConsole || h.SettingsNote == "" || h.Purge.TTL != time.Hour) {
			t.Errorf("cockroach purge config %+v, note %q", h.Purge, h.SettingsNote)
		}
		if e.dialect == "cockroach-proxy" {
			// A CockroachDB says so: its settings are asked for (the proxy's PostgreSQL cannot
			// answer SHOW CLUSTER SETTING, so each says it could not be read).
			if len(h.Settings) != len(cockroachSettings) || h.Purge.FromCluster || h.Purge.TTL != DefaultPurgeTTL {
				t.Errorf("settings %+v, purge %+v", h.Settings, h.Purge)
			}
		}
		if e.dialect == "postgres" {
			h, _ := e.h.Health(ctx, 2, time.Hour, 0)
			if !h.Purge.Off || len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "disabled") {
				t.Errorf("purge off: %+v %q", h.Purge, h.Warnings)
			}
		}
	})
}

// A runaway script: many more sessions created than purged over the last days.
func TestHealthGrowthWarning(t *testing.T) {
	e := newEnv(t, "postgres")
	e.exec(t, `INSERT INTO console.history_daily (day, created, purged) VALUES ((now() AT TIME ZONE 'UTC')::DATE, 50000, 100)`)
	h, err := e.h.Health(context.Background(), 60000, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "grows faster than it is purged") {
		t.Errorf("warnings %q", h.Warnings)
	}
	h, _ = e.h.Health(context.Background(), 600000, time.Hour, time.Hour)
	if len(h.Warnings) != 0 {
		t.Errorf("growth under a tenth of the table warned: %q", h.Warnings)
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"01:00:00": time.Hour, "1h": time.Hour, "00:00:00": 0, "1 day 02:30:00": 26*time.Hour + 30*time.Minute,
		"168:00:00": 168 * time.Hour, "00:00:01.5": 1500 * time.Millisecond, "7 days": 0,
	} {
		got, ok := ParseInterval(in)
		if in == "7 days" {
			if ok {
				t.Errorf("ParseInterval(%q) accepted", in)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("ParseInterval(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
}

// Whole-table counts come from the counts job's row when it is fresh (so replicas do not
// each count the table); after this store's own write it counts by itself; a table nobody
// asked about is not counted.
func TestSharedCounts(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	live, err := sessionstore.Open(ctx, e.pool, sessionstore.Options{CountsMaxAge: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	c := e.h.NewCounter(time.Hour)
	live.UseSharedCounts(c.Shared)
	u := e.user(t)
	e.insert(t, u, -time.Minute, time.Hour, nil)
	if got, _ := live.Counts(ctx, sessionstore.Filter{}); got.Active != 1 {
		t.Fatalf("first counts %+v", got)
	}
	if n, err := c.Refresh(ctx, e.tx); err != nil || n != 1 {
		t.Fatalf("Refresh: %d %v (want the live table counted)", n, err)
	}
	if n := e.count(t, `SELECT active FROM console.session_counts WHERE table_name = 'console.web_sessions'`); n != 1 {
		t.Errorf("stored active count %d", n)
	}
	// Another replica's count (made up here, to tell it from a count of the table).
	e.exec(t, `UPDATE console.session_counts SET active = 12345, counted_at = now() WHERE table_name = 'console.web_sessions'`)
	waitCounts := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := live.Counts(ctx, sessionstore.Filter{})
			if err == nil && got.Active == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("counts %+v %v, want %d active", got, err, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCounts(12345)
	if _, err := live.Issue(ctx, u, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitCounts(12346) // adjusted by the write at once...
	waitCounts(2)     // ...then counted by this store, not taken from the shared row
	// A filtered count never comes from the shared row.
	if got, _ := live.CountNow(ctx, sessionstore.Filter{Username: u}); got.Active != 2 {
		t.Errorf("user counts %+v", got)
	}
	// Stale shared counts are not used.
	e.exec(t, `UPDATE console.session_counts SET active = 999, counted_at = now() - INTERVAL '1 day'`)
	waitCounts(2)
	e.exec(t, `UPDATE console.session_counts SET wanted_at = now() - INTERVAL '1 hour'`)
	if n, err := c.Refresh(ctx, e.tx); err != nil || n != 0 {
		t.Errorf("Refresh of unwanted tables: %d %v", n, err)
	}
}

// On a server that says it is CockroachDB, every read of system.web_sessions by the sync, the
// purge detection and the health page is a follower read (AS OF SYSTEM TIME
// follower_read_timestamp()), and none scans the table (the proxy refuses full scans); on the
// PostgreSQL fixture of the CockroachDB dialect none carries the clause.
func TestLiveReadsAreFollowerReads(t *testing.T) {
	e := newEnv(t, "cockroach-proxy")
	ctx := context.Background()
	u := e.user(t)
	e.insert(t, u, -time.Minute, time.Hour, nil)
	gone := e.insert(t, u, -3*time.Hour, -2*time.Hour, nil)
	e.proxy.ResetRecords() // statements are sent once each, then run prepared
	e.sync(t)
	e.exec(t, `DELETE FROM system.web_sessions WHERE id = $1`, gone)
	r := e.sync(t)
	if r.Purged != 1 {
		t.Fatalf("sync through the proxy: %+v", r)
	}
	if _, err := e.h.Health(ctx, 1, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	reads := 0
	for _, sql := range e.proxy.Statements() {
		if strings.Contains(sql, "system.web_sessions") {
			reads++
			if !strings.Contains(sql, "AS OF SYSTEM TIME follower_read_timestamp()") {
				t.Errorf("a read of system.web_sessions without a follower read: %s", sql)
			}
		}
	}
	if reads < 5 || len(e.proxy.AsOf()) != reads {
		t.Errorf("%d reads of the live table, %d AS OF SYSTEM TIME clauses", reads, len(e.proxy.AsOf()))
	}
	for _, c := range e.proxy.AsOf() {
		if c != "AS OF SYSTEM TIME follower_read_timestamp()" {
			t.Errorf("clause %q", c)
		}
	}
	plain := newEnv(t, "cockroach")
	if plain.h.asOf() != "" {
		t.Errorf("the PostgreSQL fixture gets %q", plain.h.asOf())
	}
}

// A sync pass that read a row before the purge deleted it writes what it read after the purge
// marked it: the row stays purged and is counted purged once (a stale read must not un-purge).
func TestStaleReadDoesNotUnpurge(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	u := e.user(t)
	id := e.insert(t, u, -3*time.Hour, -2*time.Hour, nil)
	e.sync(t)
	rows, err := e.pool.Query(ctx, e.h.liveSelect()+` WHERE w.id = $1`, id) // the pass's read...
	if err != nil {
		t.Fatal(err)
	}
	stale, err := scanLive(rows)
	if err != nil || len(stale) != 1 {
		t.Fatalf("read %v %v", stale, err)
	}
	if n, err := e.h.Purge(ctx, e.tx, time.Hour); err != nil || n != 1 { // ...then the purge...
		t.Fatalf("purge %d %v", n, err)
	}
	stale[0].revoked = &stale[0].expires                                                  // (and a change seen in the read)
	if _, _, err := e.h.record(ctx, e.tx, stale, time.Now().UTC(), "", nil); err != nil { // ...then its write
		t.Fatal(err)
	}
	if rec := e.get(t, id); !rec.Purged() {
		t.Fatalf("a stale write un-purged the session: %+v", rec)
	}
	e.sync(t)
	if n := e.count(t, `SELECT purged FROM console.history_daily WHERE day = (now() AT TIME ZONE 'UTC')::DATE`); n != 1 {
		t.Errorf("counted purged %d times", n)
	}
}
