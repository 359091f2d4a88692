package browser

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axe-core, vendored from npm into testdata (version and checksum in testdata/VERSIONS; `make
// axe-update` refreshes both).
var axe struct {
	once sync.Once
	src  string
	err  error
}

// axeSource returns axe.min.js once its sha256 matches the one testdata/VERSIONS records.
func axeSource(t *testing.T) string {
	t.Helper()
	axe.once.Do(func() {
		body, err := os.ReadFile("testdata/axe.min.js")
		if err != nil {
			axe.err = err
			return
		}
		want := ""
		f, err := os.Open("testdata/VERSIONS")
		if err != nil {
			axe.err = err
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "sha256" {
				want = fields[1]
			}
		}
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); want == "" || got != want {
			axe.err = fmt.Errorf("testdata/axe.min.js has sha256 %s, testdata/VERSIONS says %q: run `make axe-update`", got, want)
			return
		}
		axe.src = string(body)
	})
	if axe.err != nil {
		t.Fatal(axe.err)
	}
	return axe.src
}

// axeViolation is one failed rule of an axe run, with the elements it failed on.
type axeViolation struct {
	ID    string `json:"id"`
	Help  string `json:"help"`
	Nodes []struct {
		Target  []string `json:"target"`
		Summary string   `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAxe runs axe-core on the page as it is (every rule that axe runs by default: WCAG 2.x A
// and AA, and its best practices) and fails the test on any violation. It is evaluated through
// the DevTools protocol, so the page's Content-Security-Policy and a tab without JavaScript
// do not stop it.
func checkAxe(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	for _, v := range axeViolations(t, ctx) {
		var where []string
		for i, n := range v.Nodes {
			if i == 3 {
				where = append(where, fmt.Sprintf("and %d more", len(v.Nodes)-3))
				break
			}
			where = append(where, strings.Join(n.Target, " ")+": "+strings.ReplaceAll(n.Summary, "\n", " "))
		}
		t.Errorf("%s: axe %s (%s) on\n\t%s", state, v.ID, v.Help, strings.Join(where, "\n\t"))
	}
}

// axeViolations runs axe-core on the page and returns what it found.
func axeViolations(t *testing.T, ctx context.Context) []axeViolation {
	t.Helper()
	src := axeSource(t)
	if !eval[bool](t, ctx, `typeof window.axe === "object"`) {
		get(t, ctx, "load axe-core", chromedp.Evaluate[chromedp.Void](src))
	}
	return get(t, ctx, "run axe-core", chromedp.Evaluate[[]axeViolation](
		`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`, chromedp.EvalAwaitPromise))
}

// The checker itself finds what it should: a page with an image without text and grey-on-grey
// text fails it.
func TestAxeFindsViolations(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	navigate(t, ctx, "/login")
	eval[chromedp.Void](t, ctx, `(() => { const m = document.querySelector("main");
		const i = document.createElement("img"); i.src = "data:image/gif;base64,R0lGODlhAQABAAAAACw="; m.append(i);
		const p = document.createElement("p"); p.textContent = "faint"; p.style.color = "#ccc"; p.style.background = "#ddd"; m.append(p); })()`)
	found := map[string]bool{}
	for _, v := range axeViolations(t, ctx) {
		found[v.ID] = true
	}
	for _, id := range []string{"image-alt", "color-contrast"} {
		if !found[id] {
			t.Errorf("axe did not report %s on a page made to fail it (found %v)", id, found)
		}
	}
}

// emulateScheme makes the tab prefer the light or the dark colour scheme.
func emulateScheme(t *testing.T, ctx context.Context, scheme string) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		t.Fatalf("emulate prefers-color-scheme: %s: %v", scheme, err)
	}
}

// Every page and state, at 1280 and 390 px, light and dark, passes axe-core; each is also
// written as a screenshot (SCREENSHOT_DIR).
func TestAccessibility(t *testing.T) {
	t.Parallel()
	ssoBase, _ := startSSOConsole(t) // for the single sign-on pages
	for _, width := range []int64{1280, 390} {
		for _, scheme := range []string{"light", "dark"} {
			t.Run(fmt.Sprintf("%d px %s", width, scheme), func(t *testing.T) {
				t.Parallel()
				walkStates(t, width, scheme)
				walkAdminStates(t, width, scheme)
				walkHistoryStates(t, width, scheme)
				walkPolicyStates(t, width, scheme)
				walkSSOStates(t, ssoBase, width, scheme)
			})
		}
	}
}

// a11yTab opens a tab of width px (900 px tall) preferring scheme, bounded by timeout.
func a11yTab(t *testing.T, timeout time.Duration, width int64, scheme string) context.Context {
	t.Helper()
	ctx := newTabFor(t, timeout)
	do(t, ctx, "set the viewport", chromedp.EmulateViewport(width, 900))
	emulateScheme(t, ctx, scheme)
	return ctx
}

// checkState waits for the tab to settle, checks it with axe-core and photographs it.
func checkState(t *testing.T, ctx context.Context, name string, width int64, scheme string) {
	t.Helper()
	waitSettled(t, ctx)
	checkAxe(t, ctx, name)
	screenshot(t, ctx, fmt.Sprintf("%s-%d-%s", name, width, scheme))
	checkWideTables(t, ctx, name)
}

// checkWideTables makes every table in a .table-wrap wider than the screen, as long names,
// addresses or user agents make it, so that each wrapper scrolls, and checks with axe-core that
// the keyboard reaches every such scrolling region, links in it or not. The widths are set
// through the CSSOM (the page's Content-Security-Policy allows that) and put back after.
func checkWideTables(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	n := eval[int](t, ctx, `(() => { const ts = document.querySelectorAll(".table-wrap > table");
		ts.forEach(e => e.style.minWidth = "3000px"); return ts.length; })()`)
	if n == 0 {
		return
	}
	axeSource(t)
	if !eval[bool](t, ctx, `typeof window.axe === "object"`) {
		get(t, ctx, "load axe-core", chromedp.Evaluate[chromedp.Void](axe.src))
	}
	vs := get(t, ctx, "run axe-core on the wide tables", chromedp.Evaluate[[]axeViolation](
		`axe.run(document, {runOnly: ["scrollable-region-focusable"], resultTypes: ["violations"]}).then(r => r.violations)`, chromedp.EvalAwaitPromise))
	eval[chromedp.Void](t, ctx, `document.querySelectorAll(".table-wrap > table").forEach(e => e.style.minWidth = "")`)
	for _, v := range vs {
		for _, nd := range v.Nodes {
			t.Errorf("%s, tables wider than the screen: axe %s (%s) on %s: %s", state, v.ID, v.Help,
				strings.Join(nd.Target, " "), strings.ReplaceAll(nd.Summary, "\n", " "))
		}
	}
}

func walkStates(t *testing.T, width int64, scheme string) {
	user := fmt.Sprintf("a11y_%d_%s", width, scheme)
	seed(t, user, 3)
	cli(t, "sql", "-e", `UPDATE console.web_sessions SET "expiresAt" = now() AT TIME ZONE 'UTC' - INTERVAL '5 minutes',
		"createdAt" = now() AT TIME ZONE 'UTC' - INTERVAL '2 hours' WHERE id = (SELECT min(id) FROM console.web_sessions WHERE username = '`+user+`')`)
	// A dozen states, each checked and photographed: more than one test's time.
	ctx := a11yTab(t, 4*testTimeout, width, scheme)
	state := func(name string) {
		t.Helper()
		checkState(t, ctx, name, width, scheme)
	}

	navigate(t, ctx, "/login")
	state("login")
	signIn(t, ctx)
	pauseAutoRefresh(t, ctx)
	state("sessions")

	navigate(t, ctx, "/sessions?status=all&user="+user)
	waitJS(t, ctx, "the user's sessions", `document.querySelectorAll('[data-testid="session-row"]').length === 3`)
	openConfirmation(t, ctx, chromedp.CSS(`tr[data-status="active"] [data-testid="revoke-session"]`))
	state("dialog-revoke-session")
	do(t, ctx, "confirm", chromedp.Click(byTestID("confirm-revoke")))
	waitJS(t, ctx, "the notice", `document.querySelector('[data-testid="notice"]') !== null`)
	state("sessions-filtered-notice")
	openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
	state("dialog-revoke-all")
	do(t, ctx, "cancel", chromedp.Click(byTestID("confirm-cancel")))
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)

	navigate(t, ctx, "/sessions?user="+user[:4])
	state("sessions-empty")

	many := user + "_many"
	seed(t, many, 0)
	cli(t, "sql", "-e", `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', '`+many+`', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 101)`)
	navigate(t, ctx, "/sessions?user="+many)
	openConfirmation(t, ctx, byTestID("revoke-filtered-user"))
	state("dialog-confirm-name")
	do(t, ctx, "cancel", chromedp.Click(byTestID("confirm-cancel")))
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)

	navigate(t, ctx, "/sessions")
	openIssuePanel(t, ctx)
	state("issue-open")
	fillIssueForm(t, ctx, "no_such_"+user, "", "1.5d")
	do(t, ctx, "submit the issue form", chromedp.Click(byTestID("issue-submit")))
	waitJS(t, ctx, "the field error", `document.querySelector('[data-testid="issue-expire-error"]') !== null`)
	state("issue-errors")
	issueWithJS(t, ctx, user, "15m", "")
	state("issue-result")

	// The same form sent twice, as a reload after a plain (not htmx) post does it.
	navigate(t, ctx, "/sessions")
	fillIssueForm(t, ctx, user, "1h", "")
	if _, err := chromedp.RunResponse(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="issue-form"]').submit()`)); err != nil {
		t.Fatalf("post the issue form: %v", err)
	}
	if resp, err := chromedp.RunResponse(ctx, chromedp.Reload()); err != nil || resp.Status != http.StatusConflict {
		t.Fatalf("reload after issuing: %v, %v; want HTTP 409", resp, err)
	}
	state("issue-repeated")

	if st := navigate(t, ctx, "/users/"+user+"/revoke"); st != http.StatusOK {
		t.Fatalf("the confirmation page: HTTP %d", st)
	}
	state("confirm-page")
	navigate(t, ctx, "/audit")
	state("audit")
	navigate(t, ctx, "/no/such/page")
	state("not-found")
}

// walkAdminStates checks the owner's pages: admins, a one-time password and a set-password
// link, the removal confirmation (dialog and page), the account page, the set-password page,
// and the account page of a first sign-in with a one-time password.
func walkAdminStates(t *testing.T, width int64, scheme string) {
	ctx := a11yTab(t, 3*testTimeout, width, scheme)
	state := func(name string) {
		t.Helper()
		checkState(t, ctx, name, width, scheme)
	}
	signIn(t, ctx)
	navigate(t, ctx, "/admins")
	state("admins")
	admin := fmt.Sprintf("a11y_admin_%d_%s", width, scheme)
	addAdminByForm(t, ctx, admin, "operator", "password")
	otp := get(t, ctx, "read the one-time password", chromedp.TextContent(byTestID("one-time-secret")))
	state("admins-one-time-password")
	openConfirmation(t, ctx, rowSel(admin, `[data-testid="remove-admin"]`))
	state("dialog-remove-admin")
	do(t, ctx, "cancel", chromedp.Click(byTestID("confirm-cancel")))
	waitJS(t, ctx, "the dialog to close", `!document.getElementById("confirm-dialog").open`)
	if st := navigate(t, ctx, "/admins/"+admin+"/remove"); st != http.StatusOK {
		t.Fatalf("the removal page: HTTP %d", st)
	}
	state("confirm-remove-admin")
	navigate(t, ctx, "/admins")
	addAdminByForm(t, ctx, admin+"_link", "", "link")
	link := get(t, ctx, "read the link", chromedp.TextContent(byTestID("one-time-link")))
	state("admins-set-password-link")
	navigate(t, ctx, "/account")
	state("account")
	navigate(t, ctx, link)
	waitJS(t, ctx, "the code in the form", `document.querySelector('[data-link-code]').value !== ""`)
	state("set-password")
	navigate(t, ctx, "/set-password")
	state("set-password-no-code")
	// A one-time password's first sign-in: the account page asks for a new password.
	navigate(t, ctx, "/account")
	navClick(t, ctx, "sign out", byTestID("sign-out"))
	if path := signInAs(t, ctx, srv.baseURL, admin, otp); path != "/account" {
		t.Fatalf("a one-time password's sign-in ends on %s, want /account", path)
	}
	state("account-must-change")

	// A viewer's sessions page and a user's view: no issue or revoke controls.
	viewer := admin + "_viewer"
	cliInput(t, "a viewer's password\n", "admin", "add", viewer, "--role", "viewer")
	ctx = a11yTab(t, testTimeout, width, scheme)
	if path := signInAs(t, ctx, srv.baseURL, viewer, "a viewer's password"); path != "/overview" {
		t.Fatalf("the viewer's sign-in ends on %s", path)
	}
	pauseAutoRefresh(t, ctx)
	navigate(t, ctx, "/sessions?status=all&user="+fmt.Sprintf("a11y_%d_%s", width, scheme))
	state("sessions-viewer-user")
}

// walkSSOStates checks the single sign-on console's pages: the sign-in page with both ways in,
// a person the role mapping refuses, and a callback with a forged state.
func walkSSOStates(t *testing.T, base string, width int64, scheme string) {
	ctx := a11yTab(t, 2*testTimeout, width, scheme)
	navigate(t, ctx, base+"/login")
	checkState(t, ctx, "login-sso", width, scheme)
	ssoSignIn(t, ctx, base, "rita", "rita-pw")
	do(t, ctx, "see the refusal", chromedp.WaitVisible(byTestID("sso-problem")))
	checkState(t, ctx, "sso-refused", width, scheme)
	navigate(t, ctx, base+"/login/oidc")
	do(t, ctx, "wait for the provider's page", chromedp.WaitVisible(chromedp.ID("username")))
	if st := navigate(t, ctx, base+"/login/oidc/callback?state=forged-state&code=forged-code"); st != http.StatusBadRequest {
		t.Fatalf("a forged state: HTTP %d, want 400", st)
	}
	checkState(t, ctx, "sso-not-completed", width, scheme)
}
