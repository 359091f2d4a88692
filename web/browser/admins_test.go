package browser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// shots takes the page's screenshots at every view (1280 and 390 px, light and dark) as
// name-<width>-<scheme>, checking at each that the page does not scroll sideways; it leaves
// the tab at 1280 px, light.
func shots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for _, v := range views {
		setView(t, ctx, v.width, v.height, v.scheme)
		if sw := eval[int64](t, ctx, `document.documentElement.scrollWidth`); sw > v.width {
			wide := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.dataset.testid ? "[" + e.dataset.testid + "]" : "") + "." + e.className)`)
			t.Errorf("%s at %d px is %d px wide (it scrolls sideways); widest: %v", name, v.width, sw, wide)
		}
		screenshot(t, ctx, fmt.Sprintf("%s-%d-%s", name, v.width, v.scheme))
	}
	setView(t, ctx, 1280, 900, "light")
}

// signInAs signs the tab in at base (a console's URL) with a name and password and returns
// the path the sign-in ends on.
func signInAs(t *testing.T, ctx context.Context, base, name, password string) string {
	t.Helper()
	navigate(t, ctx, base+"/login")
	do(t, ctx, "fill in the sign-in form",
		chromedp.SendKeys(chromedp.ID("login-username"), name),
		chromedp.SendKeys(chromedp.ID("login-password"), password))
	if st := navClick(t, ctx, "sign in as "+name, byTestID("sign-in")); st != http.StatusOK {
		t.Fatalf("signing in as %s: HTTP %d, want 200", name, st)
	}
	return eval[string](t, ctx, `location.pathname`)
}

// addAdminByForm adds an admin through the add form of the /admins page the tab shows, with
// role ("": the form's default, viewer) and credential ("password" or "link").
func addAdminByForm(t *testing.T, ctx context.Context, name, role, credential string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.SendKeys(byTestID("add-name"), name)}
	if role != "" {
		steps = append(steps, chromedp.SetValue(byTestID("add-role"), role))
	}
	steps = append(steps, chromedp.Click(byTestID("add-credential-"+credential)))
	do(t, ctx, "fill in the add form", steps...)
	if st := navClick(t, ctx, "add the admin "+name, byTestID("add-submit")); st != http.StatusOK {
		t.Fatalf("adding %s: HTTP %d", name, st)
	}
}

// rowSel is the CSS selector of an element in the /admins row of name.
func rowSel(name, inner string) chromedp.CSS {
	return chromedp.CSS(`tr[data-admin="` + name + `"] ` + inner)
}

// TestAdminManagement: an owner adds an operator with a one-time password; the new admin
// must choose its own password first; the owner changes its role, which its next page shows,
// and removes it through the confirmation dialog; an API token is made once and works.
func TestAdminManagement(t *testing.T) {
	t.Parallel()
	const name = "brenda_ops"
	owner := newTab(t)
	signIn(t, owner)
	if st := navigate(t, owner, "/admins"); st != http.StatusOK {
		t.Fatalf("/admins: HTTP %d", st)
	}
	addAdminByForm(t, owner, name, "operator", "password")
	otp := get(t, owner, "read the one-time password", chromedp.TextContent(byTestID("one-time-secret")))
	if len(otp) < 20 {
		t.Fatalf("one-time password %q", otp)
	}
	shots(t, owner, "admins-one-time-password")

	// The new admin: its account page first.
	brenda := newTab(t)
	if path := signInAs(t, brenda, srv.baseURL, name, otp); path != "/account" {
		t.Fatalf("with a one-time password the sign-in ends on %s, want /account", path)
	}
	do(t, brenda, "see that a new password is asked for", chromedp.WaitVisible(byTestID("must-change")))
	if path := func() string { navigate(t, brenda, "/sessions"); return eval[string](t, brenda, `location.pathname`) }(); path != "/account" {
		t.Fatalf("before a new password, /sessions ends on %s", path)
	}
	const newPassword = "brenda's own password"
	do(t, brenda, "fill in the password form",
		chromedp.SendKeys(byTestID("current-password"), otp),
		chromedp.SendKeys(byTestID("new-password"), newPassword),
		chromedp.SendKeys(byTestID("repeat-password"), newPassword))
	navClick(t, brenda, "change the password", byTestID("change-password"))
	if got := get(t, brenda, "read the notice", chromedp.TextContent(byTestID("notice"))); !strings.Contains(got, "Your password is changed") {
		t.Fatalf("after the change: %q", got)
	}
	navigate(t, brenda, "/sessions")
	do(t, brenda, "see the issue form (operator)", chromedp.WaitVisible(byTestID("issue-open")))
	if n := eval[int](t, brenda, `document.querySelectorAll('[data-testid="nav-admins"]').length`); n != 0 {
		t.Error("an operator sees the Admins section")
	}

	// The owner makes it a viewer: its next page has no issue form.
	navigate(t, owner, "/admins")
	do(t, owner, "choose viewer", chromedp.SetValue(rowSel(name, `[data-testid="role-select"]`), "viewer"))
	navClick(t, owner, "set the role", rowSel(name, `[data-testid="role-submit"]`))
	if got := get(t, owner, "read the notice", chromedp.TextContent(byTestID("notice"))); got != name+" now has role viewer." {
		t.Errorf("notice %q", got)
	}
	navigate(t, brenda, "/sessions")
	do(t, brenda, "wait for the sessions table", chromedp.WaitVisible(byTestID("sessions-table")))
	if n := eval[int](t, brenda, `document.querySelectorAll('[data-testid="issue-details"], [data-testid="issue-form"], [data-testid="revoke-session"], [data-testid="revoke-user"], [data-testid="revoke-filtered-user"]').length`); n != 0 {
		t.Errorf("a viewer sees %d issue or revoke controls", n)
	}
	if got := get(t, brenda, "read the role", chromedp.TextContent(byTestID("admin-role"))); got != "viewer" {
		t.Errorf("role badge %q", got)
	}

	// The owner's own account page, with the other tab's session listed.
	other := newTab(t)
	signIn(t, other)
	navigate(t, owner, "/account")
	waitJS(t, owner, "two sessions or more listed", `document.querySelectorAll('[data-testid="own-session"]').length >= 2`)
	shots(t, owner, "account")

	// An API token, shown once, works with curl's header.
	navigate(t, owner, "/admins")
	do(t, owner, "fill in the token form",
		chromedp.SendKeys(byTestID("token-name"), "browser-ci"),
		chromedp.SetValue(byTestID("token-role"), "viewer"))
	navClick(t, owner, "make the token", byTestID("token-submit"))
	secret := get(t, owner, "read the token", chromedp.TextContent(byTestID("one-time-secret")))
	req, _ := http.NewRequest("GET", srv.baseURL+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"sessions":`) {
		t.Errorf("the token on /api/v1/sessions: %d %.200s", resp.StatusCode, body)
	}
	navigate(t, owner, "/admins")
	if strings.Contains(eval[string](t, owner, `document.body.innerHTML`), secret) {
		t.Error("the token is shown again")
	}
	shots(t, owner, "admins")

	// Removal through the dialog; the removed admin's next page is the sign-in.
	do(t, owner, "open the removal dialog", chromedp.Click(rowSel(name, `[data-testid="remove-admin"]`)))
	waitJS(t, owner, "the dialog", `document.getElementById("confirm-dialog").open`)
	if msg := get(t, owner, "read the confirmation", chromedp.TextContent(byTestID("confirm-message"))); !strings.Contains(msg, name+" (viewer) can no longer sign in") {
		t.Errorf("confirmation %q", msg)
	}
	navClick(t, owner, "confirm the removal", byTestID("confirm-submit"))
	if got := get(t, owner, "read the notice", chromedp.TextContent(byTestID("notice"))); got != "Removed admin "+name+"." {
		t.Errorf("notice %q", got)
	}
	navigate(t, brenda, "/sessions")
	if path := eval[string](t, brenda, `location.pathname`); path != "/login" {
		t.Errorf("a removed admin's tab ends on %s, want /login", path)
	}
}

// TestSetPasswordLinkPage: the link's code travels in the fragment, which app.js moves into
// the form (and out of the address bar); without it the page asks for the code.
func TestSetPasswordLinkPage(t *testing.T) {
	t.Parallel()
	const name = "linda_link"
	owner := newTab(t)
	signIn(t, owner)
	navigate(t, owner, "/admins")
	addAdminByForm(t, owner, name, "", "link")
	link := get(t, owner, "read the link", chromedp.TextContent(byTestID("one-time-link")))
	u, err := url.Parse(link)
	if err != nil || u.Path != "/set-password" || len(u.Fragment) < 40 {
		t.Fatalf("link %q", link)
	}
	shots(t, owner, "admins-set-password-link")

	tab := newTab(t)
	navigate(t, tab, link)
	waitJS(t, tab, "the code in the form", `document.querySelector('[data-link-code]').value === `+jsString(u.Fragment))
	if h := eval[string](t, tab, `location.hash`); h != "" {
		t.Errorf("the code stays in the address bar: %q", h)
	}
	if hidden := eval[bool](t, tab, `document.querySelector('[data-link-code]').hidden`); !hidden {
		t.Error("the code field is shown although the link filled it in")
	}
	shots(t, tab, "set-password")
	const pw = "linda's own password"
	do(t, tab, "fill in the new password",
		chromedp.SendKeys(byTestID("set-new-password"), pw),
		chromedp.SendKeys(byTestID("set-repeat-password"), pw))
	navClick(t, tab, "set the password", byTestID("set-password"))
	do(t, tab, "see it set", chromedp.WaitVisible(byTestID("password-set")))
	if path := signInAs(t, tab, srv.baseURL, name, pw); path != "/overview" {
		t.Errorf("signing in with the new password ends on %s", path)
	}
}
