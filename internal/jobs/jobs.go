// Package jobs runs the console's background jobs, each on its own schedule and, with several
// `console serve` processes on one database, each on one replica at a time: a job runs only
// in the process that holds its lease, a row of console.job_leases that the holder renews and
// that another replica takes over once the holder stops renewing it (it died, hung or lost the
// database).
//
// A leased job's writes go through Pass.Tx, which commits only while the lease is still this
// process's and holds the lease row locked meanwhile, so that a takeover waits for the
// transaction and never overlaps it: a pass's effects happen once even when a holder is paused
// past its lease. Jobs keep their progress (watermarks, cursors) in the database, written in
// those same transactions, so a new holder continues where the old one stopped. The schedule is
// in the database too: a new holder runs a job when its last pass, by whichever replica, is
// Every old.
//
// Local jobs run in every process, without a lease: they work on that process's own memory
// (such as the activity noted by /auth/verify) and their writes must be safe to run from
// several processes at once (commutative upserts).
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
)

// ErrLeaseLost means the pass's lease is no longer this process's: its transaction was rolled
// back and the pass should stop.
var ErrLeaseLost = errors.New("jobs: lease lost")

// Defaults of Options.
const (
	// DefaultLeaseTTL is how long a lease lasts without renewal: a replica takes over a dead
	// holder's jobs within this time.
	DefaultLeaseTTL = 15 * time.Second
	// keepRuns is how many passes of each job the run log keeps.
	keepRuns = 200
)

// Migrations create the lease table and the run log (both dialects).
var Migrations = []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS console.job_leases (
	job TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	acquired_at TIMESTAMPTZ NOT NULL,
	runs INT8 NOT NULL DEFAULT 0,
	last_started_at TIMESTAMPTZ NULL,
	last_finished_at TIMESTAMPTZ NULL,
	last_holder TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	last_detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS console.job_runs (
	job TEXT NOT NULL,
	seq INT8 NOT NULL,
	holder TEXT NOT NULL,
	started_at TIMESTAMPTZ NOT NULL,
	finished_at TIMESTAMPTZ NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (job, seq)
);
`}, {Version: 2, SQL: `
CREATE TABLE IF NOT EXISTS console.job_success (
	job TEXT PRIMARY KEY,
	last_success_at TIMESTAMPTZ NOT NULL
);
`}}

// Job is one background job.
type Job struct {
	// Name identifies the job (and its lease) across replicas.
	Name string
	// Every is the time from the start of one pass to the start of the next. Zero disables
	// the job.
	Every time.Duration
	// Run does one pass. A leased job writes through p.Tx; a pass that returns ErrLeaseLost
	// ends quietly.
	Run func(ctx context.Context, p *Pass) error
	// Local jobs run in every process, without a lease (see the package comment).
	Local bool
	// Timeout bounds one pass (default: Every, at least a minute).
	Timeout time.Duration
}

// Options configure a Runner.
type Options struct {
	// Holder names this process in leases and run logs (default host:pid:random).
	Holder string
	// LeaseTTL is how long a lease lasts unrenewed (default DefaultLeaseTTL); it is renewed
	// every third of that.
	LeaseTTL time.Duration
	// Tx runs fn in a transaction, retrying it as the database requires (default:
	// pgdb.RunTx on the pool).
	Tx     func(ctx context.Context, fn func(pgx.Tx) error) error
	Logger *slog.Logger
	// Observe, if set, hears of every pass this process ran, when it ends (err nil: it
	// succeeded), for the metrics. A pass whose lease was lost is not reported.
	Observe func(job string, err error)
}

// Runner runs jobs. Build it with New, Add the jobs, Start it, Stop it at shutdown.
type Runner struct {
	pool   *pgxpool.Pool
	holder string
	ttl    time.Duration
	tx     func(ctx context.Context, fn func(pgx.Tx) error) error
	log    *slog.Logger
	jobs   []Job
	obs    func(job string, err error)

	mu   sync.Mutex
	held map[string]bool

	stop    chan struct{}
	wg      sync.WaitGroup
	started bool
	stopped bool
}

// New migrates the lease tables and returns a runner with no jobs.
func New(ctx context.Context, pool *pgxpool.Pool, flavor pgdb.Flavor, o Options) (*Runner, error) {
	if err := pgdb.Migrate(ctx, pool, flavor, "jobs", Migrations); err != nil {
		return nil, err
	}
	if o.Holder == "" {
		o.Holder = DefaultHolder()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Runner{pool: pool, holder: o.Holder, ttl: o.LeaseTTL, tx: o.Tx, log: o.Logger, obs: o.Observe,
		held: map[string]bool{}, stop: make(chan struct{})}
	if r.tx == nil {
		r.tx = func(ctx context.Context, fn func(pgx.Tx) error) error { return pgdb.RunTx(ctx, pool, flavor, fn) }
	}
	return r, nil
}

// DefaultHolder names this process: host:pid:random.
func DefaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Holder returns the name this process holds leases under.
func (r *Runner) Holder() string { return r.holder }

// Add registers a job; jobs with a zero Every are ignored. Call it before Start.
func (r *Runner) Add(j Job) {
	if j.Every <= 0 || j.Run == nil {
		return
	}
	if j.Timeout <= 0 {
		j.Timeout = max(j.Every, time.Minute)
	}
	r.jobs = append(r.jobs, j)
}

// Start runs every job in the background until Stop.
func (r *Runner) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	for _, j := range r.jobs {
		r.wg.Add(1)
		go r.loop(j)
	}
	r.wg.Add(1)
	go r.renewLoop()
}

// Stop ends the loops (a pass in progress finishes first), runs each local job once more (the
// last flush of buffered work) and gives up this process's leases, so that another replica
// takes the jobs over at once instead of after LeaseTTL.
func (r *Runner) Stop() {
	if !r.halt() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range r.jobs {
		if j.Local {
			r.runLocal(ctx, j)
		}
	}
	if _, err := r.pool.Exec(ctx, `UPDATE console.job_leases SET expires_at = now() WHERE holder = $1 AND expires_at > now()`, r.holder); err != nil {
		r.log.Warn("jobs: releasing leases", "err", err)
	}
}

// halt ends the loops and waits for them; it reports false if they had ended before.
func (r *Runner) halt() bool {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false
	}
	r.stopped = true
	close(r.stop)
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	clear(r.held)
	r.mu.Unlock()
	return true
}

// loop is one job's schedule.
func (r *Runner) loop(j Job) {
	defer r.wg.Done()
	if j.Local {
		t := time.NewTicker(j.Every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), j.Timeout)
				r.runLocal(ctx, j)
				cancel()
			}
		}
	}
	// A leased job looks at its lease every third of the TTL: often enough to take over a
	// dead holder's job within about one TTL, rarely enough to cost nothing.
	poll := r.ttl / 3
	timer := time.NewTimer(jitter(poll))
	defer timer.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), j.Timeout)
		wait := r.tick(ctx, j)
		cancel()
		timer.Reset(min(max(wait, 10*time.Millisecond), poll))
	}
}

// jitter spreads the replicas' first looks over d.
func jitter(d time.Duration) time.Duration {
	b := make([]byte, 2)
	rand.Read(b)
	return time.Duration(int64(d) * int64(int(b[0])<<8|int(b[1])) / 65536)
}

// tick takes or keeps j's lease, runs a pass when one is due, and returns how long until the
// next pass is due (or until the lease should be looked at again).
func (r *Runner) tick(ctx context.Context, j Job) time.Duration {
	if !r.Held(j.Name) {
		held, err := r.acquire(ctx, j.Name)
		if err != nil {
			r.log.Warn("jobs: lease", "job", j.Name, "err", err)
			return r.ttl / 3
		}
		if !held {
			return r.ttl / 3
		}
	}
	p, due, err := r.begin(ctx, j)
	switch {
	case errors.Is(err, ErrLeaseLost):
		r.setHeld(j.Name, false)
		return r.ttl / 3
	case err != nil:
		r.log.Warn("jobs: start pass", "job", j.Name, "err", err)
		return r.ttl / 3
	case p == nil:
		return due
	}
	r.finish(ctx, j, p, r.runPass(ctx, j, p))
	return j.Every
}

func (r *Runner) runPass(ctx context.Context, j Job, p *Pass) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return j.Run(ctx, p)
}

func (r *Runner) runLocal(ctx context.Context, j Job) {
	p := &Pass{Job: j.Name, Holder: r.holder, r: r, local: true}
	err := r.runPass(ctx, j, p)
	if err != nil {
		r.log.Warn("jobs: pass failed", "job", j.Name, "err", err)
	}
	r.observe(j.Name, err)
}

func (r *Runner) observe(job string, err error) {
	if r.obs != nil {
		r.obs(job, err)
	}
}

func (r *Runner) setHeld(job string, held bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if held {
		r.held[job] = true
	} else {
		delete(r.held, job)
	}
}

// Held reports whether this process holds job's lease (as of its last look).
func (r *Runner) Held(job string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[job]
}

// acquire takes job's lease if it is free or expired, renews it if this process holds it,
// and reports whether this process holds it now. The database's clock decides expiry, so the
// replicas' clocks do not matter.
func (r *Runner) acquire(ctx context.Context, job string) (bool, error) {
	// Look first: the upsert below locks the row even when it changes nothing, and would wait
	// for the holder's pass transaction, which keeps the row locked.
	var other bool
	err := r.pool.QueryRow(ctx, `SELECT holder <> $2 AND expires_at > now() FROM console.job_leases WHERE job = $1`,
		job, r.holder).Scan(&other)
	if err == nil && other {
		r.setHeld(job, false)
		return false, nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	rows, err := r.pool.Query(ctx, `INSERT INTO console.job_leases AS l (job, holder, expires_at, acquired_at)
		VALUES ($1, $2, now() + $3::INT8 * INTERVAL '1 microsecond', now())
		ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.acquired_at ELSE excluded.acquired_at END
		WHERE l.holder = excluded.holder OR l.expires_at <= now()
		RETURNING holder`, job, r.holder, r.ttl.Microseconds())
	if err != nil {
		return false, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	held := len(names) == 1
	if was := r.Held(job); was != held {
		if held {
			r.log.Info("jobs: took lease", "job", job, "holder", r.holder)
		}
		r.setHeld(job, held)
	}
	return held, nil
}

// renewLoop renews every lease this process holds, every third of the TTL, in one statement.
func (r *Runner) renewLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		jobs := make([]string, 0, len(r.held))
		for j := range r.held {
			jobs = append(jobs, j)
		}
		r.mu.Unlock()
		if len(jobs) == 0 {
			continue
		}
		sort.Strings(jobs)
		ctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
		rows, err := r.pool.Query(ctx, `UPDATE console.job_leases SET expires_at = now() + $3::INT8 * INTERVAL '1 microsecond'
			WHERE holder = $1 AND job = ANY($2) AND expires_at > now() RETURNING job`, r.holder, jobs, r.ttl.Microseconds())
		var kept []string
		if err == nil {
			kept, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		cancel()
		if err != nil {
			r.log.Warn("jobs: renew leases", "err", err)
			continue
		}
		keep := map[string]bool{}
		for _, j := range kept {
			keep[j] = true
		}
		for _, j := range jobs {
			if !keep[j] {
				r.log.Warn("jobs: lost lease", "job", j, "holder", r.holder)
				r.setHeld(j, false)
			}
		}
	}
}

// begin starts a pass of j if one is due: it counts the pass in the lease row (under the
// lease) and returns it. When none is due it returns nil and how long until one is.
func (r *Runner) begin(ctx context.Context, j Job) (*Pass, time.Duration, error) {
	var p *Pass
	var wait time.Duration
	err := r.tx(ctx, func(tx pgx.Tx) error {
		p, wait = nil, 0
		var seq int64
		var started time.Time
		var dueIn *int64
		err := tx.QueryRow(ctx, `UPDATE console.job_leases
			SET runs = runs + CASE WHEN last_started_at IS NULL OR last_started_at <= now() - $3::INT8 * INTERVAL '1 microsecond' THEN 1 ELSE 0 END,
				last_started_at = CASE WHEN last_started_at IS NULL OR last_started_at <= now() - $3::INT8 * INTERVAL '1 microsecond' THEN now() ELSE last_started_at END
			WHERE job = $1 AND holder = $2 AND expires_at > now()
			RETURNING runs, last_started_at,
				CASE WHEN last_started_at = now() THEN NULL
				ELSE (extract(epoch FROM (last_started_at + $3::INT8 * INTERVAL '1 microsecond' - now())) * 1000000)::INT8 END`,
			j.Name, r.holder, j.Every.Microseconds()).Scan(&seq, &started, &dueIn)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if dueIn != nil {
			wait = time.Duration(*dueIn) * time.Microsecond
			return nil
		}
		p = &Pass{Job: j.Name, Holder: r.holder, Seq: seq, StartedAt: started, r: r}
		return nil
	})
	return p, wait, err
}

// finish records the pass in the lease row and the run log.
func (r *Runner) finish(ctx context.Context, j Job, p *Pass, runErr error) {
	if errors.Is(runErr, ErrLeaseLost) {
		r.setHeld(j.Name, false)
		r.log.Warn("jobs: lost lease during a pass", "job", j.Name, "holder", r.holder)
		return
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
		r.log.Warn("jobs: pass failed", "job", j.Name, "err", runErr)
	}
	r.observe(j.Name, runErr)
	ctx = context.WithoutCancel(ctx)
	err := r.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console.job_leases SET last_finished_at = now(), last_holder = $2,
			last_error = $3, last_detail = $4 WHERE job = $1`, j.Name, r.holder, msg, p.detail); err != nil {
			return err
		}
		if msg == "" {
			if _, err := tx.Exec(ctx, `INSERT INTO console.job_success (job, last_success_at) VALUES ($1, now())
				ON CONFLICT (job) DO UPDATE SET last_success_at = excluded.last_success_at`, j.Name); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO console.job_runs (job, seq, holder, started_at, finished_at, error, detail)
			VALUES ($1, $2, $3, $4, now(), $5, $6) ON CONFLICT (job, seq) DO NOTHING`,
			j.Name, p.Seq, r.holder, p.StartedAt, msg, p.detail); err != nil {
			return err
		}
		if p.Seq%50 == 0 {
			_, err := tx.Exec(ctx, `DELETE FROM console.job_runs WHERE job = $1 AND seq <= $2`, j.Name, p.Seq-keepRuns)
			return err
		}
		return nil
	})
	if err != nil {
		r.log.Warn("jobs: record pass", "job", j.Name, "err", err)
	}
}

// RunNow runs one pass of the named job at once, in this process, whatever its schedule,
// provided this process holds (or can take) its lease; it reports whether it ran. For tests
// and for commands that want a job done before they go on.
func (r *Runner) RunNow(ctx context.Context, name string) (bool, error) {
	for _, j := range r.jobs {
		if j.Name != name {
			continue
		}
		if j.Local {
			p := &Pass{Job: j.Name, Holder: r.holder, r: r, local: true}
			err := r.runPass(ctx, j, p)
			r.observe(j.Name, err)
			return true, err
		}
		held, err := r.acquire(ctx, name)
		if err != nil || !held {
			return false, err
		}
		forced := j
		forced.Every = time.Microsecond
		p, _, err := r.begin(ctx, forced)
		if err != nil || p == nil {
			return false, err
		}
		err = r.runPass(ctx, j, p)
		r.finish(ctx, j, p, err)
		return true, err
	}
	return false, fmt.Errorf("jobs: no job %q", name)
}

// Pass is one run of a job.
type Pass struct {
	Job, Holder string
	// Seq numbers the job's passes across replicas (0 for local jobs).
	Seq       int64
	StartedAt time.Time
	r         *Runner
	local     bool
	detail    string
}

// Tx runs fn in a transaction that commits only while this process holds the job's lease; the
// lease row stays locked until it commits, so a replica taking the lease over waits for it.
// It returns ErrLeaseLost (having rolled back) when the lease has passed to another holder.
// Local jobs get a plain transaction.
func (p *Pass) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return p.r.tx(ctx, func(tx pgx.Tx) error {
		if !p.local {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM console.job_leases
				WHERE job = $1 AND holder = $2 AND expires_at > now() FOR UPDATE`, p.Job, p.Holder).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrLeaseLost
			}
			if err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

// Detail sets the pass's one-line summary, kept in the run log ("12 new, 3 revoked").
func (p *Pass) Detail(format string, args ...any) { p.detail = fmt.Sprintf(format, args...) }

// Status is a job's lease and last pass, as the health page shows them.
type Status struct {
	Job            string
	Holder         string
	LeaseExpiresAt time.Time
	AcquiredAt     time.Time
	Runs           int64
	LastStartedAt  *time.Time
	LastFinishedAt *time.Time
	LastHolder     string
	LastError      string
	LastDetail     string
	// LastSuccessAt is when a pass last ended without an error, by whichever replica.
	LastSuccessAt *time.Time
}

// Statuses returns every job's lease row, by name.
func Statuses(ctx context.Context, pool *pgxpool.Pool, flavor pgdb.Flavor) ([]Status, error) {
	var out []Status
	// The whole (one row per job) table: on CockroachDB under --refuse-full-scans it is read
	// with the guard off for this statement.
	err := pgdb.WithFullScan(ctx, pool, flavor, func(q pgdb.DBTX) error {
		rows, err := q.Query(ctx, `SELECT job, holder, expires_at, acquired_at, runs, last_started_at, last_finished_at,
		last_holder, last_error, last_detail, s.last_success_at
		FROM console.job_leases AS l LEFT JOIN console.job_success AS s USING (job) ORDER BY job`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Status, error) {
			var s Status
			err := r.Scan(&s.Job, &s.Holder, &s.LeaseExpiresAt, &s.AcquiredAt, &s.Runs, &s.LastStartedAt, &s.LastFinishedAt,
				&s.LastHolder, &s.LastError, &s.LastDetail, &s.LastSuccessAt)
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: status: %w", pgdb.Unavailable(err))
	}
	return out, nil
}
