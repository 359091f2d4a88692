package admins

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// newCockroachStore is a Store on CockroachDB: the test PostgreSQL behind the CockroachDB v26.1
// personality proxy, which refuses unguarded full scans and injects faults. direct is the
// database itself, for the test's own counts.
func newCockroachStore(t *testing.T) (*Store, *pgtest.Proxy, *pgxpool.Pool) {
	t.Helper()
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
	if flavor, _, err := pgdb.Detect(ctx, pool); err != nil || flavor != pgdb.Cockroach {
		t.Fatalf("detected %v, %v", flavor, err)
	}
	s, err := Open(ctx, pool, pgdb.Cockroach, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(ctx, pool, pgdb.Cockroach); err != nil {
		t.Fatal(err)
	}
	return s, p, direct
}

func countRows(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Each of the admins' transactions, aborted once by CockroachDB (40001 at a statement or at its
// commit), runs again and commits once: one change, one audit row.
func TestCockroachAdminChangesRetry(t *testing.T) {
	ctx := context.Background()
	s, p, direct := newCockroachStore(t)
	if pw, err := s.AddFirst(ctx, "owner"); err != nil || pw == "" { // the first-admin check scans
		t.Fatalf("AddFirst: %q, %v", pw, err)
	}
	audited := func(action audit.Action) int {
		return countRows(t, direct, `SELECT count(*) FROM console.audit_log WHERE action = $1`, string(action))
	}
	steps := []struct {
		name   string
		fault  pgtest.Fault
		do     func() error
		action audit.Action
		check  func() bool
	}{
		{"create an admin", pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO console.admins"},
			func() error {
				_, err := s.Create(ctx, NewAdmin{Name: "bob", Role: Viewer, Password: "correct horse battery"}, cli)
				return err
			},
			audit.AdminAdd, func() bool {
				return countRows(t, direct, `SELECT count(*) FROM console.admins WHERE name = 'bob'`) == 1
			}},
		{"change a role", pgtest.Fault{Point: pgtest.AtStatement, Match: "UPDATE console.admins"},
			func() error { return s.SetRole(ctx, "bob", Operator, cli) },
			audit.AdminRole, func() bool {
				return countRows(t, direct, `SELECT count(*) FROM console.admins WHERE name = 'bob' AND role = 'operator'`) == 1
			}},
		{"set a password", pgtest.Fault{Point: pgtest.AtCommit, Match: "UPDATE console.admins"},
			func() error { return s.SetPassword(ctx, "bob", "battery staple horse", cli) },
			audit.PasswordChange, func() bool { return s.Authenticate(ctx, "bob", "battery staple horse") == nil }},
		{"change one's own password", pgtest.Fault{Point: pgtest.AtStatement, Match: "UPDATE console.admins"},
			func() error {
				return s.ChangeOwnPassword(ctx, "bob", "battery staple horse", "staple battery horse", "", audit.Entry{Admin: "bob"})
			},
			audit.PasswordChange, func() bool { return s.Authenticate(ctx, "bob", "staple battery horse") == nil }},
		{"remove an admin", pgtest.Fault{Point: pgtest.AtCommit, Match: "DELETE FROM console.admins"},
			func() error { return s.Remove(ctx, "bob", cli) },
			audit.AdminRemove, func() bool {
				return countRows(t, direct, `SELECT count(*) FROM console.admins WHERE name = 'bob'`) == 0
			}},
	}
	for _, st := range steps {
		before := audited(st.action)
		f := p.Inject(st.fault)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if p.Fired(f) != 1 {
			t.Errorf("%s: the fault struck %d times, want once", st.name, p.Fired(f))
		}
		if !st.check() {
			t.Errorf("%s: the change is not there", st.name)
		}
		if n := audited(st.action) - before; n != 1 {
			t.Errorf("%s: %d new %s rows in the audit log, want 1", st.name, n, st.action)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("List on a cluster that refuses full scans: %v, %v", list, err)
	}
}

// The sign-in throttle's transactions, aborted once each, count one failure and take it back
// once.
func TestCockroachThrottleRetries(t *testing.T) {
	ctx := context.Background()
	s, p, direct := newCockroachStore(t)
	pol := ThrottlePolicy{FreeTries: 5, AddressFreeTries: 20, AccountFreeTries: 50, Window: time.Hour, MaxDelay: time.Hour}
	failures := func() string {
		var out string
		rows, err := direct.Query(ctx, `SELECT account || '/' || address || '=' || failures FROM console.signin_failures ORDER BY account, address`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var r string
			rows.Scan(&r)
			out += r + " "
		}
		return out
	}
	f := p.Inject(pgtest.Fault{Point: pgtest.AtCommit, Match: "INSERT INTO console.signin_failures"})
	a, err := s.StartSignIn(ctx, pol, "owner", "192.0.2.9")
	if err != nil || a.Wait != 0 || p.Fired(f) != 1 {
		t.Fatalf("StartSignIn: %+v, %v (fault struck %d times)", a, err, p.Fired(f))
	}
	if got, want := failures(), "/192.0.2.9=1 owner/=1 owner/192.0.2.9=1 "; got != want {
		t.Errorf("after one attempt: %q, want %q (counted once)", got, want)
	}
	f = p.Inject(pgtest.Fault{Point: pgtest.AtStatement, Match: "UPDATE console.signin_failures SET failures = failures - 1"})
	if err := s.SignInSucceeded(ctx, "owner", "192.0.2.9"); err != nil || p.Fired(f) != 1 {
		t.Fatalf("SignInSucceeded: %v (fault struck %d times)", err, p.Fired(f))
	}
	if got, want := failures(), "/192.0.2.9=0 owner/=0 "; got != want {
		t.Errorf("after the success: %q, want %q (taken back once)", got, want)
	}
	if _, err := s.Throttled(ctx, pol); err != nil { // reads every recent failure
		t.Errorf("Throttled on a cluster that refuses full scans: %v", err)
	}
}
