package browser

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The overview, where sign-in lands: real data from the history (sessions the command line
// issued, counted as such), charts drawn as SVG with their numbers as tables, the top users,
// the jobs; a range link; at 1280 and 390 px, light and dark; and the same without JavaScript.
func TestOverview(t *testing.T) {
	t.Parallel()
	const user = "overview_user"
	cli(t, "sql", "-e", "CREATE USER "+quoteIdent(user))
	for range 12 {
		cli(t, "auth-session", "login", user, "--only-cookie")
	}
	ctx := newTab(t)
	signInHere(t, ctx)
	if path := eval[string](t, ctx, `location.pathname`); path != "/overview" {
		t.Fatalf("sign-in lands on %s", path)
	}
	// The sync, the counts and the overview job run in the background: wait for this user's
	// sessions in the chart, the active count and the top users.
	cliSum := `Array.from(document.querySelectorAll('[data-testid="table-created"] tbody tr')).reduce((n, r) => n + Number(r.cells[2].textContent.replace(/,/g, '')), 0)`
	waitForPage(t, ctx, "the command line's sessions and the top user", "/overview",
		cliSum+` >= 12 && Number(document.querySelector('[data-testid="tile-active"] .tile-value').textContent.replace(/,/g, '')) >= 12 && Array.from(document.querySelectorAll('[data-testid="top-user"] a')).some(a => a.textContent === '`+user+`')`)
	for _, id := range []string{"chart-created", "chart-revoked", "chart-active"} {
		if !eval[bool](t, ctx, `!!document.querySelector('[data-testid="`+id+`"] svg[role="img"]') && !!document.querySelector('[data-testid="`+id+`"] figcaption').textContent`) {
			t.Errorf("%s: no SVG or no description", id)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="chart-created"] rect').length`); n == 0 {
		t.Error("the created chart draws no bar")
	}
	if h := eval[float64](t, ctx, `document.querySelector('[data-testid="chart-created"] svg').getBoundingClientRect().height`); h < 100 {
		t.Errorf("the chart is %v px high", h)
	}
	if got := eval[string](t, ctx, `getComputedStyle(document.querySelector('[data-testid="chart-created"] rect.s-cli') || document.body).fill`); got == "" || got == "none" {
		t.Errorf("the command line's bars have no colour: %q", got)
	}
	shots(t, ctx, "overview")
	do(t, ctx, "open the created chart's numbers", chromedp.Click(chromedp.CSS(`[data-testid="chart-created"] summary`)))
	if !eval[bool](t, ctx, `document.querySelector('[data-testid="table-created"]').checkVisibility()`) {
		t.Error("the numbers' table does not open")
	}
	shots(t, ctx, "overview-table")
	if st := navClick(t, ctx, "the 7-day range", chromedp.CSS(`[data-testid="range"][href$="7d"]`)); st != http.StatusOK {
		t.Fatalf("7 days: HTTP %d", st)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="table-created"] tbody tr').length`); n != 7 {
		t.Errorf("7 days: %d rows", n)
	}
	if st := navClick(t, ctx, "list the created sessions", chromedp.CSS(`[data-testid="chart-created"] [data-testid="chart-list"]`)); st != http.StatusOK {
		t.Fatalf("the chart's list: HTTP %d", st)
	}
	if loc := location(t, ctx); loc.Path != "/history" || loc.Query().Get("created_after") == "" {
		t.Errorf("the created chart links to %s", loc)
	}

	// Without JavaScript: the same page, its tables open, its links work.
	nojs := newNoJSTab(t)
	signInHere(t, nojs)
	if path := eval[string](t, nojs, `location.pathname`); path != "/overview" {
		t.Fatalf("without JavaScript sign-in lands on %s", path)
	}
	do(t, nojs, "open the active chart's numbers", chromedp.Click(chromedp.CSS(`[data-testid="chart-active"] summary`)))
	rows := eval[[]string](t, nojs, `Array.from(document.querySelectorAll('[data-testid="table-active"] tbody tr')).map(r => r.textContent)`)
	if len(rows) != 25 || !strings.HasPrefix(strings.TrimSpace(rows[24]), "now") {
		t.Errorf("the active table without JavaScript: %d rows, last %q", len(rows), rows[len(rows)-1])
	}
	shots(t, nojs, "overview-nojs")
	if st := navClick(t, nojs, "a user's page", chromedp.CSS(`[data-testid="top-user"] a`)); st != http.StatusOK {
		t.Errorf("top user link: HTTP %d", st)
	}
}
