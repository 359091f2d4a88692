package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

func TestMain(m *testing.M) {
	MaybeServeFloors() // TestFloorProcess starts this test binary as a floor process
	pgtest.Main(m)
}

func TestPercentile(t *testing.T) {
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(samples, tc.p); got != tc.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile of one sample = %v, want 7", got)
	}
}

func TestLoadStopsAtCount(t *testing.T) {
	var n atomic.Int64
	st, err := Load{Workers: 4, MaxOps: 1000, Duration: time.Minute, Op: func(context.Context, int, int) (int64, error) {
		n.Add(1)
		return 2, nil
	}}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops != 1000 || n.Load() != 1000 || st.Items != 2000 {
		t.Errorf("ops %d, calls %d, items %d; want 1000, 1000, 2000", st.Ops, n.Load(), st.Items)
	}
	if st.PerSec <= 0 || st.P99ms < st.P50ms {
		t.Errorf("stats %+v", st)
	}
}

// fakeClock is a clock that moves only when told to, for checking what Load times without
// timing anything.
type fakeClock struct{ ns atomic.Int64 }

func (f *fakeClock) now() time.Time          { return time.Unix(0, f.ns.Load()) }
func (f *fakeClock) advance(d time.Duration) { f.ns.Add(int64(d)) }

func TestLoadStopsInTime(t *testing.T) {
	for _, workers := range []int{1, 2} {
		clock := &fakeClock{}
		st, err := Load{Workers: workers, MaxOps: 1 << 30, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond, now: clock.now,
			Op: func(context.Context, int, int) (int64, error) {
				clock.advance(time.Millisecond)
				return 1, nil
			}}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Every operation moves the clock 1 ms: the run starts operations until 200 ms have
		// passed, and each other worker may have started one just before.
		extra := workers - 1
		if st.Ops < 200 || st.Ops > 200+extra {
			t.Errorf("%d workers: %d operations in 200 ms of 1 ms each, want 200 (+%d)", workers, st.Ops, extra)
		}
		if st.WarmupOps < 50 || st.WarmupOps > 50+extra {
			t.Errorf("%d workers: %d warm-up operations in 50 ms, want 50 (+%d)", workers, st.WarmupOps, extra)
		}
		// One worker sees only its own 1 ms per operation. Two share the clock, and an
		// operation descheduled after its start sees the other's steps too (the CI run of
		// 2026-12-01 saw a 2 ms max), so only the single worker's latencies are exact.
		if workers == 1 && (st.P50ms != 1 || st.Maxms != 1) {
			t.Errorf("1 worker: latencies p50 %v ms, max %v ms; want 1 ms each", st.P50ms, st.Maxms)
		}
	}
}

func TestLoadStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Load{Workers: 3, MaxOps: 1 << 30, Duration: time.Minute, Op: func(_ context.Context, _, i int) (int64, error) {
		if i == 50 {
			return 0, boom
		}
		return 1, nil
	}}.Run(context.Background())
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

// Preparation is outside the timing: neither in the latencies nor in the throughput's clock,
// but in the wall time of the run.
func TestLoadPrepareIsUntimed(t *testing.T) {
	clock := &fakeClock{}
	var prepared atomic.Int64
	st, err := Load{Workers: 1, MaxOps: 5, Duration: time.Minute, now: clock.now,
		Prepare: func(context.Context, int, int) error {
			prepared.Add(1)
			clock.advance(20 * time.Millisecond)
			return nil
		},
		Op: func(context.Context, int, int) (int64, error) { clock.advance(2 * time.Millisecond); return 1, nil },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if prepared.Load() != 5 || st.Ops != 5 {
		t.Fatalf("prepared %d, ran %d; want 5 and 5", prepared.Load(), st.Ops)
	}
	if st.P50ms != 2 || st.P99ms != 2 || st.Maxms != 2 || st.Meanms != 2 {
		t.Errorf("latencies %+v: want 2 ms each (the operation alone)", st)
	}
	// 5 operations in 10 ms of timed work.
	if st.PerSec != 500 {
		t.Errorf("throughput %v/s, want 500/s (5 operations of 2 ms; preparation not counted)", st.PerSec)
	}
	if st.Seconds != 0.110 {
		t.Errorf("wall time %vs, want 0.110s (preparation included)", st.Seconds)
	}
}

// Rounds of one side join as one run: counts and seconds add up, the rate is over the rounds'
// clocks, the percentiles come from every round's latencies, and CPU is weighted by operations.
func TestMergeRuns(t *testing.T) {
	round := func(latency time.Duration, ops int, cpu CPU) Stats {
		t.Helper()
		clock := &fakeClock{}
		st, err := Load{Workers: 1, MaxOps: ops, Duration: time.Hour, now: clock.now,
			Op: func(context.Context, int, int) (int64, error) { clock.advance(latency); return 2, nil }}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st.CPU = &cpu
		return st
	}
	// 90 fast operations (1 ms) in one round, 10 slow ones (10 ms) in the other.
	fast := round(time.Millisecond, 90, CPU{ConsoleUs: 100, PostgresUs: 50, BenchUs: 10, OtherPct: 1})
	slow := round(10*time.Millisecond, 10, CPU{ConsoleUs: 200, PostgresUs: 150, BenchUs: 30, OtherPct: 4})
	got := mergeRuns([]Stats{fast, slow})
	if got.Ops != 100 || got.Items != 200 || got.Workers != 1 {
		t.Fatalf("ops %d items %d workers %d, want 100, 200, 1", got.Ops, got.Items, got.Workers)
	}
	// 100 operations in 90 ms + 100 ms.
	if want := 100 / 0.19; math.Abs(got.PerSec-want) > 1e-6 || math.Abs(got.ItemsPerSec-2*want) > 1e-6 {
		t.Errorf("rates %v and %v/s, want %v and %v", got.PerSec, got.ItemsPerSec, want, 2*want)
	}
	if math.Abs(got.Seconds-0.19) > 1e-9 {
		t.Errorf("seconds %v, want 0.19", got.Seconds)
	}
	// The 50th of 100 is fast, the 99th slow: neither round's own percentiles.
	if got.P50ms != 1 || got.P99ms != 10 || got.Maxms != 10 || math.Abs(got.Meanms-1.9) > 1e-9 {
		t.Errorf("latencies p50 %v p99 %v max %v mean %v, want 1, 10, 10, 1.9", got.P50ms, got.P99ms, got.Maxms, got.Meanms)
	}
	if c := got.CPU; math.Abs(c.ConsoleUs-110) > 1e-9 || math.Abs(c.PostgresUs-60) > 1e-9 || math.Abs(c.BenchUs-12) > 1e-9 {
		t.Errorf("CPU %+v, want console 110, PostgreSQL 60, bench 12 µs per operation (weighted 90:10)", *c)
	}
	// Other processes' share is weighted as the CPU is: 1% over 90 operations, 4% over 10.
	if c := got.CPU; math.Abs(c.OtherPct-1.3) > 1e-9 {
		t.Errorf("other processes %v%%, want 1.3%% (weighted 90:10)", c.OtherPct)
	}
	if one := mergeRuns([]Stats{fast}); one.PerSec != fast.PerSec || one.P99ms != fast.P99ms {
		t.Error("one round is not its own figure")
	}
	if mergeRuns(nil) != nil {
		t.Error("no rounds gave a figure")
	}
}

// Only the request cases measured on both sides alternate, and not while statements or a
// profile are taken (those cover one run).
func TestRounds(t *testing.T) {
	e := &sizeEnv{cfg: &Config{Rounds: 3}}
	for kind, want := range map[caseKind]int{kindPage: 3, kindVerify: 3, kindIssue: 3, kindBaseline: 3, kindBulk: 1, kindStream: 1, kindJob: 1, kindList: 1} {
		if got := e.rounds(&benchCase{Kind: kind}, true); got != want {
			t.Errorf("%s: %d rounds, want %d", kind, got, want)
		}
	}
	if got := e.rounds(&benchCase{Kind: kindPage}, false); got != 1 {
		t.Errorf("a page without a same-size floor: %d rounds, want 1", got)
	}
	// verify's baseline (a console recording no activity, no floor) runs in rounds as long as
	// verify's console rounds, so that the two are measured alike.
	if got := e.rounds(&benchCase{Kind: kindBaseline}, false); got != 3 {
		t.Errorf("the baseline: %d rounds, want 3", got)
	}
	for name, cfg := range map[string]Config{"statements": {Rounds: 3, Statements: true}, "pprof": {Rounds: 3, Pprof: "127.0.0.1:1"}, "rounds 1": {Rounds: 1}, "unset": {}} {
		if got := (&sizeEnv{cfg: &cfg}).rounds(&benchCase{Kind: kindPage}, true); got != 1 {
			t.Errorf("%s: %d rounds, want 1", name, got)
		}
	}
}

func TestWithoutLimit(t *testing.T) {
	sql, args, err := withoutLimit("SELECT a FROM t WHERE b = $1 ORDER BY a LIMIT $2", []any{1, 51})
	if err != nil || sql != "SELECT a FROM t WHERE b = $1 ORDER BY a" || len(args) != 1 {
		t.Errorf("got %q %v %v", sql, args, err)
	}
	if _, _, err := withoutLimit("SELECT a FROM t LIMIT $2", []any{1, 2, 3}); err == nil {
		t.Error("a LIMIT that is not the last argument was accepted")
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", -12345: "-12,345"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%d) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct{ setting, unit, want string }{
		{"16384", "8kB", "128MB"}, {"4096", "kB", "4MB"}, {"100", "kB", "100kB"}, {"on", "", "on"}, {"200", "ms", "200ms"},
	} {
		if got := prettySetting(tc.setting, tc.unit); got != tc.want {
			t.Errorf("prettySetting(%q, %q) = %q, want %q", tc.setting, tc.unit, got, tc.want)
		}
	}
	page := []byte(`<form><input type="hidden" value="t&amp;k" name="_csrf"></form><meta content="m1" name="csrf-token">`)
	if got := attr(page, csrfInputRE, valueRE); got != "t&k" {
		t.Errorf("csrf input = %q", got)
	}
	if got := attr(page, csrfMetaRE, contentRE); got != "m1" {
		t.Errorf("csrf meta = %q", got)
	}
	if err := containsIDs([]byte("<td>12</td><td>1234</td>"), 12, 1234); err != nil {
		t.Error(err)
	}
	if err := containsIDs([]byte("<td>1234</td>"), 123); err == nil {
		t.Error("123 found inside 1234")
	}
}

// A fake console with the login contract: GET /login sets the CSRF cookie and shows the
// token; POST /login checks it and signs in; /sessions needs the admin cookie.
func fakeConsole(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "_csrf", Value: "tok", Path: "/"})
		w.Write([]byte(`<form method="post"><input type="hidden" name="_csrf" value="tok"></form>`))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("_csrf")
		if err != nil || c.Value != r.FormValue("_csrf") || r.FormValue("password") != "pw" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "admin", Value: "ok", Path: "/", Secure: true, HttpOnly: true})
		http.Redirect(w, r, "/overview", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("admin"); err != nil || c.Value != "ok" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Write([]byte(`<meta name="csrf-token" content="tok"><table><tr><td>42</td></tr></table>` + "\n"))
	})
	mux.HandleFunc("POST /sessions", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-CSRF-Token") != "tok" || r.FormValue("_csrf") != "tok" {
			http.Error(w, "csrf", http.StatusForbidden)
			return
		}
		w.Write([]byte("session=abc\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClientLogin(t *testing.T) {
	srv := fakeConsole(t)
	ctx := context.Background()
	c := NewClient(srv.URL, 2)
	defer c.Close()
	if err := c.Login(ctx, "bench", "wrong"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	if err := c.Login(ctx, "bench", "pw"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(ctx, Request{Path: "/sessions", Keep: true, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(resp.Body, []byte("<td>42</td>")) || resp.Lines != 1 {
		t.Errorf("body %q lines %d", resp.Body, resp.Lines)
	}
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/sessions", Form: map[string][]string{"username": {"u"}}}); err != nil {
		t.Errorf("POST with CSRF: %v", err)
	}
	_, err = c.Do(ctx, Request{Path: "/nowhere"})
	if err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("unexpected status not reported: %v", err)
	}
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewDB(t), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := sessionstore.Open(ctx, pool, sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := DatasetFor(20_000, time.Now())
	seeded, err := Seed(ctx, pool, d, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := store.Counts(ctx, sessionstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if counts.Total() != 20_000 || counts.Active != int64(seeded.Active) || counts.Revoked != int64(seeded.Revoked) {
		t.Errorf("counts %+v, seeded %+v", counts, seeded)
	}
	near := func(got, pct int) bool { want := 20_000 * pct / 100; return got > want*9/10 && got < want*11/10 }
	if !near(seeded.Active, 20) || !near(seeded.Revoked, 10) || !near(seeded.Expired, 70) {
		t.Errorf("shares: %d active, %d revoked, %d expired", seeded.Active, seeded.Revoked, seeded.Expired)
	}
	heavy, err := store.Counts(ctx, sessionstore.Filter{Username: HeavyUser(1)})
	if err != nil {
		t.Fatal(err)
	}
	if heavy.Total() != int64(d.HeavySessions) || heavy.Active+heavy.Expired != int64(seeded.HeavyUnrevoked) {
		t.Errorf("heavy1: %+v, want %d sessions, %d unrevoked", heavy, d.HeavySessions, seeded.HeavyUnrevoked)
	}
	if len(seeded.Cookies) != d.VerifySample {
		t.Fatalf("%d cookies, want %d", len(seeded.Cookies), d.VerifySample)
	}
	for i, c := range seeded.Cookies[:50] {
		v, err := store.Verify(ctx, c)
		if err != nil || v.SessionID != seeded.CookieIDs[i] {
			t.Fatalf("cookie %d: %+v %v", i, v, err)
		}
	}
	// Creation order is ID order, and no timestamp contradicts the status.
	var bad int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM console.web_sessions a
		WHERE "lastUsedAt" < "createdAt" OR "expiresAt" <= "createdAt" OR "revokedAt" < "createdAt"
		   OR "createdAt" < (SELECT "createdAt" FROM console.web_sessions b WHERE b.id = a.id - 1)`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d rows with inconsistent timestamps", bad)
	}
	// Issue works for the issue users after seeding (roles exist, the ID sequence moved on).
	iss, err := store.Issue(ctx, seeded.IssueUsers[0], time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if iss.ID <= seeded.MaxID {
		t.Errorf("issued ID %d collides with seeded IDs (max %d)", iss.ID, seeded.MaxID)
	}
	if _, err := Seed(ctx, pool, d, t.Logf); err == nil {
		t.Error("seeding a non-empty table was accepted")
	}
}

func TestHTTPFloor(t *testing.T) {
	var calls atomic.Int64
	bc := &benchCase{Key: CaseFragment, Unit: "req/s", header: hxHeader, floor: func(_ context.Context, w io.Writer, _, _ int) (int64, error) {
		calls.Add(1)
		if w != nil {
			io.WriteString(w, "a,1\nb,2\n")
		}
		return 1, nil
	}}
	rows := &benchCase{Key: CaseCSV, Unit: "rows/s", floor: func(_ context.Context, w io.Writer, _, _ int) (int64, error) {
		io.WriteString(w, "header\nr1\nr2\nr3\n")
		return 3, nil
	}}
	f, err := startHTTPFloor([]*benchCase{bc, rows})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := NewClient(f.URL, 1)
	defer c.Close()
	ctx := context.Background()
	t.Run("plain text", func(t *testing.T) {
		resp, err := c.Do(ctx, Request{Path: "/floor/" + CaseFragment, Keep: true})
		if err != nil || string(resp.Body) != "a,1\nb,2\n" {
			t.Errorf("GET /floor/%s: %q %v", CaseFragment, resp.Body, err)
		}
		if n, err := f.op(c, rows, false)(ctx, 0, 0); err != nil || n != 3 {
			t.Errorf("rows op = %d, %v; want 3 rows", n, err)
		}
	})
	t.Run("unknown case", func(t *testing.T) {
		if _, err := c.Do(ctx, Request{Path: "/floor/nothing"}); err == nil {
			t.Error("an unknown case answered")
		}
	})
	t.Run("same size before an answer is recorded", func(t *testing.T) {
		if _, err := c.Do(ctx, Request{Path: "/floor/" + CaseFragment + "/sized"}); err == nil {
			t.Error("the same-size floor answered without a recorded answer")
		}
	})
	t.Run("same size replays the console's answer", func(t *testing.T) {
		page := strings.Repeat("<tr><td>row</td></tr>", 1500)
		bc.record(Response{Status: http.StatusOK, Body: []byte(page), Header: http.Header{
			"Content-Type": {"text/html; charset=UTF-8"}, "Content-Security-Policy": {"default-src 'none'"},
			"Date": {"Mon, 01 Jan 2026 00:00:00 GMT"}, "Set-Cookie": {"console_admin=x"}, "Content-Length": {"1"}}})
		before := calls.Load()
		resp, err := c.Do(ctx, Request{Path: "/floor/" + CaseFragment + "/sized", Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != page {
			t.Errorf("body of %d bytes, want the recorded %d", len(resp.Body), len(page))
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != "default-src 'none'" {
			t.Errorf("Content-Security-Policy %q, want the recorded one", got)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("replayed Set-Cookie %q: cookies belong to one response", got)
		}
		if calls.Load() != before+1 {
			t.Errorf("the floor's database work ran %d times for one request, want 1", calls.Load()-before)
		}
		if n, err := f.op(c, bc, true)(ctx, 0, 0); err != nil || n != 1 {
			t.Errorf("sized op = %d, %v", n, err)
		}
	})
	t.Run("an export is not recorded", func(t *testing.T) {
		rows.record(Response{Status: http.StatusOK, Body: make([]byte, maxRecordedAnswer+1)})
		if rows.answer.Load() != nil {
			t.Error("an answer over maxRecordedAnswer was recorded")
		}
	})
}
