package policy

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
)

// auditRows returns the audit rows of action, oldest first.
func (e *env) auditRows(t *testing.T, action audit.Action) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := e.log.Each(context.Background(), audit.Filter{Action: action}, func(en audit.Entry) error {
		out = append(out, en)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) revoked(t *testing.T, id int64) bool {
	t.Helper()
	s, err := e.live.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.RevokedAt != nil
}

// plainRun runs a transaction on the pool, as a pass outside a lease would.
func (e *env) plainRun() sessionstore.TxRunner { return e.live.RunTx }

// An enforcement run revokes the active sessions breaking each enabled rule, in batches, each
// audited as policy:<rule> with the count; it leaves alone sessions that do not break a rule
// and sessions issued after the run started.
func TestEnforce(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, id := e.user(t)
		uid := id
		if e.dialect == "postgres" {
			uid = 0
		}
		p := New(e.live, e.hist, Config{MaxLifetime: 24 * h, Root: true, Enforce: true, Batch: 2})
		var long []int64
		for range 5 {
			long = append(long, e.plant(t, row{user: alice, userID: uid, created: -h, expires: 100 * h}))
		}
		fine := e.plant(t, row{user: alice, userID: uid, created: -h, expires: h})
		started := time.Now().UTC().Add(-time.Minute) // the run started before the next one was issued
		late := e.plant(t, row{user: alice, userID: uid, created: 0, expires: 100 * h})
		runs, err := p.Enforce(ctx, e.svc, e.plainRun(), started, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2 || runs[0].Rule != MaxLifetime || runs[0].Matched != 5 || runs[0].Revoked != 5 || runs[1].Rule != Root || runs[1].Matched != 0 {
			t.Errorf("runs %+v", runs)
		}
		for _, id := range long {
			if !e.revoked(t, id) {
				t.Errorf("session %d breaking max-lifetime not revoked", id)
			}
		}
		if e.revoked(t, fine) || e.revoked(t, late) {
			t.Error("revoked a session inside the policy, or one issued after the run started")
		}
		rows := e.auditRows(t, audit.BulkRevoke)
		var sum int64
		for _, r := range rows {
			sum += r.Count
			if r.Admin != "policy:max-lifetime" || r.Target != "max-lifetime" || !strings.Contains(r.Detail, "run 7") {
				t.Errorf("audit row %+v", r)
			}
		}
		if len(rows) != 3 || sum != 5 { // batches of 2
			t.Errorf("%d audit rows counting %d, want 3 counting 5", len(rows), sum)
		}
		if got := summaryOf(runs); got != "max-lifetime: 5 revoked of 5, root: 0 revoked of 0" {
			t.Errorf("summary %q", got)
		}
	})
}

func summaryOf(r []Enforced) string { return Summary(r, false) }

// A dry run revokes nothing and records what it would have revoked, once per rule.
func TestEnforceDryRun(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	p := New(e.live, e.hist, Config{Root: true, Idle: h, Enforce: true, DryRun: true})
	a := e.plant(t, row{user: "root", created: -h, expires: h})
	b := e.plant(t, row{user: "root", created: -h, expires: h})
	runs, err := p.Enforce(ctx, e.svc, e.plainRun(), time.Now().UTC(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.revoked(t, a) || e.revoked(t, b) {
		t.Error("a dry run revoked")
	}
	if len(runs) != 2 || runs[1].Rule != Root || runs[1].Matched != 2 || len(runs[1].IDs) != 2 {
		t.Errorf("runs %+v", runs)
	}
	rows := e.auditRows(t, audit.PolicyDryRun)
	if len(rows) != 1 || rows[0].Count != 2 || rows[0].Target != "root" || rows[0].Admin != "policy:root" {
		t.Errorf("dry-run audit %+v", rows)
	}
	if n := len(e.auditRows(t, audit.BulkRevoke)); n != 0 {
		t.Errorf("%d bulk-revoke rows from a dry run", n)
	}
	if s := Summary(runs, true); s != "idle: would revoke 0, root: would revoke 2" {
		t.Errorf("summary %q", s)
	}
}

// Two replicas on one database run the enforcement job at once: each pass runs under the
// job's lease, so every breaking session is revoked once, and each run's audit rows are one
// replica's (no run audited twice, the counts add up to the sessions planted).
func TestEnforceTwoReplicas(t *testing.T) {
	for _, d := range []string{"postgres", "cockroach-proxy"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, d)
			ctx := context.Background()
			p := New(e.live, e.hist, Config{Root: true, Enforce: true, Interval: 50 * time.Millisecond})
			var runners []*jobs.Runner
			var mu sync.Mutex
			byHolder := map[string]int{}
			for i := range 2 {
				r, err := jobs.New(ctx, e.pool, e.live.Server(), jobs.Options{Holder: []string{"replica-a", "replica-b"}[i], LeaseTTL: 600 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				r.Add(jobs.Job{Name: "policy", Every: p.Config().Interval, Run: func(ctx context.Context, pass *jobs.Pass) error {
					runs, err := p.Enforce(ctx, e.svc, pass.Tx, pass.StartedAt, pass.Seq)
					mu.Lock()
					byHolder[pass.Holder]++
					mu.Unlock()
					pass.Detail("%s", Summary(runs, false))
					return err
				}})
				runners = append(runners, r)
			}
			for _, r := range runners {
				r.Start()
			}
			stop := func() {
				for _, r := range runners {
					r.Stop() // a second Stop does nothing
				}
			}
			t.Cleanup(stop)
			var planted []int64
			gone := make([]bool, len(runners))
			for round := range 4 {
				for range 5 {
					planted = append(planted, e.plant(t, row{user: "root", created: -time.Duration(round+1) * time.Second, expires: h}))
				}
				// Both replicas also force a pass at once: only the lease holder's runs.
				var wg sync.WaitGroup
				for i, r := range runners {
					if gone[i] {
						continue
					}
					wg.Go(func() {
						if _, err := r.RunNow(ctx, "policy"); err != nil {
							t.Errorf("RunNow: %v", err)
						}
					})
				}
				wg.Wait()
				waitFor(t, func() bool { return !slicesHasUnrevoked(t, e, planted) })
				if round == 1 { // the holder stops: the other replica takes the job over
					for i, r := range runners {
						if r.Held("policy") {
							r.Stop()
							gone[i] = true
						}
					}
				}
			}
			stop()
			rows := e.auditRows(t, audit.BulkRevoke)
			var sum int64
			runs := map[string]string{}
			for _, r := range rows {
				sum += r.Count
				if prev, ok := runs[r.Detail]; ok {
					t.Errorf("run audited twice: %q (%s and %d)", r.Detail, prev, r.ID)
				}
				runs[r.Detail] = r.Admin
			}
			if sum != int64(len(planted)) {
				t.Errorf("audit rows count %d revocations of %d sessions planted", sum, len(planted))
			}
			if len(rows) < 4 { // every round's sessions were revoked by a run after they were planted
				t.Errorf("%d audit rows for 4 rounds", len(rows))
			}
			st, err := jobs.Statuses(ctx, e.direct, pgdb.Postgres)
			if err != nil || len(st) != 1 || st[0].Runs == 0 {
				t.Errorf("job statuses %+v, %v", st, err)
			}
			mu.Lock()
			if byHolder["replica-a"] == 0 || byHolder["replica-b"] == 0 {
				t.Errorf("passes per replica: %v, want both (one took over when the other stopped)", byHolder)
			}
			mu.Unlock()
		})
	}
}

func slicesHasUnrevoked(t *testing.T, e *env, ids []int64) bool {
	for _, id := range ids {
		if !e.revoked(t, id) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds, failing the test after a bound (not a timing assertion:
// the bound only stops a test that would hang).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
