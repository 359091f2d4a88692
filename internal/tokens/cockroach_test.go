package tokens

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// Creating and revoking a token on CockroachDB (the proxy's v26.1 personality, full scans
// refused), each aborted once (40001 at its commit or at a statement), runs again and commits
// once: one token made and then gone, one audit row each; the list still reads every row.
func TestCockroachTokensRetry(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	direct, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
	pool, err := pgdb.Connect(ctx, p.URL(db), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := audit.Open(ctx, pool, pgdb.Cockroach); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, pool, pgdb.Cockroach, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := direct.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}

	f := p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO console.api_tokens"})
	secret, _, err := s.Create(ctx, "ci-export", admins.Viewer, time.Hour, owner)
	if err != nil || p.Fired(f) != 1 {
		t.Fatalf("Create: %v (fault struck %d times)", err, p.Fired(f))
	}
	if tok, err := s.Authenticate(ctx, secret); err != nil || tok.Name != "ci-export" {
		t.Errorf("the token made on the second try: %+v, %v", tok, err)
	}
	if n := count(`SELECT count(*) FROM console.api_tokens`); n != 1 {
		t.Errorf("%d tokens, want 1", n)
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'token-create' AND target = 'ci-export'`); n != 1 {
		t.Errorf("%d token-create rows, want 1", n)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("List on a cluster that refuses full scans: %v, %v", list, err)
	}

	f = p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "DELETE FROM console.api_tokens"})
	if err := s.Revoke(ctx, "ci-export", owner); err != nil || p.Fired(f) != 1 {
		t.Fatalf("Revoke: %v (fault struck %d times)", err, p.Fired(f))
	}
	if _, err := s.Authenticate(ctx, secret); err == nil {
		t.Error("a revoked token still works")
	}
	if n := count(`SELECT count(*) FROM console.audit_log WHERE action = 'token-revoke' AND target = 'ci-export'`); n != 1 {
		t.Errorf("%d token-revoke rows, want 1", n)
	}
}
