package bench

import "fmt"

// The bars of the performance issue (issue 12), named once. The relative p50 bars of the deep
// and the whole page, the revoke-all bar and the CSV rate are the earlier issue's, still held.
const (
	barsAt = 1_000_000 // the size the bars are defined at

	barPageOfSizedFloor   = 0.75 // pages: throughput over the same-size HTTP floor's
	barPagePostgresCPU    = 1.15 // pages: PostgreSQL CPU per request over the same-size HTTP floor's
	barPageP99ms          = 15.0
	barVerifyOfSizedFloor = 0.90
	// barVerifyRate is 10x Ory Kratos' whoami measured on this machine (1.45k req/s).
	barVerifyRate        = 14_500
	barIssueOfSizedFloor = 0.75
	barBulkTimes         = 2.0 // a revoke-all's mean time over the floor's
	barCSVRows           = 100_000
	barStreamRSSMB       = 100.0
	barPeakRSSMB         = 80.0
	// Scale: p50 of the page and verify cases at one size over the size before it in the run:
	// 10M against 1M (and any size from 1M up), and 1M against 10k.
	barScale      = 1.3
	barScaleSmall = 1.5
)

// The history's bars (issue 8).
const (
	// barSyncIdleP50ms: a history sync pass with nothing new, p50 of its wall time (which
	// bounds its database time).
	barSyncIdleP50ms = 5.0
	// barActivityCost: verify with activity recorded over verify without it (within 5%).
	barActivityCost = 0.95
)

// relativeP50 are the bars of a page's p50 against another page's.
var relativeP50 = []struct {
	key, of string
	limit   float64
}{{CaseDeepPage, CaseFragment, 1.5}, {CaseWholePage, CaseFragment, 1.3}, {CaseHistoryDeep, CaseHistoryFirst, 1.5}}

// barsSize is the size whose cases the bars judge: 1M when the run has it, else the largest.
func barsSize(r *Report) *SizeReport {
	for i := range r.Sizes {
		if r.Sizes[i].Sessions == barsAt {
			return &r.Sizes[i]
		}
	}
	return &r.Sizes[len(r.Sizes)-1]
}

// find returns the case key of s that has a console side, or nil.
func (s *SizeReport) find(key string) *CaseResult {
	for i := range s.Cases {
		if s.Cases[i].Key == key && s.Cases[i].Console != nil {
			return &s.Cases[i]
		}
	}
	return nil
}

// evaluateBars judges the report by the issue's bars: each case by the bars of its kind at
// barsSize, the scale between consecutive sizes, revocation and memory over the run. A bar
// whose figures are missing (floor-only, a case not run) is left out, not failed.
func evaluateBars(r *Report) []Bar {
	if r.FloorOnly || len(r.Sizes) == 0 {
		return nil
	}
	at := barsSize(r)
	var bars []Bar
	add := func(b Bar) {
		b.Size = at.Sessions
		switch b.Op {
		case ">=":
			b.Pass = b.Value >= b.Limit
		case "<=":
			b.Pass = b.Value <= b.Limit
		case "<":
			b.Pass = b.Value < b.Limit
		}
		bars = append(bars, b)
	}
	sized := func(c *CaseResult, limit float64) {
		if c.SizedFloor != nil {
			add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: throughput >= %.2f of the same-size HTTP floor", c.Key, limit),
				Value: c.SizedRatio, Limit: limit, Op: ">=", Unit: "x",
				Notes: fmt.Sprintf("%s vs %s req/s", num(rate(c.Console, c.Unit)), num(rate(c.SizedFloor, c.Unit)))})
		}
	}
	for i := range at.Cases {
		c := &at.Cases[i]
		if c.Console == nil {
			continue
		}
		switch c.Kind {
		case kindPage:
			sized(c, barPageOfSizedFloor)
			if c.PGRatio > 0 {
				add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: PostgreSQL CPU per request <= %.2fx the same-size HTTP floor's", c.Key, barPagePostgresCPU),
					Value: c.PGRatio, Limit: barPagePostgresCPU, Op: "<=", Unit: "x",
					Notes: fmt.Sprintf("%s vs %s µs", cpuStr(c.Console.CPU.PostgresUs), cpuStr(c.SizedFloor.CPU.PostgresUs))})
			}
			add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: p99 <= %.0f ms", c.Key, barPageP99ms), Value: c.Console.P99ms, Limit: barPageP99ms, Op: "<=", Unit: "ms"})
		case kindVerify:
			sized(c, barVerifyOfSizedFloor)
			add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: >= %s req/s (10x Ory Kratos' whoami here)", c.Key, num(barVerifyRate)),
				Value: c.Console.PerSec, Limit: barVerifyRate, Op: ">=", Unit: "req/s"})
		case kindIssue:
			sized(c, barIssueOfSizedFloor)
		case kindBulk:
			if c.Floor != nil && c.Floor.Meanms > 0 {
				add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: mean time within %.0fx of the floor's", c.Key, barBulkTimes),
					Value: c.Console.Meanms / c.Floor.Meanms, Limit: barBulkTimes, Op: "<=", Unit: "x",
					Notes: fmt.Sprintf("%s vs %s", msStr(c.Console.Meanms), msStr(c.Floor.Meanms))})
			}
		case kindJob:
			if c.Key == CaseSyncIdle {
				add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: a sync pass with nothing new, p50 < %.0f ms (wall time, which bounds database time)", c.Key, barSyncIdleP50ms),
					Value: c.Console.P50ms, Limit: barSyncIdleP50ms, Op: "<", Unit: "ms", Notes: "p99 " + msStr(c.Console.P99ms)})
			}
		case kindStream:
			add(Bar{Case: c.Key, Name: c.Key + ": rows per second", Value: c.Console.ItemsPerSec, Limit: barCSVRows, Op: ">=", Unit: "rows/s"})
			if c.StreamPeakRSSMB > 0 {
				add(Bar{Case: c.Key, Name: c.Key + ": server RSS while streaming (VmRSS every 100ms)", Value: c.StreamPeakRSSMB,
					Limit: barStreamRSSMB, Op: "<", Unit: "MB"})
			}
		}
	}
	for _, rel := range relativeP50 {
		c, of := at.find(rel.key), at.find(rel.of)
		if c != nil && of != nil && of.Console.P50ms > 0 {
			add(Bar{Case: c.Key, Name: fmt.Sprintf("%s: p50 within %.1fx of %s's", rel.key, rel.limit, rel.of),
				Value: c.Console.P50ms / of.Console.P50ms, Limit: rel.limit, Op: "<=", Unit: "x",
				Notes: fmt.Sprintf("%s vs %s", msStr(c.Console.P50ms), msStr(of.Console.P50ms))})
		}
	}
	if c, base := at.find(CaseVerify), at.find(CaseVerifyNoActivity); c != nil && base != nil && base.Console.PerSec > 0 {
		add(Bar{Case: c.Key, Name: fmt.Sprintf("%s (activity recorded): throughput >= %.2f of %s's (none recorded)", c.Key, barActivityCost, base.Key),
			Value: c.Console.PerSec / base.Console.PerSec, Limit: barActivityCost, Op: ">=", Unit: "x",
			Notes: fmt.Sprintf("%s vs %s req/s", num(c.Console.PerSec), num(base.Console.PerSec))})
	}
	for i := 1; i < len(r.Sizes); i++ {
		small, big := &r.Sizes[i-1], &r.Sizes[i]
		limit := barScaleSmall
		if small.Sessions >= barsAt {
			limit = barScale
		}
		for _, cb := range big.Cases {
			if cb.Console == nil || (cb.Kind != kindPage && cb.Kind != kindVerify) {
				continue
			}
			// Only the same work at both sizes: a case whose name differs does other work
			// there (the user page's heavy user has 500 sessions at 10k, 10,000 at 1M).
			if cs := small.find(cb.Key); cs != nil && cs.Console != nil && cs.Console.P50ms > 0 && cs.Name == cb.Name {
				add(Bar{Case: cb.Key, Name: fmt.Sprintf("scale: %s p50 at %s within %.1fx of %s", cb.Key, thousands(int64(big.Sessions)), limit, thousands(int64(small.Sessions))),
					Value: cb.Console.P50ms / cs.Console.P50ms, Limit: limit, Op: "<=", Unit: "x",
					Notes: fmt.Sprintf("%s vs %s", msStr(cb.Console.P50ms), msStr(cs.Console.P50ms))})
			}
		}
	}
	if rv := at.Revocation; rv != nil && rv.Samples > 0 {
		add(Bar{Name: "revocation: /auth/verify requests still accepted after a revoke's response", Value: float64(rv.AcceptedAfter),
			Limit: 0, Op: "<=", Unit: "requests",
			Notes: fmt.Sprintf("revoke response -> first 401: p50 %s, max %s over %d sessions", msStr(rv.P50ms), msStr(rv.Maxms), rv.Samples)})
	}
	peak := 0.0
	for _, s := range r.Sizes {
		peak = max(peak, s.ServerPeakRSSMB)
	}
	if peak > 0 {
		add(Bar{Name: "server peak RSS (VmHWM) over the whole run", Value: peak, Limit: barPeakRSSMB, Op: "<", Unit: "MB"})
	}
	return bars
}
