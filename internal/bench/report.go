package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is everything a run measured; it is printed and written as JSON.
type Report struct {
	Machine       Machine           `json:"machine"`
	Postgres      string            `json:"postgres"`
	Settings      map[string]string `json:"postgres_settings"`
	Quick         bool              `json:"quick"`
	FloorOnly     bool              `json:"floor_only"`
	Clients       int               `json:"clients"`
	CaseSeconds   float64           `json:"case_seconds"`
	WarmupSeconds float64           `json:"warmup_seconds"`
	Sizes         []SizeReport      `json:"sizes"`
	Bars          []Bar             `json:"bars"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemoryMB   int64  `json:"memory_mb"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Date       string `json:"date"`
}

// SizeReport is one size's data set and cases.
type SizeReport struct {
	Sessions      int     `json:"sessions"`
	Users         int     `json:"users"`
	HeavyUsers    int     `json:"heavy_users"`
	HeavySessions int     `json:"heavy_sessions_each"`
	Active        int     `json:"active"`
	Revoked       int     `json:"revoked"`
	Expired       int     `json:"expired"`
	SeedSeconds   float64 `json:"seed_seconds"`
	CopySeconds   float64 `json:"copy_seconds"`
	TableMB       float64 `json:"table_mb"`
	IndexMB       float64 `json:"index_mb"`
	// HistoryRows and HistoryBackfillSeconds: the first history sync over the seeded table.
	HistoryRows            int64   `json:"history_rows"`
	HistoryBackfillSeconds float64 `json:"history_backfill_seconds"`
	// ServerPeakRSSMB is the console process's VmHWM at the end of the size's run.
	ServerPeakRSSMB float64      `json:"server_peak_rss_mb,omitempty"`
	Cases           []CaseResult `json:"cases"`
}

// CaseResult is one case at one size.
type CaseResult struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Unit      string `json:"unit"`
	Workers   int    `json:"workers"`
	Console   *Stats `json:"console,omitempty"`
	Floor     *Stats `json:"floor,omitempty"`
	FloorNote string `json:"floor_note,omitempty"`
	// HTTPFloor is the floor's work behind a bare net/http handler in the bench process.
	HTTPFloor *Stats `json:"http_floor,omitempty"`
	// Ratio is the console's rate over the floor's (higher is better, 1 = as fast as raw pgx).
	Ratio float64 `json:"ratio,omitempty"`
	// HTTPRatio is the console's rate over the HTTP floor's.
	HTTPRatio float64 `json:"http_ratio,omitempty"`
	// StreamPeakRSSMB is the highest VmRSS of the server sampled every 100 ms while it streamed
	// (case 8), or the CLI process's maximum RSS (list-cli).
	StreamPeakRSSMB float64  `json:"stream_peak_rss_mb,omitempty"`
	Warnings        []string `json:"warnings,omitempty"`
	// Statements are what the console ran in the database per operation (with -statements).
	Statements []Statement `json:"statements,omitempty"`
}

// Bar is one of the targets, evaluated.
type Bar struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Op says how Value compares with Limit to pass: ">=" or "<=".
	Op    string `json:"op"`
	Unit  string `json:"unit"`
	Pass  bool   `json:"pass"`
	Size  int    `json:"sessions"`
	Notes string `json:"notes,omitempty"`
}

// rate is what a case's throughput counts: rows for row cases, requests otherwise.
func rate(s *Stats, unit string) float64 {
	if s == nil {
		return 0
	}
	if unit == "rows/s" {
		return s.ItemsPerSec
	}
	return s.PerSec
}

func (r *CaseResult) setRatio() {
	if r.Console != nil && r.Floor != nil && rate(r.Floor, r.Unit) > 0 {
		r.Ratio = rate(r.Console, r.Unit) / rate(r.Floor, r.Unit)
	}
	if r.Console != nil && r.HTTPFloor != nil && rate(r.HTTPFloor, r.Unit) > 0 {
		r.HTTPRatio = rate(r.Console, r.Unit) / rate(r.HTTPFloor, r.Unit)
	}
}

func (r *CaseResult) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", r.Name)
	if r.Floor != nil {
		fmt.Fprintf(&b, " floor %s %s p50 %s p99 %s;", num(rate(r.Floor, r.Unit)), r.Unit, msStr(r.Floor.P50ms), msStr(r.Floor.P99ms))
	}
	if r.HTTPFloor != nil {
		fmt.Fprintf(&b, " HTTP floor %s %s p50 %s p99 %s;", num(rate(r.HTTPFloor, r.Unit)), r.Unit, msStr(r.HTTPFloor.P50ms), msStr(r.HTTPFloor.P99ms))
	}
	if r.Console != nil {
		fmt.Fprintf(&b, " console %s %s p50 %s p99 %s", num(rate(r.Console, r.Unit)), r.Unit, msStr(r.Console.P50ms), msStr(r.Console.P99ms))
	}
	if r.Ratio > 0 {
		fmt.Fprintf(&b, "; ratio %.2f", r.Ratio)
	}
	if r.StreamPeakRSSMB > 0 {
		fmt.Fprintf(&b, "; peak RSS %.1f MB", r.StreamPeakRSSMB)
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v >= 10_000:
		return thousands(int64(v + 0.5))
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func msStr(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

// thousands formats n with commas: 1,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Print writes the results table, the bars and the machine description.
func (r *Report) Print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n== make bench results (%s) ==\n", map[bool]string{true: "quick", false: "full"}[r.Quick])
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS %d, %d MB RAM, %s, %s, %s\n", m.CPUs, m.CPU, m.GOMAXPROCS, m.MemoryMB, m.Go, m.OS, m.Date)
	fmt.Fprintf(w, "database: %s\n", r.Postgres)
	fmt.Fprintf(w, "settings: PostgreSQL defaults (%s); load: %d clients, %.1fs per case after %.1fs warm-up, keep-alive over 127.0.0.1\n",
		settingsLine(r.Settings), r.Clients, r.CaseSeconds, r.WarmupSeconds)
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "\n-- %s sessions: %s active, %s revoked, %s expired; %d users + %d heavy x %s; seeded in %.1fs (COPY %.1fs); table %.0f MB + indexes %.0f MB\n",
			thousands(int64(s.Sessions)), thousands(int64(s.Active)), thousands(int64(s.Revoked)), thousands(int64(s.Expired)),
			s.Users, s.HeavyUsers, thousands(int64(s.HeavySessions)), s.SeedSeconds, s.CopySeconds, s.TableMB, s.IndexMB)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "case\tconc\tconsole rate\tp50\tp99\tfloor rate\tp50\tp99\tratio\t\t")
		for _, c := range s.Cases {
			cols := []string{c.ID, strconv.Itoa(c.Workers)}
			for _, st := range []*Stats{c.Console, c.Floor} {
				if st == nil {
					cols = append(cols, "-", "-", "-")
					continue
				}
				cols = append(cols, num(rate(st, c.Unit))+" "+c.Unit, msStr(st.P50ms), msStr(st.P99ms))
			}
			ratio := "-"
			if c.Ratio > 0 {
				ratio = strconv.FormatFloat(c.Ratio, 'f', 2, 64)
			}
			cols = append(cols, ratio, "", c.Name)
			fmt.Fprintln(tw, strings.Join(cols, "\t"))
		}
		tw.Flush()
		for _, c := range s.Cases {
			if c.StreamPeakRSSMB > 0 {
				fmt.Fprintf(w, "case %s peak RSS: %.1f MB\n", c.ID, c.StreamPeakRSSMB)
			}
			for _, warn := range c.Warnings {
				fmt.Fprintf(w, "case %s: %s\n", c.ID, warn)
			}
		}
		if hasHTTPFloor(s.Cases) {
			fmt.Fprintln(w, "The console against an HTTP floor: the same pgx work behind a bare net/http handler in the bench process, plain-text answer")
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "case\tHTTP floor rate\tp50\tp99\tconsole/HTTP floor\tHTTP floor/floor\t")
			for _, c := range s.Cases {
				if c.HTTPFloor == nil {
					continue
				}
				toFloor := "-"
				if c.Floor != nil && rate(c.Floor, c.Unit) > 0 {
					toFloor = strconv.FormatFloat(rate(c.HTTPFloor, c.Unit)/rate(c.Floor, c.Unit), 'f', 2, 64)
				}
				fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%.2f\t%s\t\n", c.ID, num(rate(c.HTTPFloor, c.Unit)), c.Unit,
					msStr(c.HTTPFloor.P50ms), msStr(c.HTTPFloor.P99ms), c.HTTPRatio, toFloor)
			}
			tw.Flush()
		}
		fmt.Fprintln(w, "CPU per operation (µs; warm-up included): console (of which kernel) / PostgreSQL / load generator; other processes' share of the machine")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "case\tconsole side\t\t\t\t\tfloor side\t\t\t\t")
		for _, c := range s.Cases {
			cols := []string{c.ID}
			for _, st := range []*Stats{c.Console, c.Floor} {
				if st == nil || st.CPU == nil {
					cols = append(cols, "-", "-", "-", "-")
					if st == c.Console {
						cols = append(cols, "-")
					}
					continue
				}
				if st == c.Console {
					cols = append(cols, cpuStr(st.CPU.ConsoleUs), "("+cpuStr(st.CPU.ConsoleSysUs)+")")
				} else {
					cols = append(cols, "-")
				}
				cols = append(cols, cpuStr(st.CPU.PostgresUs), cpuStr(st.CPU.BenchUs), fmt.Sprintf("%.0f%%", st.CPU.OtherPct))
			}
			fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
		}
		tw.Flush()
		noisy := 0.0
		for _, c := range s.Cases {
			for _, st := range []*Stats{c.Console, c.Floor} {
				if st != nil && st.CPU != nil {
					noisy = max(noisy, st.CPU.OtherPct)
				}
			}
		}
		if noisy >= 5 {
			fmt.Fprintf(w, "WARNING: other processes used up to %.0f%% of the machine's CPU during a case: these figures are noisy; rerun on an idle machine\n", noisy)
		}
		if s.ServerPeakRSSMB > 0 {
			fmt.Fprintf(w, "console serve peak RSS (VmHWM) over the run: %.1f MB\n", s.ServerPeakRSSMB)
		}
	}
	if len(r.Bars) > 0 {
		pass := 0
		for _, b := range r.Bars {
			if b.Pass {
				pass++
			}
		}
		fmt.Fprintf(w, "\n-- bars (at %s sessions%s): %d of %d pass\n", thousands(int64(r.Bars[0].Size)),
			map[bool]string{true: "; the issue defines them at 1,000,000: indicative only", false: ""}[r.Bars[0].Size != 1_000_000], pass, len(r.Bars))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, b := range r.Bars {
			verdict := "MISS"
			if b.Pass {
				verdict = "PASS"
			}
			fmt.Fprintf(tw, "%s\t%s %s %s\t%s\t%s\n", verdict, fmtBar(b.Value, b.Unit), b.Op, fmtBar(b.Limit, b.Unit), b.Name, b.Notes)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
}

func hasHTTPFloor(cases []CaseResult) bool {
	for _, c := range cases {
		if c.HTTPFloor != nil {
			return true
		}
	}
	return false
}

func cpuStr(us float64) string {
	if us == 0 {
		return "-"
	}
	return num(us)
}

func fmtBar(v float64, unit string) string {
	switch unit {
	case "x":
		return strconv.FormatFloat(v, 'f', 2, 64) + "x"
	case "ms":
		return msStr(v)
	case "MB":
		return strconv.FormatFloat(v, 'f', 1, 64) + " MB"
	}
	return num(v) + " " + unit
}

func settingsLine(s map[string]string) string {
	var parts []string
	for _, k := range []string{"shared_buffers", "work_mem", "fsync", "synchronous_commit", "max_connections"} {
		if v, ok := s[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// evaluateBars checks the bars on the largest size run (1M in a full run), and the
// scale bars between the smallest and the largest.
func evaluateBars(r *Report) []Bar {
	if r.FloorOnly || len(r.Sizes) == 0 {
		return nil
	}
	big := &r.Sizes[len(r.Sizes)-1]
	small := &r.Sizes[0]
	find := func(s *SizeReport, id string) *CaseResult {
		for i := range s.Cases {
			if s.Cases[i].ID == id && s.Cases[i].Console != nil {
				return &s.Cases[i]
			}
		}
		return nil
	}
	var bars []Bar
	add := func(b Bar) {
		b.Size = big.Sessions
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
	ratioBar := func(id string, limit float64, label string) {
		if c := find(big, id); c != nil && c.Floor != nil {
			add(Bar{Name: fmt.Sprintf("case %s: throughput %s of the floor", id, label), Value: c.Ratio, Limit: limit, Op: ">=", Unit: "x"})
		}
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		ratioBar(id, 0.5, ">= 50%")
		if c := find(big, id); c != nil {
			add(Bar{Name: "case " + id + ": p99 <= 25 ms", Value: c.Console.P99ms, Limit: 25, Op: "<=", Unit: "ms"})
		}
	}
	if c1 := find(big, "1"); c1 != nil && c1.Console.P50ms > 0 {
		for _, rel := range []struct {
			id    string
			limit float64
		}{{"3", 1.5}, {"4", 1.3}} {
			if c := find(big, rel.id); c != nil {
				add(Bar{Name: fmt.Sprintf("case %s p50 within %.1fx of case 1 p50", rel.id, rel.limit), Value: c.Console.P50ms / c1.Console.P50ms,
					Limit: rel.limit, Op: "<=", Unit: "x",
					Notes: fmt.Sprintf("%s vs %s", msStr(c.Console.P50ms), msStr(c1.Console.P50ms))})
			}
		}
	}
	ratioBar("5", 0.6, ">= 60%")
	ratioBar("6", 0.5, ">= 50%")
	if c := find(big, "7"); c != nil && c.Floor != nil {
		add(Bar{Name: "case 7: revoke-all within 2x of the floor (mean time)", Value: c.Console.Meanms / c.Floor.Meanms, Limit: 2, Op: "<=", Unit: "x",
			Notes: fmt.Sprintf("%s vs %s", msStr(c.Console.Meanms), msStr(c.Floor.Meanms))})
	}
	if c := find(big, "8"); c != nil {
		add(Bar{Name: "case 8: CSV rows per second", Value: c.Console.ItemsPerSec, Limit: 100_000, Op: ">=", Unit: "rows/s"})
		add(Bar{Name: "case 8: server RSS while streaming (VmRSS every 100ms)", Value: c.StreamPeakRSSMB, Limit: 100, Op: "<", Unit: "MB"})
	}
	if small != big {
		for _, id := range []string{"1", "2", "5"} {
			cb, cs := find(big, id), find(small, id)
			if cb != nil && cs != nil && cs.Console.P50ms > 0 {
				add(Bar{Name: fmt.Sprintf("scale: case %s p50 at %s within 1.5x of %s", id, thousands(int64(big.Sessions)), thousands(int64(small.Sessions))),
					Value: cb.Console.P50ms / cs.Console.P50ms, Limit: 1.5, Op: "<=", Unit: "x",
					Notes: fmt.Sprintf("%s vs %s", msStr(cb.Console.P50ms), msStr(cs.Console.P50ms))})
			}
		}
	}
	// The history (issue 8): the same bars for /history as for /sessions, the sync's cost,
	// and verify's cost of recording activity.
	ratioBar("history-first", 0.5, ">= 50%")
	for _, id := range []string{"history-first", "history-deep"} {
		if c := find(big, id); c != nil {
			add(Bar{Name: id + ": p99 <= 25 ms", Value: c.Console.P99ms, Limit: 25, Op: "<=", Unit: "ms"})
		}
	}
	if c1, c := find(big, "history-first"), find(big, "history-deep"); c1 != nil && c != nil && c1.Console.P50ms > 0 {
		add(Bar{Name: "history-deep p50 within 1.5x of history-first p50", Value: c.Console.P50ms / c1.Console.P50ms,
			Limit: 1.5, Op: "<=", Unit: "x", Notes: fmt.Sprintf("%s vs %s", msStr(c.Console.P50ms), msStr(c1.Console.P50ms))})
	}
	for _, id := range []string{"session-page", "user-page"} {
		if c := find(big, id); c != nil {
			add(Bar{Name: id + ": p99 <= 25 ms", Value: c.Console.P99ms, Limit: 25, Op: "<=", Unit: "ms"})
		}
		ratioBar(id, 0.5, ">= 50%")
	}
	if c := find(big, "sync-idle"); c != nil {
		add(Bar{Name: "sync-idle: a sync pass with nothing new, p50 < 5 ms (wall time, which bounds database time)",
			Value: c.Console.P50ms, Limit: 5, Op: "<", Unit: "ms", Notes: "p99 " + msStr(c.Console.P99ms)})
	}
	if c, base := find(big, "5"), find(big, "verify-noact"); c != nil && base != nil && base.Console.PerSec > 0 {
		add(Bar{Name: "case 5 (activity recorded) within 5% of verify-noact (none recorded)", Value: c.Console.PerSec / base.Console.PerSec,
			Limit: 0.95, Op: ">=", Unit: "x", Notes: fmt.Sprintf("%s vs %s req/s", num(c.Console.PerSec), num(base.Console.PerSec))})
	}
	peak := 0.0
	for _, s := range r.Sizes {
		peak = max(peak, s.ServerPeakRSSMB)
	}
	if peak > 0 {
		add(Bar{Name: "server peak RSS (VmHWM) over the whole run", Value: peak, Limit: 80, Op: "<", Unit: "MB"})
	}
	return bars
}
