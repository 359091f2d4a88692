package browser

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
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
	navigate(t, ctx, "/overview")
	state("overview")
	eval[chromedp.Void](t, ctx, `document.querySelectorAll('details.chart-table').forEach(d => d.open = true)`)
	state("overview-tables")
	navigate(t, ctx, "/health")
	state("health")
	navigate(t, ctx, "/audit?target="+user+"&after=2000-01-01")
	state("audit-filtered")
}

// historySeed gives user 27 sessions and then, strictly later (the next whole second), 2
// more, and returns that second as a created_after bound (UTC) and the 2 later sessions' IDs.
func historySeed(t *testing.T, user string) (after string, later []string) {
	t.Helper()
	seed(t, user, 0)
	insert := func(n int) {
		cli(t, "sql", "-e", fmt.Sprintf(`INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
			SELECT '\x00', %s, now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, %d)`, "'"+user+"'", n))
	}
	insert(27)
	after = sqlValue(t, `SELECT to_char(date_trunc('second', max("createdAt")) + INTERVAL '1 second', 'YYYY-MM-DD HH24:MI:SS') FROM console.web_sessions WHERE username = '`+user+`'`)
	for deadline := time.Now().Add(waitTimeout); sqlValue(t, `SELECT (now() AT TIME ZONE 'UTC' > TIMESTAMP '`+after+`')::int`) != "1"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the database's clock did not pass %s", after)
		}
	}
	insert(2)
	ids := sessionIDs(t, user)
	slices.SortFunc(ids, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Compare(x, y)
	})
	return after, ids[len(ids)-2:]
}

// The history page as an auditor uses it: keyset pages, the more filters typed into the form
// (a created range, a session ID), a malformed date, and the exports carrying the filters with
// the purged column; with JavaScript (htmx swaps, the address follows) and without (plain
// links and form submissions).
func TestHistoryPage(t *testing.T) {
	t.Parallel()
	const user = "history_pages"
	after, later := historySeed(t, user)
	all := "/history?user=" + user + "&limit=25"
	rowIDs := `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => Number(r.dataset.sessionId)).sort((a, b) => a - b).join(",")`
	laterIDs := strings.Join(later, ",")

	t.Run("with JavaScript", func(t *testing.T) {
		ctx := newTab(t)
		do(t, ctx, "set the viewport", chromedp.EmulateViewport(1280, 800))
		signIn(t, ctx)
		pauseAutoRefresh(t, ctx)
		// The history syncs in the background: wait until it has all 29.
		waitForPage(t, ctx, "the 29 sessions in the history", all, `document.querySelector('[data-testid="count-all"]').textContent === "29"`)
		waitJS(t, ctx, "page 1", allRowsJS(user, 25, ""))

		slowClick(t, ctx, "next page", "next-page")
		waitJS(t, ctx, "page 2", allRowsJS(user, 4, ""))
		waitSettled(t, ctx)
		if !eval[bool](t, ctx, `location.pathname === "/history" && new URLSearchParams(location.search).has("after")`) {
			t.Errorf("after paging the address is %s, want /history with the page's position", location(t, ctx))
		}
		waitJS(t, ctx, "the focus on the table heading", activeTestID+` === "results-heading"`)
		slowClick(t, ctx, "first page", "first-page")
		waitJS(t, ctx, "page 1 again", allRowsJS(user, 25, ""))
		waitSettled(t, ctx)

		// A created range typed into the more filters: the field's change applies it.
		do(t, ctx, "open the more filters", chromedp.Click(chromedp.CSS(`[data-testid="more-filters"] summary`)))
		typeInto(t, ctx, "type the created-after bound", "filter-created_after", after)
		do(t, ctx, "leave the field", chromedp.KeyEvent(kb.Tab))
		waitJS(t, ctx, "the 2 later sessions", `(`+rowIDs+`) === `+jsString(laterIDs))
		waitSettled(t, ctx)
		if got := eval[string](t, ctx, `new URLSearchParams(location.search).get("created_after")`); got != after {
			t.Errorf("the address holds created_after=%q, want %q", got, after)
		}
		shots(t, ctx, "history-page-created-after")

		// The exports follow the filters and carry the purged column.
		csvURL := eval[string](t, ctx, `document.querySelector('[data-testid="export-csv"]').getAttribute("href")`)
		csv := get(t, ctx, "fetch the CSV export", chromedp.Evaluate[string](`fetch(`+jsString(csvURL)+`).then(r => r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)))`, chromedp.EvalAwaitPromise))
		lines := strings.Split(strings.TrimSpace(csv), "\n")
		if len(lines) != 3 || !strings.HasSuffix(strings.TrimSpace(lines[0]), ",purged") {
			t.Errorf("the CSV export of %s is\n%s\nwant a header ending in purged and the 2 later sessions", csvURL, csv)
		}
		for _, id := range later {
			if !strings.Contains(csv, ","+id+",") {
				t.Errorf("the CSV export lacks session %s:\n%s", id, csv)
			}
		}
		jsonURL := eval[string](t, ctx, `document.querySelector('[data-testid="export-json"]').getAttribute("href")`)
		rows := get(t, ctx, "fetch the JSON export", chromedp.Evaluate[[]map[string]any](`fetch(`+jsString(jsonURL)+`).then(r => r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)))`, chromedp.EvalAwaitPromise))
		if len(rows) != 2 {
			t.Errorf("the JSON export of %s has %d rows, want the 2 later sessions", jsonURL, len(rows))
		}
		for _, r := range rows {
			if _, ok := r["purged"]; !ok {
				t.Errorf("a JSON export row has no purged field: %v", r)
			}
		}

		// A session ID narrows it to one.
		typeInto(t, ctx, "type a session ID", "filter-id", later[0])
		do(t, ctx, "leave the field", chromedp.KeyEvent(kb.Tab))
		waitJS(t, ctx, "the one session", `(`+rowIDs+`) === `+jsString(later[0]))
		waitSettled(t, ctx)

		// A malformed date: the banner names the field; the table stays as it was.
		typeInto(t, ctx, "type a malformed date", "filter-created_before", "last tuesday")
		do(t, ctx, "leave the field", chromedp.KeyEvent(kb.Tab))
		waitJS(t, ctx, "the banner", `!document.getElementById("banner").hidden`)
		waitSettled(t, ctx)
		if msg := get(t, ctx, "read the banner", chromedp.TextContent(chromedp.ID("banner"))); !strings.Contains(msg, "Invalid created_before") {
			t.Errorf("the banner says %q, want it to name created_before", msg)
		}
		if got := eval[string](t, ctx, rowIDs); got != later[0] {
			t.Errorf("after the malformed date the table shows %q, want the session %s it showed", got, later[0])
		}
		if strings.Contains(location(t, ctx).RawQuery, "created_before") {
			t.Errorf("the malformed date reached the address: %s", location(t, ctx))
		}
		shots(t, ctx, "history-page-bad-date")
	})

	t.Run("without JavaScript", func(t *testing.T) {
		ctx := newNoJSTab(t)
		signIn(t, ctx)
		navigate(t, ctx, all)
		waitForPage(t, ctx, "the 29 sessions in the history", all, `document.querySelector('[data-testid="count-all"]').textContent === "29"`)
		if st := navClick(t, ctx, "next page", byTestID("next-page")); st != http.StatusOK {
			t.Fatalf("next page: HTTP %d", st)
		}
		if n := len(rows(t, ctx)); n != 4 {
			t.Errorf("page 2 has %d rows, want 4", n)
		}
		if st := navClick(t, ctx, "first page", byTestID("first-page")); st != http.StatusOK {
			t.Fatalf("first page: HTTP %d", st)
		}

		// The more filters are plain fields of the form: Apply submits them.
		setField(t, ctx, `[data-testid="filter-created_after"]`, after)
		if st := navClick(t, ctx, "apply", byTestID("filter-apply")); st != http.StatusOK {
			t.Fatalf("apply the created range: HTTP %d", st)
		}
		if got := eval[string](t, ctx, rowIDs); got != laterIDs {
			t.Errorf("created after %s shows sessions %q, want %q", after, got, laterIDs)
		}
		if got := eval[bool](t, ctx, `document.querySelector('[data-testid="more-filters"]').open`); !got {
			t.Errorf("the more filters are folded away while one is set")
		}
		setField(t, ctx, `[data-testid="filter-created_before"]`, "last tuesday")
		if st := navClick(t, ctx, "apply a malformed date", byTestID("filter-apply")); st != http.StatusBadRequest {
			t.Errorf("a malformed date: HTTP %d, want 400", st)
		}
		if msg := get(t, ctx, "read the error", chromedp.TextContent(byTestID("error-message"))); !strings.Contains(msg, "Invalid created_before") {
			t.Errorf("the error page says %q, want it to name created_before", msg)
		}
	})
}

// Revoke all from a user's page: with JavaScript through the dialog, without through the
// confirmation page; both come back to the user's page with the notice and no active session.
func TestUserPageRevokeAll(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "with JavaScript", false: "without JavaScript"}[js]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			user := map[bool]string{true: "revoke_all_js", false: "revoke_all_nojs"}[js]
			seed(t, user, 2)
			var ctx context.Context
			if js {
				ctx = newTab(t)
			} else {
				ctx = newNoJSTab(t)
			}
			signIn(t, ctx)
			navigate(t, ctx, "/users/"+user)
			if got := get(t, ctx, "active count", chromedp.TextContent(byTestID("count-active"))); got != "2" {
				t.Fatalf("the user page counts %q active sessions, want 2", got)
			}
			if js {
				openConfirmation(t, ctx, byTestID("user-revoke-all"))
				navClick(t, ctx, "confirm", chromedp.CSS(`#confirm-dialog [data-testid="confirm-revoke"]`))
			} else {
				if st := navClick(t, ctx, "ask to revoke all", byTestID("user-revoke-all")); st != http.StatusOK {
					t.Fatalf("the confirmation page: HTTP %d", st)
				}
				navClick(t, ctx, "confirm", byTestID("confirm-revoke"))
			}
			if p := location(t, ctx).Path; p != "/users/"+user {
				t.Errorf("after revoking all the page is %s, want the user's page", p)
			}
			if msg := get(t, ctx, "the notice", chromedp.TextContent(byTestID("notice"))); !strings.Contains(msg, "Revoked") {
				t.Errorf("the notice says %q", msg)
			}
			if got := get(t, ctx, "active count", chromedp.TextContent(byTestID("count-active"))); got != "0" {
				t.Errorf("after revoking all the user page counts %q active sessions", got)
			}
			if n := sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`' AND "revokedAt" IS NULL`); n != "0" {
				t.Errorf("%s sessions of %s left unrevoked", n, user)
			}
		})
	}
}
