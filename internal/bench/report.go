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
	Machine   Machine           `json:"machine"`
	Postgres  string            `json:"postgres"`
	Settings  map[string]string `json:"postgres_settings"`
	Quick     bool              `json:"quick"`
	FloorOnly bool              `json:"floor_only"`
	// FloorsInBench: the HTTP floors ran in the bench process (Config.FloorInProcess), not
	// in a process of their own.
	FloorsInBench bool         `json:"http_floors_in_bench,omitempty"`
	Clients       int          `json:"clients"`
	CaseSeconds   float64      `json:"case_seconds"`
	WarmupSeconds float64      `json:"warmup_seconds"`
	Sizes         []SizeReport `json:"sizes"`
	Bars          []Bar        `json:"bars"`
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
	// Revocation is how soon a revoke takes effect at /auth/verify (nil: not measured).
	Revocation *Revocation `json:"revocation,omitempty"`
}

// CaseResult is one case at one size.
type CaseResult struct {
	Key       string   `json:"case"`
	Name      string   `json:"name"`
	Kind      caseKind `json:"kind"`
	Unit      string   `json:"unit"`
	Workers   int      `json:"workers"`
	Console   *Stats   `json:"console,omitempty"`
	Floor     *Stats   `json:"floor,omitempty"`
	FloorNote string   `json:"floor_note,omitempty"`
	// HTTPFloor is the floor's work behind a bare net/http handler in the bench process,
	// answering plain text.
	HTTPFloor *Stats `json:"http_floor,omitempty"`
	// SizedFloor is the same, answering the console's recorded answer (AnswerBytes of body).
	SizedFloor  *Stats `json:"same_size_http_floor,omitempty"`
	AnswerBytes int64  `json:"answer_bytes,omitempty"`
	// Rounds is how many alternating rounds the same-size floor and the console ran in
	// (Config.Rounds; 1: one run each).
	Rounds int `json:"rounds,omitempty"`
	// Ratio is the console's rate over the floor's (higher is better, 1 = as fast as raw pgx).
	Ratio float64 `json:"ratio,omitempty"`
	// HTTPRatio is the console's rate over the plain-text HTTP floor's.
	HTTPRatio float64 `json:"http_ratio,omitempty"`
	// SizedRatio is the console's rate over the same-size HTTP floor's.
	SizedRatio float64 `json:"same_size_http_ratio,omitempty"`
	// PGRatio is PostgreSQL's CPU per console operation over its CPU per operation of the
	// same-size HTTP floor (1 = the console asks the database for no more than the floor).
	PGRatio float64 `json:"postgres_cpu_ratio,omitempty"`
	// StreamPeakRSSMB is the highest VmRSS of the server sampled every 100 ms while it streamed
	// (the CSV case), or the CLI process's maximum RSS (list-cli).
	StreamPeakRSSMB float64  `json:"stream_peak_rss_mb,omitempty"`
	Warnings        []string `json:"warnings,omitempty"`
	// Statements are what the console ran in the database per operation (with -statements).
	Statements []Statement `json:"statements,omitempty"`
}

// Bar is one of the targets, evaluated.
type Bar struct {
	Name string `json:"name"`
	// Case is the case it judges ("" for bars of the whole run).
	Case  string  `json:"case,omitempty"`
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
	r.Ratio, r.HTTPRatio, r.SizedRatio, r.PGRatio = 0, 0, 0, 0
	if r.Console == nil {
		return
	}
	over := func(floor *Stats) float64 {
		if floor == nil || rate(floor, r.Unit) <= 0 {
			return 0
		}
		return rate(r.Console, r.Unit) / rate(floor, r.Unit)
	}
	r.Ratio, r.HTTPRatio, r.SizedRatio = over(r.Floor), over(r.HTTPFloor), over(r.SizedFloor)
	if r.SizedFloor != nil && r.Console.CPU != nil && r.SizedFloor.CPU != nil && r.SizedFloor.CPU.PostgresUs > 0 {
		r.PGRatio = r.Console.CPU.PostgresUs / r.SizedFloor.CPU.PostgresUs
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
	if r.SizedFloor != nil {
		fmt.Fprintf(&b, " same-size HTTP floor (%s bytes) %s %s p50 %s p99 %s;", thousands(r.AnswerBytes), num(rate(r.SizedFloor, r.Unit)), r.Unit,
			msStr(r.SizedFloor.P50ms), msStr(r.SizedFloor.P99ms))
	}
	if r.Console != nil {
		fmt.Fprintf(&b, " console %s %s p50 %s p99 %s", num(rate(r.Console, r.Unit)), r.Unit, msStr(r.Console.P50ms), msStr(r.Console.P99ms))
	}
	if r.Ratio > 0 {
		fmt.Fprintf(&b, "; ratio %.2f", r.Ratio)
	}
	if r.SizedRatio > 0 {
		fmt.Fprintf(&b, ", %.2f of the same-size HTTP floor", r.SizedRatio)
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
			cols := []string{c.Key, strconv.Itoa(c.Workers)}
			for _, st := range []*Stats{c.Console, c.Floor} {
				if st == nil {
					cols = append(cols, "-", "-", "-")
					continue
				}
				cols = append(cols, num(rate(st, c.Unit))+" "+c.Unit, msStr(st.P50ms), msStr(st.P99ms))
			}
			cols = append(cols, ratioStr(c.Ratio), "", c.Name)
			fmt.Fprintln(tw, strings.Join(cols, "\t"))
		}
		tw.Flush()
		for _, c := range s.Cases {
			if c.StreamPeakRSSMB > 0 {
				fmt.Fprintf(w, "case %s peak RSS: %.1f MB\n", c.Key, c.StreamPeakRSSMB)
			}
			for _, warn := range c.Warnings {
				fmt.Fprintf(w, "case %s: %s\n", c.Key, warn)
			}
		}
		if hasHTTPFloor(s.Cases) {
			where := "in a process of its own"
			if r.FloorsInBench {
				where = "in the bench process (-floor-in-process)"
			}
			fmt.Fprintln(w, "The console against the HTTP floors: the same pgx work behind a bare net/http handler "+where+", answering")
			fmt.Fprintln(w, "the console's own recorded answer (same size: status, headers, body) or plain text; PostgreSQL CPU per request against the same-size floor's")
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "case\tanswer\tsame-size floor\tp50\tp99\tconsole/same-size\tPostgreSQL CPU\tplain-text floor\tconsole/plain\tplain/floor\t")
			for _, c := range s.Cases {
				if c.HTTPFloor == nil && c.SizedFloor == nil {
					continue
				}
				sized, p50, p99, plain, toFloor := "-", "-", "-", "-", "-"
				if c.SizedFloor != nil {
					sized, p50, p99 = num(rate(c.SizedFloor, c.Unit))+" "+c.Unit, msStr(c.SizedFloor.P50ms), msStr(c.SizedFloor.P99ms)
				}
				if c.HTTPFloor != nil {
					plain = num(rate(c.HTTPFloor, c.Unit)) + " " + c.Unit
					if c.Floor != nil && rate(c.Floor, c.Unit) > 0 {
						toFloor = ratioStr(rate(c.HTTPFloor, c.Unit) / rate(c.Floor, c.Unit))
					}
				}
				pg := "-"
				if c.PGRatio > 0 {
					pg = ratioStr(c.PGRatio) + "x"
				}
				fmt.Fprintf(tw, "%s\t%s B\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Key, thousands(c.AnswerBytes), sized, p50, p99,
					ratioStr(c.SizedRatio), pg, plain, ratioStr(c.HTTPRatio), toFloor)
			}
			tw.Flush()
		}
		fmt.Fprintln(w, "CPU per operation (µs; warm-up included): server (of which kernel) / PostgreSQL / load generator; other processes' share of the machine")
		fmt.Fprintln(w, "(the server is the console, or the same-size HTTP floor's process; served in the bench process, the floor's server is in the load generator's figure)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "case\tconsole side\t\t\t\t\tsame-size HTTP floor\t\t\t\t\tfloor side\t\t\t")
		for _, c := range s.Cases {
			cols := []string{c.Key}
			if st := c.Console; st != nil && st.CPU != nil {
				cols = append(cols, cpuStr(st.CPU.ConsoleUs), "("+cpuStr(st.CPU.ConsoleSysUs)+")", cpuStr(st.CPU.PostgresUs), cpuStr(st.CPU.BenchUs),
					fmt.Sprintf("%.0f%%", st.CPU.OtherPct))
			} else {
				cols = append(cols, "-", "-", "-", "-", "-")
			}
			if st := c.SizedFloor; st != nil && st.CPU != nil {
				server, kernel := "-", "-"
				if st.CPU.ConsoleUs > 0 {
					server, kernel = cpuStr(st.CPU.ConsoleUs), "("+cpuStr(st.CPU.ConsoleSysUs)+")"
				}
				cols = append(cols, server, kernel, cpuStr(st.CPU.PostgresUs), cpuStr(st.CPU.BenchUs), fmt.Sprintf("%.0f%%", st.CPU.OtherPct))
			} else {
				cols = append(cols, "-", "-", "-", "-", "-")
			}
			if st := c.Floor; st != nil && st.CPU != nil {
				cols = append(cols, cpuStr(st.CPU.PostgresUs), cpuStr(st.CPU.BenchUs), fmt.Sprintf("%.0f%%", st.CPU.OtherPct))
			} else {
				cols = append(cols, "-", "-", "-")
			}
			fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
		}
		tw.Flush()
		noisy := 0.0
		for _, c := range s.Cases {
			for _, st := range []*Stats{c.Console, c.Floor, c.HTTPFloor, c.SizedFloor} {
				if st != nil && st.CPU != nil {
					noisy = max(noisy, st.CPU.OtherPct)
				}
			}
		}
		if noisy >= 5 {
			fmt.Fprintf(w, "WARNING: other processes used up to %.0f%% of the machine's CPU during a case: these figures are noisy; rerun on an idle machine\n", noisy)
		}
		if rv := s.Revocation; rv != nil {
			fmt.Fprintf(w, "revocation: revoke response -> first 401 from /auth/verify: p50 %s, max %s over %d sessions; verify requests still accepted after the revoke's response: at most %d\n",
				msStr(rv.P50ms), msStr(rv.Maxms), rv.Samples, rv.AcceptedAfter)
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

func ratioStr(r float64) string {
	if r <= 0 {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

func hasHTTPFloor(cases []CaseResult) bool {
	for _, c := range cases {
		if c.HTTPFloor != nil || c.SizedFloor != nil {
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
	case "requests":
		return strconv.FormatFloat(v, 'f', 0, 64) + " requests"
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
