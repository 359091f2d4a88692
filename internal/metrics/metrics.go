// Package metrics is the console's Prometheus exposition (/metrics), through
// prometheus/client_golang: the sessions per status, sessions issued and revoked, the
// /auth/verify requests and their latency, the background jobs, the policy rules' breaches,
// the database pool, the Go runtime and the process, and the build.
//
// Nothing here queries the database when scraped. Counters are incremented where things
// happen (in this process: they are per replica and start from zero at each start, as
// Prometheus counters do); gauges of the database's state are set by a background job of each
// process from what the other jobs keep (the shared counts, the job leases); the pool's
// figures are pgxpool's in-memory statistics.
//
// Label values come from fixed sets (statuses, origins, ways of revoking, verify results, job
// and rule names chosen by the code or by owners), never from usernames or session IDs.
package metrics

import (
	"net/http"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/sessionstore"
)

// How is the way a revocation was asked for, the label of console_sessions_revoked_total.
type How string

// The ways of revoking that `console serve` counts.
const (
	// OneSession: one session, on its page, in the table or through the API.
	OneSession How = "session"
	// AllOfUser: every session of a user (revoke-all on the web or through the API).
	AllOfUser How = "user"
	// ByPolicy: by the policy rules' enforcement.
	ByPolicy How = "policy"
	// InBulk: an admin's bulk revoke (a selection or all matching a filter, a rule's "Revoke
	// all N").
	InBulk How = "bulk"
)

// Hows lists every How, so that each series exists from the start.
var Hows = []How{OneSession, AllOfUser, InBulk, ByPolicy}

// VerifyResult is the outcome of one /auth/verify request.
type VerifyResult string

// The outcomes of /auth/verify.
const (
	// Valid: a session was accepted (200).
	Valid VerifyResult = "valid"
	// Missing: the request carried no decodable session (401).
	Missing VerifyResult = "missing"
	// Rejected: it carried sessions, none of them valid: unknown, revoked, expired or a
	// wrong secret (401).
	Rejected VerifyResult = "rejected"
	// Failed: the database could not say (503).
	Failed VerifyResult = "error"
)

// VerifyResults lists every result.
var VerifyResults = []VerifyResult{Valid, Missing, Rejected, Failed}

// Statuses are the values of console_sessions' status label.
var Statuses = []string{"active", "expired", "revoked"}

// VerifyBuckets are the latency buckets of console_verify_duration_seconds: verify answers in
// about a millisecond, and --verify-timeout (2 s) bounds it.
var VerifyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics are the console's metrics, in a registry of their own. The methods are safe for
// concurrent use; a nil *Metrics does nothing (metrics off).
type Metrics struct {
	reg *prometheus.Registry

	sessions       *prometheus.GaugeVec
	countedAt      prometheus.Gauge
	issued         *prometheus.CounterVec
	revoked        *prometheus.CounterVec
	verify         *prometheus.CounterVec
	verifyDuration prometheus.Histogram
	jobRuns        *prometheus.CounterVec
	jobErrors      *prometheus.CounterVec
	jobLastSuccess *prometheus.GaugeVec
	jobHeld        *prometheus.GaugeVec
	policyBreaches *prometheus.GaugeVec
}

// New returns the metrics, with the pool's figures, the Go runtime, the process and the build
// registered; jobNames are the background jobs whose series exist from the start.
func New(pool *pgxpool.Pool, jobNames []string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "console_sessions",
		Help: "Sessions in the session table per status, as the counts job last counted them (every process reports the shared count)."},
		[]string{"status"})
	m.countedAt = prometheus.NewGauge(prometheus.GaugeOpts{Name: "console_sessions_counted_timestamp_seconds",
		Help: "When console_sessions was counted (Unix time)."})
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_sessions_issued_total",
		Help: "Sessions issued: source=console by this process when it issues them (web, API); cli and other when this process's history sync first records them."},
		[]string{"source"})
	m.revoked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_sessions_revoked_total",
		Help: "Sessions revoked by this process: how=session (one), user (all of a user's), bulk (an admin's bulk revoke), policy (a policy rule's enforcement)."},
		[]string{"how"})
	m.verify = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_verify_requests_total",
		Help: "Requests to /auth/verify by result: valid, missing (no session), rejected (no valid session), error (the database could not say)."},
		[]string{"result"})
	m.verifyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "console_verify_duration_seconds",
		Help: "Time to answer /auth/verify.", Buckets: VerifyBuckets})
	m.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_job_runs_total",
		Help: "Passes of each background job run by this process."}, []string{"job"})
	m.jobErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_job_errors_total",
		Help: "Passes of each background job run by this process that failed."}, []string{"job"})
	m.jobLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "console_job_last_success_timestamp_seconds",
		Help: "When a pass of the leased job last succeeded, in whichever process (Unix time; from the lease table)."}, []string{"job"})
	m.jobHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "console_job_lease_held",
		Help: "1 when this process holds the job's lease."}, []string{"job"})
	m.policyBreaches = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "console_policy_breaches",
		Help: "Sessions or users breaking each policy rule, as the enforcement job last counted them."}, []string{"rule"})

	for _, s := range Statuses {
		m.sessions.WithLabelValues(s)
	}
	for _, o := range history.Origins {
		m.issued.WithLabelValues(o.String())
	}
	for _, h := range Hows {
		m.revoked.WithLabelValues(string(h))
	}
	for _, r := range VerifyResults {
		m.verify.WithLabelValues(string(r))
	}
	for _, j := range jobNames {
		m.jobRuns.WithLabelValues(j)
		m.jobErrors.WithLabelValues(j)
		m.jobHeld.WithLabelValues(j)
	}
	m.reg.MustRegister(m.sessions, m.countedAt, m.issued, m.revoked, m.verify, m.verifyDuration,
		m.jobRuns, m.jobErrors, m.jobLastSuccess, m.jobHeld, m.policyBreaches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.NewCollector("console", version.WithExtraConstLabels(prometheus.Labels{"version": buildVersion()})))
	if pool != nil {
		m.reg.MustRegister(newPoolCollector(pool))
	}
	return m
}

// buildVersion is the main module's version as the Go toolchain recorded it ("(devel)" for a
// build from a work tree).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// Handler serves the exposition (text format, or OpenMetrics when asked for).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Registry is the metrics' registry (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Issued counts n sessions issued from origin o.
func (m *Metrics) Issued(o history.Origin, n int64) {
	if m != nil && n > 0 {
		m.issued.WithLabelValues(o.String()).Add(float64(n))
	}
}

// Revoked counts n sessions revoked in the way how.
func (m *Metrics) Revoked(how How, n int64) {
	if m != nil && n > 0 {
		m.revoked.WithLabelValues(string(how)).Add(float64(n))
	}
}

// Committed counts the sessions an action of this process issued or revoked (for
// actions.Service.OnCommit): an issue is source=console; a revocation by a policy rule is
// how=policy, else session (one), user (all of a user's) or bulk (an admin's bulk revoke).
func (m *Metrics) Committed(by actions.Actor, e audit.Entry) {
	if m == nil {
		return
	}
	how := OneSession
	switch e.Action {
	case audit.Issue:
		m.Issued(history.FromConsole, 1)
		return
	case audit.Revoke:
		e.Count = max(e.Count, 1)
	case audit.RevokeAll:
		how = AllOfUser
	case audit.BulkRevoke:
		how = InBulk
	default:
		return
	}
	if by.Kind == actions.Policy {
		how = ByPolicy
	}
	m.Revoked(how, e.Count)
}

// Verified counts one /auth/verify request and its time.
func (m *Metrics) Verified(r VerifyResult, took time.Duration) {
	if m == nil {
		return
	}
	m.verify.WithLabelValues(string(r)).Inc()
	m.verifyDuration.Observe(took.Seconds())
}

// JobPass counts one pass of a job run by this process (jobs.Options.Observe).
func (m *Metrics) JobPass(job string, err error) {
	if m == nil {
		return
	}
	m.jobRuns.WithLabelValues(job).Inc()
	if err != nil {
		m.jobErrors.WithLabelValues(job).Inc()
	}
}

// SetCounts sets console_sessions from the counts of the session table.
func (m *Metrics) SetCounts(c sessionstore.Counts) {
	if m == nil {
		return
	}
	m.sessions.WithLabelValues("active").Set(float64(c.Active))
	m.sessions.WithLabelValues("expired").Set(float64(c.Expired))
	m.sessions.WithLabelValues("revoked").Set(float64(c.Revoked))
	if !c.At.IsZero() {
		m.countedAt.Set(float64(c.At.UnixMilli()) / 1000)
	}
}

// SetJobs sets the jobs' last successes (from the lease table) and whether this process
// (holder) holds each lease.
func (m *Metrics) SetJobs(st []jobs.Status, holder string, now time.Time) {
	if m == nil {
		return
	}
	for _, s := range st {
		if s.LastSuccessAt != nil {
			m.jobLastSuccess.WithLabelValues(s.Job).Set(float64(s.LastSuccessAt.UnixMilli()) / 1000)
		}
		held := 0.0
		if s.Holder == holder && s.LeaseExpiresAt.After(now) {
			held = 1
		}
		m.jobHeld.WithLabelValues(s.Job).Set(held)
	}
}

// SetPolicyBreaches sets the breaches of each policy rule, by the rule's name; rules that
// are gone lose their series.
func (m *Metrics) SetPolicyBreaches(byRule map[string]int64) {
	if m == nil {
		return
	}
	m.policyBreaches.Reset()
	for rule, n := range byRule {
		m.policyBreaches.WithLabelValues(rule).Set(float64(n))
	}
}

// poolCollector exports pgxpool's statistics (in memory: no query). Written here rather than
// taken from IBM/pgxpoolprometheus, whose names (pgxpool_acquire_count, ..._duration_ns) fail
// promtool's lint (counters without _total, units other than seconds).
type poolCollector struct {
	pool                                                  *pgxpool.Pool
	max, total, acquired, idle, constructing              *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires, emptyWaitSec *prometheus.Desc
	canceled, opened, lifetimeClosed, idleClosed          *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("console_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{pool: pool,
		max:            d("max_connections", "Most connections the pool opens (--db-max-conns)."),
		total:          d("connections", "Connections in the pool: acquired, idle and being opened."),
		acquired:       d("acquired_connections", "Connections in use."),
		idle:           d("idle_connections", "Idle connections."),
		constructing:   d("constructing_connections", "Connections being opened."),
		acquires:       d("acquires_total", "Connections acquired from the pool."),
		acquireSeconds: d("acquire_seconds_total", "Time spent acquiring connections."),
		emptyAcquires:  d("empty_acquires_total", "Acquires that waited because no connection was idle."),
		emptyWaitSec:   d("empty_acquire_wait_seconds_total", "Time those acquires waited."),
		canceled:       d("canceled_acquires_total", "Acquires given up because their request ended."),
		opened:         d("opened_connections_total", "Connections opened."),
		lifetimeClosed: d("max_lifetime_closed_total", "Connections closed for their age."),
		idleClosed:     d("max_idle_closed_total", "Connections closed for idleness."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.max, float64(s.MaxConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.constructing, float64(s.ConstructingConns()))
	n(c.acquires, float64(s.AcquireCount()))
	n(c.acquireSeconds, s.AcquireDuration().Seconds())
	n(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	n(c.emptyWaitSec, s.EmptyAcquireWaitTime().Seconds())
	n(c.canceled, float64(s.CanceledAcquireCount()))
	n(c.opened, float64(s.NewConnsCount()))
	n(c.lifetimeClosed, float64(s.MaxLifetimeDestroyCount()))
	n(c.idleClosed, float64(s.MaxIdleDestroyCount()))
}
