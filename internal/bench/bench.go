// Package bench is `make bench`: it measures the console's speed and memory at 10k and 1M
// sessions against raw pgx running the same SQL in the same run (the floor).
//
// One run starts a throwaway embedded PostgreSQL (default settings, fsync on) in a temporary
// directory, and for each size: creates a database, seeds it by COPY, starts `console serve`
// on it, signs in as an admin, and drives each case over loopback with a bounded load
// generator, first on raw pgx, then on the console. It prints a table and the bars, writes
// the same figures as JSON, and removes everything it started, also on Ctrl-C.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgembed"
	"github.com/sessionconsole/console/sessionstore"
)

// Config is one bench run.
type Config struct {
	// Console is the console binary (bin/console). Unused with FloorOnly.
	Console string
	// FloorOnly measures only the raw pgx floors (no console process).
	FloorOnly bool
	Quick     bool
	// Sizes are the numbers of sessions to seed, one run each, in order.
	Sizes []int
	// Clients is the load generator's concurrency for the request cases (1-6).
	Clients int
	// CaseDuration and MaxOps bound each measured run; Warmup precedes it.
	CaseDuration time.Duration
	Warmup       time.Duration
	MaxOps       int
	// MaxIssues bounds the issue case (each one adds a row).
	MaxIssues int
	// RevokeIterations bounds the revoke-all case; CSVIterations the CSV and list cases.
	RevokeIterations int
	CSVIterations    int
	// Settings are extra PostgreSQL server settings (none by default).
	Settings map[string]string
	// Explain prints EXPLAIN (ANALYZE, BUFFERS) of each floor query after seeding.
	Explain bool
	// Hold keeps each size's database and server up after its cases until ctx ends (Ctrl-C),
	// printing how to reach them, for investigation.
	Hold bool
	// Pprof is the console's net/http/pprof address (host:port), if it serves one; a CPU
	// profile of every console case is then saved in PprofDir.
	Pprof    string
	PprofDir string
	// Rounds splits the same-size HTTP floor's and the console's runs of each request case
	// into this many alternating rounds (floor, console, floor, console, ...), each with its
	// share of the warm-up, duration and operation bounds, joined into one figure per side
	// (mergeRuns). Measured one after the other, the two sides of a case met different
	// moments of the machine (a floor 20% faster or slower from one case to the next for the
	// same work); alternating makes the ratio compare the same moments.
	Rounds int
	// WaitIdle, if positive, waits before each case (up to this long) until other processes
	// use less than 10% of the machine's CPU: on a shared machine, the figures are otherwise noise.
	WaitIdle time.Duration
	// Statements loads pg_stat_statements and reports, per console case, the statements the
	// console ran per operation (it slows every query a little: not for judging the bars).
	Statements bool
	// FloorInProcess serves the HTTP floors in the bench process, beside the load generator,
	// instead of in a process of their own (see floorProcessEnv): the way before 2026-12-02,
	// for comparison.
	FloorInProcess bool
	// Cases, if set, runs only the cases of these names (Case*; for investigation: the bars
	// then judge only what ran).
	Cases []string
	// Out is the JSON results file ("" writes none).
	Out string
	// Log receives progress lines and the final table (not sent to a floor process).
	Log io.Writer `json:"-"`
}

// DefaultConfig returns the full run's settings, or the quick run's (10k only, short cases).
func DefaultConfig(quick bool) Config {
	c := Config{
		Quick: quick, Sizes: []int{10_000, 1_000_000}, Clients: 16,
		CaseDuration: 5 * time.Second, Warmup: time.Second, MaxOps: 1_000_000,
		MaxIssues: 100_000, RevokeIterations: 15, CSVIterations: 2, Rounds: 3,
		Out: "bench-results.json", Log: os.Stdout,
		// This machine is shared: give other processes' bursts a few seconds to pass.
		WaitIdle: 10 * time.Second,
	}
	if quick {
		c.Sizes = []int{10_000}
		c.CaseDuration, c.Warmup, c.MaxOps = 1500*time.Millisecond, 300*time.Millisecond, 300_000
		c.MaxIssues, c.RevokeIterations, c.CSVIterations = 30_000, 5, 1
		c.WaitIdle = 0
	}
	return c
}

// Run runs the bench and returns its report (also written to cfg.Out). Missed bars are not
// errors; errors are failures to run (a database error, a console answer with a wrong status).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if !cfg.FloorOnly {
		bin, err := filepath.Abs(cfg.Console)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
			return nil, fmt.Errorf("bench: console binary %q not found (run make build, or use -floor-only)", cfg.Console)
		}
		cfg.Console = bin
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "bench: "+format+"\n", args...)
	}
	rep := &Report{Machine: machineInfo(), Quick: cfg.Quick, FloorOnly: cfg.FloorOnly, FloorsInBench: cfg.FloorInProcess, Clients: cfg.Clients,
		CaseSeconds: cfg.CaseDuration.Seconds(), WarmupSeconds: cfg.Warmup.Seconds(), Settings: map[string]string{}}

	tmp, err := os.MkdirTemp(os.TempDir(), "console-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	// As root the server runs as postgres, which must pass through this directory.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logf("starting PostgreSQL in %s (fsync on)", tmp)
	settings := map[string]string{}
	for k, v := range cfg.Settings {
		settings[k] = v
	}
	if cfg.Statements {
		settings["shared_preload_libraries"] = "pg_stat_statements"
		settings["pg_stat_statements.track_utility"] = "off"
	}
	cluster, err := pgembed.Start(ctx, pgembed.Options{DataDir: filepath.Join(tmp, "pg"), Settings: settings})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cluster.Destroy(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}()
	if err := serverSettings(ctx, cluster, rep); err != nil {
		return nil, err
	}
	logf("%s; shared_buffers=%s fsync=%s synchronous_commit=%s", rep.Postgres,
		rep.Settings["shared_buffers"], rep.Settings["fsync"], rep.Settings["synchronous_commit"])

	for _, size := range cfg.Sizes {
		sr, err := runSize(ctx, &cfg, cluster, tmp, size, logf)
		if sr != nil {
			rep.Sizes = append(rep.Sizes, *sr)
		}
		if err != nil {
			return rep, err
		}
	}
	rep.Bars = evaluateBars(rep)
	rep.Print(cfg.Log)
	if cfg.Out != "" {
		if err := rep.WriteJSON(cfg.Out); err != nil {
			return rep, err
		}
		logf("results written to %s", cfg.Out)
	}
	return rep, nil
}

// serverSettings records the PostgreSQL version and the settings that matter for the figures.
func serverSettings(ctx context.Context, cluster *pgembed.Cluster, rep *Report) error {
	conn, err := pgx.Connect(ctx, cluster.AdminURL())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT version()`).Scan(&rep.Postgres); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT name, setting, COALESCE(unit, '') FROM pg_settings WHERE name = ANY($1)`,
		[]string{"shared_buffers", "fsync", "synchronous_commit", "work_mem", "max_connections", "effective_cache_size", "jit", "wal_level"})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for rows.Next() {
		var name, value, unit string
		if err := rows.Scan(&name, &value, &unit); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		rep.Settings[name] = prettySetting(value, unit)
	}
	return rows.Err()
}

// prettySetting shows a pg_settings value with its unit: 16384 of 8kB is "128MB".
func prettySetting(setting, unit string) string {
	n, err := strconv.ParseInt(setting, 10, 64)
	if err != nil || unit == "" {
		return setting + unit
	}
	kb := int64(0)
	switch unit {
	case "8kB":
		kb = n * 8
	case "kB":
		kb = n
	case "MB":
		kb = n * 1024
	default:
		return setting + unit
	}
	if kb%1024 == 0 {
		return strconv.FormatInt(kb/1024, 10) + "MB"
	}
	return strconv.FormatInt(kb, 10) + "kB"
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryMB = kb / 1024
			}
		}
	}
	return m
}

// runSize seeds one size in a database of its own and measures every case on it.
func runSize(ctx context.Context, cfg *Config, cluster *pgembed.Cluster, tmp string, size int, logf func(string, ...any)) (*SizeReport, error) {
	dbName := "bench_" + strconv.Itoa(size)
	if err := adminExec(ctx, cluster, `CREATE DATABASE `+dbName); err != nil {
		return nil, err
	}
	defer adminExec(context.WithoutCancel(ctx), cluster, `DROP DATABASE IF EXISTS `+dbName+` WITH (FORCE)`)
	u, _ := url.Parse(cluster.URL())
	u.Path = "/" + dbName
	dbURL := u.String()

	pool, err := pgdb.Connect(ctx, dbURL, pgdb.Config{MaxConns: int32(max(cfg.Clients, 4))})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if cfg.Statements {
		if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	store, err := sessionstore.Open(ctx, pool, sessionstore.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()

	data := DatasetFor(size, time.Now())
	logf("%s sessions: seeding (%d users, %d heavy users x %d sessions)", thousands(int64(size)), data.Users, data.HeavyUsers, data.HeavySessions)
	seeded, err := Seed(ctx, pool, data, logf)
	if err != nil {
		return nil, err
	}
	logf("%s sessions: seeded in %s (%d active, %d revoked, %d expired; table %s, indexes %s)",
		thousands(int64(size)), seeded.Duration.Round(time.Millisecond), seeded.Active, seeded.Revoked, seeded.Expired,
		mb(seeded.TableBytes), mb(seeded.IndexBytes))
	sr := &SizeReport{Sessions: size, Users: data.Users, HeavyUsers: data.HeavyUsers, HeavySessions: data.HeavySessions,
		Active: seeded.Active, Revoked: seeded.Revoked, Expired: seeded.Expired,
		SeedSeconds: seeded.Duration.Seconds(), CopySeconds: seeded.CopyTime.Seconds(),
		TableMB: float64(seeded.TableBytes) / (1 << 20), IndexMB: float64(seeded.IndexBytes) / (1 << 20)}
	env := &sizeEnv{cfg: cfg, pool: pool, store: store, seeded: seeded, data: data, logf: logf,
		postmaster: postmasterPID(cluster.DataDir())}
	auditLog, err := audit.Open(ctx, pool, pgdb.Postgres)
	if err != nil {
		return nil, err
	}
	hist, err := backfillHistory(ctx, pool, store)
	if err != nil {
		return sr, err
	}
	sr.HistoryRows, sr.HistoryBackfillSeconds = hist.Rows, hist.Backfill.Seconds()
	logf("%s sessions: history backfilled in %s (%s rows, %.0f rows/s)", thousands(int64(size)),
		hist.Backfill.Round(time.Millisecond), thousands(hist.Rows), float64(hist.Rows)/hist.Backfill.Seconds())

	var (
		srv      *Server
		client   *Client
		plainSrv *Server
		plain    *Client
		password = admins.RandomPassword()
	)
	if !cfg.FloorOnly {
		adminStore, err := admins.Open(ctx, pool, pgdb.Postgres, 0)
		if err != nil {
			return sr, err
		}
		if err := adminStore.Add(ctx, "bench", password, admins.Owner); err != nil {
			return sr, err
		}
		srv, err = StartServer(ctx, cfg.Console, dbURL, filepath.Join(tmp, "serve-"+strconv.Itoa(size)), serveArgs...)
		if err != nil {
			return sr, err
		}
		defer srv.Stop()
		logf("console serve (pid %d) listening on %s", srv.PID(), srv.URL)
		client = NewClient(srv.URL, cfg.Clients)
		defer client.Close()
		if err := client.Login(ctx, "bench", password); err != nil {
			return sr, err
		}
		// A second console that records no activity, for verify's comparison.
		plainSrv, err = StartServer(ctx, cfg.Console, dbURL, filepath.Join(tmp, "serve-noact-"+strconv.Itoa(size)),
			append(serveArgs, "--activity-flush", "0")...)
		if err != nil {
			return sr, err
		}
		defer plainSrv.Stop()
		plain = NewClient(plainSrv.URL, cfg.Clients)
		defer plain.Close()
	}

	// The top users are counted once, as the overview job would (the served console's job is
	// off); the overview case's both sides read them.
	if _, err := hist.store.RefreshTopUsers(ctx, hist.tx, 10); err != nil {
		return sr, err
	}
	cases, lists, err := env.buildCases(ctx, hist, auditLog)
	if err != nil {
		return sr, err
	}
	if plain != nil { // right after verify, before the writes revoke any of its sessions
		if i := slices.IndexFunc(cases, func(bc *benchCase) bool { return bc.Key == CaseVerify }); i >= 0 {
			cases = slices.Insert(cases, i+1, env.verifyWithoutActivityCase(plainSrv, plain))
		}
	}
	if len(cfg.Cases) > 0 {
		cases = slices.DeleteFunc(cases, func(bc *benchCase) bool {
			return !slices.Contains(cfg.Cases, bc.Key) && !slices.ContainsFunc(cases, func(o *benchCase) bool {
				return o.FloorOf == bc.Key && slices.Contains(cfg.Cases, o.Key) // a floor another case reuses
			})
		})
	}
	if !cfg.FloorOnly {
		var hf *httpFloor
		if cfg.FloorInProcess {
			hf, err = startHTTPFloor(cases)
		} else {
			hf, err = startFloorProcess(floorSpec{DBURL: dbURL, Config: *cfg, Data: data, Seeded: *seeded})
		}
		if err != nil {
			return sr, err
		}
		defer hf.Close()
		env.httpFloor = hf
		if hf.PID > 0 {
			logf("HTTP floors (pid %d) listening on %s", hf.PID, hf.URL)
		}
	}

	for _, bc := range cases {
		res, err := env.measure(ctx, bc, srv, client, sr)
		if res != nil {
			sr.Cases = append(sr.Cases, *res)
		}
		if err != nil {
			return sr, fmt.Errorf("bench: %s sessions, case %s (%s): %w", thousands(int64(size)), bc.Key, bc.Name, err)
		}
	}
	if client != nil && (len(cfg.Cases) == 0 || slices.Contains(cfg.Cases, CaseRevocation)) {
		if sr.Revocation, err = env.revocationLatency(ctx, client); err != nil {
			return sr, fmt.Errorf("bench: %s sessions, revocation latency: %w", thousands(int64(size)), err)
		}
	}
	if cfg.Explain {
		if err := env.explain(ctx, lists...); err != nil {
			return sr, err
		}
	}
	if !cfg.FloorOnly && (len(cfg.Cases) == 0 || slices.Contains(cfg.Cases, CaseCLIList)) {
		if res := env.cliBinaryList(ctx, dbURL); res != nil {
			sr.Cases = append(sr.Cases, *res)
		}
	}
	if cfg.Hold {
		logf("holding: database %s (psql \"%s\")", dbName, dbURL)
		if srv != nil {
			logf("holding: console %s, admin bench / %s", srv.URL, password)
		}
		logf("holding until Ctrl-C")
		<-ctx.Done()
	}
	if srv != nil {
		if srv.Exited() {
			return sr, fmt.Errorf("bench: console serve exited during the run:\n%s", srv.LogTail(15))
		}
		_, peak, err := srv.Memory()
		if err != nil {
			return sr, err
		}
		sr.ServerPeakRSSMB = float64(peak) / (1 << 20)
		logf("console serve peak RSS (VmHWM) over the %s run: %.1f MB", thousands(int64(size)), sr.ServerPeakRSSMB)
	}
	return sr, nil
}

// measure runs one case: the console's answer once, checked and recorded; the floor on raw
// pgx; the plain-text and the same-size HTTP floors; then (unless floor-only) the console.
func (e *sizeEnv) measure(ctx context.Context, bc *benchCase, srv *Server, client *Client, sr *SizeReport) (*CaseResult, error) {
	if bc.server != nil {
		srv = bc.server
	}
	res := &CaseResult{Key: bc.Key, Name: bc.Name, Kind: bc.Kind, Unit: bc.Unit, Workers: bc.Workers}
	if e.cfg.WaitIdle > 0 {
		if waited, busy := waitIdle(ctx, e.cfg.WaitIdle); busy >= 10 {
			e.logf("case %s: the machine is still %.0f%% busy after waiting %s; measuring anyway", bc.Key, busy, waited.Round(time.Second))
		}
	}
	onConsole := bc.console != nil && client != nil
	if onConsole && bc.check != nil {
		resp, err := bc.check(ctx, client)
		if err != nil {
			res.Warnings = append(res.Warnings, "check: "+err.Error())
			e.logf("case %s: WARNING: %v", bc.Key, err)
		}
		if resp.Status >= 200 && resp.Status < 400 {
			bc.record(resp)
			if err := e.httpFloor.send(ctx, bc); err != nil {
				return nil, err
			}
		}
		if a := bc.answer.Load(); a != nil {
			res.AnswerBytes = int64(len(a.body))
		}
	}
	// run measures one side: a bounded load of op, the CPU it took, then the case's cleanup;
	// part of parts of the side's bounds (a round, see Config.Rounds).
	run := func(side string, consolePID, parts int, op func(ctx context.Context, worker, i int) (int64, error)) (*Stats, error) {
		cpu := startCPU(consolePID, e.postmaster)
		n := time.Duration(parts)
		st, err := Load{Workers: bc.Workers, MaxOps: max(bc.MaxOps/parts, 1), Duration: e.cfg.CaseDuration / n, Warmup: e.cfg.Warmup / n,
			Prepare: bc.prepare, Op: op}.Run(ctx)
		st.CPU = cpu.per(st.Ops + st.WarmupOps)
		if err == nil && bc.cleanup != nil {
			err = bc.cleanup(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", side, err)
		}
		return &st, nil
	}
	httpSide := func(side string, sized bool, parts int) (*Stats, error) {
		c := NewClient(e.httpFloor.URL, bc.Workers)
		defer c.Close()
		if client != nil {
			c.CopyCookies(client)
		}
		return run(side, e.httpFloor.PID, parts, e.httpFloor.op(c, bc, sized))
	}
	var err error
	if bc.FloorOf != "" {
		for _, c := range sr.Cases {
			if c.Key == bc.FloorOf && c.Floor != nil {
				res.Floor, res.FloorNote, res.HTTPFloor = c.Floor, "floor of case "+bc.FloorOf, c.HTTPFloor
			}
		}
	} else if bc.floor != nil {
		if res.Floor, err = run("floor", 0, 1, func(ctx context.Context, w, i int) (int64, error) { return bc.floor(ctx, nil, w, i) }); err != nil {
			return nil, err
		}
		if e.httpFloor != nil && bc.console != nil {
			if res.HTTPFloor, err = httpSide("HTTP floor", false, 1); err != nil {
				return nil, err
			}
		}
	}
	// consoleSide measures the console (a part of parts of its bounds), with a CPU profile, the
	// RSS while it runs and the statements it ran if asked (those come with one part only).
	consoleSide := func(parts int) (*Stats, error) {
		profiled := e.profile(bc)
		var sampler *rssSampler
		if bc.sampleRSS {
			sampler = sampleRSS(srv.PID(), 100*time.Millisecond)
		}
		if e.cfg.Statements {
			if _, err := e.pool.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
				return nil, err
			}
		}
		st, err := run("console", srv.PID(), parts, func(ctx context.Context, w, i int) (int64, error) { return bc.console(ctx, client, w, i) })
		if sampler != nil {
			res.StreamPeakRSSMB = max(res.StreamPeakRSSMB, float64(sampler.Stop())/(1<<20))
		}
		if profiled != nil {
			<-profiled
		}
		if err != nil {
			return nil, err
		}
		if e.cfg.Statements {
			if res.Statements, err = e.statements(ctx, st.Ops+st.WarmupOps); err != nil {
				return nil, fmt.Errorf("console: %w", err)
			}
			for _, s := range res.Statements {
				e.logf("case %s: %6.2f calls/op %8.3f ms/call %8.3f ms/op  %s", bc.Key, s.CallsPerOp, s.MeanMs, s.MsPerOp, s.Query)
			}
		}
		return st, nil
	}
	// The same-size floor and the console, in alternating rounds when the case has both (see
	// Config.Rounds): each side's rounds are joined into one figure.
	sized := e.httpFloor != nil && bc.floor != nil && bc.answer.Load() != nil
	rounds := e.rounds(bc, sized && onConsole)
	var sizedRuns, consoleRuns []Stats
	for range rounds {
		if sized {
			st, err := httpSide("same-size HTTP floor", true, rounds)
			if err != nil {
				return nil, err
			}
			sizedRuns = append(sizedRuns, *st)
		}
		if onConsole {
			st, err := consoleSide(rounds)
			if err != nil {
				return res, err
			}
			consoleRuns = append(consoleRuns, *st)
		}
	}
	res.SizedFloor, res.Console, res.Rounds = mergeRuns(sizedRuns), mergeRuns(consoleRuns), rounds
	res.setRatio()
	e.logf("case %-13s %s", bc.Key, res.summary())
	return res, nil
}

// rounds is how many alternating rounds the same-size floor and the console of bc run in:
// Config.Rounds for the request cases measured on both (pages, verify, issue) and for the
// baseline that verify is compared with (its rounds, of the same length, follow each other),
// one otherwise, and one when the console's statements or profile are asked for (they cover
// one run).
func (e *sizeEnv) rounds(bc *benchCase, both bool) int {
	if e.cfg.Rounds <= 1 || e.cfg.Statements || e.cfg.Pprof != "" {
		return 1
	}
	switch {
	case both && (bc.Kind == kindPage || bc.Kind == kindVerify || bc.Kind == kindIssue):
		return e.cfg.Rounds
	case bc.Kind == kindBaseline: // compared with verify's console: measured the same way
		return e.cfg.Rounds
	}
	return 1
}

// profile fetches a CPU profile of the console over the case's warm-up and measured run into
// PprofDir, when the console serves pprof; the channel closes when it is saved.
func (e *sizeEnv) profile(bc *benchCase) chan struct{} {
	if e.cfg.Pprof == "" {
		return nil
	}
	done := make(chan struct{})
	secs := int((e.cfg.Warmup + e.cfg.CaseDuration + 999*time.Millisecond) / time.Second)
	path := filepath.Join(e.cfg.PprofDir, fmt.Sprintf("cpu-%d-%s.pprof", e.data.Sessions, bc.Key))
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + e.cfg.Pprof + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
		if err != nil {
			e.logf("pprof: %v", err)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		if err != nil {
			e.logf("pprof: %v", err)
		}
	}()
	return done
}

// rssSampler records the highest VmRSS of a process, read at a fixed interval.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	peak int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := procMemory(pid); err == nil && rss > s.peak {
				s.peak = rss
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the highest RSS seen, in bytes.
func (s *rssSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// cliBinaryList times `console auth-session list --format csv` on the size's database, for
// comparison with the raw list. Any failure (the command may not exist yet) is reported in the
// result, not as an error.
func (e *sizeEnv) cliBinaryList(ctx context.Context, dbURL string) *CaseResult {
	res := &CaseResult{Key: CaseCLIList, Name: "console auth-session list --format csv (all rows)", Kind: kindList, Unit: "rows/s", Workers: 1}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Console, "auth-session", "list", "--url", dbURL, "--format", "csv")
	var lines lineCounter
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &lines, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("not measured: %v: %s", err, strings.TrimSpace(excerpt([]byte(stderr.String())))))
		e.logf("case %-13s %s: not measured (%v)", res.Key, res.Name, err)
		return res
	}
	st := Stats{Ops: 1, Items: lines.n - 1, Workers: 1, Seconds: elapsed.Seconds()}
	summarize(&st, []time.Duration{elapsed}, elapsed.Seconds())
	res.Console = &st
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.StreamPeakRSSMB = float64(ru.Maxrss) / 1024
	}
	e.logf("case %-13s %s", res.Key, res.summary())
	return res
}

type lineCounter struct {
	mu sync.Mutex
	n  int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			l.n++
		}
	}
	return len(p), nil
}

func adminExec(ctx context.Context, cluster *pgembed.Cluster, sql string) error {
	conn, err := pgx.Connect(ctx, cluster.AdminURL())
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("bench: %s: %w", sql, err)
	}
	return nil
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// buildCases builds the cases of one size, reads first (they see the seeded table), then the
// writes, and returns them with the list filters of the first three (for -explain). The floor
// process (floorproc.go) builds the same cases from the same seeding, for their floors.
func (e *sizeEnv) buildCases(ctx context.Context, hist *historyEnv, auditLog *audit.Store) ([]*benchCase, []sessionstore.Filter, error) {
	var err error
	seeded := e.seeded
	active := sessionstore.Filter{Status: sessionstore.StatusActive, Sort: sessionstore.SortCreated, Desc: true, Limit: 50}
	heavy := active
	heavy.Username = HeavyUser(0)
	pages := min(100, seeded.Active/active.Limit-1)
	deep := active
	if deep.After, err = e.deepCursor(ctx, active, pages*active.Limit); err != nil {
		return nil, nil, err
	}
	historyFirst := active
	historyFirst.Status = sessionstore.StatusAll
	historyDeep := historyFirst
	historyDeep.From = history.Source
	if historyDeep.After, err = e.deepCursor(ctx, historyDeep, 100*historyFirst.Limit); err != nil {
		return nil, nil, err
	}
	historyDeep.From = nil
	var cases []*benchCase
	add := func(bc *benchCase, err error) error {
		if err == nil {
			cases = append(cases, bc)
		}
		return err
	}
	whole, err := e.listCase(CaseWholePage, "whole sessions page (not a fragment)", active, false)
	if err != nil {
		return nil, nil, err
	}
	whole.FloorOf = CaseFragment // the same query
	if err := errors.Join(
		add(e.listCase(CaseFragment, "sessions fragment (HX), active, first page of 50", active, true)),
		add(e.listCase(CaseUserPage, "the same, filtered to "+heavy.Username, heavy, true)),
		add(e.listCase(CaseDeepPage, fmt.Sprintf("deep page (keyset, %d pages in)", pages), deep, true)),
		add(whole, nil),
		add(e.verifyCase(), nil),
		add(e.historyListCase(CaseHistoryFirst, "/history fragment (HX), all statuses, first page of 50", historyFirst)),
		add(e.historyListCase(CaseHistoryDeep, "/history deep page (keyset, 100 pages in)", historyDeep)),
		add(e.sessionPageCase(hist, auditLog), nil),
		add(e.userPageCase(hist, auditLog), nil),
		add(e.overviewPageCase(hist), nil),
		add(e.syncIdleCase(hist), nil),
		add(e.policyPageCase(hist), nil),
		add(e.cliListCase(), nil),
		add(e.issueCase(), nil),
		add(e.revokeCase(), nil),
		add(e.bulkRevokeCase(), nil),
		add(e.csvCase()),
		add(e.syncNewCase(hist), nil),
	); err != nil {
		return nil, nil, err
	}
	return cases, []sessionstore.Filter{active, heavy, deep}, nil
}
