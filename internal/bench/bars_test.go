package bench

import (
	"regexp"
	"strings"
	"testing"
)

// stats is a console or floor side with a rate, latencies and PostgreSQL CPU per operation.
func stats(perSec, p50, p99, pgUs float64) *Stats {
	return &Stats{Ops: 1000, PerSec: perSec, ItemsPerSec: perSec, P50ms: p50, P99ms: p99, Meanms: p50, CPU: &CPU{PostgresUs: pgUs}}
}

// result is a case with every side filled in and its ratios set.
func result(key string, kind caseKind, console, floor, plain, sized *Stats) CaseResult {
	c := CaseResult{Key: key, Kind: kind, Unit: "req/s", Console: console, Floor: floor, HTTPFloor: plain, SizedFloor: sized, AnswerBytes: 30_000}
	c.setRatio()
	return c
}

// passingSize is a size at which every bar passes.
func passingSize(sessions int) SizeReport {
	page := func(key string) CaseResult {
		return result(key, kindPage, stats(4000, 3, 9, 100), stats(14000, 1, 4, 80), stats(8000, 2, 6, 90), stats(5000, 2.5, 8, 95))
	}
	csv := result(CaseCSV, kindStream, stats(500_000, 0, 0, 0), stats(1_200_000, 0, 0, 0), nil, nil)
	csv.Unit, csv.StreamPeakRSSMB = "rows/s", 30
	return SizeReport{Sessions: sessions, ServerPeakRSSMB: 30, Cases: []CaseResult{
		page(CaseFragment), page(CaseUserPage), page(CaseDeepPage), page(CaseWholePage),
		page(CaseHistoryFirst), page(CaseHistoryDeep), page(CaseSessionPage), page(CaseUserDetail), page(CaseOverview), page(CasePolicy),
		result(CaseVerify, kindVerify, stats(16000, 1, 4, 20), stats(60000, 0.2, 1, 15), stats(18000, 1, 3, 18), stats(17000, 1, 3, 18)),
		result(CaseVerifyNoActivity, kindBaseline, stats(16400, 1, 4, 20), nil, nil, nil),
		result(CaseSyncIdle, kindJob, stats(500, 2, 3, 0), nil, nil, nil),
		result(CaseSyncNew, kindJob, stats(20, 50, 60, 0), nil, nil, nil),
		result(CaseIssue, kindIssue, stats(3000, 5, 12, 200), stats(9000, 2, 5, 150), stats(4000, 4, 10, 180), stats(3500, 4, 10, 180)),
		result(CaseRevokeAll, kindBulk, stats(3, 300, 400, 0), stats(3.5, 270, 300, 0), nil, nil),
		result(CaseBulkRevoke, kindBulk, stats(3, 300, 400, 0), stats(3.5, 270, 300, 0), nil, nil),
		csv,
		result(CaseRawList, kindList, nil, stats(900_000, 10, 10, 0), nil, nil),
	}, Revocation: &Revocation{Samples: 20, P50ms: 0.5, Maxms: 1}}
}

func passingReport() *Report {
	return &Report{Sizes: []SizeReport{passingSize(10_000), passingSize(1_000_000)}}
}

// bar returns the bar of name, failing the test when there is none or several.
func bar(t *testing.T, bars []Bar, name string) Bar {
	t.Helper()
	var found []Bar
	for _, b := range bars {
		if b.Name == name {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, b := range bars {
			names = append(names, b.Name)
		}
		t.Fatalf("%d bars named %q; bars:\n%s", len(found), name, strings.Join(names, "\n"))
	}
	return found[0]
}

func TestBarsAllPass(t *testing.T) {
	bars := evaluateBars(passingReport())
	if len(bars) == 0 {
		t.Fatal("no bars")
	}
	for _, b := range bars {
		if !b.Pass {
			t.Errorf("MISS %s: %v %s %v", b.Name, b.Value, b.Op, b.Limit)
		}
		if b.Size != 1_000_000 {
			t.Errorf("%s judged at %d sessions, want 1,000,000", b.Name, b.Size)
		}
	}
	// Every page case has its three bars; verify, issue, revoke-all and the CSV theirs.
	for _, key := range []string{CaseFragment, CaseUserPage, CaseDeepPage, CaseWholePage, CaseHistoryFirst, CaseHistoryDeep, CaseSessionPage, CaseUserDetail, CaseOverview, CasePolicy} {
		bar(t, bars, key+": throughput >= 0.75 of the same-size HTTP floor")
		bar(t, bars, key+": PostgreSQL CPU per request <= 1.15x the same-size HTTP floor's")
		bar(t, bars, key+": p99 <= 15 ms")
		bar(t, bars, "scale: "+key+" p50 at 1,000,000 within 1.5x of 10,000")
	}
	bar(t, bars, "verify: throughput >= 0.90 of the same-size HTTP floor")
	bar(t, bars, "verify: >= 14,500 req/s (10x Ory Kratos' whoami here)")
	bar(t, bars, "issue: throughput >= 0.75 of the same-size HTTP floor")
	bar(t, bars, "revoke-all: mean time within 2x of the floor's")
	bar(t, bars, "bulk-revoke: mean time within 2x of the floor's")
	bar(t, bars, "csv: rows per second")
	bar(t, bars, "csv: server RSS while streaming (VmRSS every 100ms)")
	bar(t, bars, "revocation: /auth/verify requests still accepted after a revoke's response")
	bar(t, bars, "server peak RSS (VmHWM) over the whole run")
	bar(t, bars, "fragment-deep: p50 within 1.5x of fragment's")
	bar(t, bars, "page: p50 within 1.3x of fragment's")
	bar(t, bars, "history-deep: p50 within 1.5x of history-first's")
	bar(t, bars, "sync-idle: a sync pass with nothing new, p50 < 5 ms (wall time, which bounds database time)")
	bar(t, bars, "verify (activity recorded): throughput >= 0.95 of verify-noact's (none recorded)")
	// The baseline and the pass with new sessions are figures only; verify's Kratos bar is
	// verify's alone.
	for _, b := range bars {
		if b.Case == CaseVerifyNoActivity || b.Case == CaseSyncNew {
			t.Errorf("bar %q judges a case that has no bar of its own", b.Name)
		}
	}
}

// Each case changes one figure of the passing report: the named bar then has the value and
// verdict given, and every other bar still passes.
func TestBarsDecide(t *testing.T) {
	big := func(r *Report) *SizeReport { return &r.Sizes[1] }
	set := func(r *Report, key string, f func(c *CaseResult)) {
		for i := range big(r).Cases {
			if c := &big(r).Cases[i]; c.Key == key {
				f(c)
				c.setRatio()
			}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(r *Report)
		bar    string
		value  float64
		pass   bool
	}{
		{"a page at exactly 0.75 of the same-size floor passes", func(r *Report) {
			set(r, CaseFragment, func(c *CaseResult) { c.Console.PerSec = 3750 })
		}, "fragment: throughput >= 0.75 of the same-size HTTP floor", 0.75, true},
		{"a page under 0.75 of the same-size floor misses", func(r *Report) {
			set(r, CaseUserPage, func(c *CaseResult) { c.Console.PerSec = 3500 })
		}, "fragment-user: throughput >= 0.75 of the same-size HTTP floor", 0.70, false},
		{"the plain-text floor does not decide a page", func(r *Report) {
			set(r, CaseFragment, func(c *CaseResult) { c.HTTPFloor.PerSec = 100_000 })
		}, "fragment: throughput >= 0.75 of the same-size HTTP floor", 0.80, true},
		{"PostgreSQL CPU over 1.15x the same-size floor's misses", func(r *Report) {
			set(r, CaseDeepPage, func(c *CaseResult) { c.Console.CPU.PostgresUs = 114 })
		}, "fragment-deep: PostgreSQL CPU per request <= 1.15x the same-size HTTP floor's", 1.2, false},
		{"a page p99 over 15 ms misses", func(r *Report) {
			set(r, CaseWholePage, func(c *CaseResult) { c.Console.P99ms = 15.5 })
		}, "page: p99 <= 15 ms", 15.5, false},
		{"verify under 0.90 of the same-size floor misses", func(r *Report) {
			set(r, CaseVerify, func(c *CaseResult) { c.Console.PerSec = 15000 })
			set(r, CaseVerifyNoActivity, func(c *CaseResult) { c.Console.PerSec = 15000 })
		}, "verify: throughput >= 0.90 of the same-size HTTP floor", 15000.0 / 17000, false},
		{"verify under 10x Kratos misses", func(r *Report) {
			set(r, CaseVerify, func(c *CaseResult) { c.Console.PerSec = 14000; c.SizedFloor.PerSec = 14000 })
			set(r, CaseVerifyNoActivity, func(c *CaseResult) { c.Console.PerSec = 14000 })
		}, "verify: >= 14,500 req/s (10x Ory Kratos' whoami here)", 14000, false},
		{"issue under 0.75 of the same-size floor misses", func(r *Report) {
			set(r, CaseIssue, func(c *CaseResult) { c.Console.PerSec = 2000 })
		}, "issue: throughput >= 0.75 of the same-size HTTP floor", 2000.0 / 3500, false},
		{"a revoke-all over twice the floor's time misses", func(r *Report) {
			set(r, CaseRevokeAll, func(c *CaseResult) { c.Console.Meanms = 600 })
		}, "revoke-all: mean time within 2x of the floor's", 600.0 / 270, false},
		{"a bulk revoke over twice the floor's time misses", func(r *Report) {
			set(r, CaseBulkRevoke, func(c *CaseResult) { c.Console.Meanms = 541 })
		}, "bulk-revoke: mean time within 2x of the floor's", 541.0 / 270, false},
		{"the policy page under 0.75 of its same-size floor misses", func(r *Report) {
			set(r, CasePolicy, func(c *CaseResult) { c.Console.PerSec = 3700 })
		}, "policy: throughput >= 0.75 of the same-size HTTP floor", 0.74, false},
		{"the policy page's p99 over 15 ms misses", func(r *Report) {
			set(r, CasePolicy, func(c *CaseResult) { c.Console.P99ms = 16 })
		}, "policy: p99 <= 15 ms", 16, false},
		{"CSV streaming at 100 MB misses (the bar is under 100)", func(r *Report) {
			set(r, CaseCSV, func(c *CaseResult) { c.StreamPeakRSSMB = 100 })
		}, "csv: server RSS while streaming (VmRSS every 100ms)", 100, false},
		{"a peak RSS of 80 MB at the smaller size misses", func(r *Report) { r.Sizes[0].ServerPeakRSSMB = 80 },
			"server peak RSS (VmHWM) over the whole run", 80, false},
		{"one verify accepted after a revoke misses", func(r *Report) { big(r).Revocation.AcceptedAfter = 1 },
			"revocation: /auth/verify requests still accepted after a revoke's response", 1, false},
		{"a page slower at 1M than 1.5x its 10k p50 misses", func(r *Report) {
			set(r, CaseFragment, func(c *CaseResult) { c.Console.P50ms = 4.6 })
		}, "scale: fragment p50 at 1,000,000 within 1.5x of 10,000", 4.6 / 3, false},
		{"the whole page over 1.3x the fragment's p50 misses", func(r *Report) {
			set(r, CaseWholePage, func(c *CaseResult) { c.Console.P50ms = 4 })
		}, "page: p50 within 1.3x of fragment's", 4.0 / 3, false},
		{"the history's deep page over 1.5x its first page's p50 misses", func(r *Report) {
			set(r, CaseHistoryFirst, func(c *CaseResult) { c.Console.P50ms = 1.9 })
		}, "history-deep: p50 within 1.5x of history-first's", 3 / 1.9, false},
		{"the user page under 0.75 of its same-size floor misses", func(r *Report) {
			set(r, CaseUserDetail, func(c *CaseResult) { c.Console.PerSec = 3000 })
		}, "user-page: throughput >= 0.75 of the same-size HTTP floor", 0.6, false},
		{"a sync pass with nothing new at 5 ms misses (the bar is under 5)", func(r *Report) {
			set(r, CaseSyncIdle, func(c *CaseResult) { c.Console.P50ms = 5 })
		}, "sync-idle: a sync pass with nothing new, p50 < 5 ms (wall time, which bounds database time)", 5, false},
		{"verify at exactly 0.95 of verify-noact passes", func(r *Report) {
			set(r, CaseVerifyNoActivity, func(c *CaseResult) { c.Console.PerSec = 16000 / 0.95 })
		}, "verify (activity recorded): throughput >= 0.95 of verify-noact's (none recorded)", 0.95, true},
		{"verify more than 5% under verify-noact misses", func(r *Report) {
			set(r, CaseVerifyNoActivity, func(c *CaseResult) { c.Console.PerSec = 17000 })
		}, "verify (activity recorded): throughput >= 0.95 of verify-noact's (none recorded)", 16000.0 / 17000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := passingReport()
			tc.change(r)
			bars := evaluateBars(r)
			b := bar(t, bars, tc.bar)
			if b.Pass != tc.pass || b.Value < tc.value-1e-9 || b.Value > tc.value+1e-9 {
				t.Errorf("%s: value %v pass %v; want %v pass %v", b.Name, b.Value, b.Pass, tc.value, tc.pass)
			}
			for _, o := range bars {
				if o.Name != tc.bar && !o.Pass {
					t.Errorf("an unrelated bar missed: %s (%v %s %v)", o.Name, o.Value, o.Op, o.Limit)
				}
			}
		})
	}
}

func TestBarsScaleFrom1M(t *testing.T) {
	r := &Report{Sizes: []SizeReport{passingSize(1_000_000), passingSize(10_000_000)}}
	r.Sizes[1].Cases[0].Console.P50ms = 3.6 // fragment: 1.2x of 1M's
	bars := evaluateBars(r)
	b := bar(t, bars, "scale: fragment p50 at 10,000,000 within 1.3x of 1,000,000")
	if !b.Pass || b.Limit != barScale {
		t.Errorf("%+v: want a pass against %v", b, barScale)
	}
	// The other bars judge 1M, where the issue defines them, not the largest size.
	if b := bar(t, bars, "fragment: p99 <= 15 ms"); b.Size != 1_000_000 {
		t.Errorf("bars judged at %d sessions, want 1,000,000", b.Size)
	}
	r.Sizes[1].Cases[0].Console.P50ms = 4
	if b := bar(t, evaluateBars(r), "scale: fragment p50 at 10,000,000 within 1.3x of 1,000,000"); b.Pass {
		t.Errorf("1.33x passed the 1.3x bar: %+v", b)
	}
}

// A case that does other work at the two sizes (its name says so) gets no scale bar: the
// user page's heavy user has 500 sessions at 10k and 10,000 at 1M.
func TestBarsScaleOnlyTheSameWork(t *testing.T) {
	r := passingReport()
	for i, n := range []string{"user page /users/heavy0 (500 sessions)", "user page /users/heavy0 (10000 sessions)"} {
		for j := range r.Sizes[i].Cases {
			if r.Sizes[i].Cases[j].Key == CaseUserDetail {
				r.Sizes[i].Cases[j].Name = n
				r.Sizes[i].Cases[j].Console.P50ms = float64(1 + 9*i) // 10x slower at 1M
			}
		}
	}
	for _, b := range evaluateBars(r) {
		if b.Name == "scale: "+CaseUserDetail+" p50 at 1,000,000 within 1.5x of 10,000" {
			t.Errorf("a scale bar across different work: %+v", b)
		}
	}
	bar(t, evaluateBars(r), "scale: "+CaseFragment+" p50 at 1,000,000 within 1.5x of 10,000")
}

func TestBarsLeaveOutWhatWasNotMeasured(t *testing.T) {
	t.Run("floor-only run", func(t *testing.T) {
		r := passingReport()
		r.FloorOnly = true
		if bars := evaluateBars(r); len(bars) != 0 {
			t.Errorf("%d bars for a floor-only run", len(bars))
		}
	})
	t.Run("no same-size floor, no console side", func(t *testing.T) {
		r := passingReport()
		s := &r.Sizes[1]
		s.Cases[0].SizedFloor = nil
		s.Cases[0].setRatio()
		s.Cases[1].Console = nil
		s.Revocation = nil
		for _, b := range evaluateBars(r) {
			if strings.HasPrefix(b.Name, CaseFragment+": throughput") || strings.HasPrefix(b.Name, CaseFragment+": PostgreSQL") ||
				strings.HasPrefix(b.Name, CaseUserPage+":") || strings.HasPrefix(b.Name, "revocation") {
				t.Errorf("bar %q without its figures", b.Name)
			}
		}
	})
	t.Run("one size: no scale bars", func(t *testing.T) {
		r := &Report{Sizes: []SizeReport{passingSize(10_000)}}
		for _, b := range evaluateBars(r) {
			if strings.HasPrefix(b.Name, "scale") {
				t.Errorf("scale bar %q in a run of one size", b.Name)
			}
			if b.Size != 10_000 {
				t.Errorf("%s at %d, want the only size 10,000", b.Name, b.Size)
			}
		}
	})
}

func TestSetRatio(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		c                        CaseResult
		ratio, http, sized, pgRt float64
	}{
		{"requests", CaseResult{Unit: "req/s", Console: stats(4000, 0, 0, 120), Floor: stats(16000, 0, 0, 80),
			HTTPFloor: stats(8000, 0, 0, 90), SizedFloor: stats(5000, 0, 0, 100)}, 0.25, 0.5, 0.8, 1.2},
		{"rows count rows, not requests", CaseResult{Unit: "rows/s", Console: &Stats{PerSec: 1, ItemsPerSec: 500_000},
			Floor: &Stats{PerSec: 2, ItemsPerSec: 1_000_000}}, 0.5, 0, 0, 0},
		{"no console side", CaseResult{Unit: "req/s", Floor: stats(1000, 0, 0, 1)}, 0, 0, 0, 0},
		{"a floor of zero gives no ratio", CaseResult{Unit: "req/s", Console: stats(1000, 0, 0, 10), Floor: &Stats{},
			SizedFloor: stats(1000, 0, 0, 0)}, 0, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.setRatio()
			near := func(a, b float64) bool { return a > b-1e-9 && a < b+1e-9 }
			if !near(tc.c.Ratio, tc.ratio) || !near(tc.c.HTTPRatio, tc.http) || !near(tc.c.SizedRatio, tc.sized) || !near(tc.c.PGRatio, tc.pgRt) {
				t.Errorf("ratios %v %v %v %v, want %v %v %v %v", tc.c.Ratio, tc.c.HTTPRatio, tc.c.SizedRatio, tc.c.PGRatio,
					tc.ratio, tc.http, tc.sized, tc.pgRt)
			}
		})
	}
}

func TestReportPrintsVerdicts(t *testing.T) {
	r := passingReport()
	r.Sizes[1].Cases[0].Console.P99ms = 20
	r.Bars = evaluateBars(r)
	var b strings.Builder
	r.Print(&b)
	out := b.String()
	for _, want := range []string{`(?m)MISS +20.00ms <= 15.00ms +fragment: p99 <= 15 ms *$`, `PASS +0.80x >= 0.75x +fragment: throughput`,
		`same-size floor`, `revocation: revoke response -> first 401`, `PASS +0 requests <= 0 requests +revocation`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the printed report lacks %q:\n%s", want, out)
		}
	}
}
