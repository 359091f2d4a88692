// Command bench is `make bench`: the console's speed and memory at 10k and 1M sessions,
// measured against raw pgx running the same SQL in the same run. See package bench.
//
//	go run ./internal/bench/cmd/bench -console bin/console           # full run (10k and 1M)
//	BENCH_QUICK=1 go run ./internal/bench/cmd/bench -console bin/console  # 10k only, short cases
//	go run ./internal/bench/cmd/bench -floor-only                    # raw pgx floors only
//
// Missed bars are reported, not failures: the exit status is non-zero only when the bench
// could not run (a database error, a console answer with an unexpected status).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sessionconsole/console/internal/bench"
)

func main() {
	bench.MaybeServeFloors() // when this process is the run's HTTP floors (the bench starts itself again)
	quickDefault := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	outDefault := os.Getenv("BENCH_OUT")
	if outDefault == "" {
		outDefault = "bench-results.json"
	}
	var (
		consoleBin = flag.String("console", "bin/console", "the console binary to benchmark")
		floorOnly  = flag.Bool("floor-only", false, "measure only the raw pgx floors (no console)")
		quick      = flag.Bool("quick", quickDefault, "10k sessions only, short cases [env BENCH_QUICK]")
		out        = flag.String("out", outDefault, "JSON results file [env BENCH_OUT]")
		sizes      = flag.String("sizes", os.Getenv("BENCH_SIZES"), "comma-separated session counts (default 10000,1000000; quick: 10000) [env BENCH_SIZES]")
		clients    = flag.Int("clients", 16, "concurrent clients for the request cases")
		duration   = flag.Duration("duration", 0, "measured time per case (default 5s; quick: 1.5s)")
		explain    = flag.Bool("explain", false, "print EXPLAIN ANALYZE of the list floors after seeding")
		hold       = flag.Bool("hold", false, "keep each size's database and console up after its cases until Ctrl-C")
		pprof      = flag.String("pprof", "", "host:port of the console's net/http/pprof, if it serves one: save a CPU profile of each console case")
		pprofDir   = flag.String("pprof-dir", ".", "where -pprof saves the profiles")
		waitIdle   = flag.Duration("wait-idle", -1, "before each case, wait up to this long for other processes to leave the CPU idle (default 10s; quick: 0)")
		rounds     = flag.Int("rounds", 0, "run the same-size HTTP floor and the console of each request case in this many alternating rounds (default 3; 1: one run each)")
		inProcess  = flag.Bool("floor-in-process", false, "serve the HTTP floors in the bench process, beside the load generator, instead of in a process of their own (the way before 2026-12-02, for comparison: they make more requests there than any server in its own process can)")
		statements = flag.Bool("statements", false, "load pg_stat_statements and print what the console runs per request (slower; not for the bars)")
		only       = flag.String("cases", "", "comma-separated case names to run (default all): fragment, fragment-user, fragment-deep, page, verify, verify-noact, history-first, history-deep, session-page, user-page, overview, policy, sync-idle, list, issue, revoke-all, bulk-revoke, csv, sync-1000, revocation, list-cli")
		timeout    = flag.Duration("timeout", 0, "stop the whole run after this long (default 15m plus 4m per million sessions over all sizes, as the history backfill takes ~2.5m per million; quick: 3m)")
	)
	flag.Parse()
	cfg := bench.DefaultConfig(*quick)
	cfg.Console, cfg.FloorOnly, cfg.Out, cfg.Clients = *consoleBin, *floorOnly, *out, *clients
	cfg.Explain, cfg.Hold, cfg.Pprof, cfg.PprofDir = *explain, *hold, *pprof, *pprofDir
	cfg.Statements, cfg.FloorInProcess = *statements, *inProcess
	if *only != "" {
		cfg.Cases = strings.Split(*only, ",")
	}
	if *waitIdle >= 0 {
		cfg.WaitIdle = *waitIdle
	}
	if *duration > 0 {
		cfg.CaseDuration = *duration
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *sizes != "" {
		cfg.Sizes = nil
		for _, s := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
			if err != nil || n < 1000 {
				fmt.Fprintf(os.Stderr, "bench: bad size %q (at least 1000)\n", s)
				os.Exit(2)
			}
			cfg.Sizes = append(cfg.Sizes, n)
		}
	}
	limit := *timeout
	if limit == 0 && *hold {
		limit = 24 * time.Hour
	} else if limit == 0 {
		limit = defaultLimit(cfg.Quick, cfg.Sizes)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		cancel()
		os.Exit(1)
	}
}

// defaultLimit bounds a run without -timeout: 3 minutes for the quick run; else 15 minutes
// for the default sizes plus 4 minutes per million sessions over all sizes (seeding, index
// builds and the history backfill grow with the table: 10M backfills in about 25 minutes).
func defaultLimit(quick bool, sizes []int) time.Duration {
	if quick {
		return 3 * time.Minute
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	return 15*time.Minute + time.Duration(total)*4*time.Minute/1_000_000
}
