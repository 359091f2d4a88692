package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// The audit log on CockroachDB (the proxy's v26.1 personality, full scans refused): an entry
// written in a transaction that is aborted once at its commit exists once; Each without a
// filter reads the whole table with the guard off, and cut off by a 40001 after some rows
// resumes after its last entry at the same AS OF SYSTEM TIME; a filtered Each uses its index.
func TestCockroachAudit(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewDB(t)
	p := pgtest.StartProxy(t, pgtest.ProxyOptions{Version: pgtest.CockroachV26, RefuseFullScans: true})
	pool, err := pgdb.Connect(ctx, p.URL(db), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(ctx, pool, pgdb.Cockroach)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if err := s.Record(ctx, Entry{Admin: fmt.Sprintf("admin%d", i%3), Action: Issue, Target: "root", SessionID: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	f := p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO console.audit_log"})
	if err := pgdb.RunTx(ctx, pool, pgdb.Cockroach, func(tx pgx.Tx) error {
		return InsertOrRollBack(ctx, tx, Entry{Admin: "admin9", Action: RevokeAll, Target: "root", Count: 9})
	}); err != nil || p.Fired(f) != 1 {
		t.Fatalf("RunTx: %v (fault struck %d times)", err, p.Fired(f))
	}

	p.ResetRecords()
	f = p.Inject(pgtest.Fault{Point: pgtest.MidStream, Match: "FROM console.audit_log AS OF SYSTEM TIME", Rows: 4})
	var ids []int64
	if err := s.Each(ctx, Filter{}, func(e Entry) error { ids = append(ids, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 10 || p.Fired(f) != 1 {
		t.Fatalf("Each read %v (the cut struck %d times), want 10 entries", ids, p.Fired(f))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Errorf("entries %v: not each once, newest first", ids)
			break
		}
	}
	if asOf := p.AsOf(); len(asOf) != 2 || asOf[0] != asOf[1] {
		t.Errorf("AS OF SYSTEM TIME clauses %q, want the same one twice", asOf)
	}
	n := 0
	if err := s.Each(ctx, Filter{Admin: "admin1"}, func(Entry) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("Each(admin1) = %d, %v; want 3", n, err)
	}
}
