package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Load is one bounded run of an operation by a fixed number of workers: it stops after
// MaxOps operations or when Duration has passed, whichever comes first, and after Warmup
// (operations run but not recorded) if set.
type Load struct {
	Workers  int
	MaxOps   int
	Duration time.Duration
	// Warmup runs the operation unrecorded for this long (at most MaxOps/10 operations) first.
	Warmup time.Duration
	// Prepare, if set, runs before each operation, outside the timed part (for example to
	// re-arm rows that the operation consumes). Throughput then counts only timed work.
	Prepare func(ctx context.Context, worker, i int) error
	// Op is the timed operation. It returns how many items it handled (rows; 1 for a request)
	// or an error, which stops the whole run.
	Op func(ctx context.Context, worker, i int) (int64, error)
	// now is the clock (time.Now when nil): tests give a clock of their own, so that what is
	// timed can be checked without timing anything.
	now func() time.Time
}

// Stats summarise a run. Latencies are exact: every operation's latency is recorded and the
// percentiles are read from the sorted samples (nearest rank).
type Stats struct {
	Ops     int     `json:"ops"`
	Items   int64   `json:"items,omitempty"`
	Workers int     `json:"workers"`
	Seconds float64 `json:"seconds"`
	// PerSec is operations per second: Ops over the wall time, or, with Prepare, over the
	// time spent in timed operations (per worker).
	PerSec float64 `json:"per_sec"`
	// ItemsPerSec is Items per second on the same clock.
	ItemsPerSec float64 `json:"items_per_sec,omitempty"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Meanms      float64 `json:"mean_ms"`
	Maxms       float64 `json:"max_ms"`
	// WarmupOps ran before the measured ones and are not in the figures above.
	WarmupOps int `json:"warmup_ops"`
	// CPU is what the processes used per operation, warm-up included (and, for cases with a
	// preparation step, that step's database work).
	CPU *CPU `json:"cpu,omitempty"`
	// samples are the latencies the percentiles were read from (sorted), and clock the
	// seconds PerSec divides by: what mergeRuns needs to join rounds.
	samples []time.Duration
	clock   float64
}

// Run runs l and returns its statistics, or the first operation error.
func (l Load) Run(ctx context.Context) (Stats, error) {
	if l.Workers < 1 || l.MaxOps < 1 || l.Duration <= 0 {
		return Stats{}, errors.New("bench: load needs workers, a count bound and a duration bound")
	}
	warm := 0
	if l.Warmup > 0 {
		w := l
		w.Warmup, w.Duration, w.MaxOps = 0, l.Warmup, max(l.MaxOps/10, 1)
		st, err := w.run(ctx)
		if err != nil {
			return Stats{}, fmt.Errorf("warmup: %w", err)
		}
		warm = st.Ops
	}
	st, err := l.run(ctx)
	st.WarmupOps = warm
	return st, err
}

func (l Load) run(ctx context.Context) (Stats, error) {
	now := l.now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		lat      = make([][]time.Duration, l.Workers)
		items    = make([]int64, l.Workers)
		busy     = make([]time.Duration, l.Workers)
		start    = now()
		deadline = start.Add(l.Duration)
	)
	for w := 0; w < l.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples := make([]time.Duration, 0, 1024)
			defer func() { lat[w] = samples }()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= l.MaxOps || !now().Before(deadline) {
					return
				}
				if l.Prepare != nil {
					if err := l.Prepare(ctx, w, i); err != nil {
						cancel(err)
						return
					}
				}
				t0 := now()
				n, err := l.Op(ctx, w, i)
				d := now().Sub(t0)
				if err != nil {
					cancel(err)
					return
				}
				samples = append(samples, d)
				items[w] += n
				busy[w] += d
			}
		}()
	}
	wg.Wait()
	elapsed := now().Sub(start)
	if err := context.Cause(ctx); err != nil {
		return Stats{}, err
	}
	var all []time.Duration
	var st Stats
	var busyTotal time.Duration
	for w := range lat {
		all = append(all, lat[w]...)
		st.Items += items[w]
		busyTotal += busy[w]
	}
	st.Ops, st.Workers, st.Seconds = len(all), l.Workers, elapsed.Seconds()
	clock := elapsed.Seconds()
	if l.Prepare != nil && busyTotal > 0 {
		clock = busyTotal.Seconds() / float64(l.Workers)
	}
	summarize(&st, all, clock)
	st.samples, st.clock = all, clock
	return st, nil
}

// mergeRuns joins the rounds of one side of a case (see Config.Rounds) into one Stats, as if
// they had been one run: operations, items and seconds add up, the rates divide by the sum of
// the rounds' clocks, the percentiles are read from all the rounds' latencies, and the CPU
// per operation and the other processes' share are weighted by each round's operations
// (warm-up included, as measured: the rounds run at a like rate, so operations stand for the
// time each CPU window covered).
func mergeRuns(runs []Stats) *Stats {
	switch len(runs) {
	case 0:
		return nil
	case 1:
		return &runs[0]
	}
	out := Stats{Workers: runs[0].Workers}
	var (
		all    []time.Duration
		cpu    CPU
		cpuOps float64
	)
	for _, r := range runs {
		out.Ops += r.Ops
		out.Items += r.Items
		out.Seconds += r.Seconds
		out.WarmupOps += r.WarmupOps
		out.clock += r.clock
		all = append(all, r.samples...)
		if r.CPU != nil {
			n := float64(r.Ops + r.WarmupOps)
			cpu.ConsoleUs += r.CPU.ConsoleUs * n
			cpu.ConsoleSysUs += r.CPU.ConsoleSysUs * n
			cpu.PostgresUs += r.CPU.PostgresUs * n
			cpu.BenchUs += r.CPU.BenchUs * n
			cpu.OtherPct += r.CPU.OtherPct * n
			cpuOps += n
		}
	}
	summarize(&out, all, out.clock)
	out.samples = all
	if cpuOps > 0 {
		cpu.ConsoleUs, cpu.ConsoleSysUs = cpu.ConsoleUs/cpuOps, cpu.ConsoleSysUs/cpuOps
		cpu.PostgresUs, cpu.BenchUs, cpu.OtherPct = cpu.PostgresUs/cpuOps, cpu.BenchUs/cpuOps, cpu.OtherPct/cpuOps
		out.CPU = &cpu
	}
	return &out
}

// summarize fills the rates and percentiles of st from the samples and the seconds they took.
func summarize(st *Stats, samples []time.Duration, seconds float64) {
	if len(samples) == 0 || seconds <= 0 {
		return
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	st.PerSec = float64(len(samples)) / seconds
	st.ItemsPerSec = float64(st.Items) / seconds
	st.P50ms = ms(percentile(samples, 50))
	st.P99ms = ms(percentile(samples, 99))
	st.Meanms = ms(sum / time.Duration(len(samples)))
	st.Maxms = ms(samples[len(samples)-1])
}

// percentile returns the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
