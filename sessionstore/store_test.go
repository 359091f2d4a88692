package sessionstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a store on a fresh database in one dialect, with ways to make users.
type env struct {
	dialect string
	s       *Store
	pool    *pgxpool.Pool // direct to the database, for the test's own statements
	proxy   *pgtest.Proxy // the CockroachDB personality in front of the store (cockroach dialects)
	url     string        // what the store connects to
	nextOID atomic.Int64
}

var dialectNames = []string{"postgres", "cockroach-v23", "cockroach-v22"}

// Releases the CockroachDB fixtures stand for: v23.1+ tables (user_id) behind a v26.1 server,
// and v22.2 tables behind a v22.2 server (no allow_unsafe_internals, no gate).
var fixtureVersions = map[string]string{
	"cockroach-v23": pgtest.CockroachV26,
	"cockroach-v22": "CockroachDB CCL v22.2.19 (x86_64-pc-linux-gnu, built 2024/02/21 17:29:09, go1.21.5)",
}

// eachDialect runs fn on PostgreSQL and on the CockroachDB fixture schemas (with and without
// user_id), each on its own fresh database; the CockroachDB ones through the CockroachDB
// personality proxy, which refuses unguarded full scans of system.web_sessions.
func eachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialectNames {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, d))
		})
	}
}

func newEnv(t testing.TB, dialect string) *env {
	return newEnvWith(t, dialect, Options{MaxTTL: 400 * time.Hour})
}

func newEnvWith(t testing.TB, dialect string, opts Options) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	pool, err := pgdb.Connect(ctx, db, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{dialect: dialect, pool: pool, url: db}
	e.nextOID.Store(100)
	store := pool
	if strings.HasPrefix(dialect, "cockroach") {
		fixture := "testdata/crdb_v23.sql"
		if dialect == "cockroach-v22" {
			fixture = "testdata/crdb_v22.sql"
		}
		sql, err := os.ReadFile(fixture)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, string(sql)); err != nil {
			t.Fatalf("fixture: %v", err)
		}
		e.proxy = pgtest.StartProxy(t, pgtest.ProxyOptions{Version: fixtureVersions[dialect], RefuseFullScans: true})
		e.url = e.proxy.URL(db)
		if store, err = pgdb.Connect(ctx, e.url, pgdb.Config{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
	}
	s, err := Open(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if want := map[bool]pgdb.Flavor{true: pgdb.Cockroach, false: pgdb.Postgres}[e.proxy != nil]; s.Flavor() != want || s.Server() != want {
		t.Fatalf("dialect %v on server %v, want %v", s.Flavor(), s.Server(), want)
	}
	e.s = s
	return e
}

func (e *env) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// createUser makes a user that can log in: a LOGIN role, or a system.users row.
func (e *env) createUser(t testing.TB, name string) {
	t.Helper()
	if e.dialect == "postgres" {
		e.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
		t.Cleanup(func() { e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
		return
	}
	e.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, false, $2)`, name, e.nextOID.Add(1))
}

// createRole makes a name that exists but cannot log in.
func (e *env) createRole(t testing.TB, name string) {
	t.Helper()
	if e.dialect == "postgres" {
		e.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" NOLOGIN")
		t.Cleanup(func() { e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
		return
	}
	e.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, true, $2)`, name, e.nextOID.Add(1))
}

func (e *env) rowCount(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+e.s.Table()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// uniqueName gives each test its own user names (PostgreSQL roles are cluster-wide).
var nameSeq atomic.Int64

func uniqueName(prefix string) string { return fmt.Sprintf("%s_%d", prefix, nameSeq.Add(1)) }

func (e *env) issue(t testing.TB, user string, ttl time.Duration) Issued {
	t.Helper()
	is, err := e.s.Issue(context.Background(), user, ttl)
	if err != nil {
		t.Fatalf("Issue(%q, %s): %v", user, ttl, err)
	}
	return is
}

func TestIssue(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("web_user")
		e.createUser(t, user)
		is := e.issue(t, user, 4*time.Hour+30*time.Minute)
		if is.Username != user || is.ID == 0 {
			t.Fatalf("issued %+v", is.Session)
		}
		if got := is.ExpiresAt.Sub(is.CreatedAt); got != 4*time.Hour+30*time.Minute {
			t.Errorf("expires - created = %s, want 4h30m", got)
		}
		if !is.LastUsedAt.Equal(is.CreatedAt) || is.RevokedAt != nil {
			t.Errorf("lastUsed %v created %v revoked %v", is.LastUsedAt, is.CreatedAt, is.RevokedAt)
		}
		if d := time.Since(is.CreatedAt); d < -time.Minute || d > time.Minute {
			t.Errorf("createdAt %v is not now in UTC (off by %s)", is.CreatedAt, d)
		}
		// The cookie decodes to the row's ID, and the row stores SHA-256 of its secret.
		c, err := DecodeCookie(is.Cookie.SetCookie())
		if err != nil || c.ID != is.ID {
			t.Fatalf("cookie decodes to %+v, %v", c, err)
		}
		var hashed []byte
		if err := e.pool.QueryRow(ctx, `SELECT "hashedSecret" FROM `+e.s.Table()+` WHERE id = $1`, is.ID).Scan(&hashed); err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(is.Cookie.Secret); string(hashed) != string(sum[:]) {
			t.Error("hashedSecret is not SHA-256 of the secret")
		}
		if e.dialect == "cockroach-v23" {
			var uid, want uint32
			e.pool.QueryRow(ctx, `SELECT user_id FROM system.web_sessions WHERE id = $1`, is.ID).Scan(&uid)
			e.pool.QueryRow(ctx, `SELECT user_id FROM system.users WHERE username = $1`, user).Scan(&want)
			if uid != want || uid == 0 {
				t.Errorf("user_id = %d, want %d", uid, want)
			}
		}
		if _, err := e.s.Verify(ctx, is.Cookie.Value()); err != nil {
			t.Errorf("the issued cookie does not verify: %v", err)
		}
	})
}

func TestIssueRoot(t *testing.T) {
	// root exists in the CockroachDB fixture as in every cluster.
	e := newEnv(t, "cockroach-v23")
	if is := e.issue(t, "root", time.Hour); is.Username != "root" {
		t.Fatalf("username %q", is.Username)
	}
}

func TestIssueNormalizesOnCockroach(t *testing.T) {
	e := newEnv(t, "cockroach-v23")
	e.createUser(t, "web_user")
	e.createUser(t, "straße_i")
	for in, want := range map[string]string{"WEB_User": "web_user", "STRASSE_I": "", "Straße_İ": "straße_i"} {
		is, err := e.s.Issue(context.Background(), in, time.Hour)
		if want == "" {
			if !errors.Is(err, ErrNoSuchUser) {
				t.Errorf("Issue(%q) = %v, want ErrNoSuchUser", in, err)
			}
			continue
		}
		if err != nil || is.Username != want {
			t.Errorf("Issue(%q) = %q, %v; want %q", in, is.Username, err, want)
		}
	}
	// On PostgreSQL role names are case-sensitive: no normalization.
	p := newEnv(t, "postgres")
	name := uniqueName("CamelUser")
	p.createUser(t, name)
	if _, err := p.s.Issue(context.Background(), strings.ToLower(name), time.Hour); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("lower-cased name on PostgreSQL: %v, want ErrNoSuchUser", err)
	}
	p.issue(t, name, time.Hour)
}

func TestIssueBadInput(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("bob")
		e.createUser(t, user)
		role := uniqueName("a_role")
		e.createRole(t, role)
		long := strings.Repeat("x", 200)
		users := []struct {
			name string
			want error
		}{
			{"nobody_here", ErrNoSuchUser},
			{role, ErrNoSuchUser},
			{`o'brien`, ErrNoSuchUser},
			{`"quoted"`, ErrNoSuchUser},
			{"with space", ErrNoSuchUser},
			{"100%", ErrNoSuchUser},
			{user[:len(user)-1] + "_", ErrNoSuchUser},
			{"b_b%", ErrNoSuchUser},
			{"ünïcødé", ErrNoSuchUser},
			{"<script>alert(1)</script>", ErrNoSuchUser},
			{"'; DROP TABLE x; --", ErrNoSuchUser},
			{long, ErrNoSuchUser},
			{strings.Repeat("y", 300), ErrInvalidInput},
			{"", ErrInvalidInput},
			{"tab\there", ErrInvalidInput},
			{"bad\xffutf8", ErrInvalidInput},
		}
		for _, c := range users {
			_, err := e.s.Issue(ctx, c.name, time.Hour)
			if !errors.Is(err, c.want) {
				t.Errorf("Issue(%q) = %v, want %v", c.name, err, c.want)
			}
			if c.want == ErrNoSuchUser {
				want := fmt.Sprintf("user %q does not exist", e.s.Username(c.name))
				if err == nil || err.Error() != want {
					t.Errorf("Issue(%q) error %q, want %q", c.name, err, want)
				}
			}
		}
		for _, ttl := range []time.Duration{0, -time.Hour, time.Nanosecond, 401 * time.Hour, 999999 * time.Hour} {
			if _, err := e.s.Issue(ctx, user, ttl); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("Issue(ttl %s) = %v, want ErrInvalidInput", ttl, err)
			}
		}
		if n := e.rowCount(t); n != 0 {
			t.Errorf("%d rows written by refused issues", n)
		}
	})
}

func TestRevokeUser(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user, other := uniqueName("web_user"), uniqueName("other")
		e.createUser(t, user)
		e.createUser(t, other)
		a := e.issue(t, user, time.Hour)
		b := e.issue(t, user, time.Hour)
		keep := e.issue(t, other, time.Hour)
		// An already revoked session keeps its earlier revocation time.
		earlier, err := e.s.RevokeSession(ctx, b.ID)
		if err != nil || !earlier.Newly {
			t.Fatalf("RevokeSession: %+v %v", earlier, err)
		}
		first, err := e.s.RevokeUser(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 2 {
			t.Fatalf("RevokeUser returned %d rows, want 2", len(first))
		}
		byID := map[int64]Revocation{}
		for _, r := range first {
			byID[r.ID] = r
			if r.Username != user {
				t.Errorf("row of %q", r.Username)
			}
		}
		if !byID[b.ID].RevokedAt.Equal(earlier.RevokedAt) || byID[b.ID].Newly {
			t.Errorf("earlier revocation overwritten: %+v, want %v", byID[b.ID], earlier.RevokedAt)
		}
		if !byID[a.ID].Newly || !byID[a.ID].RevokedAt.After(earlier.RevokedAt) {
			t.Errorf("active session: %+v", byID[a.ID])
		}
		// Twice: the first revocation times are kept.
		second, err := e.s.RevokeUser(ctx, user)
		if err != nil || len(second) != 2 {
			t.Fatalf("second RevokeUser: %v %v", second, err)
		}
		for _, r := range second {
			if !r.RevokedAt.Equal(byID[r.ID].RevokedAt) || r.Newly {
				t.Errorf("second logout changed %d: %v -> %v", r.ID, byID[r.ID].RevokedAt, r.RevokedAt)
			}
		}
		if _, err := e.s.Verify(ctx, keep.Cookie.Value()); err != nil {
			t.Errorf("other user's session was touched: %v", err)
		}
		// Unknown user: no rows, no error.
		if rows, err := e.s.RevokeUser(ctx, "nobody_at_all"); err != nil || len(rows) != 0 {
			t.Errorf("unknown user: %v %v", rows, err)
		}
		if _, err := e.s.RevokeUser(ctx, ""); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("empty user: %v", err)
		}
	})
}

func TestEndUserSessions(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("ender")
		e.createUser(t, user)
		e.issue(t, user, time.Hour)
		e.issue(t, user, time.Hour)
		exp := e.issue(t, user, time.Hour)
		e.exec(t, `UPDATE `+e.s.Table()+` SET "expiresAt" = "createdAt" - INTERVAL '1 hour' WHERE id = $1`, exp.ID)
		rev := e.issue(t, user, time.Hour)
		if _, err := e.s.RevokeSession(ctx, rev.ID); err != nil {
			t.Fatal(err)
		}
		revoked, active, err := e.s.EndUserSessions(ctx, user)
		if err != nil || revoked != 3 || active != 2 {
			t.Fatalf("EndUserSessions = %d, %d, %v; want 3, 2", revoked, active, err)
		}
		revoked, active, err = e.s.EndUserSessions(ctx, user)
		if err != nil || revoked != 0 || active != 0 {
			t.Fatalf("second EndUserSessions = %d, %d, %v; want 0, 0", revoked, active, err)
		}
	})
}

func TestRevokeSession(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("carol")
		e.createUser(t, user)
		a := e.issue(t, user, time.Hour)
		b := e.issue(t, user, time.Hour)
		r1, err := e.s.RevokeSession(ctx, a.ID)
		if err != nil || r1.ID != a.ID || !r1.Newly {
			t.Fatalf("RevokeSession: %+v %v", r1, err)
		}
		r2, err := e.s.RevokeSession(ctx, a.ID)
		if err != nil || !r2.RevokedAt.Equal(r1.RevokedAt) || r2.Newly {
			t.Fatalf("second RevokeSession: %+v %v (first %v)", r2, err, r1.RevokedAt)
		}
		if _, err := e.s.Verify(ctx, b.Cookie.Value()); err != nil {
			t.Errorf("the other session was revoked too: %v", err)
		}
		if _, err := e.s.RevokeSession(ctx, 424242); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v, want ErrNotFound", err)
		}
		if _, err := e.s.Get(ctx, 424242); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get unknown id: %v, want ErrNotFound", err)
		}
	})
}

func TestVerify(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("dave")
		e.createUser(t, user)
		ok := e.issue(t, user, time.Hour)
		v, err := e.s.Verify(ctx, ok.Cookie.SetCookie())
		if err != nil || v.Username != user || v.SessionID != ok.ID {
			t.Fatalf("Verify = %+v, %v", v, err)
		}
		revoked := e.issue(t, user, time.Hour)
		e.s.RevokeSession(ctx, revoked.ID)
		expired := e.issue(t, user, time.Hour)
		e.exec(t, `UPDATE `+e.s.Table()+` SET "expiresAt" = (now() AT TIME ZONE 'UTC') - INTERVAL '1 second' WHERE id = $1`, expired.ID)
		both := e.issue(t, user, time.Hour) // revoked and expired: revoked is checked first
		e.s.RevokeSession(ctx, both.ID)
		e.exec(t, `UPDATE `+e.s.Table()+` SET "expiresAt" = (now() AT TIME ZONE 'UTC') - INTERVAL '1 second' WHERE id = $1`, both.ID)
		wrong := Cookie{ID: ok.ID, Secret: make([]byte, SecretLength)}
		expiredWrong := Cookie{ID: expired.ID, Secret: make([]byte, SecretLength)} // expiry before secret
		missing := Cookie{ID: 999999999, Secret: ok.Cookie.Secret}
		cases := []struct {
			cookie string
			want   Reason
		}{
			{revoked.Cookie.Value(), ReasonRevoked},
			{expired.Cookie.Value(), ReasonExpired},
			{both.Cookie.Value(), ReasonRevoked},
			{wrong.Value(), ReasonWrongSecret},
			{expiredWrong.Value(), ReasonExpired},
			{missing.Value(), ReasonNoSuchSession},
			{"garbage", ReasonMalformed},
			{ok.Cookie.Value()[:20], ReasonMalformed},
		}
		for _, c := range cases {
			_, err := e.s.Verify(ctx, c.cookie)
			var ise *InvalidSessionError
			if !errors.As(err, &ise) || ise.Reason != c.want || !errors.Is(err, ErrInvalidSession) {
				t.Errorf("Verify(%.12s...) = %v, want %s", c.cookie, err, c.want)
			}
		}
	})
}

func TestUsers(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		user := uniqueName("listed")
		e.createUser(t, user)
		role := uniqueName("unlisted_role")
		e.createRole(t, role)
		names, err := e.s.Users(context.Background(), "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		joined := "," + strings.Join(names, ",") + ","
		if !strings.Contains(joined, ","+user+",") || strings.Contains(joined, ","+role+",") {
			t.Errorf("Users() = %v: want %s and not %s", names, user, role)
		}
		names, err = e.s.Users(context.Background(), user[:len(user)-1], 10)
		if err != nil || !slices.Contains(names, user) {
			t.Errorf("Users(prefix) = %v, %v", names, err)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, user[:len(user)-1]) {
				t.Errorf("Users(prefix) returned %q", n)
			}
		}
		if names, err = e.s.Users(context.Background(), "zz_no_such_prefix", 10); err != nil || len(names) != 0 {
			t.Errorf("Users(no match) = %v, %v", names, err)
		}
	})
}

// Eight goroutines issue and revoke-all for one user at once. Afterwards no session issued
// before the last revoke-all began is active, and no active session was created before it.
func TestConcurrentIssueAndRevoke(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		user := uniqueName("busy")
		e.createUser(t, user)
		var (
			mu        sync.Mutex
			issued    []Issued // each with the moment Issue returned
			returned  []time.Time
			lastStart time.Time // when the latest revoke-all call began
			lastRevAt time.Time // the revocation time it set
		)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					if (g+i)%3 == 0 {
						start := time.Now()
						rows, err := e.s.RevokeUser(ctx, user)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						if start.After(lastStart) {
							lastStart = start
							lastRevAt = time.Time{}
							for _, r := range rows {
								if r.Newly && r.RevokedAt.After(lastRevAt) {
									lastRevAt = r.RevokedAt
								}
							}
						}
						mu.Unlock()
						continue
					}
					is, err := e.s.Issue(ctx, user, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					issued = append(issued, is)
					returned = append(returned, time.Now())
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, is := range issued {
			if !returned[i].Before(lastStart) {
				continue
			}
			got, err := e.s.Get(ctx, is.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.RevokedAt == nil {
				t.Errorf("session %d was issued before the last revoke began and is still active", is.ID)
			}
		}
		if e.dialect != "postgres" {
			return // CockroachDB orders these by its serializable transactions, not by this lock.
		}
		// In the database's own clock: every session created before a revocation time is revoked.
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM `+e.s.Table()+` AS a WHERE a.username = $1 AND a."revokedAt" IS NULL
			AND EXISTS (SELECT 1 FROM `+e.s.Table()+` AS b WHERE b.username = $1 AND b."revokedAt" > a."createdAt")`, user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d active sessions were created before a revocation time of the same user", n)
		}
	})
}

func TestConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgdb.Connect(ctx, url, pgdb.Config{})
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			s, err := Open(ctx, pool, Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
	pool, err := pgdb.Connect(ctx, url, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM console.schema_migrations WHERE component = 'sessions'`).Scan(&n)
	if n != len(Migrations) {
		t.Errorf("%d migrations recorded, want %d", n, len(Migrations))
	}
}

func TestOpenDetectsPostgres(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewDB(t), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := Open(ctx, pool, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Flavor() != pgdb.Postgres || s.Table() != "console.web_sessions" {
		t.Errorf("flavor %v table %s", s.Flavor(), s.Table())
	}
	// CockroachDB forced on a database without its system tables: a clear error.
	if _, err := Open(ctx, pool, Options{Flavor: pgdb.Cockroach}); err == nil || !strings.Contains(err.Error(), "system.web_sessions") {
		t.Errorf("cockroach dialect without system tables: %v", err)
	}
}
