package browser

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// noMarkupJS is true when the page holds no <b> element: the templates use none, so one would
// come from a username rendered as HTML.
const noMarkupJS = `document.querySelector("b") === null`

func TestUsernamesAreText(t *testing.T) {
	t.Parallel()
	const user = `<b>x"'&</b>`
	seed(t, user, 1)
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)

	checkText := func(t *testing.T, where, css string) {
		t.Helper()
		got := eval[*string](t, ctx, `(document.querySelector(`+jsString(css)+`) || {}).textContent || null`)
		switch {
		case got == nil:
			t.Errorf("%s: no %s", where, css)
		case !strings.Contains(*got, user):
			t.Errorf("%s: %s = %q, want it to show %q as text", where, css, *got, user)
		}
		if !eval[bool](t, ctx, noMarkupJS) {
			t.Errorf("%s: the page has a <b> element: the username was rendered as HTML", where)
		}
	}

	t.Run("issue result", func(t *testing.T) {
		is := issueWithJS(t, ctx, user, "1h", "")
		if is.User != user {
			t.Errorf("issued-username = %q, want %q", is.User, user)
		}
		checkText(t, "issue result", `[data-testid="issue-result"] h3`)
		if st, who := verify(t, cookieValue(t, is.Cookie), false); st != http.StatusOK || who != user {
			t.Errorf("verify: HTTP %d, X-Auth-User %q; want 200 and %q", st, who, user)
		}
	})

	t.Run("table", func(t *testing.T) {
		navigate(t, ctx, "/sessions?"+url.Values{"user": {user}, "status": {"all"}}.Encode())
		waitJS(t, ctx, "the user's 2 active sessions", allRowsJS(user, 2, "active"))
		checkText(t, "table", `[data-testid="row-user"]`)
		checkText(t, "filtered user bar", `[data-testid="filtered-user"]`)
		if got := get(t, ctx, "read the filter field", chromedp.Value(byTestID("filter-user"))); got != user {
			t.Errorf("filter field = %q, want %q", got, user)
		}
	})

	t.Run("confirmation dialog and notice", func(t *testing.T) {
		openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
		checkText(t, "confirmation title", `#confirm-title`)
		checkText(t, "confirmation message", `[data-testid="confirm-message"]`)
		do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
		waitJS(t, ctx, "a notice", `window.__notices.length > 0`)
		if notice, want := eval[string](t, ctx, `window.__notices[0]`), "Revoked 2 sessions of "+user+" (2 were active)."; notice != want {
			t.Errorf("notice = %q, want %q", notice, want)
		}
		waitJS(t, ctx, "the sessions to show revoked", allRowsJS(user, 2, "revoked"))
		if !eval[bool](t, ctx, noMarkupJS) {
			t.Errorf("after revoking, the page has a <b> element: the username was rendered as HTML")
		}
	})

	t.Run("audit log", func(t *testing.T) {
		navigate(t, ctx, "/audit?"+url.Values{"target": {user}}.Encode())
		actions := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="audit-row"]')).map(r => r.dataset.action)`)
		if !strings.Contains(strings.Join(actions, " "), "issue") || !strings.Contains(strings.Join(actions, " "), "revoke-all") {
			t.Errorf("audit rows for the user: %v, want an issue and a revoke-all", actions)
		}
		checkText(t, "audit log", `[data-testid="audit-row"] td[data-label="Target"]`)
	})
}
