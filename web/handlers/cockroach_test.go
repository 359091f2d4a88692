package handlers

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// The console on the CockroachDB dialect: system.web_sessions and system.users (v23.1 shape),
// rebuilt on PostgreSQL by the sessionstore fixture. Issue, list, revoke-all and verify work as
// on a cluster, with CockroachDB's username normalization.
func TestCockroachDialect(t *testing.T) {
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
	if _, err := conn.Exec(ctx, string(fixture)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO system.users (username, "isRole", user_id) VALUES ('web_user', false, 100)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	s := newServerDialect(t, dbURL, Config{}, pgdb.Cockroach)
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
	if n := s.count(t, `SELECT count(*) FROM system.web_sessions WHERE user_id = 100`); n != 1 {
		t.Errorf("web_user's session has no user_id: %d rows", n)
	}

	// The table lists system.web_sessions; a filter typed in upper case finds the user.
	r = c.hxGet("/sessions?user=Web_User&status=all")
	if got := rows(r.body); len(got) != 1 || got[0].user != "web_user" {
		t.Fatalf("rows %+v", got)
	}
	r = c.hxPost("/users/WEB_USER/revoke", nil)
	if got := textOf(r.body, "notice"); got != "Revoked 1 session of web_user (1 were active)." {
		t.Errorf("notice %q", got)
	}
	if n := s.count(t, `SELECT count(*) FROM system.web_sessions WHERE username = 'web_user' AND "revokedAt" IS NULL`); n != 0 {
		t.Errorf("%d sessions of web_user still active", n)
	}
	// Console tables stay out of the system schema.
	if n := s.count(t, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'system'`); n != 2 {
		t.Errorf("%d tables in the system schema, want the fixture's 2", n)
	}
}
