package pgdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgtest"
)

// cockroachOnly matches every statement the console may send only to CockroachDB.
var cockroachOnly = regexp.MustCompile(`(?i)allow_unsafe_internals|disallow_full_table_scans|as of system time|cockroach_restart|schema_locked|migration_lock|isolation level serializable`)

// crdbDB is a fresh database with a sliver of CockroachDB's system schema, reached through a
// CockroachDB v26.1 personality proxy. It returns the proxied URL, the proxy and a direct pool.
func crdbDB(t *testing.T, opts pgtest.ProxyOptions) (string, *pgtest.Proxy, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	direct, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	if _, err := direct.Exec(ctx, `CREATE SCHEMA system; CREATE TABLE system.users (username TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if opts.Version == "" {
		opts.Version = pgtest.CockroachV26
	}
	p := pgtest.StartProxy(t, opts)
	return p.URL(db), p, direct
}

func connectT(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := Connect(context.Background(), url, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Every pooled connection to CockroachDB v26.1 sets allow_unsafe_internals, without which the
// system database is closed; older versions that do not know the variable are fine too.
func TestConnectCockroachSessionSettings(t *testing.T) {
	ctx := context.Background()
	for _, version := range []string{pgtest.CockroachV26, "CockroachDB CCL v25.4.1 (x86_64-pc-linux-gnu)", "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu)"} {
		t.Run(version[:20], func(t *testing.T) {
			url, p, _ := crdbDB(t, pgtest.ProxyOptions{Version: version})
			pool := connectT(t, url)
			// Several connections at once: each of them must have run the settings.
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
						_, err := c.Exec(ctx, "SELECT count(*) FROM system.users WHERE username = $1", "x")
						return err
					})
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			sets := 0
			for _, s := range p.Statements() {
				if s == "SET allow_unsafe_internals = on" {
					sets++
				}
			}
			if got := int(pool.Stat().TotalConns()); sets != got || got < 2 {
				t.Errorf("%d connections, %d of them set allow_unsafe_internals", got, sets)
			}
		})
	}
}

// Without the setting (a pool not made by Connect), v26.1 refuses system.*: the console turns
// that refusal into one message naming what to do.
func TestPrivilegeMessage(t *testing.T) {
	ctx := context.Background()
	dbURL, _, direct := crdbDB(t, pgtest.ProxyOptions{})
	raw, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = raw.Exec(ctx, "SELECT count(*) FROM system.users")
	err = Privilege(err, "alice", "read system.users")
	var pe *PrivilegeError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), `the SQL user "alice" may not read system.users (Access to crdb_internal and system is restricted.)`) ||
		!strings.Contains(err.Error(), "allow_unsafe_internals") || !strings.Contains(err.Error(), `GRANT admin TO "alice"`) {
		t.Errorf("error: %v", err)
	}

	// A user without CREATE on the database cannot migrate: one clear message.
	role := fmt.Sprintf("nocreate_%d", roleSeq.Add(1))
	if _, err := direct.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'pw'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct.Exec(context.Background(), "DROP OWNED BY "+role)
		direct.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(role, "pw")
	pool := connectT(t, u.String())
	err = Migrate(ctx, pool, Cockroach, "test", []Migration{{1, "CREATE TABLE IF NOT EXISTS console.t (a INT)"}})
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), `the SQL user "`+role+`" may not create or change the console's tables in schema console`) ||
		!strings.Contains(err.Error(), `GRANT admin TO "`+role+`"`) {
		t.Errorf("migrate as %s: %v", role, err)
	}
}

var roleSeq atomic.Int64

// CockroachDB's system database cannot hold the console's schema: refused at start.
func TestSystemDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	system := pgtest.NamedDB(t, "system")
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26})
	_, err := Connect(ctx, p.URL(system), Config{})
	if !errors.Is(err, ErrSystemDatabase) || !strings.Contains(err.Error(), "connect to defaultdb or another database") {
		t.Errorf("Connect to system: %v", err)
	}
	// Plain PostgreSQL may have a database called system like any other.
	pool, err := Connect(ctx, system, Config{})
	if err != nil {
		t.Fatalf("PostgreSQL database system: %v", err)
	}
	pool.Close()
}

// RunTx retries a transaction that CockroachDB aborted, at a statement or at its commit, and
// applies it exactly once; on PostgreSQL it does the same with new transactions.
func TestRunTxRetries(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		flavor Flavor
		opts   pgtest.ProxyOptions
	}{{"cockroach", Cockroach, pgtest.ProxyOptions{Version: pgtest.CockroachV26}}, {"postgres", Postgres, pgtest.ProxyOptions{}}} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.NewDB(t)
			p := pgtest.StartProxy(t, tc.opts)
			pool := connectT(t, p.URL(db))
			if _, err := pool.Exec(ctx, "CREATE TABLE public.t (id INT8 PRIMARY KEY, n INT8)"); err != nil {
				t.Fatal(err)
			}
			for i, point := range []pgtest.FaultPoint{pgtest.AtStatement, pgtest.AtCommit} {
				f := p.Inject(pgtest.Fault{Point: point, Match: "INSERT INTO public.t"})
				runs := 0
				err := RunTx(ctx, pool, tc.flavor, func(tx pgx.Tx) error {
					runs++
					_, err := tx.Exec(ctx, "INSERT INTO public.t (id, n) VALUES ($1, $2)", i, runs)
					return err
				})
				if err != nil || p.Fired(f) != 1 || runs != 2 {
					t.Fatalf("point %d: err %v, fired %d, %d runs", point, err, p.Fired(f), runs)
				}
			}
			var n int
			pool.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n)
			if n != 2 {
				t.Errorf("%d rows, want 2 (one per transaction)", n)
			}
			// Within a bound: a transaction that keeps failing fails, and changes nothing.
			p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "INSERT INTO public.t", Times: TxRetries + 1})
			runs := 0
			err := RunTx(ctx, pool, tc.flavor, func(tx pgx.Tx) error {
				runs++
				_, err := tx.Exec(ctx, "INSERT INTO public.t (id, n) VALUES (99, 0)")
				return err
			})
			if !Retryable(err) || !errors.Is(err, ErrRetriesExhausted) || runs != TxRetries+1 {
				t.Errorf("after %d runs: %v", runs, err)
			}
			var maxed *crdb.MaxRetriesExceededError
			if tc.flavor == Cockroach && !errors.As(err, &maxed) {
				t.Errorf("not a MaxRetriesExceededError: %T", err)
			}
			pool.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n)
			if n != 2 {
				t.Errorf("%d rows after the failed transaction", n)
			}
			// Other errors are not retried.
			runs = 0
			err = RunTx(ctx, pool, tc.flavor, func(tx pgx.Tx) error {
				runs++
				_, err := tx.Exec(ctx, "INSERT INTO public.t (id, n) VALUES (0, 0)")
				return err
			})
			if sqlState(err) != "23505" || runs != 1 {
				t.Errorf("duplicate key: %d runs, %v", runs, err)
			}
		})
	}
}

func TestRetryStatement(t *testing.T) {
	ctx := context.Background()
	url, p, _ := crdbDB(t, pgtest.ProxyOptions{})
	pool := connectT(t, url)
	for _, code := range []string{"40001", "40003"} {
		p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "system.users", Code: code, Times: 2})
		runs := 0
		err := Retry(ctx, func() error {
			runs++
			_, err := pool.Exec(ctx, "SELECT count(*) FROM system.users WHERE username = $1", "x")
			return err
		})
		if err != nil || runs != 3 {
			t.Errorf("%s: %d runs, %v", code, runs, err)
		}
	}
	p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "system.users", Code: "42P01"})
	runs := 0
	Retry(ctx, func() error {
		runs++
		_, err := pool.Exec(ctx, "SELECT count(*) FROM system.users WHERE username = $1", "x")
		return err
	})
	if runs != 1 {
		t.Errorf("42P01 retried: %d runs", runs)
	}
	// The bound: TxRetries failures in a row still succeed at the last try; one more fails with
	// the last failure, after 1 + TxRetries tries.
	for _, tc := range []struct {
		failures, runs int
		ok             bool
	}{{TxRetries, TxRetries + 1, true}, {TxRetries + 1, TxRetries + 1, false}} {
		f := p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "system.users", Code: "40003", Times: tc.failures})
		runs := 0
		err := Retry(ctx, func() error {
			runs++
			_, err := pool.Exec(ctx, "SELECT count(*) FROM system.users WHERE username = $1", "x")
			return err
		})
		if runs != tc.runs || (err == nil) != tc.ok || !tc.ok && (sqlState(err) != "40003" || !errors.Is(err, ErrRetriesExhausted)) {
			t.Errorf("%d failures: %d runs, %v; want %d runs, ok %v", tc.failures, runs, err, tc.runs, tc.ok)
		}
		if p.Fired(f) != min(tc.failures, tc.runs) {
			t.Errorf("%d failures: the fault struck %d times", tc.failures, p.Fired(f))
		}
	}
}

// A commit that reached the server but whose answer was lost is ErrAmbiguousCommit, in both
// flavours, and is not run again: the change exists once (the server did commit).
func TestAmbiguousCommit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		flavor Flavor
		opts   pgtest.ProxyOptions
	}{{"cockroach", Cockroach, pgtest.ProxyOptions{Version: pgtest.CockroachV26}}, {"postgres", Postgres, pgtest.ProxyOptions{}}} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.NewDB(t)
			p := pgtest.StartProxy(t, tc.opts)
			pool := connectT(t, p.URL(db))
			if _, err := pool.Exec(ctx, "CREATE TABLE public.t (id INT8 PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			f := p.Inject(pgtest.Fault{Point: pgtest.CutAfterCommit, Match: "INSERT INTO public.t"})
			runs := 0
			err := RunTx(ctx, pool, tc.flavor, func(tx pgx.Tx) error {
				runs++
				_, err := tx.Exec(ctx, "INSERT INTO public.t (id) VALUES (1)")
				return err
			})
			if !errors.Is(err, ErrAmbiguousCommit) || runs != 1 || p.Fired(f) != 1 {
				t.Fatalf("err %v after %d runs (fault struck %d times), want ErrAmbiguousCommit after 1", err, runs, p.Fired(f))
			}
			if !strings.HasPrefix(err.Error(), "the database did not confirm the commit: the change may or may not have been applied: ") {
				t.Errorf("message %q", err)
			}
			if errors.Is(Unavailable(err), ErrUnavailable) {
				t.Errorf("Unavailable(%v) says the database is unavailable: a retry could apply the change twice", err)
			}
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM public.t").Scan(&n); err != nil || n != 1 {
				t.Errorf("%d rows (%v), want the 1 the server committed", n, err)
			}
		})
	}
}

// A stream on CockroachDB reads at one AS OF SYSTEM TIME; cut off in the middle, it resumes
// after its last row at the same timestamp, so every row arrives exactly once.
func TestStreamResumesAtTheSameTime(t *testing.T) {
	ctx := context.Background()
	url, p, direct := crdbDB(t, pgtest.ProxyOptions{RefuseFullScans: true})
	if _, err := direct.Exec(ctx, `CREATE TABLE system.web_sessions (id INT8 PRIMARY KEY, username TEXT);
		INSERT INTO system.web_sessions SELECT i, 'u' || i FROM generate_series(1, 10) AS i`); err != nil {
		t.Fatal(err)
	}
	pool := connectT(t, url)
	f := p.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "FROM system.web_sessions", Rows: 4})
	var got []int64
	last := int64(0)
	err := Stream(ctx, pool, Cockroach, StreamOptions{FullScan: true}, func(asOf string) (string, []any) {
		return "SELECT id FROM system.web_sessions " + asOf + " WHERE id > $1 OR $1 = 0 ORDER BY id", []any{last}
	}, func(rows pgx.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		got, last = append(got, id), id
		return nil
	})
	if err != nil || p.Fired(f) != 1 || fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9 10]" {
		t.Fatalf("err %v, fired %d, rows %v", err, p.Fired(f), got)
	}
	asOf := p.AsOf()
	if len(asOf) != 2 || asOf[0] != asOf[1] || !strings.HasPrefix(asOf[0], "AS OF SYSTEM TIME '") {
		t.Errorf("AS OF SYSTEM TIME clauses: %q", asOf)
	}
	// The full-scan guard was off for the stream only.
	_, err = pool.Exec(ctx, "SELECT id FROM system.web_sessions")
	if sqlState(err) != "P0003" {
		t.Errorf("after the stream, a full scan: %v", err)
	}
}

// Migrations on CockroachDB: serialised by the lock row, each step once, ALTERs of
// schema_locked tables (v26.1 creates them so) unlock and lock again.
func TestMigrateCockroach(t *testing.T) {
	ctx := context.Background()
	url, p, direct := crdbDB(t, pgtest.ProxyOptions{})
	pool := connectT(t, url)
	steps := []Migration{
		{1, "CREATE TABLE IF NOT EXISTS console.t1 (a INT)"},
		{2, "ALTER TABLE console.t1 ADD COLUMN IF NOT EXISTS b INT"},
	}
	if err := Migrate(ctx, pool, Cockroach, "test", steps); err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, s := range p.Statements() {
		if strings.Contains(s, "console.t1") || strings.Contains(s, `"t1"`) {
			stmts = append(stmts, strings.Join(strings.Fields(s), " "))
		}
	}
	want := []string{
		"CREATE TABLE IF NOT EXISTS console.t1 (a INT)",
		"ALTER TABLE console.t1 ADD COLUMN IF NOT EXISTS b INT",
		`ALTER TABLE "console"."t1" SET (schema_locked = false)`,
		"ALTER TABLE console.t1 ADD COLUMN IF NOT EXISTS b INT",
		`ALTER TABLE "console"."t1" SET (schema_locked = true)`,
	}
	if strings.Join(stmts, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n%s\nwant:\n%s", strings.Join(stmts, "\n"), strings.Join(want, "\n"))
	}
	if !p.SchemaLocked("t1") {
		t.Error("console.t1 is not schema_locked again")
	}
	var n int
	direct.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'console' AND table_name = 't1'").Scan(&n)
	if n != 2 {
		t.Errorf("console.t1 has %d columns", n)
	}
	// Running again changes nothing.
	p.ResetRecords()
	if err := Migrate(ctx, pool, Cockroach, "test", steps); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Statements() {
		if strings.Contains(s, "console.t1") {
			t.Errorf("second run sent %q", s)
		}
	}
}

// Four processes migrate at once on CockroachDB: the lock row lets one run the steps while the
// others wait, so a step that must not run twice runs once.
func TestConcurrentMigrationsCockroach(t *testing.T) {
	ctx := context.Background()
	url, _, direct := crdbDB(t, pgtest.ProxyOptions{})
	steps := []Migration{
		{1, "CREATE TABLE IF NOT EXISTS console.once (id INT8 PRIMARY KEY)"},
		// Not idempotent on purpose: two processes running it both would fail on the key.
		{2, "SELECT pg_sleep(0.05); INSERT INTO console.once VALUES (1)"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := Connect(ctx, url, Config{})
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- Migrate(ctx, pool, Cockroach, "once", steps)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	var rows, versions int
	direct.QueryRow(ctx, "SELECT count(*) FROM console.once").Scan(&rows)
	direct.QueryRow(ctx, "SELECT count(*) FROM console.schema_migrations WHERE component = 'once'").Scan(&versions)
	if rows != 1 || versions != 2 {
		t.Errorf("%d rows, %d versions recorded; want 1 and 2", rows, versions)
	}
}

// On PostgreSQL the console sends none of its CockroachDB-only statements.
func TestPostgresGetsNoCockroachStatements(t *testing.T) {
	db := pgtest.NewDB(t)
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{})
	pool := connectT(t, p.URL(db))
	useHelpers(t, pool, Postgres)
	stmts := p.Statements()
	if len(stmts) < 5 {
		t.Fatalf("only %d statements recorded", len(stmts))
	}
	for _, s := range stmts {
		if cockroachOnly.MatchString(s) {
			t.Errorf("sent to PostgreSQL: %q", s)
		}
	}
}

// The counterpart of TestPostgresGetsNoCockroachStatements: the CockroachDB flavour of Migrate,
// RunTx, FullScanInTx, WithFullScan and Stream, through a proxy that refuses full scans and
// PostgreSQL's advisory locks (which CockroachDB lacks: its pg_try_advisory_lock always answers
// true), works and sends none of PostgreSQL's locking functions.
func TestCockroachGetsNoPostgresLocks(t *testing.T) {
	ctx := context.Background()
	url, p, _ := crdbDB(t, pgtest.ProxyOptions{RefuseFullScans: true})
	pool := connectT(t, url)
	useHelpers(t, pool, Cockroach)
	// Without the guard the same read is refused: the proxy was refusing all along.
	if _, err := pool.Exec(ctx, "SELECT count(*) FROM console.t"); sqlState(err) != "P0003" {
		t.Errorf("an unguarded full scan: %v, want P0003", err)
	}
	stmts := p.Statements()
	if len(stmts) < 10 {
		t.Fatalf("only %d statements recorded", len(stmts))
	}
	for _, s := range stmts {
		if strings.Contains(strings.ToLower(s), "advisory") {
			t.Errorf("sent to CockroachDB: %q", s)
		}
	}
}

// useHelpers runs Migrate, RunTx with FullScanInTx, WithFullScan and Stream with full scans, in
// flavor, on console.t.
func useHelpers(t *testing.T, pool *pgxpool.Pool, flavor Flavor) {
	t.Helper()
	ctx := context.Background()
	if err := Migrate(ctx, pool, flavor, "test", []Migration{{1, "CREATE TABLE console.t (id INT8 PRIMARY KEY)"}}); err != nil {
		t.Fatal(err)
	}
	if err := RunTx(ctx, pool, flavor, func(tx pgx.Tx) error {
		if err := FullScanInTx(ctx, tx, flavor); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO console.t VALUES (1)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE console.t SET id = id")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := WithFullScan(ctx, pool, flavor, func(q DBTX) error {
		_, err := q.Exec(ctx, "SELECT count(*) FROM console.t")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := Stream(ctx, pool, flavor, StreamOptions{FullScan: true}, func(asOf string) (string, []any) {
		return "SELECT id FROM console.t " + asOf, nil
	}, func(pgx.Rows) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
