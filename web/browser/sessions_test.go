package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// row is a sessions table row as its data attributes describe it.
type row struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Status string `json:"status"`
}

const rowsJS = `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => ({id: r.dataset.sessionId, user: r.dataset.username, status: r.dataset.status}))`

func rows(t *testing.T, ctx context.Context) []row {
	t.Helper()
	return eval[[]row](t, ctx, rowsJS)
}

// allRowsJS is true when the table has n rows, all of user (and of status, when set).
func allRowsJS(user string, n int, status string) string {
	cond := `r.dataset.username === ` + jsString(user)
	if status != "" {
		cond += ` && r.dataset.status === ` + jsString(status)
	}
	return fmt.Sprintf(`(() => { const rs = Array.from(document.querySelectorAll('[data-testid="session-row"]'));
		return rs.length === %d && rs.every(r => %s); })()`, n, cond)
}

// locationUserJS is true when the address bar's user parameter is user.
func locationUserJS(user string) string {
	return `new URLSearchParams(location.search).get("user") === ` + jsString(user)
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	t.Run("printed credentials", func(t *testing.T) {
		t.Parallel()
		ctx := newTab(t)
		signInHere(t, ctx)
		loc := get(t, ctx, "read the location", chromedp.Location())
		if u, _ := url.Parse(loc); u == nil || u.Path != "/overview" {
			t.Errorf("after sign-in the page is %s, want /overview (the landing page)", loc)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		ctx := newTab(t)
		navigate(t, ctx, "/login")
		do(t, ctx, "wait for the sign-in form", chromedp.WaitVisible(byTestID("sign-in")))
		screenshot(t, ctx, "login")
		do(t, ctx, "fill in a wrong password",
			chromedp.SendKeys(chromedp.ID("login-username"), "admin"),
			chromedp.SendKeys(chromedp.ID("login-password"), srv.password+"-wrong"))
		if st := navClick(t, ctx, "sign in", byTestID("sign-in")); st != http.StatusUnauthorized {
			t.Errorf("wrong password: HTTP %d, want 401", st)
		}
		do(t, ctx, "wait for the sign-in error", chromedp.WaitVisible(byTestID("login-error")))
		msg := get(t, ctx, "read the sign-in error", chromedp.TextContent(byTestID("login-error")))
		if !strings.Contains(msg, "Wrong admin name or password") {
			t.Errorf("login-error = %q, want it to say the name or password is wrong", msg)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="admin-name"]').length`); n != 0 {
			t.Errorf("after a wrong password the page shows a signed-in admin")
		}
		if v := get(t, ctx, "read the name field", chromedp.Value(chromedp.ID("login-username"))); v != "admin" {
			t.Errorf("the name field holds %q after the failure, want it kept (admin)", v)
		}
	})
}

func TestFilterWithHTMX(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		user  string
		apply func(t *testing.T, ctx context.Context, user string)
	}{
		{"typing in the username field", "filter_typed", func(t *testing.T, ctx context.Context, user string) {
			do(t, ctx, "type the username", chromedp.SendKeys(byTestID("filter-user"), user))
		}},
		{"submitting the filter form", "filter_submitted", func(t *testing.T, ctx context.Context, user string) {
			do(t, ctx, "fill in and submit the filters",
				chromedp.SetValue(byTestID("filter-user"), user),
				chromedp.Click(byTestID("filter-apply")))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seed(t, tc.user, 2)
			seed(t, tc.user+"_other", 1)
			ctx := newTab(t)
			signIn(t, ctx)
			eval[int](t, ctx, `window.__marker = 1`)
			tc.apply(t, ctx, tc.user)
			waitJS(t, ctx, "the address to name the user", locationUserJS(tc.user))
			waitJS(t, ctx, "the table to show the user's 2 sessions only", allRowsJS(tc.user, 2, ""))
			if m := eval[int](t, ctx, `window.__marker || 0`); m != 1 {
				t.Errorf("the page reloaded while filtering (window.__marker is gone): want an htmx swap")
			}
			if got := get(t, ctx, "read the filter field", chromedp.Value(byTestID("filter-user"))); got != tc.user {
				t.Errorf("the username field holds %q, want %q", got, tc.user)
			}
			for _, r := range rows(t, ctx) {
				if r.User != tc.user {
					t.Errorf("row %s is of %q, want only %q", r.ID, r.User, tc.user)
				}
			}
		})
	}
}

func TestRevokeAllWithConfirmation(t *testing.T) {
	t.Parallel()
	const user, other = "revoke_all", "revoke_all_kept"
	seed(t, user, 2)
	seed(t, other, 1)
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/sessions?status=all&user="+user)
	waitJS(t, ctx, "the user's 2 active sessions", allRowsJS(user, 2, "active"))

	openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
	msg := get(t, ctx, "read the confirmation", chromedp.TextContent(byTestID("confirm-message")))
	if !strings.Contains(msg, "This ends 2 active sessions of "+user) {
		t.Errorf("confirm-message = %q, want it to say it ends 2 active sessions of %s", msg, user)
	}
	screenshot(t, ctx, "confirm-dialog")

	do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the table to show the sessions revoked", allRowsJS(user, 2, "revoked"))
	waitJS(t, ctx, "a notice", `window.__notices.length > 0`)
	notice := eval[string](t, ctx, `window.__notices[0]`)
	if want := "Revoked 2 sessions of " + user + " (2 were active)."; notice != want {
		t.Errorf("notice = %q, want %q", notice, want)
	}
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)

	// The other user's session is untouched.
	kept := fetchSessions(t, ctx, other, "active")
	if len(kept) != 1 {
		t.Errorf("%s has %d active sessions after revoking %s's, want 1", other, len(kept), user)
	}
}

// openConfirmation clicks a revoke button of the table and waits for its confirmation dialog
// to open, ready for a click.
func openConfirmation(t *testing.T, ctx context.Context, button chromedp.CSS) {
	t.Helper()
	do(t, ctx, "click "+string(button), chromedp.Click(button))
	waitJS(t, ctx, "the confirmation dialog to open", `document.getElementById("confirm-dialog").open`)
	waitSettled(t, ctx)
}

// fetchSessions reads /sessions.json for user and status from the page (with its cookies).
func fetchSessions(t *testing.T, ctx context.Context, user, status string) []map[string]string {
	t.Helper()
	q := url.Values{"user": {user}, "status": {status}}
	expr := `fetch("/sessions.json?` + q.Encode() + `").then(r => r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)))`
	return get(t, ctx, "fetch "+expr, chromedp.Evaluate[[]map[string]string](expr, chromedp.EvalAwaitPromise))
}

// issuedSession is what the issue result panel shows.
type issuedSession struct {
	User    string `json:"user"`
	ID      string `json:"id"`
	Cookie  string `json:"cookie"`
	Expires string `json:"expires"` // <time datetime>
	Text    string `json:"text"`
}

var setCookieLine = regexp.MustCompile(`^session=([A-Za-z0-9+/]+={0,2}); Path=/; HttpOnly; Secure$`)

// cookieValue returns the value of a printed `session=VALUE; Path=/; HttpOnly; Secure` line.
func cookieValue(t *testing.T, line string) string {
	t.Helper()
	m := setCookieLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("issued cookie %q is not `session=<base64>; Path=/; HttpOnly; Secure`", line)
	}
	return m[1]
}

// issueWithJS issues a session for user from the issue form (htmx): expire is a preset value
// ("8h") or, with custom set, the custom duration. It waits for the result panel of user.
func issueWithJS(t *testing.T, ctx context.Context, user, preset, custom string) issuedSession {
	t.Helper()
	fillIssueForm(t, ctx, user, preset, custom)
	do(t, ctx, "submit the issue form", chromedp.Click(byTestID("issue-submit")))
	waitJS(t, ctx, "the issue result for "+user,
		`(document.querySelector('[data-testid="issued-username"]') || {}).textContent === `+jsString(user))
	waitSettled(t, ctx)
	return eval[issuedSession](t, ctx, `(() => { const r = document.querySelector('[data-testid="issue-result"]');
		return {user: r.querySelector('[data-testid="issued-username"]').textContent,
			id: r.querySelector('[data-testid="issued-session-id"]').textContent,
			cookie: r.querySelector('[data-testid="issued-cookie"]').textContent,
			expires: r.querySelector('time').getAttribute('datetime'),
			text: r.textContent}; })()`)
}

// openIssuePanel opens the "Issue a session" panel, as a click on its button does (with or
// without JavaScript: it is a <details>).
func openIssuePanel(t *testing.T, ctx context.Context) {
	t.Helper()
	if !eval[bool](t, ctx, `document.getElementById("issue").open`) {
		do(t, ctx, "open the issue panel", chromedp.Click(byTestID("issue-open")))
	}
	waitJS(t, ctx, "the issue panel to open", `document.getElementById("issue").open`)
	waitJS(t, ctx, "the issue form to show", `document.querySelector('[data-testid="issue-form"]').checkVisibility()`)
}

// fillIssueForm fills in the issue form (the page must run JavaScript).
func fillIssueForm(t *testing.T, ctx context.Context, user, preset, custom string) {
	t.Helper()
	openIssuePanel(t, ctx)
	setField(t, ctx, `[data-testid="issue-username"]`, "")
	typeInto(t, ctx, "fill in the username", "issue-username", user)
	if custom == "" {
		do(t, ctx, "choose the preset "+preset, chromedp.Click(byTestID("expire-"+preset)))
		return
	}
	do(t, ctx, "choose a custom expiry", chromedp.Click(byTestID("expire-custom")))
	setField(t, ctx, `[data-testid="expire-custom-input"]`, "")
	do(t, ctx, "type the custom expiry", chromedp.SendKeys(byTestID("expire-custom-input"), custom))
}

// tableTime parses a timestamp as the CLI and the exports print it (UTC).
func tableTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return v
}

func TestIssue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, user, preset, custom string
		want                       time.Duration
		shot                       string
	}{
		{name: "preset 8h", user: "issue_8h", preset: "8h", want: 8 * time.Hour},
		{name: "preset 15m", user: "issue_15m", preset: "15m", want: 15 * time.Minute},
		{name: "custom 4h30m", user: "issue_custom", custom: "4h30m", want: 4*time.Hour + 30*time.Minute, shot: "issue-result"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seed(t, tc.user, 0)
			ctx := newTab(t)
			signIn(t, ctx)
			is := issueWithJS(t, ctx, tc.user, tc.preset, tc.custom)
			cookieValue(t, is.Cookie)
			if !strings.Contains(is.Text, "Expires") {
				t.Errorf("issue-result does not say when the session expires: %q", is.Text)
			}
			if tc.shot != "" {
				screenshot(t, ctx, tc.shot)
			}
			got := fetchSessions(t, ctx, tc.user, "all")
			if len(got) != 1 || got[0]["session ID"] != is.ID {
				t.Fatalf("sessions.json for %s = %v, want the one issued session %s", tc.user, got, is.ID)
			}
			created, expires := tableTime(t, got[0]["created"]), tableTime(t, got[0]["expires"])
			if d := expires.Sub(created); d != tc.want {
				t.Errorf("expires - created = %s, want %s", d, tc.want)
			}
			shown, err := time.Parse(time.RFC3339Nano, is.Expires)
			if err != nil {
				t.Fatalf("issue-result expiry datetime %q: %v", is.Expires, err)
			}
			if !shown.Equal(expires) {
				t.Errorf("issue-result says it expires %s, the session table says %s", shown, expires)
			}
			// The form is ready for the next session: preset back to the default.
			if checked := eval[string](t, ctx, `document.querySelector('input[name="expire_after"]:checked').value`); checked != "1h" {
				t.Errorf("after issuing, the checked expiry is %q, want the default 1h", checked)
			}
		})
	}
}

// verify asks GET /auth/verify about a cookie value, as a header or as a cookie.
func verify(t *testing.T, value string, asCookie bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.baseURL+"/auth/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	if asCookie {
		req.Header.Set("Cookie", "session="+value)
	} else {
		req.Header.Set("X-Cockroach-API-Session", value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /auth/verify: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Auth-User")
}

func TestIssuedCookieVerifiesUntilRevoked(t *testing.T) {
	t.Parallel()
	const user = "verify_me"
	seed(t, user, 0)
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/sessions?user="+user)
	is := issueWithJS(t, ctx, user, "1h", "")
	value := cookieValue(t, is.Cookie)
	ways := []struct {
		name     string
		asCookie bool
	}{{"X-Cockroach-API-Session header", false}, {"Cookie header", true}}
	for _, w := range ways {
		if st, who := verify(t, value, w.asCookie); st != http.StatusOK || who != user {
			t.Errorf("before revoking, verify with the %s: HTTP %d, X-Auth-User %q; want 200 and %q", w.name, st, who, user)
		}
	}

	// The table picks the new session up (the issue triggers a refresh); revoke it there.
	rowSel := `tr[data-session-id="` + is.ID + `"]`
	waitJS(t, ctx, "the issued session's row", `document.querySelector(`+jsString(rowSel)+`) !== null`)
	waitSettled(t, ctx)
	openConfirmation(t, ctx, chromedp.CSS(rowSel+` [data-testid="revoke-session"]`))
	msg := get(t, ctx, "read the confirmation", chromedp.TextContent(byTestID("confirm-message")))
	if !strings.Contains(msg, "Session "+is.ID+" of "+user) {
		t.Errorf("confirm-message = %q, want it to name session %s of %s", msg, is.ID, user)
	}
	do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "a notice", `window.__notices.length > 0`)
	if notice, want := eval[string](t, ctx, `window.__notices[0]`), "Revoked session "+is.ID+" of "+user+"."; notice != want {
		t.Errorf("notice = %q, want %q", notice, want)
	}
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)
	// The view is status=active (the default): the revoked session leaves the table.
	waitJS(t, ctx, "the revoked session to leave the active view", `document.querySelector(`+jsString(rowSel)+`) === null`)
	for _, w := range ways {
		if st, _ := verify(t, value, w.asCookie); st != http.StatusUnauthorized {
			t.Errorf("after revoking, verify with the %s: HTTP %d, want 401", w.name, st)
		}
	}
}

func TestBackButtonRestoresFilter(t *testing.T) {
	t.Parallel()
	const a, b = "back_a", "back_b"
	seed(t, a, 1)
	seed(t, b, 2)
	ctx := newTab(t)
	signIn(t, ctx)
	eval[int](t, ctx, `window.__marker = 1`)
	// As a person does it: type a name (input events), click Apply (the field's change
	// event, then the form's submit).
	for _, f := range []struct {
		user string
		n    int
	}{{a, 1}, {b, 2}} {
		do(t, ctx, "filter by "+f.user,
			chromedp.SetValue(byTestID("filter-user"), f.user),
			chromedp.Click(byTestID("filter-apply")))
		waitJS(t, ctx, "the address to name "+f.user, locationUserJS(f.user))
		waitJS(t, ctx, "the table to show "+f.user, allRowsJS(f.user, f.n, ""))
		waitSettled(t, ctx)
	}
	if m := eval[int](t, ctx, `window.__marker || 0`); m != 1 {
		t.Fatalf("the page reloaded while filtering: want htmx swaps")
	}
	// Each filter change adds one entry to the history: /sessions, then A, then B.
	history := get(t, ctx, "read the history", chromedp.NavigationEntries())
	var urls []string
	for _, e := range history.Entries[:history.CurrentIndex+1] {
		urls = append(urls, strings.TrimPrefix(e.URL, srv.baseURL))
	}
	dups := 0
	for i := 1; i < len(urls); i++ {
		if urls[i] == urls[i-1] {
			dups++
		}
	}
	if dups > 0 {
		t.Errorf("filtering by %s then %s left %d duplicate history entries, so Back needs several presses; "+
			"the history is (oldest first):\n\t%s", a, b, dups, strings.Join(urls, "\n\t"))
	}

	do(t, ctx, "go back", chromedp.NavigateBack())
	if err := pollJS(ctx, locationUserJS(a)); err != nil {
		loc := get(t, ctx, "read the location", chromedp.Location())
		t.Fatalf("one Back press after filtering by %s then %s leaves the page at %s, want the %s view (%v)",
			a, b, strings.TrimPrefix(loc, srv.baseURL), a, err)
	}
	waitJS(t, ctx, "the table to show "+a+" again", allRowsJS(a, 1, ""))
	waitJS(t, ctx, "the username field to hold "+a+" again",
		`document.getElementById("f-user").value === `+jsString(a))
}

func TestIssueErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		user           string
		exists         bool
		preset, custom string
		userErr        string // want in issue-username-error ("" : none)
		expireErr      string // want in issue-expire-error ("" : none)
	}{
		{name: "user that does not exist", user: "nosuch", preset: "1h", userErr: `user "nosuch" does not exist`},
		{name: "fraction of a day", user: "issue_err_days", exists: true, custom: "1.5d", expireErr: `invalid duration "1.5d"`},
		{name: "longer than the maximum", user: "issue_err_max", exists: true, custom: "800h", expireErr: "longer than the maximum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.exists {
				seed(t, tc.user, 0)
			}
			ctx := newTab(t)
			signIn(t, ctx)
			fillIssueForm(t, ctx, tc.user, tc.preset, tc.custom)
			do(t, ctx, "submit the issue form", chromedp.Click(byTestID("issue-submit")))
			waitJS(t, ctx, "a field error", `document.querySelector('[data-testid="issue-username-error"], [data-testid="issue-expire-error"]') !== null`)
			for _, f := range []struct{ id, want string }{
				{"issue-username-error", tc.userErr}, {"issue-expire-error", tc.expireErr},
			} {
				got := eval[*string](t, ctx, `(document.querySelector('[data-testid="`+f.id+`"]') || {}).textContent || null`)
				switch {
				case f.want == "" && got != nil:
					t.Errorf("%s = %q, want none", f.id, *got)
				case f.want != "" && got == nil:
					t.Errorf("no %s, want one saying %q", f.id, f.want)
				case f.want != "" && !strings.Contains(*got, f.want):
					t.Errorf("%s = %q, want it to say %q", f.id, *got, f.want)
				}
			}
			if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="issued-cookie"]').length`); n != 0 {
				t.Errorf("a cookie is shown after a failed issue")
			}
			// The form keeps what was typed.
			if v := get(t, ctx, "read the username field", chromedp.Value(byTestID("issue-username"))); v != tc.user {
				t.Errorf("username field = %q after the error, want %q kept", v, tc.user)
			}
			if tc.custom != "" {
				if v := get(t, ctx, "read the custom expiry", chromedp.Value(byTestID("expire-custom-input"))); v != tc.custom {
					t.Errorf("custom expiry field = %q after the error, want %q kept", v, tc.custom)
				}
			}
		})
	}
}

// jsOnlyShownJS is true when the element exists and is not hidden.
func jsOnlyShownJS(css string) string {
	return `(() => { const e = document.querySelector(` + jsString(css) + `); return e !== null && !e.hidden; })()`
}

// The controls that need JavaScript (.js-only, hidden in the HTML) are shown by app.js, also in
// content htmx swaps in (app.js may do it once the swap has settled, hence the waits).
func TestJSOnlyControlsAfterSwaps(t *testing.T) {
	t.Parallel()
	t.Run("pause button after a filter", func(t *testing.T) {
		t.Parallel()
		const user = "jsonly_filter"
		seed(t, user, 1)
		ctx := newTab(t)
		signIn(t, ctx)
		waitJS(t, ctx, "the pause button on a freshly loaded page", jsOnlyShownJS(`[data-testid="pause-refresh"]`))
		do(t, ctx, "filter", chromedp.SendKeys(byTestID("filter-user"), user))
		waitJS(t, ctx, "the table of "+user, allRowsJS(user, 1, ""))
		if err := pollJS(ctx, jsOnlyShownJS(`[data-testid="pause-refresh"]`)); err != nil {
			t.Errorf("after htmx swapped the filtered table in, the pause auto-refresh button stays hidden (%v)", err)
		}
	})
	t.Run("copy buttons of an issued cookie", func(t *testing.T) {
		t.Parallel()
		const user = "jsonly_copy"
		seed(t, user, 0)
		ctx := newTab(t)
		signIn(t, ctx)
		issueWithJS(t, ctx, user, "1h", "")
		var all []string
		for _, id := range []string{"issued-cookie", "issued-curl", "issued-header"} {
			all = append(all, jsOnlyShownJS(`[data-copy="`+id+`"]`))
		}
		if err := pollJS(ctx, strings.Join(all, " && ")); err != nil {
			hidden := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("[data-copy]")).filter(b => b.hidden).map(b => b.dataset.copy)`)
			t.Errorf("in the issue result, the Copy buttons of %v stay hidden (%v)", hidden, err)
		}
	})
}
