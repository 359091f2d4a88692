package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

// The reference page's list and logout examples, with the footer cockroach prints.
const (
	referenceList = `  username |     session ID     |          created           |          expires           |          revoked           |         last used
-----------+--------------------+----------------------------+----------------------------+----------------------------+-----------------------------
  root     | 784428093743988737 | 2022-08-02 16:47:36.342338 | 2022-08-02 17:47:36.341997 | NULL                       | 2022-08-02 16:47:36.342338
  root     | 784428586862215169 | 2022-08-02 16:50:06.830294 | 2022-08-02 17:50:06.829974 | NULL                       | 2022-08-02 16:50:06.830294
  web_user | 784447132063662081 | 2022-08-02 18:24:26.37664  | 2022-08-02 19:24:26.376299 | 2022-08-02 18:24:50.819614 | 2022-08-02 18:24:26.37664
  web_user | 784449147579924481 | 2022-08-02 18:34:41.463345 | 2022-08-02 19:34:41.463006 | 2022-08-02 18:47:20.105254 | 2022-08-02 18:34:41.463345
(4 rows)
`
	referenceLogout = `  username |     session ID     |          revoked
-----------+--------------------+-----------------------------
  web_user | 784445853689282561 | 2022-08-02 18:24:50.819614
  web_user | 784447132063662081 | 2022-08-02 18:24:50.819614
  web_user | 784449147579924481 | 2022-08-02 18:47:20.105254
  web_user | 784449219848241153 | 2022-08-02 18:47:20.105254
(4 rows)
`
)

// firstID is the session ID of the reference page's login example; the scenario makes the
// session table hand out IDs from there.
const firstID = 784445853689282561

func TestAuthSessionEmbedded(t *testing.T) {
	t.Parallel()
	tg := embeddedTarget(t)
	// The first commands start and stop the embedded server themselves: the test attaches
	// only later (for its own queries).
	referenceScenario(t, tg)
	tg.detach(t)
	if pid, ok := serverPID(t, tg.dataDir); ok {
		t.Errorf("PostgreSQL (pid %d) still runs after every process left", pid)
	}
}

func TestAuthSessionURL(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	// Roles belong to the cluster, which outlives this test's database.
	pool := tg.db(t)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP ROLE IF EXISTS web_user"); err != nil {
			t.Error(err)
		}
	})
	referenceScenario(t, tg)
}

// referenceScenario runs the reference page's examples as console auth-session commands, on
// a target whose database has no sessions and no web_user yet. The golden files are the same
// for every target.
func referenceScenario(t *testing.T, tg *target) {
	ctx := context.Background()
	if got := tg.ok(t, "sql", "-e", "CREATE USER web_user"); got != "CREATE ROLE\n" {
		t.Fatalf("sql -e CREATE USER: got %q", got)
	}
	golden(t, "list-empty.table.golden", tg.ok(t, "auth-session", "list", "--format=table"))

	// Now that the console created its table, make it hand out the reference page's IDs.
	tg.exec(t, fmt.Sprintf("ALTER TABLE console.web_sessions ALTER COLUMN id RESTART WITH %d", firstID))

	var cookies []string // unmasked, in ID order
	loginOut := func(format string) string {
		out := tg.ok(t, "auth-session", "login", "web_user", "--format="+format)
		_, rest, _ := strings.Cut(out, "session=")
		value, _, _ := strings.Cut(rest, ";")
		cookies = append(cookies, "session="+value)
		return maskCookies(t, out)
	}
	golden(t, "login.table.golden", loginOut("table"))
	golden(t, "login.csv.golden", loginOut("csv"))
	golden(t, "login.json.golden", loginOut("json"))
	// As typed on the page: off a terminal the default format is tsv.
	out := tg.ok(t, "auth-session", "login", "web_user")
	golden(t, "login.tsv.golden", maskCookies(t, out))
	cookies = append(cookies, strings.Fields(strings.Split(out, "\n")[1])[2])

	// --expire-after=4h30m and --only-cookie.
	tg.ok(t, "auth-session", "login", "web_user", "--expire-after=4h30m")
	onlyCookie := tg.ok(t, "auth-session", "login", "web_user", "--only-cookie")
	if strings.Count(onlyCookie, "\n") != 1 || !strings.HasPrefix(onlyCookie, "session=") || !strings.HasSuffix(onlyCookie, "; Path=/; HttpOnly; Secure\n") {
		t.Fatalf("--only-cookie printed %q, want one cookie line", onlyCookie)
	}
	c, err := sessionstore.DecodeCookie(onlyCookie)
	if err != nil {
		t.Fatalf("decode the --only-cookie output: %v", err)
	}
	if c.ID != firstID+5 {
		t.Errorf("--only-cookie session ID %d, want %d", c.ID, firstID+5)
	}
	rootOut := tg.ok(t, "auth-session", "login", "root", "--format=json")
	if rows := jsonRows(t, rootOut); len(rows) != 1 || rows[0]["username"] != "root" || rows[0]["session ID"] != strconv.Itoa(firstID+6) {
		t.Errorf("login root: %s", rootOut)
	}

	// Every cookie printed verifies, for its user.
	store := tg.store(t, sessionstore.Options{Flavor: pgdb.Postgres})
	for i, ck := range append(cookies, onlyCookie) {
		v, err := store.Verify(ctx, ck)
		if err != nil || v.Username != "web_user" {
			t.Errorf("cookie %d: Verify = %+v, %v; want web_user", i, v, err)
		}
	}

	// list: every session in ID order, expiring after the --expire-after (1h by default).
	rows := jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
	if len(rows) != 7 {
		t.Fatalf("list: %d rows, want 7: %v", len(rows), rows)
	}
	for i, r := range rows {
		wantUser, wantTTL := "web_user", time.Hour
		switch i {
		case 4:
			wantTTL = 4*time.Hour + 30*time.Minute
		case 6:
			wantUser = "root"
		}
		created, expires := parseTS(t, r["created"]), parseTS(t, r["expires"])
		if r["username"] != wantUser || r["session ID"] != strconv.Itoa(firstID+i) || expires.Sub(created) != wantTTL ||
			r["revoked"] != "NULL" || r["last used"] != r["created"] {
			t.Errorf("list row %d = %v; want %s, ID %d, expiring %s after creation, not revoked", i, r, wantUser, firstID+i, wantTTL)
		}
	}

	// The audit log has every login, without a cookie.
	var entries int64
	for i, ck := range append(cookies, onlyCookie) {
		id := int64(firstID + i)
		if i == len(cookies) {
			id = firstID + 5
		}
		value := strings.TrimPrefix(strings.Split(ck, ";")[0], "session=")
		// The actor is the OS account, not $USER (which the test sets to "tester").
		entries += tg.queryInt(t, `SELECT count(*) FROM console.audit_log WHERE action = 'issue' AND admin = $3
			AND target = 'web_user' AND session_id = $1 AND expires_at IS NOT NULL
			AND strpos(detail || target || admin || remote_addr, $2) = 0`, id, value, osActor(t))
	}
	if entries != int64(len(cookies)+1) {
		t.Errorf("audit log: %d matching issue entries, want %d", entries, len(cookies)+1)
	}

	// logout as typed on the page: every web_user session, revoked at one time, in ID order.
	out = tg.ok(t, "auth-session", "logout", "web_user")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 7 || lines[0] != "username\tsession ID\trevoked" {
		t.Fatalf("logout web_user:\n%s", out)
	}
	first := strings.Split(lines[1], "\t")
	revokedAt := parseTS(t, first[2])
	for i, l := range lines[1:] {
		want := fmt.Sprintf("web_user\t%d\t%s", firstID+i, first[2])
		if l != want {
			t.Errorf("logout line %d = %q, want %q", i+1, l, want)
		}
	}
	if _, err := store.Verify(ctx, onlyCookie); !isReason(err, sessionstore.ReasonRevoked) {
		t.Errorf("Verify after logout: %v, want %q", err, sessionstore.ReasonRevoked)
	}
	// Logging out twice keeps the first revocation time.
	again := jsonRows(t, tg.ok(t, "auth-session", "logout", "web_user", "--format=json"))
	if len(again) != 6 {
		t.Fatalf("second logout: %v", again)
	}
	for _, r := range again {
		if !parseTS(t, r["revoked"]).Equal(revokedAt) {
			t.Errorf("second logout: %v, want the first revocation time %s", r, first[2])
		}
	}
	rowsAudit, err := tg.db(t).Query(ctx, `SELECT count FROM console.audit_log WHERE action = 'revoke-all' AND target = 'web_user' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rowsAudit, pgx.RowTo[int64])
	if err != nil || !slices.Equal(counts, []int64{6, 0}) {
		t.Errorf("audit log revoke-all counts = %v, %v; want [6 0]", counts, err)
	}
	// root's session is untouched.
	rows = jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
	if r := rows[6]; r["username"] != "root" || r["revoked"] != "NULL" {
		t.Errorf("root's session after logout web_user: %v", r)
	}
	for _, r := range rows[:6] {
		if !parseTS(t, r["revoked"]).Equal(revokedAt) {
			t.Errorf("list after logout: %v, want revoked %s", r, first[2])
		}
	}

	// The page's list and logout examples, on the page's data, byte for byte.
	tg.exec(t, `DELETE FROM console.web_sessions`)
	tg.exec(t, `INSERT INTO console.web_sessions (id, "hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt") VALUES
		(784428093743988737, '\x00', 'root', '2022-08-02 16:47:36.342338', '2022-08-02 17:47:36.341997', NULL, '2022-08-02 16:47:36.342338'),
		(784428586862215169, '\x00', 'root', '2022-08-02 16:50:06.830294', '2022-08-02 17:50:06.829974', NULL, '2022-08-02 16:50:06.830294'),
		(784447132063662081, '\x00', 'web_user', '2022-08-02 18:24:26.37664', '2022-08-02 19:24:26.376299', '2022-08-02 18:24:50.819614', '2022-08-02 18:24:26.37664'),
		(784449147579924481, '\x00', 'web_user', '2022-08-02 18:34:41.463345', '2022-08-02 19:34:41.463006', '2022-08-02 18:47:20.105254', '2022-08-02 18:34:41.463345')`)
	list := tg.ok(t, "auth-session", "list", "--format=table")
	if list != referenceList {
		t.Errorf("list differs from the reference page:\n--- got\n%s--- want\n%s", list, referenceList)
	}
	golden(t, "list.table.golden", list)
	golden(t, "list.csv.golden", tg.ok(t, "auth-session", "list", "--format=csv"))
	golden(t, "list.json.golden", tg.ok(t, "auth-session", "list", "--format=json"))
	golden(t, "list.tsv.golden", tg.ok(t, "auth-session", "list"))

	// Two more sessions revoked earlier: logout keeps every earlier revocation time.
	tg.exec(t, `INSERT INTO console.web_sessions (id, "hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt") VALUES
		(784445853689282561, '\x00', 'web_user', '2022-08-02 18:17:55.125', '2022-08-02 19:17:55.125', '2022-08-02 18:24:50.819614', '2022-08-02 18:17:55.125'),
		(784449219848241153, '\x00', 'web_user', '2022-08-02 18:35:03.5', '2022-08-02 19:35:03.5', '2022-08-02 18:47:20.105254', '2022-08-02 18:35:03.5')`)
	logout := tg.ok(t, "auth-session", "logout", "web_user", "--format=table")
	if logout != referenceLogout {
		t.Errorf("logout differs from the reference page:\n--- got\n%s--- want\n%s", logout, referenceLogout)
	}
	golden(t, "logout.table.golden", logout)
	golden(t, "logout.csv.golden", tg.ok(t, "auth-session", "logout", "web_user", "--format=csv"))
	golden(t, "logout.json.golden", tg.ok(t, "auth-session", "logout", "web_user", "--format=json"))
	golden(t, "logout-none.table.golden", tg.ok(t, "auth-session", "logout", "nobody", "--format=table"))
	golden(t, "logout-none.json.golden", tg.ok(t, "auth-session", "logout", "nobody", "--format=json"))
}

func isReason(err error, r sessionstore.Reason) bool {
	var ie *sessionstore.InvalidSessionError
	return errors.As(err, &ie) && ie.Reason == r
}

// crdbFixture is a fresh database holding CockroachDB's system.users and system.web_sessions
// (v23.1+ shape), reached directly.
func crdbFixture(t *testing.T) *target {
	t.Helper()
	direct := urlTarget(t)
	fixture, err := os.ReadFile("../../sessionstore/testdata/crdb_v23.sql")
	if err != nil {
		t.Fatal(err)
	}
	direct.exec(t, string(fixture))
	return direct
}

// cockroachTarget is a database holding CockroachDB's system.users and system.web_sessions
// (v23.1+ shape) behind a proxy with CockroachDB v26.1's personality that refuses unguarded full
// scans of system.web_sessions: the console detects CockroachDB there. direct is the database
// itself, for the test's own queries.
func cockroachTarget(t *testing.T) (crdb, direct *target, p *pgtest.Proxy) {
	t.Helper()
	direct = crdbFixture(t)
	p = pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
	return &target{name: "cockroach", url: p.URL(direct.url)}, direct, p
}

// TestAuthSessionCockroach runs the binary on CockroachDB (through the proxy): login, list and
// logout on system.web_sessions, names normalized as CockroachDB does.
func TestAuthSessionCockroach(t *testing.T) {
	t.Parallel()
	tg, direct, p := cockroachTarget(t)

	rows := jsonRows(t, tg.ok(t, "auth-session", "login", "root", "--format=json"))
	if len(rows) != 1 || rows[0]["username"] != "root" {
		t.Fatalf("login root: %v", rows)
	}
	id, _ := strconv.ParseInt(rows[0]["session ID"], 10, 64)
	c, err := sessionstore.DecodeCookie(rows[0]["authentication cookie"])
	if err != nil || c.ID != id {
		t.Fatalf("cookie %q: %+v, %v; want session %d", rows[0]["authentication cookie"], c, err, id)
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions WHERE id = $1 AND username = 'root' AND user_id = 1`, id); n != 1 {
		t.Errorf("system.web_sessions has %d rows for session %d of root with user_id 1, want 1", n, id)
	}
	store := direct.store(t, sessionstore.Options{Flavor: pgdb.Cockroach})
	if v, err := store.Verify(context.Background(), rows[0]["authentication cookie"]); err != nil || v.Username != "root" {
		t.Errorf("Verify: %+v, %v", v, err)
	}
	// Names are normalized as CockroachDB does.
	rows = jsonRows(t, tg.ok(t, "auth-session", "login", "ROOT", "--format=json"))
	if len(rows) != 1 || rows[0]["username"] != "root" {
		t.Errorf("login ROOT: %v", rows)
	}

	before := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions`)
	tg.fails(t, crdbErr("auth-session login", `user "admin" does not exist`), "auth-session", "login", "admin")
	tg.fails(t, crdbErr("auth-session login", `user "nobody" does not exist`), "auth-session", "login", "nobody")
	if after := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions`); after != before {
		t.Errorf("sessions: %d before the failed logins, %d after", before, after)
	}

	// list reads at one AS OF SYSTEM TIME; cut off by a 40001 after a row, it resumes.
	p.ResetRecords()
	f := p.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "AS OF SYSTEM TIME", Rows: 1})
	list := jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
	if len(list) != 2 || list[0]["session ID"] != strconv.FormatInt(id, 10) || list[0]["revoked"] != "NULL" || list[1]["session ID"] == list[0]["session ID"] {
		t.Errorf("list: %v", list)
	}
	if asOf := p.AsOf(); p.Fired(f) != 1 || len(asOf) != 2 || asOf[0] != asOf[1] {
		t.Errorf("list: fault fired %d times, AS OF SYSTEM TIME %q", p.Fired(f), asOf)
	}
	// logout retried after a 40001 at its commit revokes once, audited once.
	f = p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "UPDATE system.web_sessions"})
	logout := jsonRows(t, tg.ok(t, "auth-session", "logout", "Root", "--format=json"))
	if len(logout) != 2 || logout[0]["username"] != "root" || logout[0]["revoked"] == "NULL" || p.Fired(f) != 1 {
		t.Errorf("logout Root: %v (fault fired %d times)", logout, p.Fired(f))
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`); n != 0 {
		t.Errorf("%d sessions not revoked after logout", n)
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM console.audit_log WHERE action = 'revoke-all' AND admin LIKE 'cli:%' AND count = 2`); n != 1 {
		t.Errorf("%d audit rows for the logout, want 1", n)
	}
	// The console's own tables never go into system.
	if n := direct.queryInt(t, `SELECT count(*) FROM pg_tables WHERE schemaname = 'system'`); n != 2 {
		t.Errorf("%d tables in schema system, want the fixture's 2", n)
	}
}

// With --refuse-full-scans, list and logout (which read all of system.web_sessions) refuse with
// the reason; login works.
func TestAuthSessionRefuseFullScans(t *testing.T) {
	t.Parallel()
	tg, direct, _ := cockroachTarget(t)
	tg.ok(t, "--refuse-full-scans", "auth-session", "login", "root", "--only-cookie")
	tg.fails(t, crdbErr("auth-session list", "listing every session reads the whole system.web_sessions table (the list has every row), and the console runs with --refuse-full-scans"),
		"--refuse-full-scans", "auth-session", "list")
	tg.fails(t, crdbErr("auth-session logout", "revoking every session of a user reads the whole system.web_sessions table (it has no index on username), and the console runs with --refuse-full-scans"),
		"--refuse-full-scans", "auth-session", "logout", "root")
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`); n != 1 {
		t.Errorf("%d active sessions after a refused logout, want 1", n)
	}
}

// --dialect cockroach forced on plain PostgreSQL (the fixture, no personality): the console
// uses system.web_sessions but sends none of its CockroachDB-only statements, which PostgreSQL
// would refuse anyway.
func TestCockroachDialectOnPostgres(t *testing.T) {
	t.Parallel()
	direct := crdbFixture(t)
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{}) // records only
	tg := &target{name: "recorded", url: p.URL(direct.url)}
	crdb := func(args ...string) []string { return append([]string{"--dialect", "cockroach"}, args...) }
	tg.ok(t, crdb("auth-session", "login", "root", "--only-cookie")...)
	if rows := jsonRows(t, tg.ok(t, crdb("auth-session", "list", "--format=json")...)); len(rows) != 1 {
		t.Errorf("list: %v", rows)
	}
	tg.ok(t, crdb("auth-session", "logout", "root")...)
	checkNoCockroachStatements(t, p.Statements())
}

// cockroachOnly matches every statement the console may send only to CockroachDB.
var cockroachOnly = regexp.MustCompile(`(?i)allow_unsafe_internals|disallow_full_table_scans|as of system time|cockroach_restart|schema_locked|migration_lock|isolation level serializable`)

// checkNoCockroachStatements fails if stmts hold a CockroachDB-only statement or never name
// system.web_sessions.
func checkNoCockroachStatements(t *testing.T, stmts []string) {
	t.Helper()
	sawSystem := false
	for _, s := range stmts {
		if cockroachOnly.MatchString(s) {
			t.Errorf("sent to PostgreSQL: %q", s)
		}
		sawSystem = sawSystem || strings.Contains(s, "system.web_sessions")
	}
	if !sawSystem {
		t.Errorf("the statements never named system.web_sessions: %q", stmts)
	}
}

// serve with --dialect cockroach on plain PostgreSQL: signing in (the throttle, an admin
// session, its audit row), the sessions page, issuing, the admins and audit pages and both
// exports send none of the CockroachDB-only statements either.
func TestServeCockroachDialectOnPostgres(t *testing.T) {
	t.Parallel()
	direct := crdbFixture(t)
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{}) // records only
	s := startServe(t, "--dialect", "cockroach", "--url", p.URL(direct.url), "--data-dir", t.TempDir())
	web := &http.Client{}
	s.signIn(t, web)
	s.issueOnWeb(t, web, "root")
	for _, path := range []string{"/sessions?status=all", "/sessions.csv?status=all", "/audit", "/audit.csv", "/admins"} {
		resp, err := web.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions WHERE username = 'root'`); n != 1 {
		t.Errorf("%d sessions of root in system.web_sessions, want the one issued", n)
	}
	checkNoCockroachStatements(t, p.Statements())
}

// A CockroachDB URL naming the system database is refused at start, with what to do instead.
func TestSystemDatabaseRefused(t *testing.T) {
	system := pgtest.NamedDB(t, "system")
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26})
	tg := &target{name: "system", url: p.URL(system)}
	tg.fails(t, crdbErr("auth-session list", `the database URL names the database "system", which holds CockroachDB's own tables; the console cannot keep its own schema there: connect to defaultdb or another database (for example postgresql://user@host:26257/defaultdb)`),
		"auth-session", "list")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	// A user with sessions, whose name the LIKE wildcards below would match.
	user := fmt.Sprintf("web_user_%d", os.Getpid())
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
	tg.ok(t, "auth-session", "login", user)
	tg.ok(t, "auth-session", "login", user)

	state := func() string {
		return fmt.Sprint(
			tg.queryInt(t, `SELECT count(*) FROM console.web_sessions`),
			tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE "revokedAt" IS NOT NULL`),
			tg.queryInt(t, `SELECT count(*) FROM console.audit_log`))
	}
	long := strings.Repeat("a", 200)
	names := []struct{ name, wantErr string }{
		{"it's", `user "it's" does not exist`},
		{`say "hi"`, `user "say \"hi\"" does not exist`},
		{"web user", `user "web user" does not exist`},
		{"%", `user "%" does not exist`},
		{"_", `user "_" does not exist`},
		{"web%", `user "web%" does not exist`},
		{"web_user_%", `user "web_user_%" does not exist`},
		{"_eb_user", `user "_eb_user" does not exist`},
		{"ünïcødé", `user "ünïcødé" does not exist`},
		{"用户", `user "用户" does not exist`},
		{"<script>alert(1)</script>", `user "<script>alert(1)</script>" does not exist`},
		{"x'; DROP TABLE console.web_sessions; --", `user "x'; DROP TABLE console.web_sessions; --" does not exist`},
		{long, `user "` + long + `" does not exist`},
		{"", `invalid input: username is empty`},
		{"tab\there", `invalid input: username contains control characters`},
	}
	for _, tc := range names {
		t.Run(fmt.Sprintf("login %.20q", tc.name), func(t *testing.T) {
			before := state()
			tg.fails(t, crdbErr("auth-session login", tc.wantErr), "auth-session", "login", tc.name)
			if after := state(); after != before {
				t.Errorf("rows, revoked rows, audit entries: %s before, %s after", before, after)
			}
		})
	}
	// logout of those names revokes nothing: an unknown user has no sessions, and wildcards
	// are plain characters.
	for _, tc := range names[:len(names)-2] {
		t.Run(fmt.Sprintf("logout %.20q", tc.name), func(t *testing.T) {
			out := tg.ok(t, "auth-session", "logout", tc.name, "--format=csv")
			if out != "UPDATE 0\n" {
				t.Errorf("logout: %q, want no rows (UPDATE 0)", out)
			}
			if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE "revokedAt" IS NOT NULL`); n != 0 {
				t.Errorf("%d sessions revoked", n)
			}
		})
	}

	// Bad syntax is a flag error, as cockroach reports a bad duration.
	syntax := []struct{ value, wantErr string }{
		{"0s", `the expiry must be positive`},
		{"0", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"-1h", `the expiry must be positive`},
		{"1d", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"abc", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"500ms", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"1h30", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"", `use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{"99999999999h", `far too long`},
	}
	for _, tc := range syntax {
		t.Run("expire-after "+tc.value, func(t *testing.T) {
			before := state()
			args := []string{"auth-session", "login", user, "--expire-after=" + tc.value}
			checkFlagError(t, tg.console(t, args...), crdbErr("auth-session login", fmt.Sprintf("invalid argument %q for \"--expire-after\" flag: %s", tc.value, tc.wantErr)), args)
			if after := state(); after != before {
				t.Errorf("rows, revoked rows, audit entries: %s before, %s after", before, after)
			}
		})
	}
	// Out of range: the maximum is --max-expire-after, which the hint names.
	hint := "\nHINT: --max-expire-after (now 744h) is the longest expiry login grants; raise it for longer sessions"
	durations := []struct{ value, wantErr string }{
		{"0.5s", `invalid --expire-after "0.5s": expiry must be at least 1s, got 500ms` + hint},
		{"999999h", `invalid --expire-after "999999h": expiry 999999h0m0s is longer than the maximum 744h` + hint},
	}
	for _, tc := range durations {
		t.Run("expire-after "+tc.value, func(t *testing.T) {
			before := state()
			tg.fails(t, crdbErr("auth-session login", tc.wantErr), "auth-session", "login", user, "--expire-after="+tc.value)
			if after := state(); after != before {
				t.Errorf("rows, revoked rows, audit entries: %s before, %s after", before, after)
			}
		})
	}
	t.Run("max-expire-after", func(t *testing.T) {
		before := state()
		tg.fails(t, crdbErr("auth-session login", `invalid --expire-after "3h": expiry 3h0m0s is longer than the maximum 2h`+
			"\nHINT: --max-expire-after (now 2h) is the longest expiry login grants; raise it for longer sessions"),
			"--max-expire-after=2h", "auth-session", "login", user, "--expire-after=3h")
		if after := state(); after != before {
			t.Errorf("state %s before, %s after", before, after)
		}
		rows := jsonRows(t, tg.ok(t, "--max-expire-after=2h", "auth-session", "login", user, "--expire-after=1.5h", "--format=json"))
		if len(rows) != 1 {
			t.Fatalf("login --expire-after=1.5h: %v", rows)
		}
	})
}

// TestOddUsernames: PostgreSQL role names may hold any character; such users log in, list and
// log out like any other, and the output shows their names as they are.
func TestOddUsernames(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	for i, name := range []string{
		`Ünï "q" 'x' %_ <b>&amp;</b>`,
		"space in name",
		"用户" + strconv.Itoa(os.Getpid()),
	} {
		name := fmt.Sprintf("%s %d", name, i)
		tg.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
		t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
		rows := jsonRows(t, tg.ok(t, "auth-session", "login", name, "--format=json"))
		if len(rows) != 1 || rows[0]["username"] != name {
			t.Fatalf("login %q: %v", name, rows)
		}
		rows = jsonRows(t, tg.ok(t, "auth-session", "logout", name, "--format=json"))
		if len(rows) != 1 || rows[0]["username"] != name || rows[0]["revoked"] == "NULL" {
			t.Errorf("logout %q: %v", name, rows)
		}
	}
	list := jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
	if len(list) != 3 {
		t.Errorf("list: %v", list)
	}
}

// TestAuditFailure: an action the audit log cannot record does not happen: a login issues no
// session and prints no cookie, a logout revokes nothing and prints nothing, and both say why.
func TestAuditFailure(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "auth-session", "list") // migrate
	tg.exec(t, `CREATE FUNCTION console.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log is down'; END $$`)
	tg.exec(t, `CREATE TRIGGER audit_down BEFORE INSERT ON console.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_down()`)

	const why = "nothing was changed: the audit log could not record the action: audit: record: audit log is down\nSQLSTATE: P0001"
	tg.fails(t, crdbErr("auth-session login", why), "auth-session", "login", "root", "--only-cookie")
	if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions`); n != 0 {
		t.Errorf("%d sessions issued without an audit row", n)
	}

	tg.exec(t, `INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt")
		VALUES ('\x00', 'root', '2024-01-01 00:00:00', '2124-01-01 00:00:00', '2024-01-01 00:00:00')`)
	r := tg.console(t, "auth-session", "logout", "root", "--format=csv")
	if r.code == 0 || r.stdout != "" || r.stderr != crdbErr("auth-session logout", why)+"\n" {
		t.Errorf("logout:\n%s", r)
	}
	if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE "revokedAt" IS NULL`); n != 1 {
		t.Errorf("%d sessions left active, want the 1 the failed logout must not have revoked", n)
	}
}

// What an operator sees when a login's commit gets no answer (it was applied: one session, one
// audit row) and when a logout is aborted on every try (nothing changed).
func TestAuthSessionUnknownCommitAndRetriesRunOut(t *testing.T) {
	t.Parallel()
	tg, direct, p := cockroachTarget(t)
	tg.ok(t, "auth-session", "list") // migrate
	f := p.Inject(pgtest.Fault{Point: pgtest.CutAfterCommit, Match: "INSERT INTO system.web_sessions"})
	r := tg.console(t, "auth-session", "login", "root")
	if want := crdbErr("auth-session login", "sessionstore: commit: the database did not confirm the commit: the change may or may not have been applied: conn closed") + "\n"; r.code == 0 || r.stdout != "" || r.stderr != want || p.Fired(f) != 1 {
		t.Errorf("login with its commit's answer lost:\n%s\nwant stderr %q", r, want)
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions`); n != 1 {
		t.Errorf("%d sessions, want the 1 the server committed", n)
	}
	if n := direct.queryInt(t, `SELECT count(*) FROM console.audit_log WHERE action = 'issue'`); n != 1 {
		t.Errorf("%d audit rows for the login, want 1", n)
	}
	f = p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "UPDATE system.web_sessions", Times: pgdb.TxRetries + 1})
	r = tg.console(t, "auth-session", "logout", "root")
	if want := "the database aborted it 11 times in a row because of conflicting transactions"; r.code == 0 || !strings.Contains(r.stderr, want) || p.Fired(f) != pgdb.TxRetries+1 {
		t.Errorf("logout aborted on every try:\n%s\nwant %q", r, want)
	}
	t.Logf("an operator sees:\n%s", r.stderr)
	if n := direct.queryInt(t, `SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`); n != 1 {
		t.Errorf("%d active sessions after a logout that never committed, want 1", n)
	}
}
