package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Fatalf("error %v, want SQLSTATE %s", err, code)
	}
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// The CockroachDB v26.1 personality, in both protocols (pgx sends statements with arguments
// through Parse/Bind/Execute and the others as simple queries).
func TestProxyPersonality(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	direct := connect(t, db)
	exec(t, direct, `CREATE SCHEMA system; CREATE TABLE system.web_sessions (id INT8 PRIMARY KEY, username TEXT);
		INSERT INTO system.web_sessions VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	p := StartProxy(t, ProxyOptions{Version: CockroachV26})
	conn := connect(t, p.URL(db))

	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || v != CockroachV26 {
		t.Fatalf("version() = %q, %v", v, err)
	}
	// system.* is closed until the session sets allow_unsafe_internals, in both protocols.
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM system.web_sessions WHERE id > $1", 0).Scan(&n)
	wantCode(t, err, "42501")
	_, err = conn.Exec(ctx, "SELECT count(*) FROM system.web_sessions")
	wantCode(t, err, "42501")
	exec(t, conn, "SET allow_unsafe_internals = on")
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM system.web_sessions WHERE id > $1", 0).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
	// AS OF SYSTEM TIME is removed before PostgreSQL sees it, and recorded.
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM system.web_sessions AS OF SYSTEM TIME '2026-01-02 03:04:05.123456+00:00' WHERE id > $1", 1).Scan(&n); err != nil || n != 2 {
		t.Fatalf("AOST count = %d, %v", n, err)
	}
	if got := p.AsOf(); len(got) != 1 || got[0] != "AS OF SYSTEM TIME '2026-01-02 03:04:05.123456+00:00'" {
		t.Errorf("AsOf = %q", got)
	}
	// Full scans of system.web_sessions are refused when told, unless the session allows them;
	// SET LOCAL lasts for its transaction only.
	p.SetRefuseFullScans(true)
	_, err = conn.Exec(ctx, "SELECT count(*) FROM system.web_sessions WHERE username = $1", "a")
	wantCode(t, err, "P0003")
	if _, err := conn.Exec(ctx, "SELECT username FROM system.web_sessions WHERE id = $1", 1); err != nil {
		t.Errorf("lookup by id refused: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL disallow_full_table_scans = off"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM system.web_sessions WHERE username = $1", "a"); err != nil {
		t.Errorf("full scan after SET LOCAL: %v", err)
	}
	tx.Commit(ctx)
	_, err = conn.Exec(ctx, "SELECT count(*) FROM system.web_sessions WHERE username = $1", "a")
	wantCode(t, err, "P0003")
	exec(t, conn, "SET disallow_full_table_scans = off")
	exec(t, conn, "SELECT count(*) FROM system.web_sessions")
	exec(t, conn, "RESET disallow_full_table_scans")
	_, err = conn.Exec(ctx, "SELECT count(*) FROM system.web_sessions")
	wantCode(t, err, "P0003")

	// Tables created from v26.1 on are schema_locked.
	exec(t, conn, "CREATE TABLE public.t (a INT)")
	_, err = conn.Exec(ctx, "ALTER TABLE public.t ADD COLUMN b INT")
	wantCode(t, err, "57000")
	exec(t, conn, "ALTER TABLE public.t SET (schema_locked = false)")
	exec(t, conn, "ALTER TABLE public.t ADD COLUMN b INT")
	exec(t, conn, "ALTER TABLE public.t SET (schema_locked = true)")
	if !p.SchemaLocked("t") {
		t.Error("t is not locked again")
	}
}

func TestProxyOlderVersions(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	exec(t, connect(t, db), `CREATE SCHEMA system; CREATE TABLE system.users (username TEXT)`)
	// v23.1 has no allow_unsafe_internals and no gate.
	old := connect(t, StartProxy(t, ProxyOptions{Version: "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu)"}).URL(db))
	_, err := old.Exec(ctx, "SET allow_unsafe_internals = on")
	wantCode(t, err, "42704")
	exec(t, old, "SELECT count(*) FROM system.users")
	// v25.4 knows it, on by default.
	v254 := connect(t, StartProxy(t, ProxyOptions{Version: "CockroachDB CCL v25.4.2 (x86_64-pc-linux-gnu)"}).URL(db))
	exec(t, v254, "SELECT count(*) FROM system.users")
	exec(t, v254, "SET allow_unsafe_internals = off")
	_, err = v254.Exec(ctx, "SELECT count(*) FROM system.users")
	wantCode(t, err, "42501")
}

// Without a version the proxy is plain PostgreSQL that records: CockroachDB-only SQL fails.
func TestProxyPassThrough(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	p := StartProxy(t, ProxyOptions{})
	conn := connect(t, p.URL(db))
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil || !strings.HasPrefix(v, "PostgreSQL") {
		t.Fatalf("version() = %q, %v", v, err)
	}
	_, err := conn.Exec(ctx, "SET allow_unsafe_internals = on")
	wantCode(t, err, "42704")
	if got := p.Statements(); len(got) != 2 || got[1] != "SET allow_unsafe_internals = on" {
		t.Errorf("Statements = %q", got)
	}
}

func TestProxyFaults(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	exec(t, connect(t, db), `CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)`)
	p := StartProxy(t, ProxyOptions{Version: CockroachV26})
	conn := connect(t, p.URL(db))

	// A statement, once.
	f := p.Inject(Fault{Point: AtStatement, Match: "FROM t WHERE"})
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM t WHERE id > $1", 0).Scan(&n)
	wantCode(t, err, "40001")
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t WHERE id > $1", 0).Scan(&n); err != nil || n != 10 {
		t.Fatalf("second try: %d, %v", n, err)
	}
	if p.Fired(f) != 1 {
		t.Errorf("fired %d times", p.Fired(f))
	}

	// In the middle of a stream: rows first, then the error.
	p.Inject(Fault{Point: MidStream, Match: "ORDER BY id", Rows: 4})
	rows, _ := conn.Query(ctx, "SELECT id FROM t WHERE id > $1 ORDER BY id", 0)
	got := 0
	for rows.Next() {
		got++
	}
	wantCode(t, rows.Err(), "40001")
	if got != 4 {
		t.Errorf("%d rows before the error, want 4", got)
	}
	exec(t, conn, "SELECT 1") // the connection still works

	// At the commit of a transaction that wrote to t: the transaction is rolled back.
	p.Inject(Fault{Point: AtCommit, Match: "INSERT INTO t"})
	tx, _ := conn.Begin(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ($1)", 11); err != nil {
		t.Fatal(err)
	}
	wantCode(t, tx.Commit(ctx), "40001")
	if conn.PgConn().TxStatus() != 'I' || conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n) != nil || n != 10 {
		t.Errorf("after the failed commit: status %c, %d rows", conn.PgConn().TxStatus(), n)
	}
}

// A deadlock in the PostgreSQL behind the proxy reaches the client as CockroachDB reports one:
// a retryable restart (40001), never PostgreSQL's 40P01, which cockroach-go does not retry.
func TestProxyDeadlockIsARestart(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	exec(t, connect(t, db), `CREATE TABLE locks (id INT8 PRIMARY KEY); INSERT INTO locks VALUES (1), (2)`)
	p := StartProxy(t, ProxyOptions{Version: CockroachV26})
	a, b := connect(t, p.URL(db)), connect(t, p.URL(db))
	txa, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txa.Rollback(ctx)
	txb, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txb.Rollback(ctx)
	if _, err := txa.Exec(ctx, "UPDATE locks SET id = id WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := txb.Exec(ctx, "UPDATE locks SET id = id WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	errA := make(chan error, 1)
	go func() {
		_, err := txa.Exec(ctx, "UPDATE locks SET id = id WHERE id = 2")
		errA <- err
	}()
	// b closes the cycle once a waits for b's lock (PostgreSQL then breaks it after
	// deadlock_timeout, 1 s by default, failing one of the two).
	watch := connect(t, db)
	var waiting bool
	for !waiting {
		if err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE locks%id = 2')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	_, errB := txb.Exec(ctx, "UPDATE locks SET id = id WHERE id = 1")
	if errB == nil {
		txb.Rollback(ctx) // b won: a is the one aborted
		errB = <-errA
	} else {
		txb.Rollback(ctx)
		<-errA
	}
	wantCode(t, errB, "40001")
}

// With full scans refused, a read of a whole table of the console's schema is refused too, in
// both protocols, until the session turns the guard off; a read with a WHERE or a LIMIT, and
// inserts, pass. Advisory locks are refused whatever the setting (CockroachDB has none).
func TestProxyConsoleTablesAndAdvisoryLocks(t *testing.T) {
	ctx := context.Background()
	db := NewDB(t)
	direct := connect(t, db)
	exec(t, direct, `CREATE SCHEMA console; CREATE TABLE console.admins (name TEXT PRIMARY KEY, role TEXT)`)
	p := StartProxy(t, ProxyOptions{Version: CockroachV26, RefuseFullScans: true})
	conn := connect(t, p.URL(db))
	exec(t, conn, "INSERT INTO console.admins VALUES ($1, 'owner')", "a")
	exec(t, conn, "INSERT INTO console.admins VALUES ('b', 'viewer')")
	var n int
	for _, sql := range []string{"SELECT count(*) FROM console.admins", "SELECT name FROM console.admins ORDER BY name",
		"UPDATE console.admins SET role = role", "DELETE FROM console.admins", `SELECT name FROM "console".admins`} {
		_, err := conn.Exec(ctx, sql)
		wantCode(t, err, "P0003")
		rows, _ := conn.Query(ctx, sql) // the extended protocol
		rows.Close()
		wantCode(t, rows.Err(), "P0003")
	}
	for _, sql := range []string{"SELECT count(*) FROM console.admins WHERE name = 'a'", "SELECT name FROM console.admins LIMIT 1",
		"SELECT count(*) FROM console.admins AS a JOIN console.admins AS b ON a.name = b.name WHERE a.name = 'a'"} {
		exec(t, conn, sql)
	}
	exec(t, conn, "SET disallow_full_table_scans = off")
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM console.admins").Scan(&n); err != nil || n != 2 {
		t.Errorf("with the guard off: %d, %v", n, err)
	}
	exec(t, conn, "RESET disallow_full_table_scans")
	p.SetRefuseFullScans(false)
	exec(t, conn, "SELECT count(*) FROM console.admins")

	for _, sql := range []string{"SELECT pg_advisory_lock(7364021, 1)", "SELECT pg_try_advisory_lock(1)",
		"SELECT pg_advisory_unlock(7364021, 1)", "SELECT pg_advisory_xact_lock(1)", "select PG_ADVISORY_LOCK (1)"} {
		_, err := conn.Exec(ctx, sql)
		wantCode(t, err, "0A000")
		if !strings.Contains(err.Error(), "CockroachDB has no advisory locks") {
			t.Errorf("%s: %v", sql, err)
		}
		rows, _ := conn.Query(ctx, sql)
		rows.Close()
		wantCode(t, rows.Err(), "0A000")
	}
	// A plain PostgreSQL behind the recording proxy keeps its advisory locks.
	plain := connect(t, StartProxy(t, ProxyOptions{}).URL(db))
	var ok bool
	if err := plain.QueryRow(ctx, "SELECT pg_try_advisory_lock(1)").Scan(&ok); err != nil || !ok {
		t.Errorf("plain PostgreSQL: %v, %v", ok, err)
	}
}

func TestScansConsoleTable(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT count(*) FROM console.admins":                                   true,
		"SELECT a FROM console.audit_log  ORDER BY id DESC":                     true,
		"SELECT a FROM console.audit_log WHERE id < $1 ORDER BY id DESC":        false,
		"SELECT a FROM console.audit_log WHERE admin = $1 ORDER BY id DESC":     false,
		"INSERT INTO console.audit_log (a) VALUES (1)":                          false,
		"CREATE TABLE IF NOT EXISTS console.admins (name TEXT)":                 false,
		"SELECT name FROM console.api_tokens ORDER BY name LIMIT 10":            false,
		"SELECT count(*) FROM system.web_sessions":                              false, // ScansWebSessions' case
		"UPDATE console.admin_sessions SET last_seen = now() WHERE id = $1":     false,
		"WITH x AS (SELECT 1) SELECT * FROM x JOIN console.admins AS a ON true": true,
	} {
		if got := ScansConsoleTable(sql); got != want {
			t.Errorf("ScansConsoleTable(%q) = %v, want %v", sql, got, want)
		}
	}
}
