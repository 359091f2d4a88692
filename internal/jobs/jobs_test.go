package jobs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.Connect(context.Background(), url, pgdb.Config{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newRunner(t *testing.T, pool *pgxpool.Pool, holder string, ttl time.Duration) *Runner {
	t.Helper()
	r, err := New(context.Background(), pool, pgdb.Postgres, Options{Holder: holder, LeaseTTL: ttl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// passes is a job that records each pass in a table, under the lease.
func passes(t *testing.T, pool *pgxpool.Pool) func(ctx context.Context, p *Pass) error {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS passes (
		seq INT8 PRIMARY KEY, holder TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, p *Pass) error {
		p.Detail("pass %d", p.Seq)
		return p.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO passes (seq, holder) VALUES ($1, $2)`, p.Seq, p.Holder)
			return err
		})
	}
}

type passRow struct {
	seq    int64
	holder string
}

func readPasses(t *testing.T, pool *pgxpool.Pool) []passRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT seq, holder FROM passes ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (passRow, error) {
		var p passRow
		return p, r.Scan(&p.seq, &p.holder)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a bound on a loaded machine, not a figure
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two runners on one database: one holds the lease and runs every pass; when it dies (stops
// renewing, without giving the lease up) the other takes over and the passes go on, numbered
// on from the last, never two at once.
func TestOneHolderAndTakeover(t *testing.T) {
	url := pgtest.NewDB(t)
	poolA, poolB := newPool(t, url), newPool(t, url)
	// A holder that stalls past the TTL rightly loses the job (that is the lease's point), so
	// the TTL is long against the stalls of a loaded machine under the race detector (at 600 ms
	// a loaded run once saw the first holder's lease run out while it was alive); the takeover
	// below then waits about one TTL.
	const ttl = 3 * time.Second
	a, b := newRunner(t, poolA, "a", ttl), newRunner(t, poolB, "b", ttl)
	job := Job{Name: "tick", Every: 50 * time.Millisecond, Run: passes(t, poolA)}
	a.Add(job)
	job.Run = passes(t, poolB)
	b.Add(job)
	a.Start()
	waitFor(t, "a's first pass", func() bool { return len(readPasses(t, poolA)) > 0 })
	b.Start()
	defer b.Stop()
	waitFor(t, "ten passes", func() bool { return len(readPasses(t, poolA)) >= 10 })
	first := readPasses(t, poolA)
	for _, p := range first {
		if p.holder != first[0].holder {
			t.Fatalf("passes by two holders while the first was alive: %+v", first)
		}
	}
	holder, other := a, b
	if first[0].holder == "b" {
		holder, other = b, a
	}
	holder.halt() // dies: no more renewals, the lease is not given up
	before := len(readPasses(t, poolA))
	waitFor(t, "the other runner's passes", func() bool {
		ps := readPasses(t, poolA)
		return ps[len(ps)-1].holder == other.holder && len(ps) >= before+5
	})
	ps := readPasses(t, poolA)
	for i, p := range ps {
		if p.seq != int64(i+1) {
			t.Fatalf("pass %d has number %d: passes skipped or doubled: %+v", i+1, p.seq, ps)
		}
	}
	if !other.Held("tick") || holder.Held("tick") {
		t.Errorf("held: %s %v, %s %v", holder.holder, holder.Held("tick"), other.holder, other.Held("tick"))
	}
	if holder == a {
		b.Stop()
	} else {
		a.Stop()
	}
	st, err := Statuses(context.Background(), poolA, pgdb.Postgres)
	if err != nil || len(st) != 1 || st[0].Runs < int64(len(ps)) || st[0].LastDetail == "" {
		t.Errorf("statuses %+v, %v", st, err)
	}
}

// A holder paused inside a pass past its lease: the replica taking over waits for that
// transaction instead of running alongside it, and the paused holder's next write fails with
// ErrLeaseLost.
func TestPassTxIsFencedByTheLease(t *testing.T) {
	url := pgtest.NewDB(t)
	poolA, poolB := newPool(t, url), newPool(t, url)
	const ttl = 300 * time.Millisecond
	a, b := newRunner(t, poolA, "a", ttl), newRunner(t, poolB, "b", ttl)
	ctx := context.Background()
	b.Add(Job{Name: "slow", Every: time.Millisecond, Run: passes(t, poolB)})
	inTx, committed := make(chan struct{}), make(chan struct{})
	second := make(chan error, 1)
	a.Add(Job{Name: "slow", Every: time.Hour, Run: func(ctx context.Context, p *Pass) error {
		err := p.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO passes (seq, holder) VALUES ($1, $2)`, p.Seq, p.Holder)
			close(inTx)
			time.Sleep(4 * ttl) // paused past the lease, the lease row locked
			return err
		})
		close(committed)
		if err != nil {
			return err
		}
		err = p.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO passes (seq, holder) VALUES (-1, 'a-late')`)
			return err
		})
		second <- err
		return err
	}})
	done := make(chan error, 1)
	go func() {
		_, err := a.RunNow(ctx, "slow")
		done <- err
	}()
	<-inTx
	b.Start()
	defer b.Stop()
	time.Sleep(2 * ttl) // a's lease has expired; b is trying to take it
	var byB int
	if err := poolA.QueryRow(ctx, `SELECT count(*) FROM passes WHERE holder = 'b'`).Scan(&byB); err != nil {
		t.Fatal(err)
	}
	if byB != 0 {
		t.Fatalf("b ran %d passes while a's pass transaction was open", byB)
	}
	<-committed
	if err := <-second; !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a's write after losing the lease: %v, want ErrLeaseLost", err)
	}
	if err := <-done; !errors.Is(err, ErrLeaseLost) {
		t.Errorf("RunNow: %v", err)
	}
	waitFor(t, "b's passes", func() bool { return len(readPasses(t, poolA)) >= 3 })
	ps := readPasses(t, poolA)
	if ps[0].holder != "a" || ps[0].seq != 1 {
		t.Errorf("first pass %+v", ps[0])
	}
	for _, p := range ps[1:] {
		if p.holder != "b" {
			t.Errorf("pass %+v after the takeover", p)
		}
	}
}

// A new holder keeps the schedule: a job that ran a minute ago with Every = 1h does not run
// again because its holder changed.
func TestScheduleSurvivesTakeover(t *testing.T) {
	url := pgtest.NewDB(t)
	poolA, poolB := newPool(t, url), newPool(t, url)
	const ttl = 300 * time.Millisecond
	a, b := newRunner(t, poolA, "a", ttl), newRunner(t, poolB, "b", ttl)
	a.Add(Job{Name: "hourly", Every: time.Hour, Run: passes(t, poolA)})
	b.Add(Job{Name: "hourly", Every: time.Hour, Run: passes(t, poolB)})
	a.Start()
	waitFor(t, "a's pass", func() bool { return len(readPasses(t, poolA)) == 1 })
	a.Stop() // gives the lease up at once
	b.Start()
	defer b.Stop()
	waitFor(t, "b to hold the lease", func() bool { return b.Held("hourly") })
	time.Sleep(ttl)
	if ps := readPasses(t, poolA); len(ps) != 1 {
		t.Errorf("passes %+v: the new holder ran a pass that was not due", ps)
	}
}

// Local jobs run in every process, and once more when the runner stops (the last flush).
func TestLocalJobsRunEverywhereAndAtStop(t *testing.T) {
	url := pgtest.NewDB(t)
	pool := newPool(t, url)
	var runs [2]atomic.Int32
	var rs []*Runner
	for i := range 2 {
		r := newRunner(t, pool, string(rune('a'+i)), time.Second)
		r.Add(Job{Name: "flush", Local: true, Every: 20 * time.Millisecond, Run: func(ctx context.Context, p *Pass) error {
			runs[i].Add(1)
			return p.Tx(ctx, func(tx pgx.Tx) error { return nil })
		}})
		r.Start()
		rs = append(rs, r)
	}
	waitFor(t, "both processes' flushes", func() bool { return runs[0].Load() >= 3 && runs[1].Load() >= 3 })
	rs[0].Stop()
	n := runs[0].Load()
	time.Sleep(100 * time.Millisecond)
	if runs[0].Load() != n {
		t.Errorf("a stopped runner's local job ran again")
	}
	before := runs[1].Load()
	rs[1].Stop()
	if runs[1].Load() <= before {
		t.Errorf("Stop did not run the local job a last time")
	}
}

// Zero Every disables a job; RunNow of an unknown job is an error.
func TestDisabledAndUnknownJobs(t *testing.T) {
	pool := newPool(t, pgtest.NewDB(t))
	r := newRunner(t, pool, "a", time.Second)
	r.Add(Job{Name: "off", Every: 0, Run: func(context.Context, *Pass) error { t.Error("a disabled job ran"); return nil }})
	if _, err := r.RunNow(context.Background(), "off"); err == nil {
		t.Error("RunNow of a disabled job: no error")
	}
	r.Start()
	time.Sleep(50 * time.Millisecond)
	r.Stop()
}

// Observe hears of every pass with its outcome, and the lease row keeps the last success
// across a failed pass.
func TestObserveAndLastSuccess(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t, pgtest.NewDB(t))
	type heard struct {
		job string
		ok  bool
	}
	var got []heard
	r, err := New(ctx, pool, pgdb.Postgres, Options{Holder: "a", LeaseTTL: time.Minute,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observe: func(job string, err error) { got = append(got, heard{job, err == nil}) }})
	if err != nil {
		t.Fatal(err)
	}
	fail := false
	r.Add(Job{Name: "leased", Every: time.Hour, Run: func(context.Context, *Pass) error {
		if fail {
			return errors.New("boom")
		}
		return nil
	}})
	r.Add(Job{Name: "local", Local: true, Every: time.Hour, Run: func(context.Context, *Pass) error { return nil }})
	status := func() Status {
		t.Helper()
		st, err := Statuses(ctx, pool, pgdb.Postgres)
		if err != nil || len(st) != 1 {
			t.Fatalf("statuses %v, %v", st, err)
		}
		return st[0]
	}
	for _, name := range []string{"leased", "local"} {
		if ran, err := r.RunNow(ctx, name); !ran || err != nil {
			t.Fatalf("RunNow(%s): %v %v", name, ran, err)
		}
	}
	first := status()
	if first.LastSuccessAt == nil || first.LastError != "" {
		t.Fatalf("after a good pass: %+v", first)
	}
	fail = true
	if _, err := r.RunNow(ctx, "leased"); err == nil {
		t.Fatal("failing pass: no error")
	}
	if st := status(); st.LastError != "boom" || st.LastSuccessAt == nil || !st.LastSuccessAt.Equal(*first.LastSuccessAt) {
		t.Errorf("after a failed pass: %+v, want the first success kept", st)
	}
	want := []heard{{"leased", true}, {"local", true}, {"leased", false}}
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("observed %v, want %v", got, want)
		}
	}
}
