package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// OverviewStore is what the overview reads: the hourly rollups and the top users, both kept
// by the background jobs (history.Store).
type OverviewStore interface {
	Buckets(ctx context.Context, from, to time.Time, step time.Duration) ([]history.Bucket, error)
	TopUsers(ctx context.Context) ([]history.UserCount, time.Time, error)
}

var _ OverviewStore = (*history.Store)(nil)

// overviewRange is one choice of the overview's range.
type overviewRange struct {
	param, label, words string
	buckets             int
	step                time.Duration
}

// overviewRanges are the overview's ranges (?range=), the first the default: the last 24 hours
// by hour, the last 7 or 30 days by UTC day (the current hour or day included).
var overviewRanges = []overviewRange{
	{"24h", "24 hours", "the last 24 hours", 24, time.Hour},
	{"7d", "7 days", "the last 7 days", 7, 24 * time.Hour},
	{"30d", "30 days", "the last 30 days", 30, 24 * time.Hour},
}

// The jobs the overview reports on, and what they do.
var overviewJobs = []struct{ name, what string }{
	{"history-sync", "records the session table's changes in the history"},
	{"purge", "deletes ended sessions (PostgreSQL)"},
	{"history-retention", "deletes old history"},
	{"overview", "counts the users with the most sessions"},
}

// OverviewFresh is how long one process reuses what the overview read for a range (the rollups
// change with each history sync, every 30 s by default; the top users once a minute), so that
// many viewers cost the database one read per range per period.
const OverviewFresh = 5 * time.Second

// overviewData is what the overview reads from the database for one range.
type overviewData struct {
	at      time.Time
	from    time.Time
	buckets []history.Bucket
	top     []history.UserCount
	topAt   time.Time
	jobs    []jobs.Status
	// charts are the three charts last built from buckets and rendered (building them was a
	// third of the page's CPU, rendering their SVG and tables more than half of the rest):
	// reused while the minute their links end in and the active count they end with are the
	// same.
	charts atomic.Pointer[builtCharts]
}

// builtCharts are the overview's charts as built and rendered for key (see chartsKey).
type builtCharts struct {
	key  string
	html string
}

// chartsKey is what the charts depend on besides the buckets: the minute of the created
// chart's link end (now + 1 s, to the minute) and the active sessions now.
func chartsKey(now time.Time, activeNow int64) string {
	return now.Add(time.Second).UTC().Format("2006-01-02T15:04") + " " + strconv.FormatInt(activeNow, 10)
}

// overviewCache keeps the last read of each range for OverviewFresh.
type overviewCache struct {
	mu      sync.Mutex
	byRange map[string]*overviewData
}

// overviewRead returns what the overview shows for rng at now, from the cache when it is fresh
// and of the same hour or day.
func (h *Handler) overviewRead(ctx context.Context, rng overviewRange, now time.Time) (*overviewData, error) {
	from := now.Truncate(rng.step).Add(-time.Duration(rng.buckets-1) * rng.step)
	h.ovCache.mu.Lock()
	d := h.ovCache.byRange[rng.param]
	h.ovCache.mu.Unlock()
	if d != nil && now.Sub(d.at) < OverviewFresh && !now.Before(d.at) && d.from.Equal(from) {
		return d, nil
	}
	d = &overviewData{at: now, from: from}
	var err error
	if d.buckets, err = h.overview.Buckets(ctx, from, now, rng.step); err != nil {
		return nil, err
	}
	if d.top, d.topAt, err = h.overview.TopUsers(ctx); err != nil {
		return nil, err
	}
	if bg := h.cfg.Background; bg.Jobs != nil {
		if d.jobs, err = bg.Jobs(ctx); err != nil {
			return nil, err
		}
	}
	h.ovCache.mu.Lock()
	if h.ovCache.byRange == nil {
		h.ovCache.byRange = map[string]*overviewData{}
	}
	h.ovCache.byRange[rng.param] = d
	h.ovCache.mu.Unlock()
	return d, nil
}

func (h *Handler) showOverview(c echo.Context) error {
	rng := overviewRanges[0]
	if p := c.QueryParam("range"); p != "" {
		found := false
		for _, r := range overviewRanges {
			if r.param == p {
				rng, found = r, true
			}
		}
		if !found {
			return echo.NewHTTPError(http.StatusBadRequest, "Invalid range in the address: use 24h, 7d or 30d.")
		}
	}
	if h.overview == nil {
		return echo.NewHTTPError(http.StatusNotFound, "The overview needs the session history.")
	}
	ctx := c.Request().Context()
	now := h.now().UTC()
	d, err := h.overviewRead(ctx, rng, now)
	if err != nil {
		return err
	}
	from, buckets, top, topAt := d.from, d.buckets, d.top, d.topAt
	counts, err := h.sessions.Counts(ctx, sessionstore.Filter{})
	if err != nil {
		return err
	}
	v := templates.OverviewPage{Page: h.page(c, "Overview", "overview"), RangeText: rng.words, Step: "hour"}
	if rng.step != time.Hour {
		v.Step = "day"
	}
	for _, r := range overviewRanges {
		v.Ranges = append(v.Ranges, templates.RangeLink{Label: r.label, URL: "/overview?range=" + r.param, Selected: r == rng})
	}
	var created, revoked int64
	for _, b := range buckets {
		created += b.CreatedTotal()
		revoked += b.Revoked
	}
	v.Tiles = []templates.Tile{
		{Label: "Active sessions", Value: thousands(counts.Active), Note: "counted " + templates.Relative(counts.At, now), URL: "/sessions?status=active", TestID: "tile-active"},
		{Label: "Created", Value: thousands(created), Note: "in " + rng.words, URL: historyRange(from, now.Add(time.Second), ""), TestID: "tile-created"},
		{Label: "Revoked", Value: thousands(revoked), Note: "in " + rng.words, URL: "/history?status=revoked", TestID: "tile-revoked"},
		{Label: "Expired or revoked", Value: thousands(counts.Expired + counts.Revoked), Note: "still in the table", URL: "/sessions?status=expired", TestID: "tile-ended"},
	}
	key := chartsKey(now, counts.Active)
	if b := d.charts.Load(); b != nil && b.key == key {
		v.Charts = b.html
	} else {
		created, revoked, active := overviewCharts(buckets, rng, now, counts.Active)
		if v.Charts, err = renderString(c, templates.ChartCards(created, revoked, active)); err != nil {
			return err
		}
		d.charts.Store(&builtCharts{key: key, html: v.Charts})
	}
	for _, u := range top {
		v.TopUsers = append(v.TopUsers, templates.TopUser{Username: u.Username, URL: userURL(u.Username), Active: thousands(u.Active)})
	}
	if !topAt.IsZero() {
		v.TopCountedAt = templates.Relative(topAt, now)
	}
	v.Jobs, v.HealthIssues = jobHealth(d.jobs, now)
	if err := h.policyCounts(ctx, &v); err != nil {
		return err
	}
	return h.render(c, http.StatusOK, templates.OverviewView(v))
}

// historyRange is the history list of the sessions created in [from, to), with a status.
func historyRange(from, to time.Time, status string) string {
	q := url.Values{}
	q.Set("created_after", from.UTC().Format("2006-01-02T15:04"))
	q.Set("created_before", to.UTC().Format("2006-01-02T15:04"))
	if status == "" {
		status = "all"
	}
	q.Set("status", status)
	return "/history?" + q.Encode()
}

// overviewCharts builds the three charts from the buckets: sessions created (by origin),
// revoked, and active at each bucket's start with a last point for now.
func overviewCharts(buckets []history.Bucket, rng overviewRange, now time.Time, activeNow int64) (created, revoked, active templates.Chart) {
	label := func(t time.Time) string {
		if rng.step == time.Hour {
			return t.Format("2006-01-02 15:00")
		}
		return t.Format("2006-01-02")
	}
	n := len(buckets)
	width := n * 10
	axis := func(c *templates.Chart) {
		c.Width = width
		if n > 0 {
			c.From, c.To = label(buckets[0].Start)+" UTC", "now"
		}
	}
	created = templates.Chart{ID: "created", Title: "Sessions created", ListText: "List the sessions created",
		Series: []templates.ChartSeries{{Name: "This console", Class: "s-console"}, {Name: "Command line", Class: "s-cli"}, {Name: "Elsewhere", Class: "s-other"}}}
	revoked = templates.Chart{ID: "revoked", Title: "Sessions revoked", ListText: "List the revoked sessions", ListURL: "/history?status=revoked",
		Series: []templates.ChartSeries{{Name: "Revoked", Class: "s-revoked"}}}
	active = templates.Chart{ID: "active", Title: "Active sessions", ListText: "List the active sessions", ListURL: "/sessions?status=active", Line: true,
		Series: []templates.ChartSeries{{Name: "Active", Class: "s-active"}}}
	for _, c := range []*templates.Chart{&created, &revoked, &active} {
		axis(c)
	}
	if n == 0 {
		return
	}
	created.ListURL = historyRange(buckets[0].Start, now.Add(time.Second), "")
	var totals [3]int64
	var totalRevoked, maxCreated, maxRevoked, maxActive int64
	for _, b := range buckets {
		for i, x := range b.Created {
			totals[i] += x
		}
		totalRevoked += b.Revoked
		maxCreated = max(maxCreated, b.CreatedTotal())
		maxRevoked = max(maxRevoked, b.Revoked)
		maxActive = max(maxActive, b.ActiveAtStart)
	}
	maxActive = max(maxActive, activeNow)
	for i := range totals {
		created.Series[i].Total = thousands(totals[i])
	}
	revoked.Series[0].Total = thousands(totalRevoked)
	active.Series[0].Total = thousands(activeNow) + " now"
	created.Max, revoked.Max, active.Max = niceMax(maxCreated), niceMax(maxRevoked), niceMax(maxActive)

	y := func(v, top int64) float64 { return 100 - 100*float64(v)/float64(top) }
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
	var points []byte
	for i, b := range buckets {
		end := b.Start.Add(rng.step)
		link := historyRange(b.Start, end, "")
		x := float64(i * 10)
		cb := templates.ChartBucket{Label: label(b.Start), URL: link, Values: thousandsAll(b.Created[:]...)}
		base := int64(0)
		for s, v := range b.Created {
			if v == 0 {
				continue
			}
			cb.Rects = append(cb.Rects, templates.ChartRect{X: f(x + 1), W: "8", Y: f(y(base+v, created.Max)), H: f(100 * float64(v) / float64(created.Max)),
				Class: created.Series[s].Class, Title: fmt.Sprintf("%s, %s: %d", cb.Label, created.Series[s].Name, v)})
			base += v
		}
		created.Buckets = append(created.Buckets, cb)
		rb := templates.ChartBucket{Label: cb.Label, URL: historyRange(b.Start, end, "revoked"), Values: thousandsAll(b.Revoked)}
		if b.Revoked > 0 {
			rb.Rects = []templates.ChartRect{{X: f(x + 1), W: "8", Y: f(y(b.Revoked, revoked.Max)), H: f(100 * float64(b.Revoked) / float64(revoked.Max)),
				Class: "s-revoked", Title: fmt.Sprintf("%s: %d revoked", cb.Label, b.Revoked)}}
		}
		revoked.Buckets = append(revoked.Buckets, rb)
		active.Buckets = append(active.Buckets, templates.ChartBucket{Label: cb.Label, URL: link, Values: thousandsAll(b.ActiveAtStart)})
		points = fmt.Appendf(points, "%s,%s ", f(x), f(y(b.ActiveAtStart, active.Max)))
	}
	points = fmt.Appendf(points, "%s,%s", f(float64(width)), f(y(activeNow, active.Max)))
	active.Points = string(points)
	active.Buckets = append(active.Buckets, templates.ChartBucket{Label: "now", URL: "/sessions?status=active", Values: thousandsAll(activeNow)})
	created.Desc = fmt.Sprintf("%s created in %s: %s by this console, %s by the command line, %s elsewhere (DB Console sign-ins, SQL); at most %s in one %s.",
		plural(totals[0]+totals[1]+totals[2], "session"), rng.words, created.Series[0].Total, created.Series[1].Total, created.Series[2].Total, thousands(maxCreated), stepWord(rng))
	revoked.Desc = fmt.Sprintf("%s revoked in %s; at most %s in one %s.", plural(totalRevoked, "session"), rng.words, thousands(maxRevoked), stepWord(rng))
	active.Desc = fmt.Sprintf("Active sessions over %s: %s at the start, %s now, at most %s.", rng.words,
		thousands(buckets[0].ActiveAtStart), thousands(activeNow), thousands(maxActive))
	return
}

func stepWord(r overviewRange) string {
	if r.step == time.Hour {
		return "hour"
	}
	return "day"
}

// niceMax is the smallest of 2, 4, 10 times a power of ten at or above v (at least 2): the top
// of a chart's axis, whose half is a whole number too.
func niceMax(v int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{2, 4, 10} {
			if m*p >= v {
				return m * p
			}
		}
	}
}

// jobHealth is how the history's jobs last did: when each last succeeded, and a problem when
// its last pass failed or no pass succeeded for three of its periods.
func jobHealth(st []jobs.Status, now time.Time) ([]templates.JobHealth, int) {
	byName := map[string]jobs.Status{}
	for _, s := range st {
		byName[s.Job] = s
	}
	var out []templates.JobHealth
	issues := 0
	for _, j := range overviewJobs {
		s, ok := byName[j.name]
		if !ok {
			continue
		}
		jh := templates.JobHealth{Name: j.name, What: j.what, LastSuccess: "never"}
		if s.LastSuccessAt != nil {
			jh.LastSuccess = templates.Relative(*s.LastSuccessAt, now)
		}
		switch {
		case s.LastError != "":
			jh.Problem = "last pass failed: " + s.LastError
		case s.LastFinishedAt == nil && s.LastStartedAt != nil && now.Sub(*s.LastStartedAt) > time.Hour:
			jh.Problem = "a pass started over an hour ago has not finished"
		case !s.LeaseExpiresAt.After(now):
			jh.Problem = "no process holds its lease"
		}
		if jh.Problem != "" {
			issues++
		}
		out = append(out, jh)
	}
	return out, issues
}

// policyCounts fills the overview's policy card from the policy's cached counts (the same
// counts, and freshness, as the policy page's), each rule linking to its sessions.
func (h *Handler) policyCounts(ctx context.Context, v *templates.OverviewPage) error {
	rules := h.policy.Config().EnabledRules()
	if len(rules) == 0 {
		v.PolicyNote = "No policy rules are enabled."
		return nil
	}
	counts, err := h.policy.Counts(ctx)
	if err != nil {
		return err
	}
	for _, r := range rules {
		n, q := counts.Rules[r], defaultSessionsQuery()
		q.Rule = r
		v.Policy = append(v.Policy, templates.PolicyCount{Name: string(r), URL: q.url("/sessions"), Count: thousands(n), Breached: n > 0})
	}
	return nil
}

// thousandsAll is thousands of each of ns.
func thousandsAll(ns ...int64) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = thousands(n)
	}
	return out
}
