package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a policy over a fresh database: PostgreSQL; the CockroachDB v23.1 fixture behind the
// CockroachDB v26.1 personality proxy, which refuses full scans of system.web_sessions (so a
// rule that read the whole table fails the test); or the v22.2 fixture (no user_id).
type env struct {
	dialect string
	url     string
	direct  *pgxpool.Pool // the test's own statements, straight to the database
	pool    *pgxpool.Pool // the console's
	proxy   *pgtest.Proxy
	live    *sessionstore.Store
	hist    *history.Store
	log     *audit.Store
	svc     *actions.Service
}

var dialects = []string{"postgres", "cockroach-proxy", "cockroach-v22"}

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
	e := &env{dialect: dialect, direct: direct, pool: direct, url: db}
	opts := sessionstore.Options{}
	if dialect != "postgres" {
		fixture := "../../sessionstore/testdata/crdb_v23.sql"
		if dialect == "cockroach-v22" {
			fixture = "../../sessionstore/testdata/crdb_v22.sql"
		}
		sql, err := os.ReadFile(fixture)
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
		e.url = e.proxy.URL(db)
		if e.pool, err = pgdb.Connect(ctx, e.url, pgdb.Config{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.pool.Close)
	}
	if e.live, err = sessionstore.Open(ctx, e.pool, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.live.Close)
	server := e.live.Server()
	if e.log, err = audit.Open(ctx, e.pool, server); err != nil {
		t.Fatal(err)
	}
	if e.hist, err = history.Open(ctx, e.pool, history.Options{Live: e.live, Server: server}); err != nil {
		t.Fatal(err)
	}
	e.svc = actions.New(e.live, e.log)
	return e
}

func (e *env) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := e.direct.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

var seq atomic.Int64

// user makes a user who can log in and returns its name and user ID.
func (e *env) user(t testing.TB) (string, int64) {
	t.Helper()
	name := fmt.Sprintf("pol_user_%d", seq.Add(1))
	if e.dialect == "postgres" {
		e.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
		t.Cleanup(func() { e.direct.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
		var oid int64
		if err := e.direct.QueryRow(context.Background(), `SELECT oid::INT8 FROM pg_roles WHERE rolname = $1`, name).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		return name, oid
	}
	id := 1000 + seq.Add(1)
	e.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, false, $2)`, name, id)
	return name, id
}

// row is a session planted by SQL, times relative to now.
type row struct {
	user                   string
	userID                 int64 // 0: NULL on PostgreSQL, the user's row on CockroachDB v23
	created, expires, used time.Duration
	revoked                bool
}

// plant inserts r straight into the live table, as cockroach's CLI or a script would, and
// returns its ID.
func (e *env) plant(t testing.TB, r row) int64 {
	t.Helper()
	cols := `"hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt", "revokedAt"`
	vals := `'\x00', $1, n + $2::INT8 * INTERVAL '1 microsecond', n + $3::INT8 * INTERVAL '1 microsecond', n + $4::INT8 * INTERVAL '1 microsecond', CASE WHEN $5 THEN n END`
	args := []any{r.user, r.created.Microseconds(), r.expires.Microseconds(), r.used.Microseconds(), r.revoked}
	switch {
	case e.dialect == "postgres":
		cols, vals = cols+", user_id", vals+", NULLIF($6::INT8, 0)::OID"
		args = append(args, r.userID)
	case e.live.HasUserID():
		cols, vals = cols+", user_id", vals+", $6::INT8::OID"
		args = append(args, r.userID)
	}
	var id int64
	err := e.direct.QueryRow(context.Background(), `INSERT INTO `+e.live.Table()+` (`+cols+`)
		SELECT `+vals+` FROM (SELECT now() AT TIME ZONE 'UTC' AS n) t RETURNING id`, args...).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// used records a use of id seen at /auth/verify `ago` before now, as the activity flush writes it.
func (e *env) used(t testing.TB, id int64, ago time.Duration) {
	t.Helper()
	e.exec(t, `INSERT INTO console.session_activity (session_id, first_used_at, last_used_at, uses)
		SELECT $1, n, n, 1 FROM (SELECT now() AT TIME ZONE 'UTC' - $2::INT8 * INTERVAL '1 microsecond' AS n) t`, id, ago.Microseconds())
}

// matching returns the IDs the rule's filter lists, its count, and checks they agree.
func matching(t *testing.T, p *Policy, r Rule) []int64 {
	t.Helper()
	ctx := context.Background()
	f, err := p.Filter(r)
	if err != nil {
		t.Fatal(err)
	}
	f.Sort, f.Limit = sessionstore.SortID, 100
	page, err := p.sessions.List(ctx, f)
	if err != nil {
		t.Fatalf("%s: list: %v", r, err)
	}
	var ids []int64
	for _, s := range page.Sessions {
		ids = append(ids, s.ID)
	}
	f.At = time.Now()
	n, err := p.sessions.CountMatching(ctx, f)
	if err != nil {
		t.Fatalf("%s: count: %v", r, err)
	}
	if n != int64(len(ids)) {
		t.Errorf("%s: counted %d, listed %v", r, n, ids)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...int64) []int64 { slices.Sort(ids); return ids }

const h = time.Hour

// Each rule finds exactly the active sessions that break it, among sessions planted by SQL
// that break it and that do not (ended ones, ones just inside the bound), in each dialect.
func TestRules(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, aliceID := e.user(t)
		uid := aliceID
		if e.dialect == "postgres" {
			uid = 0 // rows other tools wrote, without user_id: judged by name alone
		}
		p := New(e.live, e.hist, Config{MaxLifetime: 24 * h, Idle: h, Orphans: true, Root: true})

		long := e.plant(t, row{user: alice, userID: uid, created: -h, expires: 47 * h})
		e.plant(t, row{user: alice, userID: uid, created: -h, expires: 22 * h})                   // 23h: inside
		e.plant(t, row{user: alice, userID: uid, created: -h, expires: 47 * h, revoked: true})    // ended
		e.plant(t, row{user: alice, userID: uid, created: -100 * h, expires: -h, used: -100 * h}) // expired
		if got, want := matching(t, p, MaxLifetime), sorted(long); !slices.Equal(got, want) {
			t.Errorf("max-lifetime: %v, want %v", got, want)
		}

		// idle: lastUsedAt 3h ago and no activity; lastUsedAt 3h ago but verify saw it 5m ago;
		// used 5m ago; lastUsedAt 3h ago and verify last saw it 2h ago.
		idle := e.plant(t, row{user: alice, userID: uid, created: -4 * h, expires: 20 * h, used: -3 * h})
		seen := e.plant(t, row{user: alice, userID: uid, created: -4 * h, expires: 20 * h, used: -3 * h})
		e.used(t, seen, 5*time.Minute)
		e.plant(t, row{user: alice, userID: uid, created: -4 * h, expires: 20 * h, used: -5 * time.Minute})
		seenLong := e.plant(t, row{user: alice, userID: uid, created: -4 * h, expires: 20 * h, used: -3 * h})
		e.used(t, seenLong, 2*h)
		if got, want := matching(t, p, Idle), sorted(idle, seenLong); !slices.Equal(got, want) {
			t.Errorf("idle: %v, want %v", got, want)
		}
		rows, err := p.Sample(ctx, Idle, SampleRows)
		if err != nil {
			t.Fatal(err)
		}
		from := map[int64]string{}
		for _, r := range rows {
			from[r.ID] = r.LastUseFrom
		}
		if from[idle] != "lastUsedAt" || from[seenLong] != "activity" {
			t.Errorf("idle sample judged by %v", from)
		}

		// orphans: a user that does not exist, one that is a role now, one dropped and created
		// again (another user ID, where the table has user_id).
		gone := e.plant(t, row{user: "pol_nobody", userID: 999_999, created: -h, expires: h})
		role := fmt.Sprintf("pol_role_%d", seq.Add(1))
		if e.dialect == "postgres" {
			e.exec(t, "CREATE ROLE "+role+" NOLOGIN")
			t.Cleanup(func() { e.direct.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
		} else {
			e.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, true, $2)`, role, 5000+seq.Add(1))
		}
		roleSess := e.plant(t, row{user: role, userID: 1, created: -h, expires: h})
		want := []int64{gone, roleSess}
		bob, bobID := e.user(t)
		recreated := e.plant(t, row{user: bob, userID: bobID + 1_000_000, created: -h, expires: h})
		if e.dialect != "cockroach-v22" {
			want = append(want, recreated)
		}
		e.plant(t, row{user: "pol_nobody", userID: 999_999, created: -h, expires: h, revoked: true})
		e.plant(t, row{user: bob, userID: bobID, created: -h, expires: h})
		if got := matching(t, p, Orphans); !slices.Equal(got, sorted(want...)) {
			t.Errorf("orphans: %v, want %v", got, sorted(want...))
		}

		// root, and on PostgreSQL a superuser.
		rootSess := e.plant(t, row{user: "root", userID: 1, created: -h, expires: h})
		e.plant(t, row{user: "root", userID: 1, created: -h, expires: h, revoked: true})
		want = []int64{rootSess}
		if e.dialect == "postgres" {
			su := fmt.Sprintf("pol_super_%d", seq.Add(1))
			e.exec(t, "CREATE ROLE "+su+" LOGIN SUPERUSER")
			t.Cleanup(func() { e.direct.Exec(context.Background(), "DROP ROLE IF EXISTS "+su) })
			want = append(want, e.plant(t, row{user: su, created: -h, expires: h}))
		}
		if got := matching(t, p, Root); !slices.Equal(got, sorted(want...)) {
			t.Errorf("root: %v, want %v", got, sorted(want...))
		}

		c, err := p.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rules[MaxLifetime] != 1 || c.Rules[Idle] != 2 || c.Rules[Orphans] != int64(len(matching(t, p, Orphans))) || c.Rules[Root] != int64(len(want)) {
			t.Errorf("counts %v", c.Rules)
		}
	})
}

// A rule that is off has no filter and no count; a name that is no rule is refused.
func TestDisabledAndUnknownRules(t *testing.T) {
	e := newEnv(t, "postgres")
	p := New(e.live, e.hist, Config{Idle: h})
	if _, err := p.Filter(Root); !errors.Is(err, ErrDisabled) || !errors.Is(err, sessionstore.ErrInvalidInput) {
		t.Errorf("disabled rule: %v", err)
	}
	for _, bad := range []string{"", "Root", "idle ", "root'--", "max_lifetime"} {
		if _, err := ParseRule(bad); !errors.Is(err, ErrUnknownRule) {
			t.Errorf("ParseRule(%q): %v", bad, err)
		}
	}
	c, err := p.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Rules[Root]; ok || len(c.Rules) != 1 {
		t.Errorf("counts of a policy with only idle: %v", c.Rules)
	}
	if err := (Config{Idle: -h}).Check(); err == nil {
		t.Error("a negative duration passed Check")
	}
}

// Counts are cached as the sessions page's counts are: a session planted by another program
// shows up only after the store's CountsMaxAge, but a revocation through this process counts
// afresh at once.
func TestCountsFreshness(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "postgres")
	live, err := sessionstore.Open(ctx, e.pool, sessionstore.Options{CountsMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(live.Close)
	p := New(live, e.hist, Config{Root: true})
	t.Cleanup(p.Close)
	first := e.plant(t, row{user: "root", created: -h, expires: h})
	if c, err := p.Counts(ctx); err != nil || c.Rules[Root] != 1 {
		t.Fatalf("counts %v, %v", c.Rules, err)
	}
	e.plant(t, row{user: "root", created: -h, expires: h})
	if c, _ := p.Counts(ctx); c.Rules[Root] != 1 {
		t.Errorf("a cached count changed without a write through this process: %v", c.Rules)
	}
	if _, err := actions.New(live, e.log).RevokeSession(ctx, actions.Actor{Kind: actions.CLI, Name: "t"}, first, actions.Note{}); err != nil {
		t.Fatal(err)
	}
	if c, _ := p.Counts(ctx); c.Rules[Root] != 1 { // one planted meanwhile, one revoked
		t.Errorf("after a revocation through this process: %v, want 1", c.Rules)
	}
	now, err := p.CountNow(ctx)
	if err != nil || now.Rules[Root] != 1 {
		t.Errorf("CountNow %v, %v", now.Rules, err)
	}
}
