package handlers

import (
	"context"
	"encoding/csv"
	"html"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

// cockroachDB is a database holding CockroachDB's system.users and system.web_sessions (v23.1
// shape, from the sessionstore fixture) with a user web_user, and a proxy in front of it with
// CockroachDB v26.1's personality that refuses unguarded full scans of system.web_sessions. It
// returns the URL through the proxy, the proxy, and a count of the database itself (for the
// test's own queries, which the proxy would refuse as full scans).
func cockroachDB(t *testing.T) (string, *pgtest.Proxy, func(sql string) int) {
	t.Helper()
	ctx := context.Background()
	dbURL := pgtest.NewDB(t)
	fixture, err := os.ReadFile("../../sessionstore/testdata/crdb_v23.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, string(fixture)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO system.users (username, "isRole", user_id) VALUES ('web_user', false, 100)`); err != nil {
		t.Fatal(err)
	}
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	return p.URL(dbURL), p, count
}

// The console on CockroachDB (detected through SELECT version()): system.web_sessions and
// system.users. Issue, list, revoke-all, exports and verify work as on a cluster, with
// CockroachDB's username normalization, on a cluster that refuses full scans by default.
func TestCockroachDialect(t *testing.T) {
	dbURL, p, count := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	if s.sessions.Table() != "system.web_sessions" {
		t.Fatalf("table %s", s.sessions.Table())
	}
	c := s.signIn(t)

	// Issue for root and for WEB_User (normalized to web_user); a role cannot get a session.
	for _, name := range []string{"root", "WEB_User"} {
		r := c.hxPost("/sessions", url.Values{"username": {name}, "expire_after": {"1h"}})
		wantStatus(t, r, http.StatusOK)
		cookie := html.UnescapeString(textOf(r.body, "issued-cookie"))
		v := c.do("GET", "/auth/verify", nil, map[string]string{"Cookie": strings.Split(cookie, ";")[0]})
		wantStatus(t, v, http.StatusOK)
		if want := strings.ToLower(name); v.Header.Get("X-Auth-User") != want {
			t.Errorf("verify: user %q, want %q", v.Header.Get("X-Auth-User"), want)
		}
	}
	r := c.hxPost("/sessions", url.Values{"username": {"admin"}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, html.UnescapeString(r.body), `user "admin" does not exist`)
	if n := count(`SELECT count(*) FROM system.web_sessions WHERE user_id = 100`); n != 1 {
		t.Errorf("web_user's session has no user_id: %d rows", n)
	}

	// The table lists system.web_sessions; a filter typed in upper case finds the user.
	r = c.hxGet("/sessions?user=Web_User&status=all")
	if got := rows(r.body); len(got) != 1 || got[0].user != "web_user" {
		t.Fatalf("rows %+v", got)
	}
	wantStatus(t, c.hxGet("/users/WEB_USER/revoke"), http.StatusOK)
	r = c.hxPost("/users/WEB_USER/revoke", nil)
	if got := textOf(r.body, "notice"); got != "Revoked 1 session of web_user (1 was active)." {
		t.Errorf("notice %q", got)
	}
	if n := count(`SELECT count(*) FROM system.web_sessions WHERE username = 'web_user' AND "revokedAt" IS NULL`); n != 0 {
		t.Errorf("%d sessions of web_user still active", n)
	}
	// Exports read every row at one AS OF SYSTEM TIME.
	p.ResetRecords()
	r = c.get("/sessions.csv?status=all")
	wantStatus(t, r, http.StatusOK)
	if recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll(); err != nil || len(recs) != 3 {
		t.Errorf("CSV: %v %q", err, recs)
	}
	wantStatus(t, c.get("/audit.csv"), http.StatusOK)
	if len(p.AsOf()) != 2 {
		t.Errorf("the exports sent AS OF SYSTEM TIME %d times, want once each", len(p.AsOf()))
	}
	// Console tables stay out of the system schema.
	if n := count(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'system'`); n != 2 {
		t.Errorf("%d tables in the system schema, want the fixture's 2", n)
	}
}

// With --refuse-full-scans, what would read all of system.web_sessions answers a clear message;
// the rest of the console works.
func TestCockroachRefuseFullScans(t *testing.T) {
	dbURL, _, count := cockroachDB(t)
	s := newServerStore(t, dbURL, Config{}, sessionstore.Options{RefuseFullScans: true})
	c := s.signIn(t)
	r := c.hxPost("/sessions", url.Values{"username": {"web_user"}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusOK)

	// The default view (active sessions, an index) shows its rows; the counts say why they are missing.
	r = c.get("/sessions")
	wantStatus(t, r, http.StatusOK)
	if got := rows(r.body); len(got) != 1 {
		t.Errorf("rows %+v", got)
	}
	wantContains(t, r.body, `data-testid="count-active">–<`)
	if got := textOf(r.body, "counts-off"); got != "Not counted: counting reads the whole session table, and the console runs with --refuse-full-scans." {
		t.Errorf("counts-off %q", got)
	}
	for _, path := range []string{"/sessions?user=web_user", "/users/web_user/revoke", "/sessions.csv?status=all"} {
		r := c.get(path)
		wantStatus(t, r, http.StatusConflict)
		wantContains(t, html.UnescapeString(r.body), "reads the whole system.web_sessions table", "--refuse-full-scans")
	}
	r = c.hxPost("/users/web_user/revoke", nil)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, html.UnescapeString(r.body), "Refused: revoking every session of a user reads the whole system.web_sessions table (it has no index on username)")
	if n := count(`SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`); n != 1 {
		t.Errorf("%d sessions active after a refused revoke-all, want 1", n)
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'revoke-all'`); n != 0 {
		t.Errorf("a refused revoke-all was audited")
	}
}

// A 40001 at the commit of an issue (CockroachDB's RELEASE SAVEPOINT) runs it again: the admin
// gets one cookie, and there is one session and one audit row.
func TestCockroachIssueRetried(t *testing.T) {
	dbURL, p, count := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	c := s.signIn(t)
	f := p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO system.web_sessions"})
	r := c.hxPost("/sessions", url.Values{"username": {"web_user"}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusOK)
	if p.Fired(f) != 1 {
		t.Fatalf("the fault struck %d times", p.Fired(f))
	}
	cookie := html.UnescapeString(textOf(r.body, "issued-cookie"))
	wantStatus(t, c.do("GET", "/auth/verify", nil, map[string]string{"Cookie": strings.Split(cookie, ";")[0]}), http.StatusOK)
	if n := count(`SELECT count(*) FROM system.web_sessions`); n != 1 {
		t.Errorf("%d sessions", n)
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'issue'`); n != 1 {
		t.Errorf("%d issue rows in the audit log", n)
	}
}

// An export cut off by a 40001 after some rows resumes where it stopped: the download is
// complete, every session once.
func TestCockroachExportResumes(t *testing.T) {
	dbURL, p, _ := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	c := s.signIn(t)
	for i := 0; i < 12; i++ {
		s.issue(t, "root", 3600e9)
	}
	f := p.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "AS OF SYSTEM TIME", Rows: 5})
	r := c.get("/sessions.csv?status=all")
	wantStatus(t, r, http.StatusOK)
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 13 || p.Fired(f) != 1 {
		t.Fatalf("CSV after a cut: %v, %d records, fired %d", err, len(recs), p.Fired(f))
	}
	seen := map[string]bool{}
	for _, rec := range recs[1:] {
		if seen[rec[1]] {
			t.Errorf("session %s twice", rec[1])
		}
		seen[rec[1]] = true
	}
}

// When the answer to an issue's commit is lost, the admin is told that the change may or may
// not have been made (it was: one session, one audit row), and nothing ran twice; when every
// try of a revoke-all is aborted, the admin is told nothing changed and to try again.
func TestCockroachUnknownCommitAndRetriesRunOut(t *testing.T) {
	dbURL, p, count := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	c := s.signIn(t)
	f := p.Inject(pgtest.Fault{Point: pgtest.CutAfterCommit, Match: "INSERT INTO system.web_sessions"})
	r := c.hxPost("/sessions", url.Values{"username": {"web_user"}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusInternalServerError)
	wantContains(t, html.UnescapeString(r.body), "The database did not confirm this change: it may or may not have been made.")
	if p.Fired(f) != 1 {
		t.Errorf("the cut struck %d times", p.Fired(f))
	}
	if n := count(`SELECT count(*) FROM system.web_sessions`); n != 1 {
		t.Errorf("%d sessions, want the 1 the server committed", n)
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'issue'`); n != 1 {
		t.Errorf("%d issue rows in the audit log, want 1 with its session", n)
	}

	f = p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "UPDATE system.web_sessions", Times: pgdb.TxRetries + 1})
	r = c.hxPost("/users/web_user/revoke", nil)
	wantStatus(t, r, http.StatusServiceUnavailable)
	wantContains(t, html.UnescapeString(r.body), "The database kept aborting this request because of conflicting transactions, so nothing was changed. Try again in a moment.")
	if p.Fired(f) != pgdb.TxRetries+1 {
		t.Errorf("the commit fault struck %d times, want %d", p.Fired(f), pgdb.TxRetries+1)
	}
	if n := count(`SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`); n != 1 {
		t.Errorf("%d active sessions after a revoke-all that never committed, want 1", n)
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'revoke-all'`); n != 0 {
		t.Errorf("a revoke-all that never committed was audited")
	}
	// The next try works.
	r = c.hxPost("/users/web_user/revoke", nil)
	wantStatus(t, r, http.StatusOK)
}

// audit.csv cut off by a 40001 after some rows resumes after its last entry at the same AS OF
// SYSTEM TIME, as sessions.csv does: every entry once.
func TestCockroachAuditExportResumes(t *testing.T) {
	dbURL, p, count := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	c := s.signIn(t)
	for i := 0; i < 12; i++ {
		wantStatus(t, c.hxPost("/sessions", url.Values{"username": {"web_user"}, "expire_after": {"1h"}}), http.StatusOK)
	}
	entries := count(`SELECT count(*) FROM console.audit_log`)
	p.ResetRecords()
	f := p.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "FROM console.audit_log AS OF SYSTEM TIME", Rows: 5})
	r := c.get("/audit.csv")
	wantStatus(t, r, http.StatusOK)
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != entries+1 || p.Fired(f) != 1 {
		t.Fatalf("audit CSV after a cut: %v, %d records for %d entries, fired %d", err, len(recs), entries, p.Fired(f))
	}
	if asOf := p.AsOf(); len(asOf) != 2 || asOf[0] != asOf[1] {
		t.Errorf("AS OF SYSTEM TIME clauses %q, want the same one twice", asOf)
	}
	seen := map[string]bool{} // each issue entry names its own session, so every record differs
	for _, rec := range recs[1:] {
		if k := strings.Join(rec, ","); seen[k] {
			t.Errorf("entry %q twice", k)
		} else {
			seen[k] = true
		}
	}
}
