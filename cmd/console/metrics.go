package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/metrics"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/sessionstore"
)

// Jobs of every serve process (local: no lease) and of one of them (leased) for the metrics
// and the overview.
const (
	jobMetrics  = "metrics"
	jobOverview = "overview"
	// topUsers is how many users the overview lists by active sessions.
	topUsers = 10
)

// jobNames are the names of serve's background jobs (their metrics series exist from the start).
var jobNames = []string{jobHistorySync, jobPurge, jobRetention, jobActivity, jobCounts, jobMetrics, jobOverview}

// newMetrics builds serve's metrics and hooks them to what counts: the actions (sessions
// issued and revoked by this process), the history sync (sessions it first sees that the CLI
// or anything else created) and the job runner (passes run).
func newMetrics(a *app) *metrics.Metrics {
	m := metrics.New(a.pool, jobNames)
	a.actions.OnCommit(m.Committed)
	// Sessions this process issued were counted when they were issued.
	a.history.OnFresh(func(o history.Origin, n int64) {
		if o != history.FromConsole {
			m.Issued(o, n)
		}
	})
	return m
}

// refreshMetrics sets the metrics' gauges of the database's state from what the other jobs
// keep: the sessions per status (the counts job's shared counts; a count of this process's
// own, cached, when they are stale or the counts job is off) and the jobs' leases. It is the
// metrics job's pass: a scrape itself reads nothing from the database.
func refreshMetrics(ctx context.Context, a *app, m *metrics.Metrics, r *jobs.Runner, rules *policy.Policy) error {
	c, err := a.sessions.Counts(ctx, sessionstore.Filter{})
	if err != nil {
		return fmt.Errorf("metrics: counts: %w", err)
	}
	m.SetCounts(c)
	st, err := jobs.Statuses(ctx, a.pool, a.server)
	if err != nil {
		return fmt.Errorf("metrics: jobs: %w", err)
	}
	m.SetJobs(st, r.Holder(), time.Now())
	if rules != nil && len(rules.Config().EnabledRules()) > 0 {
		// The policy's cached counts (the policy page's): at most one count per CountsMaxAge.
		pc, err := rules.Counts(ctx)
		if err != nil {
			return fmt.Errorf("metrics: policy: %w", err)
		}
		byRule := make(map[string]int64, len(pc.Rules))
		for r, n := range pc.Rules {
			byRule[string(r)] = n
		}
		m.SetPolicyBreaches(byRule)
	}
	return nil
}

// serveMetrics serves /metrics without a token on its own listener (--metrics-listen); it
// stops with ctx.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, readHeader time.Duration, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeader,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	return ln.Addr(), nil
}
