package browser

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// sessionIDs returns the IDs of user's sessions, oldest first, from the command line.
func sessionIDs(t *testing.T, user string) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(cli(t, "auth-session", "list", "--format", "tsv", "--user", user)), "\n")[1:] {
		ids = append(ids, strings.Split(line, "\t")[1])
	}
	return ids
}

// useSession presents a session's cookie at /auth/verify with a user agent, as a proxy would.
func useSession(t *testing.T, cookie, userAgent string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.baseURL+"/auth/verify", nil)
	req.Header.Set("Cookie", strings.Split(cookie, ";")[0])
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Forwarded-Host", "app.example")
	req.Header.Set("X-Original-URI", "/reports/daily")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verify: HTTP %d", resp.StatusCode)
	}
}

// waitForPage reloads path until the JavaScript condition holds (the history syncs in the
// background), bounded by waitTimeout per look and testTimeout in all.
func waitForPage(t *testing.T, ctx context.Context, what, path, cond string) {
	t.Helper()
	for {
		navigate(t, ctx, path)
		if eval[bool](t, ctx, "!!("+cond+")") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s on %s: %v", what, path, ctx.Err())
		default:
		}
		eval[chromedp.Void](t, ctx, `new Promise(r => setTimeout(r, 200))`)
	}
}

// The session page of a live, used session (fields, timeline, clients), its user page, and
// the same session once the table purged it; the health page. With and without JavaScript.
func TestSessionAndUserPages(t *testing.T) {
	t.Parallel()
	const user = "paged_user"
	cli(t, "sql", "-e", "CREATE USER "+quoteIdent(user))
	cookie := strings.TrimSpace(cli(t, "auth-session", "login", user, "--only-cookie", "--reason", "browser test"))
	cli(t, "auth-session", "login", user, "--only-cookie")
	ids := sessionIDs(t, user)
	if len(ids) != 2 {
		t.Fatalf("sessions %v", ids)
	}
	useSession(t, cookie, "Mozilla/5.0 (browser test)")
	useSession(t, cookie, "curl/8.5.0")

	ctx := newTab(t)
	signIn(t, ctx)
	page := "/sessions/" + ids[0]
	waitForPage(t, ctx, "the recorded session with its uses", page,
		`document.querySelector('[data-testid="f-first-seen"]') && document.querySelectorAll('[data-testid="client-row"]').length === 2`)
	if got := get(t, ctx, "status", chromedp.TextContent(byTestID("session-status"))); got != "active" {
		t.Errorf("status %q", got)
	}
	info := get(t, ctx, "auditInfo", chromedp.TextContent(chromedp.CSS(`[data-testid="f-auditinfo"] dd`)))
	if !strings.HasPrefix(info, "cli ") || !strings.HasSuffix(info, ": browser test") {
		t.Errorf("auditInfo %q", info)
	}
	for _, ev := range []string{"t-created", "t-first-use", "t-last-use", "t-expires"} {
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="`+ev+`"]').length`); n != 1 {
			t.Errorf("timeline: %d %s", n, ev)
		}
	}
	shots(t, ctx, "session-page")

	// Revoke from the page: the confirmation opens in the dialog, and the page comes back.
	waitSettled(t, ctx)
	do(t, ctx, "ask to revoke", chromedp.Click(byTestID("session-revoke")))
	do(t, ctx, "wait for the confirmation", chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog [data-testid="confirm-revoke"]`)))
	shots(t, ctx, "session-page-confirm")
	navClick(t, ctx, "confirm the revoke", chromedp.CSS(`#confirm-dialog [data-testid="confirm-revoke"]`))
	waitJS(t, ctx, "the session page again, revoked", `location.pathname === "/sessions/`+ids[0]+`" && document.querySelector('[data-testid="session-status"]').textContent === "revoked" && document.querySelector('[data-testid="notice"]')`)

	// Its username leads to the user page, whose rows lead back.
	if st := navClick(t, ctx, "open the user page", byTestID("session-user")); st != http.StatusOK {
		t.Fatalf("user page: HTTP %d", st)
	}
	if got := get(t, ctx, "state", chromedp.TextContent(byTestID("user-state"))); got != "exists" {
		t.Errorf("user state %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="live-sessions"] [data-testid="session-row"]').length`); n != 2 {
		t.Errorf("%d live sessions on the user page", n)
	}
	shots(t, ctx, "user-page")
	if st := navClick(t, ctx, "open a session from the user page", chromedp.CSS(`[data-session-id="`+ids[1]+`"] [data-testid="row-session"]`)); st != http.StatusOK {
		t.Fatalf("session page from the user page: HTTP %d", st)
	}
	if got := get(t, ctx, "id", chromedp.TextContent(byTestID("session-id"))); got != ids[1] {
		t.Errorf("opened session %q, want %s", got, ids[1])
	}

	// The console's purge takes the first session once it ended more than the purge TTL ago
	// (its revocation back-dated here): it stays on both pages, marked.
	cli(t, "sql", "-e", `UPDATE console.web_sessions SET "revokedAt" = now() AT TIME ZONE 'UTC' - INTERVAL '2 hours' WHERE id = `+ids[0])
	waitForPage(t, ctx, "the purged session, recorded", page, `document.querySelector('[data-testid="session-purged"]') && document.querySelector('[data-testid="t-purged"]')`)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-revoke"]').length`); n != 0 {
		t.Error("a purged session offers revoke")
	}
	shots(t, ctx, "session-page-purged")
	navigate(t, ctx, "/users/"+user)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="purged-sessions"] [data-purged="true"]').length`); n != 1 {
		t.Errorf("%d purged sessions on the user page", n)
	}

	// The history lists both, the purged one marked, and filters by purge.
	navigate(t, ctx, "/history?user="+user)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-row"]').length`); n != 2 {
		t.Errorf("%d history rows", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-row"][data-purged="true"]').length`); n != 1 {
		t.Errorf("%d purged history rows", n)
	}
	shots(t, ctx, "history-page")
	do(t, ctx, "open the more filters", chromedp.Click(chromedp.CSS(`[data-testid="more-filters"] summary`)))
	do(t, ctx, "purged only", chromedp.SetValue(byTestID("filter-purged"), "yes"))
	eval[chromedp.Void](t, ctx, `document.querySelector('[data-testid="filter-purged"]').dispatchEvent(new Event("change", {bubbles: true}))`)
	waitJS(t, ctx, "only the purged row", `document.querySelectorAll('[data-testid="session-row"]').length === 1 && document.querySelector('[data-testid="session-row"][data-purged="true"]') && location.search.includes("purged=yes")`)
	shots(t, ctx, "history-page-purged-only")

	// A name that never existed has a page that says so.
	navigate(t, ctx, "/users/never_a_user")
	if got := get(t, ctx, "state", chromedp.TextContent(byTestID("user-state"))); got != "unknown" {
		t.Errorf("unknown user's state %q", got)
	}
	shots(t, ctx, "user-page-unknown")

	navigate(t, ctx, "/health")
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="job"]').length`); n < 3 {
		t.Errorf("%d jobs on the health page", n)
	}
	shots(t, ctx, "health-page")

	// Without JavaScript: the same pages, and revoke through its confirmation page.
	nojs := newNoJSTab(t)
	signIn(t, nojs)
	navigate(t, nojs, "/sessions/"+ids[1])
	if st := navClick(t, nojs, "revoke without JavaScript", byTestID("session-revoke")); st != http.StatusOK {
		t.Fatalf("confirmation page: HTTP %d", st)
	}
	navClick(t, nojs, "confirm", chromedp.CSS(`form[action$="/revoke"] button[type=submit]`))
	navigate(t, nojs, "/sessions/"+ids[1])
	if got := get(t, nojs, "status", chromedp.TextContent(byTestID("session-status"))); got != "revoked" {
		t.Errorf("after the no-JS revoke the status is %q", got)
	}
}

// walkHistoryStates checks the history's pages with axe-core: the history with its more
// filters open, a used session's page and its revoke dialog, a user's page, a name never
// seen, the health page, and the audit page with its filters.
func walkHistoryStates(t *testing.T, width int64, scheme string) {
	user := fmt.Sprintf("a11yh_%d_%s", width, scheme)
	cli(t, "sql", "-e", "CREATE USER "+quoteIdent(user))
	cookie := strings.TrimSpace(cli(t, "auth-session", "login", user, "--only-cookie", "--reason", "accessibility walk"))
	useSession(t, cookie, "Mozilla/5.0 (a11y)")
	id := sessionIDs(t, user)[0]
	ctx := a11yTab(t, 3*testTimeout, width, scheme)
	state := func(name string) {
		t.Helper()
		checkState(t, ctx, name, width, scheme)
	}
	signIn(t, ctx)
	waitForPage(t, ctx, "the recorded session", "/sessions/"+id, `document.querySelector('[data-testid="f-first-seen"]') && document.querySelector('[data-testid="client-row"]')`)
	state("session-page")
	openConfirmation(t, ctx, byTestID("session-revoke"))
	state("session-page-dialog")
	navigate(t, ctx, "/users/"+user)
	state("user-page")
	navigate(t, ctx, "/users/never_"+user)
	state("user-page-unknown")
	navigate(t, ctx, "/history?user="+user+"&created_after=2000-01-01")
	pauseAutoRefresh(t, ctx)
	state("history")
	navigate(t, ctx, "/health")
	state("health")
	navigate(t, ctx, "/audit?target="+user+"&after=2000-01-01")
	state("audit-filtered")
}
