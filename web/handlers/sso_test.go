package handlers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/internal/sso"
	"github.com/sessionconsole/console/internal/ssotest"
)

var ssoUsers = []ssotest.User{
	{ID: "u-olivia", Username: "olivia", Password: "olivia-pw", Email: "olivia@example.com", EmailVerified: true, Groups: []string{"ops-admin"}},
	{ID: "u-oscar", Username: "oscar", Password: "oscar-pw", Email: "oscar@example.com", EmailVerified: true, Groups: []string{"ops", "staff"}},
	{ID: "u-rita", Username: "rita", Password: "rita-pw", Email: "rita@example.com", EmailVerified: true, Groups: []string{"marketing", "<b>x</b>"}},
}

// ssoServer is a console with single sign-on through a real OpenID Provider on loopback.
func ssoServer(t *testing.T, cfg Config) (*server, *ssotest.Provider) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://" + ln.Addr().String() + "/login/oidc/callback"
	op := ssotest.Start(t, ssotest.Options{ClientID: "console", ClientSecret: "console-secret", RedirectURIs: []string{redirect}, Users: ssoUsers})
	roles, _ := sso.ParseRoles("viewer=ops-ro,operator=ops,owner=ops-admin")
	client, err := sso.New(sso.Config{Issuer: op.Issuer, ClientID: "console", ClientSecret: "console-secret",
		RedirectURL: redirect, Roles: roles, Name: "Test IdP"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SSO = client
	return newServerListener(t, pgtest.NewDB(t), cfg, 0, ln), op
}

func ssoLogin(t *testing.T, s *server, next, user, password string) (*http.Client, *http.Response, string) {
	t.Helper()
	start := s.url + "/login/oidc"
	if next != "" {
		start += "?next=" + url.QueryEscape(next)
	}
	c, resp, body, err := ssotest.Login(context.Background(), start, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp, body
}

func getBody(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSSOSignIn(t *testing.T) {
	s, _ := ssoServer(t, Config{})
	r := s.client(t).get("/login")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="sign-in-sso"`, "Sign in with Test IdP", `data-testid="local-login"`, `name="password"`)

	c, resp, body := ssoLogin(t, s, "/audit?action=sign-in", "olivia", "olivia-pw")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="sso-done"`) ||
		!strings.Contains(body, `content="0;url=/audit?action=sign-in"`) {
		t.Fatalf("after single sign-on: %d\n%.2000s", resp.StatusCode, body)
	}
	resp, body = getBody(t, c, s.url+"/admins")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="admin-name" title="Your account">oidc:olivia@example.com<`) &&
		!strings.Contains(body, `>oidc:olivia@example.com</a>`) {
		t.Fatalf("owner by SSO on /admins: %d\n%.1500s", resp.StatusCode, body)
	}
	wantContains(t, body, `data-admin="oidc:olivia@example.com"`, "from the identity provider")
	a, err := s.admins.Get(context.Background(), "oidc:olivia@example.com")
	if err != nil || a.Role != admins.Owner || a.Method != admins.MethodOIDC || a.LastSignIn == nil {
		t.Fatalf("SSO admin %+v, %v", a, err)
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'sign-in' AND admin = 'oidc:olivia@example.com' AND detail = 'oidc, role owner'`); n != 1 {
		t.Errorf("%d sign-in entries for oidc:olivia@example.com", n)
	}

	// An operator by its group: no admin pages.
	c2, _, _ := ssoLogin(t, s, "", "oscar", "oscar-pw")
	if resp, _ := getBody(t, c2, s.url+"/sessions"); resp.StatusCode != http.StatusOK {
		t.Fatalf("operator by SSO on /sessions: %d", resp.StatusCode)
	}
	if resp, _ := getBody(t, c2, s.url+"/admins"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("operator by SSO on /admins: %d", resp.StatusCode)
	}

	// Sign-out ends the session.
	_, page := getBody(t, c, s.url+"/account")
	token := csrfMeta.FindStringSubmatch(page)[1]
	resp, err = c.PostForm(s.url+"/logout", url.Values{"_csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, _ := getBody(t, c, s.url+"/sessions"); resp.Request.URL.Path != "/login" {
		t.Fatalf("after sign-out /sessions ends at %s", resp.Request.URL)
	}
	if n := s.count(t, `SELECT count(*) FROM console.admin_sessions WHERE admin = 'oidc:olivia@example.com'`); n != 0 {
		t.Errorf("%d sessions left after sign-out", n)
	}
}

func TestSSORefusedAndTampered(t *testing.T) {
	s, op := ssoServer(t, Config{})

	// A person the provider knows, without a mapped group.
	_, resp, body := ssoLogin(t, s, "", "rita", "rita-pw")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-testid="sso-problem"`) ||
		!strings.Contains(body, "oidc:rita@example.com") || !strings.Contains(body, "<code>marketing, &lt;b&gt;x&lt;/b&gt;</code>") {
		t.Fatalf("refused user: %d\n%.3000s", resp.StatusCode, body)
	}
	if n := s.count(t, `SELECT count(*) FROM console.admins WHERE name LIKE 'oidc:%'`); n != 0 {
		t.Error("a refused person became an admin")
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'sign-in-refused' AND admin = 'oidc:rita@example.com'`); n != 1 {
		t.Error("the refusal is not audited")
	}

	// A tampered state, and a callback without the browser's flow.
	c := s.client(t)
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := c.get("/login/oidc")
	wantStatus(t, r, http.StatusSeeOther)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), op.Issuer) || loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("nonce") == "" {
		t.Fatalf("start of single sign-on goes to %s", loc)
	}
	state := loc.Query().Get("state")
	// In this order: a callback ends the browser's flow whatever its outcome (the flow cookie
	// is one use), so the second comes with the right state but no flow. (As a map, the two
	// ran in either order; "no flow" first still had the flow, exchanged its made-up code
	// with the provider and got the provider's refusal, 502.)
	for _, tc := range []struct{ name, q string }{
		{"tampered", "state=" + url.QueryEscape(state+"x") + "&code=whatever"},
		{"no flow", "state=" + url.QueryEscape(state) + "&code=whatever"},
	} {
		name := tc.name
		r := c.get("/login/oidc/callback?" + tc.q)
		wantStatus(t, r, http.StatusBadRequest)
		wantContains(t, r.body, "Sign-in not completed")
		if c.cookie(adminCookie) != nil {
			t.Errorf("%s: an admin cookie was set", name)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'sign-in-failed' AND admin = 'oidc:?'`); n != 2 {
		t.Errorf("%d failed single sign-ons audited, want 2", n)
	}

	// A callback replayed after it was used: its flow is gone, and so is its code.
	hc, resp, _ := ssoLogin(t, s, "", "olivia", "olivia-pw")
	callback := resp.Request.URL.String()
	if !strings.Contains(callback, "/login/oidc/callback?") || resp.StatusCode != http.StatusOK {
		t.Fatalf("the sign-in ended at %s (%d)", callback, resp.StatusCode)
	}
	if resp, _ := getBody(t, hc, callback); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
	}
	if n := s.count(t, `SELECT count(*) FROM console.admin_sessions`); n != 1 {
		t.Errorf("%d admin sessions after a replay, want 1", n)
	}
}

func TestSSOProviderDown(t *testing.T) {
	s, op := ssoServer(t, Config{})
	op.Down.Store(true)
	c := s.client(t)
	r := c.get("/login/oidc")
	wantStatus(t, r, http.StatusServiceUnavailable)
	wantContains(t, r.body, "cannot be reached right now", "or sign in with a console password")
	s.signIn(t) // the break-glass way in
}

func TestLocalLoginOff(t *testing.T) {
	s, _ := ssoServer(t, Config{NoLocalLogin: true})
	c := s.client(t)
	r := c.get("/login")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="sign-in-sso"`)
	wantNotContains(t, r.body, `name="password"`)
	r = c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	wantStatus(t, r, http.StatusForbidden)
	if c.cookie(adminCookie) != nil {
		t.Fatal("signed in by password with --local-login=false")
	}
}
