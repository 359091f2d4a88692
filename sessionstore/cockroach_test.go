package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// statementsAfter returns the statements the proxy saw since mark (an index into Statements).
func statementsAfter(p *pgtest.Proxy, mark int) []string { return p.Statements()[mark:] }

// Statements that read all of system.web_sessions run with the guard off for themselves (the
// proxy refuses them otherwise, as a cluster with disallow_full_table_scans does); with
// RefuseFullScans they answer a *FullScanError and change nothing.
func TestCockroachFullScans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "cockroach-v23")
	e.createUser(t, "web_user")
	e.issue(t, "web_user", time.Hour)
	e.issue(t, "root", time.Hour)

	scanning := map[string]func(s *Store) error{
		"list by username": func(s *Store) error { _, err := s.List(ctx, Filter{Username: "web_user"}); return err },
		"list by prefix":   func(s *Store) error { _, err := s.List(ctx, Filter{Username: "web", Prefix: true}); return err },
		"counts":           func(s *Store) error { _, err := s.CountNow(ctx, Filter{}); return err },
		"user counts":      func(s *Store) error { _, err := s.CountNow(ctx, Filter{Username: "web_user"}); return err },
		"each":             func(s *Store) error { return s.Each(ctx, Filter{Sort: SortID}, func(Session) error { return nil }) },
		"each of a user": func(s *Store) error {
			return s.Each(ctx, Filter{Username: "web_user"}, func(Session) error { return nil })
		},
		"revoke-all": func(s *Store) error { _, _, err := s.EndUserSessions(ctx, "nobody"); return err },
	}
	for name, op := range scanning {
		mark := len(e.proxy.Statements())
		if err := op(e.s); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := statementsAfter(e.proxy, mark); !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "disallow_full_table_scans = off") }) {
			t.Errorf("%s ran without turning the guard off: %q", name, got)
		}
	}
	// What uses an index leaves the guard alone.
	mark := len(e.proxy.Statements())
	if _, err := e.s.List(ctx, Filter{Status: StatusActive, Limit: 10}); err != nil {
		t.Fatal(err)
	}
	for _, s := range statementsAfter(e.proxy, mark) {
		if strings.Contains(s, "disallow_full_table_scans") {
			t.Errorf("an indexed list touched the guard: %q", s)
		}
	}

	refusing, err := Open(ctx, mustConnect(t, e.url), Options{RefuseFullScans: true})
	if err != nil {
		t.Fatal(err)
	}
	defer refusing.Close()
	for name, op := range scanning {
		err := op(refusing)
		var fse *FullScanError
		if !errors.As(err, &fse) || !errors.Is(err, ErrFullScanRefused) ||
			!strings.Contains(err.Error(), "reads the whole system.web_sessions table") || !strings.Contains(err.Error(), "--refuse-full-scans") {
			t.Errorf("%s with RefuseFullScans: %v", name, err)
		}
	}
	if _, err := refusing.RevokeUser(ctx, "web_user"); !errors.Is(err, ErrFullScanRefused) {
		t.Errorf("RevokeUser: %v", err)
	}
	var active int
	e.pool.QueryRow(ctx, `SELECT count(*) FROM system.web_sessions WHERE "revokedAt" IS NULL`).Scan(&active)
	if active != 2 {
		t.Errorf("%d sessions active after refused revokes, want 2", active)
	}
	// What needs no full scan still works.
	if _, err := refusing.List(ctx, Filter{Status: StatusAll, Limit: 10}); err != nil {
		t.Errorf("indexed list: %v", err)
	}
	if _, err := refusing.Issue(ctx, "web_user", time.Hour); err != nil {
		t.Errorf("issue: %v", err)
	}
	if err := refusing.Each(ctx, Filter{Status: StatusActive}, func(Session) error { return nil }); err != nil {
		t.Errorf("each active: %v", err)
	}
}

func mustConnect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.Connect(context.Background(), url, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// A 40001 at a statement or at the commit (CockroachDB's RELEASE SAVEPOINT) runs the write
// again; it is applied exactly once.
func TestCockroachWritesRetry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "cockroach-v23")
	e.createUser(t, "web_user")
	for _, point := range []pgtest.FaultPoint{pgtest.AtStatement, pgtest.AtCommit} {
		f := e.proxy.Inject(pgtest.Fault{Point: point, Match: "INSERT INTO system.web_sessions"})
		is := e.issue(t, "web_user", time.Hour)
		if e.proxy.Fired(f) != 1 {
			t.Fatalf("fault at %d did not strike", point)
		}
		if _, err := e.s.Verify(ctx, is.Cookie.Value()); err != nil {
			t.Errorf("the returned cookie does not verify: %v", err)
		}
	}
	if n := e.rowCount(t); n != 2 {
		t.Errorf("%d sessions after two issues, want 2", n)
	}
	c, _ := e.s.Counts(ctx, Filter{Username: "web_user"})
	f := e.proxy.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "UPDATE system.web_sessions"})
	revoked, active, err := e.s.EndUserSessions(ctx, "web_user")
	if err != nil || revoked != 2 || active != 2 || e.proxy.Fired(f) != 1 {
		t.Fatalf("revoke-all: %d %d %v (fired %d)", revoked, active, err, e.proxy.Fired(f))
	}
	// The count cache took the change once.
	if c2, _ := e.s.Counts(ctx, Filter{Username: "web_user"}); c.Active != 2 || c2.Active != 0 || c2.Revoked != 2 {
		t.Errorf("counts %+v then %+v", c, c2)
	}
}

// `auth-session list` and the exports read at one AS OF SYSTEM TIME; cut off by a 40001 in the
// middle, the read resumes after its last row, so every session arrives once, in order.
func TestCockroachEachResumes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "cockroach-v23")
	var want []int64
	for i := 0; i < 25; i++ {
		want = append(want, e.issue(t, "root", time.Hour).ID)
	}
	for _, f := range []Filter{{Sort: SortID}, {Sort: SortCreated, Desc: true, Status: StatusActive}} {
		e.proxy.ResetRecords()
		fault := e.proxy.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "FROM system.web_sessions AS OF SYSTEM TIME", Rows: 10})
		var got []int64
		if err := e.s.Each(ctx, f, func(s Session) error { got = append(got, s.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		exp := slices.Clone(want)
		if f.Desc {
			slices.Reverse(exp)
		}
		if e.proxy.Fired(fault) != 1 || fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("%+v: fired %d, got %v", f, e.proxy.Fired(fault), got)
		}
		if asOf := e.proxy.AsOf(); len(asOf) != 2 || asOf[0] != asOf[1] {
			t.Errorf("%+v: AS OF SYSTEM TIME %q, want the same clause twice", f, asOf)
		}
	}
}

// The feature probe is the first query on system.*: a connection without
// allow_unsafe_internals (not made by pgdb.Connect) or a user without the admin role gets one
// message saying what to do.
func TestCockroachAccessMessages(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "cockroach-v23")
	raw, err := pgxpool.New(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = Open(ctx, raw, Options{})
	if err == nil || !strings.Contains(err.Error(), "may not read and write system.web_sessions (Access to crdb_internal and system is restricted.)") ||
		!strings.Contains(err.Error(), "allow_unsafe_internals = on") {
		t.Errorf("without allow_unsafe_internals: %v", err)
	}

	role := uniqueName("notadmin")
	e.exec(t, "CREATE ROLE "+role+" LOGIN PASSWORD 'pw'")
	t.Cleanup(func() { e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	u, _ := url.Parse(e.url)
	u.User = url.UserPassword(role, "pw")
	_, err = Open(ctx, mustConnect(t, u.String()), Options{})
	if err == nil || !strings.Contains(err.Error(), `the SQL user "`+role+`" may not read and write system.web_sessions (permission denied for schema system)`) ||
		!strings.Contains(err.Error(), `GRANT admin TO "`+role+`"`) {
		t.Errorf("as %s: %v", role, err)
	}
}
