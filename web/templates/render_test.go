package templates

import (
	"context"
	"html"
	"io"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

func table50() SessionsTable {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	t := SessionsTable{SelfURL: "/sessions?status=active", UpdatedAt: "12:00:00 UTC", StatusName: "active", Now: now,
		Counts:      Counts{Active: "200,000", Expired: "700,000", Revoked: "100,000", Total: "1,000,000", At: "3s ago"},
		ReturnQuery: "?return=status%3Dall", CanOperate: true}
	for i := 0; i < 50; i++ {
		created := now.Add(-time.Duration(i) * time.Minute).Add(123456 * time.Microsecond)
		t.Rows = append(t.Rows, SessionRow{ID: int64(784445853689282561 + i), Username: "user" + strconv.Itoa(i),
			CreatedAt: created, ExpiresAt: created.Add(time.Hour), LastUsedAt: created})
	}
	t.NextURL = "/sessions?after=2026-11-27T08:57:30.246062Z_784445853689282611"
	return t
}

// The table fragment escapes what it shows and carries the hooks tests and htmx rely on.
func TestTableRenders(t *testing.T) {
	tb := table50()
	tb.Rows[0].Username = `<b>"x"</b>`
	var sb strings.Builder
	if err := Table(tb).Render(context.Background(), &sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	if n := strings.Count(out, `data-testid="session-row"`); n != 50 {
		t.Errorf("%d rows", n)
	}
	if strings.Contains(out, `<b>"x"</b>`) || !strings.Contains(out, "&lt;b&gt;&#34;x&#34;&lt;/b&gt;") {
		t.Error("username not escaped")
	}
	revoked := tb.Now.Add(-time.Second)
	tb.Rows[1].RevokedAt = &revoked
	tb.Rows[2].ExpiresAt = tb.Now
	sb.Reset()
	if err := Table(tb).Render(context.Background(), &sb); err != nil {
		t.Fatal(err)
	}
	out = sb.String()
	for _, want := range []string{`id="results"`, `hx-trigger="refresh, sessions-changed from:body"`, `data-testid="next-page"`,
		`<tr data-testid="session-row" data-session-id="784445853689282561" data-username="&lt;b&gt;&#34;x&#34;&lt;/b&gt;" data-status="active">`,
		`<a href="/users/%3Cb%3E%22x%22%3C%2Fb%3E" class="uname" data-testid="row-user">`,
		`<a href="/sessions/784445853689282561" data-testid="row-session"><code>784445853689282561</code></a>`,
		`<time datetime="2026-11-27T09:00:00.123456Z">2026-11-27 09:00:00.123456` + "\u00a0" + `UTC</time><span class="hint">now</span>`,
		`<time datetime="2026-11-27T10:00:00.123456Z">2026-11-27 10:00:00.123456` + "\u00a0" + `UTC</time><span class="hint">in 1h</span>`,
		`data-session-id="784445853689282562" data-username="user1" data-status="revoked"`,
		`data-session-id="784445853689282563" data-username="user2" data-status="expired"`,
		`<span class="hint">1s ago</span>`,
		`href="/sessions/784445853689282561/revoke?return=status%3Dall"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	// The web table never shows the CLI's literal NULL (the exports and the CLI keep it).
	if strings.Contains(out, "NULL") {
		t.Errorf("the table shows a literal NULL")
	}
	if !strings.Contains(out, `<td data-label="Revoked"><span class="null"><span aria-hidden="true">—</span><span class="sr-only">not revoked</span></span></td>`) {
		t.Errorf("an unrevoked session's Revoked cell is not a dash with the words \"not revoked\" for screen readers")
	}
	// A viewer's table offers no revoke.
	tb.CanOperate = false
	sb.Reset()
	if err := Table(tb).Render(context.Background(), &sb); err != nil {
		t.Fatal(err)
	}
	if out := sb.String(); strings.Contains(out, "/revoke") || strings.Count(out, `<td class="actions"></td></tr>`) != 50 {
		t.Errorf("a viewer's table offers revokes:\n%s", out[:min(len(out), 2000)])
	}
}

func BenchmarkRenderTable50(b *testing.B) {
	tb := table50()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := Table(tb).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// The hand-written time cell formats exactly as time.Format does: RFC 3339 in the attribute;
// in the text, fixed six-digit microseconds (so that the cells of a column line up) and UTC.
func TestAppendTimeMatchesFormat(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tm := range []time.Time{
		now, now.Add(time.Nanosecond), now.Add(123456789), now.Add(100 * time.Millisecond), now.Add(time.Microsecond),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 2, 3, 4, 5, 6000, time.UTC), time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 60, time.UTC),
		time.Date(2022, 8, 2, 16, 47, 36, 342338000, time.FixedZone("x", 3600)),
	} {
		got := string(appendTime(nil, tm, now))
		u := tm.UTC()
		want := `<span class="tc"><time datetime="` + u.Format(time.RFC3339Nano) + `">` + u.Format("2006-01-02 15:04:05.000000") + "\u00a0UTC" +
			`</time><span class="hint">` + Relative(tm, now) + `</span></span>`
		if got != want {
			t.Errorf("appendTime(%v)\n got %s\nwant %s", tm, got, want)
		}
	}
}

// Relative rounds to the nearest unit (a fresh 15m session says "in 15m", not "in 14m"), and a
// value that rounds up to the next unit is said in that unit.
func TestRelativeRounds(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{400 * time.Millisecond, "now"},
		{-400 * time.Millisecond, "now"},
		{1500 * time.Millisecond, "in 2s"},
		{15*time.Minute - 80*time.Millisecond, "in 15m"},
		{15*time.Minute - 29*time.Second, "in 15m"},
		{15*time.Minute - 31*time.Second, "in 14m"},
		{-(15*time.Minute - 80*time.Millisecond), "15m ago"},
		{59*time.Second + 600*time.Millisecond, "in 1m"},
		{59*time.Minute + 40*time.Second, "in 1h"},
		{time.Hour - 80*time.Millisecond, "in 1h"},
		{90 * time.Minute, "in 2h"},
		{89 * time.Minute, "in 1h"},
		{47*time.Hour + 40*time.Minute, "in 2d"},
		{7*24*time.Hour - time.Second, "in 7d"},
		{-(36 * time.Hour), "36h ago"},
	} {
		if got := Relative(now.Add(tc.d), now); got != tc.want {
			t.Errorf("Relative(now%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// relativeByRound is Relative as it was written first, with time.Duration.Round: the
// reference for the integer rounding that replaced it.
func relativeByRound(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
		if d < 0 {
			d = math.MaxInt64
		}
	}
	if d.Round(time.Second) == 0 {
		return "now"
	}
	s := ""
	for _, u := range relativeUnits {
		if r := d.Round(u.unit); u.below == 0 || r < u.below {
			s = strconv.FormatInt(int64(r/u.unit), 10) + string(u.suffix)
			break
		}
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func TestRelativeMatchesRound(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	var ds []time.Duration
	for _, u := range []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		for _, k := range []time.Duration{0, 1, 2, 29, 30, 47, 48, 59, 60, 1000} {
			for _, off := range []time.Duration{-u / 2, -u/2 + 1, -1, 0, 1, u/2 - 1, u / 2, u/2 + 1} {
				ds = append(ds, k*u+off, -(k*u + off))
			}
		}
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 20000 {
		ds = append(ds, time.Duration(r.Int64N(int64(400*24*time.Hour)))-200*24*time.Hour)
	}
	for _, d := range ds {
		tm := now.Add(d)
		if got, want := Relative(tm, now), relativeByRound(tm, now); got != want {
			t.Errorf("Relative(now%+v) = %q, want %q", d, got, want)
		}
	}
}

func TestAppendEscapedMatchesHTML(t *testing.T) {
	for _, s := range []string{"", "plain", `<b>"x" & 'y'</b>`, "&&", "<", "a>", "\"'", "ünï<cödé>", "\x00<\xff"} {
		if got, want := string(appendEscaped([]byte("pre:"), s)), "pre:"+html.EscapeString(s); got != want {
			t.Errorf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	}
}
