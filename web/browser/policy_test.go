package browser

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// longSession mints a session for user past the browser console's --policy-max-lifetime
// (5000h) and returns its ID.
func longSession(t *testing.T, user string) string {
	t.Helper()
	out := cli(t, "--max-expire-after", "9000h", "auth-session", "login", user, "--expire-after", "6000h", "--format", "tsv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("login output %q", out)
	}
	return strings.Split(lines[1], "\t")[1]
}

// With JavaScript: tick rows, the bar counts them, revoke the selection in the dialog (the
// table and the notice come back in place); then "all on this page" and "all N matching".
func TestBulkRevokeWithJavaScript(t *testing.T) {
	t.Parallel()
	const user = "bulk_js"
	seed(t, user, 4)
	ctx := newTab(t)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/sessions?user="+user)
	waitSettled(t, ctx)
	ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => r.dataset.sessionId)`)
	if len(ids) != 4 {
		t.Fatalf("rows %v, want 4", ids)
	}
	do(t, ctx, "tick two rows",
		chromedp.Click(chromedp.CSS(`tr[data-session-id="`+ids[0]+`"] [data-testid="row-select"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-session-id="`+ids[1]+`"] [data-testid="row-select"]`)))
	if got := get(t, ctx, "read the selection count", chromedp.TextContent(byTestID("bulk-count"))); got != "2 selected" {
		t.Errorf("bulk-count %q, want 2 selected", got)
	}
	if ind := eval[bool](t, ctx, `document.getElementById("select-page").indeterminate`); !ind {
		t.Error(`"all on this page" is not shown as partly selected`)
	}
	shots(t, ctx, "bulk-selected")
	openConfirmation(t, ctx, byTestID("bulk-selected"))
	msg := get(t, ctx, "read the confirmation", chromedp.TextContent(byTestID("confirm-message")))
	if !strings.Contains(msg, "The 2 selected sessions stop working at once") {
		t.Errorf("confirmation %q", msg)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="confirm-sample"] li').length`); n != 2 {
		t.Errorf("the confirmation names %d sessions, want 2", n)
	}
	shots(t, ctx, "bulk-confirm")
	do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the notice", `window.__notices.includes("Revoked 2 sessions (2 were active).")`)
	waitSettled(t, ctx)
	if p := eval[string](t, ctx, `location.pathname`); p != "/sessions" {
		t.Errorf("the page moved to %s", p)
	}
	left := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => r.dataset.sessionId)`)
	if len(left) != 2 || left[0] == ids[0] || left[1] == ids[1] {
		t.Errorf("active rows after revoking two: %v (had %v)", left, ids)
	}

	// "All on this page" ticks every row's box.
	do(t, ctx, "tick all on this page", chromedp.Click(byTestID("select-page")))
	if n := eval[int](t, ctx, `document.querySelectorAll('#results input[name="id"]:checked').length`); n != 2 {
		t.Errorf("%d rows ticked by all-on-this-page, want 2", n)
	}
	do(t, ctx, "untick all", chromedp.Click(byTestID("select-page")))
	openConfirmation(t, ctx, byTestID("bulk-all"))
	if title := get(t, ctx, "read the title", chromedp.TextContent(chromedp.CSS("#confirm-dialog h2"))); title != "Revoke all 2 sessions matching this filter?" {
		t.Errorf("title %q", title)
	}
	do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the notice", `window.__notices.includes("Revoked 2 sessions (2 were active).") && document.querySelectorAll('[data-testid="session-row"]').length === 0`)
	if n := sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`' AND "revokedAt" IS NULL`); n != "0" {
		t.Errorf("%s sessions of %s not revoked", n, user)
	}
	if n := sqlValue(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke' AND detail LIKE 'web: all matching user=`+user+`%' AND count = 2`); n != "1" {
		t.Errorf("%s audit rows for the all-matching revoke", n)
	}
}

// Without JavaScript the sessions list is a plain form of checkboxes: the selection and "all
// matching" each go through a confirmation page and come back to the view with the notice.
func TestBulkRevokeWithoutJavaScript(t *testing.T) {
	t.Parallel()
	const user = "bulk_nojs"
	seed(t, user, 3)
	ctx := newNoJSTab(t)
	signIn(t, ctx)
	navigate(t, ctx, "/sessions?user="+user)
	ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => r.dataset.sessionId)`)
	if len(ids) != 3 {
		t.Fatalf("rows %v", ids)
	}
	if a := get(t, ctx, "read the select-all box", chromedp.AttributeValue(byTestID("select-page"), "hidden")); !a.Exists {
		t.Error(`the JavaScript-only "all on this page" box is shown without JavaScript`)
	}
	do(t, ctx, "tick one row", chromedp.Click(chromedp.CSS(`tr[data-session-id="`+ids[2]+`"] [data-testid="row-select"]`)))
	if st := navClick(t, ctx, "revoke selected", byTestID("bulk-selected")); st != http.StatusOK {
		t.Fatalf("the confirmation page: HTTP %d", st)
	}
	if msg := get(t, ctx, "read the confirmation", chromedp.TextContent(byTestID("confirm-message"))); !strings.Contains(msg, "The 1 selected session stop") && !strings.Contains(msg, "1 selected session") {
		t.Errorf("confirmation %q", msg)
	}
	if st := navClick(t, ctx, "confirm", byTestID("confirm-revoke")); st != http.StatusOK {
		t.Fatalf("after confirming: HTTP %d", st)
	}
	if got := location(t, ctx); got.Path != "/sessions" || got.Query().Get("user") != user {
		t.Errorf("after revoking, the page is %s", got.RequestURI())
	}
	if n := get(t, ctx, "read the notice", chromedp.TextContent(byTestID("notice"))); n != "Revoked 1 session (1 was active)." {
		t.Errorf("notice %q", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-row"]').length`); n != 2 {
		t.Errorf("%d rows left, want 2", n)
	}
	// All on this page: the page's rows, without ticking any.
	if st := navClick(t, ctx, "revoke all on this page", byTestID("bulk-page")); st != http.StatusOK {
		t.Fatalf("the confirmation page: HTTP %d", st)
	}
	if title := get(t, ctx, "read the title", chromedp.TextContent(chromedp.CSS("#confirm-title"))); title != "Revoke 2 selected sessions?" {
		t.Errorf("title %q", title)
	}
	navClick(t, ctx, "cancel", byTestID("confirm-cancel"))
	if st := navClick(t, ctx, "revoke all matching", byTestID("bulk-all")); st != http.StatusOK {
		t.Fatalf("the confirmation page: HTTP %d", st)
	}
	if st := navClick(t, ctx, "confirm", byTestID("confirm-revoke")); st != http.StatusOK {
		t.Fatalf("after confirming: HTTP %d", st)
	}
	if n := get(t, ctx, "read the notice", chromedp.TextContent(byTestID("notice"))); n != "Revoked 2 sessions (2 were active)." {
		t.Errorf("notice %q", n)
	}
	if n := sqlValue(t, `SELECT count(*) FROM console.web_sessions WHERE username = '`+user+`' AND "revokedAt" IS NULL`); n != "0" {
		t.Errorf("%s sessions of %s not revoked", n, user)
	}
}

// The policy page counts the sessions breaking each rule (data-rule), names the first, links
// to exactly those in the sessions list, and revokes them all through the confirmation.
func TestPolicyPageInTheBrowser(t *testing.T) {
	t.Parallel()
	const user = "policy_long"
	seed(t, user, 1)
	long := longSession(t, user)
	ctx := newTab(t)
	signIn(t, ctx)
	// The counts are the policy's cached ones (reused for CountsMaxAge, refreshed behind the
	// page, also by the metrics job): the long session, written straight to the table, is
	// counted within that age. Reload until it is, for at most a minute.
	var count string
	for range 60 {
		navigate(t, ctx, "/policy")
		if count = get(t, ctx, "read the max-lifetime count", chromedp.TextContent(chromedp.CSS(`[data-rule="max-lifetime"]`))); count != "0" && count != "" {
			break
		}
		time.Sleep(time.Second)
	}
	if count == "0" || count == "" {
		t.Errorf("max-lifetime count %q, want the long session counted", count)
	}
	if ok := eval[bool](t, ctx, `!!document.querySelector('[data-testid="rule-max-lifetime"] [data-session-id="`+long+`"] a[href="/sessions/`+long+`"]')`); !ok {
		t.Error("the long session is not among the rule's sessions, linked to its page")
	}
	if v := get(t, ctx, "read the idle rule", chromedp.AttributeValue(byTestID("rule-idle"), "data-enabled")); v.Value != "false" {
		t.Errorf("idle is %q, want off", v.Value)
	}
	shots(t, ctx, "policy")
	if st := navClick(t, ctx, "show the sessions", chromedp.CSS(`[data-testid="rule-max-lifetime"] [data-testid="rule-list"]`)); st != http.StatusOK {
		t.Fatalf("the rule's list: HTTP %d", st)
	}
	if got := location(t, ctx).RequestURI(); got != "/sessions?rule=max-lifetime" {
		t.Errorf("the rule's list is at %s", got)
	}
	waitSettled(t, ctx)
	listed := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).map(r => r.dataset.sessionId)`)
	if !contains(listed, long) {
		t.Errorf("rule list %v lacks %s", listed, long)
	}
	if href := get(t, ctx, "read the export link", chromedp.AttributeValue(byTestID("export-csv"), "href")); href.Value != "/sessions.csv?rule=max-lifetime" {
		t.Errorf("export link %q", href.Value)
	}
	navigate(t, ctx, "/policy")
	if st := navClick(t, ctx, "revoke all", chromedp.CSS(`[data-testid="rule-max-lifetime"] [data-testid="rule-revoke"]`)); st != http.StatusOK {
		t.Fatalf("the confirmation: HTTP %d", st)
	}
	title := get(t, ctx, "read the title", chromedp.TextContent(chromedp.CSS("#confirm-title")))
	if !strings.Contains(title, "breaking the policy rule max-lifetime") {
		t.Errorf("title %q", title)
	}
	shots(t, ctx, "policy-confirm")
	if st := navClick(t, ctx, "confirm", byTestID("confirm-revoke")); st != http.StatusOK {
		t.Fatalf("after confirming: HTTP %d", st)
	}
	if got := location(t, ctx).RequestURI(); got != "/sessions?rule=max-lifetime" {
		t.Errorf("after revoking all, the page is %s", got)
	}
	if n := get(t, ctx, "read the notice", chromedp.TextContent(byTestID("notice"))); !strings.HasPrefix(n, "Revoked ") {
		t.Errorf("notice %q", n)
	}
	if st := sqlValue(t, `SELECT "revokedAt" IS NOT NULL FROM console.web_sessions WHERE id = `+long); st != "t" && st != "true" {
		t.Errorf("the long session is not revoked (%s)", st)
	}
	navigate(t, ctx, "/policy")
	if c := get(t, ctx, "read the count", chromedp.TextContent(chromedp.CSS(`[data-rule="max-lifetime"]`))); c != "0" {
		t.Errorf("max-lifetime count after revoking all: %q", c)
	}
}

// walkPolicyStates checks the policy page and the bulk confirmation of more than 100 sessions
// (the count to type) with axe-core, and photographs them.
func walkPolicyStates(t *testing.T, width int64, scheme string) {
	user := fmt.Sprintf("a11y_pol_%d_%s", width, scheme)
	seed(t, user, 0)
	cli(t, "sql", "-e", `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', '`+user+`', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 101)`)
	ctx := a11yTab(t, 2*testTimeout, width, scheme)
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/policy")
	checkState(t, ctx, "policy", width, scheme)
	navigate(t, ctx, "/sessions?user="+user)
	waitSettled(t, ctx)
	do(t, ctx, "tick a row", chromedp.Click(chromedp.CSS(`[data-testid="row-select"]`)))
	checkState(t, ctx, "sessions-bulk-selected", width, scheme)
	openConfirmation(t, ctx, byTestID("bulk-all"))
	if label := get(t, ctx, "read the count to type", chromedp.TextContent(chromedp.CSS(`label[for="confirm-name"]`))); label != "Type 101 to confirm" {
		t.Errorf("label %q", label)
	}
	checkState(t, ctx, "dialog-bulk-all", width, scheme)
	do(t, ctx, "cancel", chromedp.Click(byTestID("confirm-cancel")))
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)
}
