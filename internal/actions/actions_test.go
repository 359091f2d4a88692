package actions

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	svc    *Service
	direct *pgxpool.Pool // the database itself, for the test's own statements
	proxy  *pgtest.Proxy // nil on PostgreSQL
	table  string
}

// newEnv is the service on PostgreSQL, or on the CockroachDB fixture behind the CockroachDB
// v26.1 personality proxy.
func newEnv(t *testing.T, cockroach bool) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	direct, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	e := &env{direct: direct, table: "console.web_sessions"}
	url := db
	if cockroach {
		fixture, err := os.ReadFile("../../sessionstore/testdata/crdb_v23.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Exec(ctx, string(fixture)); err != nil {
			t.Fatal(err)
		}
		e.proxy = pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
		url, e.table = e.proxy.URL(db), "system.web_sessions"
	}
	pool, err := pgdb.Connect(ctx, url, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sessions, err := sessionstore.Open(ctx, pool, sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	log, err := audit.Open(ctx, pool, sessions.Server())
	if err != nil {
		t.Fatal(err)
	}
	e.svc = New(sessions, log)
	return e
}

func (e *env) count(t *testing.T, sql string) int {
	t.Helper()
	var n int
	if err := e.direct.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func eachFlavor(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, name := range []string{"postgres", "cockroach"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, name == "cockroach"))
		})
	}
}

var alice = Actor{Kind: Admin, Name: "alice", RemoteAddr: "192.0.2.7"}

func TestIssueRecordsOnce(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var fault *pgtest.Fault
		if e.proxy != nil {
			// The commit fails once: the transaction runs again, and both rows exist once.
			fault = e.proxy.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO console.audit_log"})
		}
		is, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour, Note: Note{Reason: "ticket 42", Detail: "web"}})
		if err != nil {
			t.Fatal(err)
		}
		if fault != nil && e.proxy.Fired(fault) != 1 {
			t.Errorf("the commit fault struck %d times", e.proxy.Fired(fault))
		}
		if n := e.count(t, "SELECT count(*) FROM "+e.table); n != 1 {
			t.Errorf("%d sessions", n)
		}
		var got audit.Entry
		if err := e.direct.QueryRow(ctx, `SELECT admin, action, target, session_id, remote_addr, reason, detail FROM console.audit_log`).
			Scan(&got.Admin, &got.Action, &got.Target, &got.SessionID, &got.RemoteAddr, &got.Reason, &got.Detail); err != nil {
			t.Fatal(err)
		}
		want := audit.Entry{Admin: "alice", Action: audit.Issue, Target: "root", SessionID: is.ID, RemoteAddr: "192.0.2.7", Reason: "ticket 42", Detail: "web"}
		if got != want {
			t.Errorf("audit row %+v, want %+v", got, want)
		}
		if n := e.count(t, "SELECT count(*) FROM console.audit_log"); n != 1 {
			t.Errorf("%d audit rows", n)
		}
	})
}

// When the audit row cannot be written, the action does not happen.
func TestNothingWithoutTheAuditRow(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		keep, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.direct.Exec(ctx, `CREATE FUNCTION console.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log is down'; END $$;
			CREATE TRIGGER audit_down BEFORE INSERT ON console.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_down()`); err != nil {
			t.Fatal(err)
		}
		check := func(what string, err error) {
			t.Helper()
			var nre *NotRecordedError
			if !errors.Is(err, ErrNotRecorded) || !errors.As(err, &nre) {
				t.Errorf("%s: %v", what, err)
			}
		}
		_, err = e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
		check("issue", err)
		_, _, err = e.svc.EndUserSessions(ctx, alice, "root", Note{})
		check("revoke-all", err)
		_, err = e.svc.RevokeUser(ctx, Actor{Kind: CLI, Name: "bob"}, "root", Note{})
		check("logout", err)
		_, err = e.svc.RevokeSession(ctx, alice, keep.ID, Note{})
		check("revoke", err)
		if n := e.count(t, "SELECT count(*) FROM "+e.table+` WHERE "revokedAt" IS NULL`); n != 1 {
			t.Errorf("%d active sessions, want the 1 issued before the audit log failed", n)
		}
		if n := e.count(t, "SELECT count(*) FROM "+e.table); n != 1 {
			t.Errorf("%d sessions", n)
		}
	})
}

func TestRevokesRecordWhatChanged(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a, _ := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
		e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
		if r, err := e.svc.RevokeSession(ctx, alice, a.ID, Note{}); err != nil || !r.Newly {
			t.Fatalf("revoke: %+v %v", r, err)
		}
		// Again: nothing changes, nothing is recorded.
		if r, err := e.svc.RevokeSession(ctx, alice, a.ID, Note{}); err != nil || r.Newly {
			t.Fatalf("revoke again: %+v %v", r, err)
		}
		if _, err := e.svc.RevokeSession(ctx, alice, 1<<60, Note{}); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Errorf("unknown session: %v", err)
		}
		user := "ROOT" // CockroachDB normalizes it to root
		if e.proxy == nil {
			user = "root" // PostgreSQL role names are case-sensitive
		}
		revs, err := e.svc.RevokeUser(ctx, Actor{Kind: CLI, Name: "bob"}, user, Note{Detail: "auth-session logout"})
		if err != nil || len(revs) != 2 {
			t.Fatalf("logout: %v %v", revs, err)
		}
		rows, err := e.direct.Query(ctx, `SELECT admin, action, count FROM console.audit_log ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var admin, action string
			var n int64
			rows.Scan(&admin, &action, &n)
			got = append(got, admin+" "+action+" "+string(rune('0'+n)))
		}
		want := []string{"alice issue 0", "alice issue 0", "alice revoke 1", "cli:bob revoke-all 1"}
		if len(got) != len(want) {
			t.Fatalf("audit rows %q, want %q", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("audit row %d: %q, want %q", i, got[i], want[i])
			}
		}
	})
}

func TestAuditNames(t *testing.T) {
	for a, want := range map[Actor]string{
		{Kind: Admin, Name: "alice"}:       "alice",
		{Kind: CLI, Name: "bob"}:           "cli:bob",
		{Kind: OIDC, Name: "248289761001"}: "oidc:248289761001",
		{Kind: Token, Name: "deploy"}:      "token:deploy",
		{Kind: Policy}:                     "policy",
		{Kind: Policy, Name: "max-age"}:    "policy:max-age",
	} {
		if got := a.AuditName(); got != want {
			t.Errorf("%+v: %q, want %q", a, got, want)
		}
	}
}

// OnCommit hears of each action that committed, once, with its entry; not of one that changed
// nothing, nor of one whose audit row could not be written.
func TestOnCommit(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	var heard []string
	e.svc.OnCommit(func(by Actor, en audit.Entry) {
		heard = append(heard, by.AuditName()+" "+string(en.Action)+" "+strconv.FormatInt(en.Count, 10))
	})
	a, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour})
	e.svc.RevokeSession(ctx, alice, a.ID, Note{})
	e.svc.RevokeSession(ctx, alice, a.ID, Note{}) // already revoked: nothing
	e.svc.EndUserSessions(ctx, Actor{Kind: Policy, Name: "max"}, "root", Note{})
	if _, err := e.direct.Exec(ctx, `CREATE FUNCTION console.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'down'; END $$;
		CREATE TRIGGER audit_down BEFORE INSERT ON console.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_down()`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour}); err == nil {
		t.Fatal("issue without an audit log: no error")
	}
	want := []string{"alice issue 0", "alice issue 0", "alice revoke 1", "policy:max revoke-all 1"}
	if strings.Join(heard, "\n") != strings.Join(want, "\n") {
		t.Errorf("heard\n%s\nwant\n%s", strings.Join(heard, "\n"), strings.Join(want, "\n"))
	}
}
