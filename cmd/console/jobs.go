package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/metrics"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/web/handlers"
)

// The background jobs of `console serve`, by name (their leases in console.job_leases).
const (
	jobHistorySync = "history-sync"
	jobPurge       = "purge"
	jobRetention   = "history-retention"
	jobActivity    = "activity-flush"
	jobCounts      = "counts"
	// retentionEvery is how often old history is deleted.
	retentionEvery = time.Hour
)

// jobFlags are serve's settings of the background jobs.
type jobFlags struct {
	historySync      time.Duration
	historyRetention time.Duration
	purgeTTL         time.Duration
	purgeInterval    time.Duration
	lease            time.Duration
	activityFlush    time.Duration
	countRefresh     time.Duration
	metricsRefresh   time.Duration
	overviewRefresh  time.Duration
}

// The defaults of the metrics' and the overview's jobs.
const (
	defaultMetricsRefresh  = 15 * time.Second
	defaultOverviewRefresh = time.Minute
)

func (j *jobFlags) register(fl *pflag.FlagSet) {
	fl.DurationVar(&j.historySync, "history-sync", history.DefaultSyncEvery,
		"how often the session history records what changed in the session table (0: never)")
	fl.DurationVar(&j.historyRetention, "history-retention", history.DefaultRetention,
		"how long the history keeps a session after it ended and left the session table (9600h: 400 days)")
	fl.DurationVar(&j.purgeTTL, "purge-ttl", history.DefaultPurgeTTL,
		"PostgreSQL: delete sessions this long after they expired or were revoked, as CockroachDB's server.web_session.purge.ttl (ignored on CockroachDB, which purges by itself)")
	fl.DurationVar(&j.purgeInterval, "purge-interval", history.DefaultPurgeEvery,
		"PostgreSQL: how often the purge runs (0: never; ignored on CockroachDB)")
	fl.DurationVar(&j.lease, "job-lease", jobs.DefaultLeaseTTL,
		"with several console processes on one database, each background job runs in one of them under a lease of this length; another takes it over this long after the holder dies")
	fl.DurationVar(&j.activityFlush, "activity-flush", history.DefaultActivityFlushEvery,
		"how often the uses seen at /auth/verify are written to the activity tables (0: record no activity)")
	fl.DurationVar(&j.countRefresh, "count-refresh", history.DefaultCountEvery,
		"how often one console process counts the sessions per status for every process's page headers, while someone looks (0: each process counts for itself)")
	fl.DurationVar(&j.metricsRefresh, "metrics-refresh", defaultMetricsRefresh,
		"how often each console process sets its /metrics gauges of the database's state (sessions per status, job leases, policy breaches) from what the other jobs keep; a scrape reads nothing from the database (0: never, the gauges stay unset)")
	fl.DurationVar(&j.overviewRefresh, "overview-refresh", defaultOverviewRefresh,
		"how often one console process counts the users holding the most active sessions for the overview (0: never)")
}

// startJobs builds the job runner of a serve process with every job, and starts it. The
// recorder is the activity buffer /auth/verify notes uses in (nil with --activity-flush 0:
// no activity is recorded). Stop the runner at shutdown
// (after the HTTP server, so the last uses are flushed).
func startJobs(a *app, f jobFlags, m *metrics.Metrics, rules *policy.Policy, log *slog.Logger) (*jobs.Runner, *history.Recorder, error) {
	ctx := context.Background()
	r, err := jobs.New(ctx, a.pool, a.server, jobs.Options{LeaseTTL: f.lease, Logger: log, Observe: m.JobPass})
	if err != nil {
		return nil, nil, err
	}
	r.Add(jobs.Job{Name: jobHistorySync, Every: f.historySync, Run: func(ctx context.Context, p *jobs.Pass) error {
		res, err := a.history.Sync(ctx, p)
		p.Detail("%d new, %d changed, %d purged", res.New, res.Changed, res.Purged)
		return err
	}})
	if a.flavor == pgdb.Postgres {
		ttl := f.purgeTTL
		r.Add(jobs.Job{Name: jobPurge, Every: f.purgeInterval, Run: func(ctx context.Context, p *jobs.Pass) error {
			n, err := a.history.Purge(ctx, p, ttl)
			p.Detail("%d purged", n)
			return err
		}})
	}
	retention := f.historyRetention
	r.Add(jobs.Job{Name: jobRetention, Every: retentionEvery, Run: func(ctx context.Context, p *jobs.Pass) error {
		n, err := a.history.Expire(ctx, p, retention)
		p.Detail("%d deleted", n)
		return err
	}})
	if f.countRefresh > 0 {
		counter := a.history.NewCounter(f.countRefresh)
		a.sessions.UseSharedCounts(counter.Shared)
		r.Add(jobs.Job{Name: jobCounts, Every: f.countRefresh, Run: func(ctx context.Context, p *jobs.Pass) error {
			n, err := counter.Refresh(ctx, p)
			p.Detail("%d tables counted", n)
			return err
		}})
	}
	var rec *history.Recorder
	if f.activityFlush > 0 {
		rec = a.history.NewRecorder()
		r.Add(jobs.Job{Name: jobActivity, Local: true, Every: f.activityFlush, Run: func(ctx context.Context, p *jobs.Pass) error {
			return rec.Flush(ctx, p)
		}})
		go func() { // an early flush when the buffer fills up
			for range rec.Kick() {
				r.RunNow(ctx, jobActivity)
			}
		}()
	}
	r.Add(jobs.Job{Name: jobOverview, Every: f.overviewRefresh, Run: func(ctx context.Context, p *jobs.Pass) error {
		top, err := a.history.RefreshTopUsers(ctx, p, topUsers)
		p.Detail("%d users", len(top))
		return err
	}})
	addPolicyJob(r, a, rules, log)
	if f.metricsRefresh > 0 {
		r.Add(jobs.Job{Name: jobMetrics, Local: true, Every: f.metricsRefresh, Run: func(ctx context.Context, p *jobs.Pass) error {
			return refreshMetrics(ctx, a, m, r, rules)
		}})
		// The gauges are set before the first scrape can come.
		if _, err := r.RunNow(ctx, jobMetrics); err != nil {
			log.Warn("metrics: first refresh", "err", err)
		}
	}
	r.Start()
	return r, rec, nil
}

// handlerConfig is what the pages show of the jobs' settings, and where they read the jobs'
// state.
func (j jobFlags) handlerConfig(a *app) handlers.HistoryConfig {
	c := handlers.HistoryConfig{SyncEvery: j.historySync, PurgeTTL: j.purgeTTL, PurgeEvery: j.purgeInterval,
		Jobs: func(ctx context.Context) ([]jobs.Status, error) { return jobs.Statuses(ctx, a.pool, a.server) }}
	if a.flavor != pgdb.Postgres {
		c.PurgeTTL, c.PurgeEvery = 0, 0
	}
	return c
}
