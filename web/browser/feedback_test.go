package browser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// adminSessionCache is serve's default --admin-session-cache: how long a checked admin session
// is trusted without asking the database.
const adminSessionCache = 2 * time.Second

// activeTestID is the data-testid (or id) of the focused element.
const activeTestID = `(document.activeElement && (document.activeElement.dataset.testid || document.activeElement.id)) || ""`

// An untouched tab's background refreshes do not keep the admin session alive: they leave its
// idle clock alone, and once it is idle past --idle-timeout (30m) the next refresh signs out.
func TestRefreshesDoNotKeepTheSessionAlive(t *testing.T) {
	t.Parallel()
	const admin, password = "idle_admin", "idle admin password"
	cliInput(t, password+"\n", "admin", "add", admin)
	ctx := newTab(t)
	if path := signInAs(t, ctx, srv.baseURL, admin, password); path != "/overview" {
		t.Fatalf("signed in as %s on %s, want /overview", admin, path)
	}
	navigate(t, ctx, "/sessions")
	idleSeconds := func() float64 {
		t.Helper()
		v := sqlValue(t, `SELECT extract(epoch FROM now() - last_seen) FROM console.admin_sessions WHERE admin = '`+admin+`'`)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("idle seconds %q: %v", v, err)
		}
		return f
	}
	cli(t, "sql", "-e", `UPDATE console.admin_sessions SET last_seen = now() - INTERVAL '20 minutes' WHERE admin = '`+admin+`'`)
	for i := range 2 {
		// Past --admin-session-cache, so that the refresh's check goes to the database (where an
		// activity would move last_seen), not to the process's cache.
		time.Sleep(adminSessionCache + 200*time.Millisecond)
		eval[chromedp.Void](t, ctx, `htmx.trigger(document.getElementById("results"), "refresh")`)
		waitJS(t, ctx, fmt.Sprintf("refresh %d", i+1), `window.__xhrPending.size === 0`)
		waitSettled(t, ctx)
	}
	if s := idleSeconds(); s < 20*60 {
		t.Fatalf("after two background refreshes the admin has been idle %.0fs, want the 20 minutes from before: refreshes counted as activity", s)
	}
	cli(t, "sql", "-e", `UPDATE console.admin_sessions SET last_seen = now() - INTERVAL '31 minutes' WHERE admin = '`+admin+`'`)
	// The next refresh that asks the database (a check is trusted for --admin-session-cache, 2s)
	// ends the session, and htmx goes to the sign-in page.
	for deadline := time.Now().Add(waitTimeout); location(t, ctx).Path != "/login"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("refreshes of an admin idle past the timeout did not sign out; the page is at %s", location(t, ctx))
		}
		// Errors are expected here: the page may be leaving for /login.
		chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const r = document.getElementById("results");
			if (r && window.__xhrPending.size === 0) htmx.trigger(r, "refresh"); })()`))
	}
	if n := sqlValue(t, `SELECT count(*) FROM console.admin_sessions WHERE admin = '`+admin+`'`); n != "0" {
		t.Errorf("%s admin sessions of %s left after the idle timeout", n, admin)
	}
}

// Without JavaScript, reloading the page that answered an issue (the browser posts the form
// again) issues nothing and says the cookie was already shown.
func TestReloadAfterIssuingWithoutJavaScript(t *testing.T) {
	t.Parallel()
	const user = "nojs_reload"
	seed(t, user, 0)
	ctx := newNoJSTab(t)
	signIn(t, ctx)
	openIssuePanel(t, ctx)
	typeInto(t, ctx, "type the username", "issue-username", user)
	if st := navClick(t, ctx, "issue", byTestID("issue-submit")); st != http.StatusOK {
		t.Fatalf("issuing: HTTP %d", st)
	}
	id := get(t, ctx, "read the session ID", chromedp.TextContent(byTestID("issued-session-id")))
	resp, err := chromedp.RunResponse(ctx, chromedp.Reload())
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if resp.Status != http.StatusConflict {
		t.Errorf("reloading the answer of an issue: HTTP %d, want 409", resp.Status)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="issued-cookie"]').length`); n != 0 {
		t.Errorf("the reloaded page shows a cookie")
	}
	msg := get(t, ctx, "read the repeated-form message", chromedp.TextContent(byTestID("issue-repeated")))
	if !strings.Contains(msg, "already shown") || !strings.Contains(msg, "session "+id) {
		t.Errorf("issue-repeated = %q, want it to say the cookie of session %s was already shown", msg, id)
	}
	if n := sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`'`); n != "1" {
		t.Errorf("%s sessions of %s after the reload, want 1", n, user)
	}
	// The result is dismissible: a plain link back to the view, which shows no cookie.
	do(t, ctx, "reload the view", chromedp.Navigate(srv.baseURL+"/sessions"))
	if o := eval[bool](t, ctx, `document.getElementById("issue").open`); o {
		t.Errorf("the issue panel is open on a plain visit of the page")
	}
}

// Without JavaScript the result panel's Dismiss is a plain link back to the view the admin
// issued from (its filters kept): the page it opens shows no cookie and a closed panel, and lists
// the new session; going there issues nothing.
func TestDismissIssueResultWithoutJavaScript(t *testing.T) {
	t.Parallel()
	const user = "nojs_dismiss"
	seed(t, user, 1)
	ctx := newNoJSTab(t)
	signIn(t, ctx)
	view := "/sessions?status=all&sort=expires&dir=asc&user=" + user
	navigate(t, ctx, view)
	openIssuePanel(t, ctx)
	typeInto(t, ctx, "type the username", "issue-username", user)
	if st := navClick(t, ctx, "issue", byTestID("issue-submit")); st != http.StatusOK {
		t.Fatalf("issuing: HTTP %d", st)
	}
	id := get(t, ctx, "read the session ID", chromedp.TextContent(byTestID("issued-session-id")))
	value := cookieValue(t, get(t, ctx, "read the cookie", chromedp.TextContent(byTestID("issued-cookie"))))

	if st := navClick(t, ctx, "dismiss the result", byTestID("issue-dismiss")); st != http.StatusOK {
		t.Fatalf("following Dismiss: HTTP %d, want 200", st)
	}
	got := location(t, ctx)
	want, _ := url.Parse(view)
	if got.Path != "/sessions" || got.Query().Encode() != want.Query().Encode() {
		t.Errorf("Dismiss leads to %s, want the view issued from, %s", got.RequestURI(), view)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="issue-result"], [data-testid="issued-cookie"], [data-testid="issue-repeated"]').length`); n != 0 {
		t.Errorf("after Dismiss the page still has %d parts of the result", n)
	}
	if body := eval[string](t, ctx, `document.documentElement.outerHTML`); strings.Contains(body, value) {
		t.Errorf("after Dismiss the page still holds the cookie")
	}
	if o := eval[bool](t, ctx, `document.getElementById("issue").open`); o {
		t.Errorf("after Dismiss the issue panel is open")
	}
	if !eval[bool](t, ctx, `document.querySelector('tr[data-session-id="`+id+`"]') !== null`) {
		t.Errorf("after Dismiss the view does not list the issued session %s: %v", id, rows(t, ctx))
	}
	if n := len(rows(t, ctx)); n != 2 {
		t.Errorf("after Dismiss the view lists %d sessions of %s, want 2 (the seeded one and the issued one)", n, user)
	}
	if n := sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`'`); n != "2" {
		t.Errorf("%s sessions of %s after Dismiss, want 2", n, user)
	}
}

// Sessions written by another process (CLI logins) while the page was open: the page's counts
// are never less than its rows.
func TestCountsAfterCLILogins(t *testing.T) {
	t.Parallel()
	const user = "counts_dave"
	seed(t, user, 0)
	ctx := newTab(t)
	signIn(t, ctx)
	navigate(t, ctx, "/sessions?user="+user)
	for range 5 {
		cli(t, "auth-session", "login", user, "--only-cookie")
	}
	navigate(t, ctx, "/sessions?user="+user)
	got := eval[map[string]string](t, ctx, `Object.fromEntries(Array.from(document.querySelectorAll("[data-count]")).map(e => [e.dataset.count, e.textContent]))`)
	rows := len(rows(t, ctx))
	for _, kind := range []string{"active", "all"} {
		if n, err := strconv.Atoi(got[kind]); err != nil || n < rows {
			t.Errorf("data-count=%q is %q with %d active rows shown", kind, got[kind], rows)
		}
	}
	if rows != 5 {
		t.Errorf("%d rows, want the 5 CLI logins", rows)
	}
}

// Busy states, where the notice goes and stays, where the focus goes, and the one status region.
func TestFeedback(t *testing.T) {
	t.Parallel()
	const user = "feedback_user"
	seed(t, user, 0)
	cli(t, "sql", "-e", `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', '`+user+`', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 60)`)
	ctx := newTab(t)
	do(t, ctx, "set the viewport", chromedp.EmulateViewport(1280, 700))
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)

	t.Run("one status region, not a live table", func(t *testing.T) {
		if n := eval[int](t, ctx, `document.querySelectorAll('[role="status"], [aria-live]').length`); n != 1 {
			t.Errorf("%d live regions, want the one status region", n)
		}
		if live := eval[bool](t, ctx, `document.getElementById("results").hasAttribute("aria-live")`); live {
			t.Errorf("the whole table is a live region")
		}
		do(t, ctx, "filter", chromedp.SendKeys(byTestID("filter-user"), user))
		waitJS(t, ctx, "the filtered table", allRowsJS(user, 50, ""))
		waitJS(t, ctx, "the announcement", `document.getElementById("announce").textContent.startsWith("Showing 50 of 60 active sessions of `+user+`")`)
		if b := eval[[]string](t, ctx, `window.__busy`); !contains(b, "results aria-busy") {
			t.Errorf("the table was never marked busy while it loaded (busy states seen: %v)", b)
		}
		if busy := eval[bool](t, ctx, `document.getElementById("results").getAttribute("aria-busy") === "true"`); busy {
			t.Errorf("the table stays busy after loading")
		}
	})

	t.Run("paging moves the focus to the table", func(t *testing.T) {
		// The focus is still in the username field: the press on Next blurs it. Pressed and
		// released as a person does, with time between them for whatever the press set off.
		slowClick(t, ctx, "next page", "next-page")
		waitJS(t, ctx, "page 2", allRowsJS(user, 10, ""))
		waitSettled(t, ctx)
		waitJS(t, ctx, "the focus on the table heading", activeTestID+` === "results-heading"`)
		if top := eval[float64](t, ctx, `document.getElementById("results-heading").getBoundingClientRect().top`); top < 0 || top > 700 {
			t.Errorf("after paging the table heading is at %.0f px, outside the viewport: the old scroll position was kept", top)
		}
		do(t, ctx, "first page", chromedp.Click(byTestID("first-page")))
		waitJS(t, ctx, "page 1", allRowsJS(user, 50, ""))
		waitSettled(t, ctx)
	})

	t.Run("a notice where the eye is, kept until dismissed", func(t *testing.T) {
		last := chromedp.CSS(`tr[data-testid="session-row"]:last-child [data-testid="revoke-session"]`)
		do(t, ctx, "scroll to the last row", chromedp.ScrollIntoView(last))
		openConfirmation(t, ctx, last)
		if got := eval[string](t, ctx, activeTestID); got != "confirm-cancel" {
			t.Errorf("the dialog focuses %q, want Cancel first", got)
		}
		do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
		waitJS(t, ctx, "the notice", `document.querySelector('[data-testid="notice"]') !== null`)
		waitSettled(t, ctx)
		r := eval[map[string]float64](t, ctx, `(() => { const b = document.querySelector('[data-testid="notice-box"]').getBoundingClientRect(); return {top: b.top, bottom: b.bottom, h: innerHeight}; })()`)
		if r["top"] < 0 || r["bottom"] > r["h"] {
			t.Errorf("after revoking far down the page the notice is at %v, outside the viewport", r)
		}
		waitJS(t, ctx, "the focus on the notice", activeTestID+` === "notice-box"`)
		eval[chromedp.Void](t, ctx, `htmx.trigger(document.getElementById("results"), "refresh")`)
		waitJS(t, ctx, "the refresh", `window.__xhrPending.size === 0`)
		waitSettled(t, ctx)
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="notice"]').length`); n != 1 {
			t.Errorf("after a refresh of the table the notice is gone")
		}
		do(t, ctx, "dismiss the notice", chromedp.Click(byTestID("notice-dismiss")))
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="notice"]').length`); n != 0 {
			t.Errorf("the notice stays after Dismiss")
		}
	})

	t.Run("issuing: busy button, focus on the result, dismissible", func(t *testing.T) {
		eval[chromedp.Void](t, ctx, `window.__busy = []`)
		fillIssueForm(t, ctx, "nobody_here", "1h", "")
		do(t, ctx, "submit", chromedp.Click(byTestID("issue-submit")))
		waitJS(t, ctx, "the field error", `document.querySelector('[data-testid="issue-username-error"]') !== null`)
		waitSettled(t, ctx)
		waitJS(t, ctx, "the focus on the invalid field", activeTestID+` === "issue-username"`)
		if b := eval[[]string](t, ctx, `window.__busy`); !contains(b, "issue-submit disabled") {
			t.Errorf("the issue button was never busy while it worked (busy states seen: %v)", b)
		}
		issueWithJS(t, ctx, user, "1h", "")
		waitJS(t, ctx, "the focus on the result", activeTestID+` === "issued-title"`)
		do(t, ctx, "dismiss the result", chromedp.Click(byTestID("issue-dismiss")))
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="issued-cookie"]').length`); n != 0 {
			t.Errorf("the cookie is still shown after Dismiss")
		}
		if o := eval[bool](t, ctx, `document.getElementById("issue").open`); o {
			t.Errorf("the issue panel is still open after Dismiss")
		}
		if got := eval[string](t, ctx, activeTestID); got != "issue-open" {
			t.Errorf("after Dismiss the focus is on %q, want the Issue a session button", got)
		}
	})
}

// slowClick clicks the element with data-testid id as a person does: the button goes down,
// the page finishes what the press set off (a blur's change event, its request and swap),
// then the button comes up. chromedp's Click sends both at once, which hides a page that
// re-renders the element under the pointer between the two: there the click is lost.
func slowClick(t *testing.T, ctx context.Context, what, id string) {
	t.Helper()
	c := eval[map[string]float64](t, ctx, `(() => { const e = document.querySelector('[data-testid="`+id+`"]');
		e.scrollIntoView({block: "center"}); const b = e.getBoundingClientRect();
		return {x: b.left + b.width / 2, y: b.top + b.height / 2}; })()`)
	do(t, ctx, what+": press", chromedp.MouseEvent(chromedp.MousePressed, c["x"], c["y"], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitSettled(t, ctx)
	do(t, ctx, what+": release", chromedp.MouseEvent(chromedp.MouseReleased, c["x"], c["y"], chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Confirmations: Enter on a fresh dialog cancels; a revoke-all of more than 100 active sessions
// asks for the username.
func TestConfirmationSafety(t *testing.T) {
	t.Parallel()
	const user = "many_sessions"
	seed(t, user, 0)
	cli(t, "sql", "-e", `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', '`+user+`', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 101)`)
	active := func() string {
		return sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`' AND "revokedAt" IS NULL`)
	}
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/sessions?user="+user)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="revoke-user"]').length`); n != 0 {
		t.Errorf("%d rows carry a revoke-all button, want none: one per user view", n)
	}
	openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
	if got := eval[string](t, ctx, activeTestID); got != "confirm-cancel" {
		t.Errorf("the dialog focuses %q, want Cancel first", got)
	}
	do(t, ctx, "press Enter", chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)
	waitSettled(t, ctx)
	if n := active(); n != "101" {
		t.Fatalf("Enter on the confirmation revoked sessions: %s of 101 left", n)
	}

	openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
	do(t, ctx, "type a wrong name and confirm",
		chromedp.SendKeys(byTestID("confirm-name"), "many_session"), chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the name error", `document.querySelector('[data-testid="confirm-name-error"]') !== null`)
	waitSettled(t, ctx)
	if !eval[bool](t, ctx, `document.getElementById("confirm-dialog").open`) {
		t.Fatalf("the dialog closed on a wrong name")
	}
	if n := active(); n != "101" {
		t.Fatalf("a wrong name revoked sessions: %s of 101 left", n)
	}
	setField(t, ctx, `[data-testid="confirm-name"]`, "")
	do(t, ctx, "type the name and confirm", chromedp.SendKeys(byTestID("confirm-name"), user), chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the notice", `document.querySelector('[data-testid="notice"]') !== null`)
	if n := active(); n != "0" {
		t.Errorf("%s sessions left after confirming with the name", n)
	}
}

var cellTime = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}` + "\u00a0" + `UTC$`)

// Texts: aligned times with a UTC mark, no NULL, a trimmed filter, rounded relative times.
func TestTableTexts(t *testing.T) {
	t.Parallel()
	const user = "texts_user"
	seed(t, user, 2)
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	do(t, ctx, "filter with space around", chromedp.SendKeys(byTestID("filter-user"), "  "+user+" "))
	waitJS(t, ctx, "the user's sessions", allRowsJS(user, 2, ""))
	times := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="sessions-table"] time')).map(e => e.textContent)`)
	if len(times) < 2*2 { // each row has at least its created and expires times
		t.Errorf("the table of 2 sessions has %d <time> cells, want at least 4: %q", len(times), times)
	}
	for _, s := range times {
		if !cellTime.MatchString(s) {
			t.Errorf("a time cell reads %q, want 2006-01-02 15:04:05.000000 UTC (six digits, UTC)", s)
		}
	}
	if text := eval[string](t, ctx, `document.querySelector('[data-testid="sessions-table"]').textContent`); strings.Contains(text, "NULL") {
		t.Errorf("the table shows a literal NULL")
	}
	is := issueWithJS(t, ctx, user, "15m", "")
	if !strings.Contains(is.Text, "in 15m") {
		t.Errorf("a fresh 15m session's result does not say \"in 15m\": %q", is.Text)
	}
}

// Every page names its icon, so the browser never asks for /favicon.ico (a 404 per page).
func TestFaviconIsNeverMissing(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	evCtx, stop := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		seen []string
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for ev, err := range chromedp.Events(evCtx, network.ResponseReceived) {
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%d %s", ev.Response.Status, strings.TrimPrefix(ev.Response.URL, srv.baseURL)))
			mu.Unlock()
		}
	}()
	signIn(t, ctx)
	navigate(t, ctx, "/audit")
	navigate(t, ctx, "/sessions")
	icon := iconPath(t)
	// The browser asks for the page's icon once a page has loaded: wait for that answer.
	loaded := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if s == "200 "+icon {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(waitTimeout); !loaded(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the browser never loaded the page's icon %s; it got: %v", icon, seen)
		}
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, "favicon.ico") || strings.HasPrefix(s, "404 ") {
			t.Errorf("the browser got %s", s)
		}
	}
}

var iconLink = regexp.MustCompile(`<link rel="icon" href="(/static/[^"]+)"`)

// iconPath is the icon the pages link (read from the sign-in page's HTML).
func iconPath(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(srv.baseURL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := iconLink.FindSubmatch(body)
	if m == nil {
		t.Fatalf("the sign-in page links no icon")
	}
	return string(m[1])
}
