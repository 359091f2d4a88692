package browser

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionconsole/console/internal/ssotest"
)

// The people the test's OpenID Provider knows, and the groups that give console roles.
var ssoPeople = []ssotest.User{
	{ID: "sub-olivia", Username: "olivia", Password: "olivia-pw", Email: "olivia@example.com", EmailVerified: true, Groups: []string{"staff", "ops-admin"}},
	{ID: "sub-oscar", Username: "oscar", Password: "oscar-pw", Email: "oscar@example.com", EmailVerified: true, Groups: []string{"ops"}},
	{ID: "sub-vera", Username: "vera", Password: "vera-pw", Email: "vera@example.com", EmailVerified: true, Groups: []string{"ops-ro"}, GroupsInUserInfoOnly: true},
	{ID: "sub-rita", Username: "rita", Password: "rita-pw", Email: "rita@example.com", EmailVerified: true, Groups: []string{"marketing", "sales"}},
}

const ssoRoles = "viewer=ops-ro,operator=ops,owner=ops-admin"

// freeAddr returns a loopback address with a port that was free a moment ago (the console's
// callback URL must be registered at the provider before the console starts).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startSSOConsole runs a second `console serve` on the test's data directory (and so its
// database) with single sign-on through a real OpenID Provider on loopback; both stop when
// the test ends. It returns the console's URL.
func startSSOConsole(t *testing.T, extra ...string) (string, *ssotest.Provider) {
	t.Helper()
	addr := freeAddr(t)
	base := "http://" + addr
	op := ssotest.Start(t, ssotest.Options{ClientID: "console", ClientSecret: "the-client-secret",
		RedirectURIs: []string{base + "/login/oidc/callback"}, Users: ssoPeople})
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(secretFile, []byte("the-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--data-dir", srv.dataDir, "--listen", addr,
		"--oidc-issuer", op.Issuer, "--oidc-client-id", "console", "--oidc-client-secret-file", secretFile,
		"--oidc-redirect-url", base + "/login/oidc/callback", "--oidc-roles", ssoRoles, "--oidc-name", "Test IdP"}, extra...)
	cmd := exec.Command(srv.bin, args...)
	cmd.Env = consoleEnv()
	cmd.Stderr = serverLog{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			serverLog{}.Write([]byte("sso console: " + sc.Text() + "\n"))
			if !announced && strings.HasPrefix(sc.Text(), "console: listening on ") {
				announced = true
				ready <- nil
			}
		}
		io.Copy(io.Discard, stdout)
		if !announced {
			ready <- errors.New("the single sign-on console ended without listening")
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the single sign-on console exited with %v after SIGTERM", err)
			}
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("the single sign-on console did not exit within %s of SIGTERM", stopTimeout)
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("the single sign-on console did not listen within %s", startTimeout)
	}
	return base, op
}

// ssoSignIn clicks "Sign in with Test IdP" on the console's sign-in page and signs in at the
// provider's own login page, which sends the browser back. It returns where the tab ends.
func ssoSignIn(t *testing.T, ctx context.Context, base, user, password string) *url.URL {
	t.Helper()
	navigate(t, ctx, base+"/login")
	if got := get(t, ctx, "read the single sign-on button", chromedp.TextContent(byTestID("sign-in-sso"))); got != "Sign in with Test IdP" {
		t.Fatalf("the button says %q", got)
	}
	navClick(t, ctx, "start single sign-on", byTestID("sign-in-sso"))
	do(t, ctx, "sign in at the provider",
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password))
	navClick(t, ctx, "submit the provider's form", chromedp.CSS(`button[type="submit"]`))
	// The callback's page moves on by itself (meta refresh): wait through that navigation.
	back := `location.origin === ` + jsString(base) + ` && document.readyState === "complete" &&
		(!location.pathname.startsWith("/login/oidc") || document.querySelector('[data-testid="sso-problem"]') !== null)`
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](back))
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("not back at the console within %s (last error %v); the page is at %s", waitTimeout, err, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := url.Parse(get(t, ctx, "read the location", chromedp.Location()))
	return loc
}

func TestSSO(t *testing.T) {
	t.Parallel()
	base, _ := startSSOConsole(t)

	t.Run("sign-in page", func(t *testing.T) {
		ctx := newTab(t)
		navigate(t, ctx, base+"/login")
		do(t, ctx, "see both ways in", chromedp.WaitVisible(byTestID("sign-in-sso")), chromedp.WaitVisible(byTestID("local-login")))
		shots(t, ctx, "login-sso")
	})

	t.Run("owner by group, then sign-out", func(t *testing.T) {
		ctx := newTab(t)
		if loc := ssoSignIn(t, ctx, base, "olivia", "olivia-pw"); loc.Path != "/overview" {
			t.Fatalf("after single sign-on the tab is at %s", loc)
		}
		if got := get(t, ctx, "read the admin", chromedp.TextContent(byTestID("admin-name"))); got != "oidc:olivia@example.com" {
			t.Errorf("admin name %q", got)
		}
		if got := get(t, ctx, "read the role", chromedp.TextContent(byTestID("admin-role"))); got != "owner" {
			t.Errorf("role %q (groups staff and ops-admin: the highest)", got)
		}
		navClick(t, ctx, "open the admins page", byTestID("nav-admins"))
		do(t, ctx, "see the SSO admin listed", chromedp.WaitVisible(rowSel("oidc:olivia@example.com", `[data-testid="admin-role-text"]`)))
		navClick(t, ctx, "sign out", byTestID("sign-out"))
		if path := eval[string](t, ctx, `location.pathname`); path != "/login" {
			t.Errorf("after sign-out the tab is at %s", path)
		}
		navigate(t, ctx, base+"/sessions")
		if path := eval[string](t, ctx, `location.pathname`); path != "/login" {
			t.Errorf("after sign-out /sessions ends at %s", path)
		}
	})

	t.Run("operator and viewer by group", func(t *testing.T) {
		op := newTab(t)
		ssoSignIn(t, op, base, "oscar", "oscar-pw")
		navigate(t, op, base+"/sessions")
		do(t, op, "see the issue form", chromedp.WaitVisible(byTestID("issue-open")))
		if n := eval[int](t, op, `document.querySelectorAll('[data-testid="nav-admins"]').length`); n != 0 {
			t.Error("an operator sees the Admins section")
		}
		viewer := newTab(t)
		ssoSignIn(t, viewer, base, "vera", "vera-pw") // groups only from the UserInfo endpoint
		if got := get(t, viewer, "read the role", chromedp.TextContent(byTestID("admin-role"))); got != "viewer" {
			t.Fatalf("role %q", got)
		}
		navigate(t, viewer, base+"/sessions")
		if n := eval[int](t, viewer, `document.querySelectorAll('[data-testid="issue-details"], [data-testid="issue-form"], [data-testid="revoke-session"], [data-testid="revoke-user"], [data-testid="revoke-filtered-user"]').length`); n != 0 {
			t.Errorf("a viewer sees %d issue or revoke controls", n)
		}
		if st := navigate(t, viewer, base+"/admins"); st != http.StatusForbidden {
			t.Errorf("a viewer on /admins: HTTP %d", st)
		}
	})

	t.Run("refused person", func(t *testing.T) {
		ctx := newTab(t)
		ssoSignIn(t, ctx, base, "rita", "rita-pw")
		do(t, ctx, "see the refusal", chromedp.WaitVisible(byTestID("sso-problem")))
		if got := get(t, ctx, "read who", chromedp.TextContent(byTestID("sso-who"))); got != "oidc:rita@example.com" {
			t.Errorf("who %q", got)
		}
		if got := get(t, ctx, "read the groups", chromedp.TextContent(byTestID("sso-values"))); got != "marketing, sales" {
			t.Errorf("groups %q", got)
		}
		shots(t, ctx, "sso-refused")
		navigate(t, ctx, base+"/sessions")
		if path := eval[string](t, ctx, `location.pathname`); path != "/login" {
			t.Errorf("a refused person reaches %s", path)
		}
	})

	t.Run("tampered state", func(t *testing.T) {
		ctx := newTab(t)
		navigate(t, ctx, base+"/login/oidc")
		do(t, ctx, "wait for the provider's page", chromedp.WaitVisible(chromedp.ID("username")))
		st := navigate(t, ctx, base+"/login/oidc/callback?"+url.Values{"state": {"forged-state"}, "code": {"forged-code"}}.Encode())
		if st != http.StatusBadRequest {
			t.Fatalf("a tampered state: HTTP %d, want 400", st)
		}
		if got := get(t, ctx, "read the heading", chromedp.TextContent(chromedp.CSS("h1"))); got != "Sign-in not completed" {
			t.Errorf("heading %q", got)
		}
		navigate(t, ctx, base+"/sessions")
		if path := eval[string](t, ctx, `location.pathname`); path != "/login" {
			t.Errorf("after a tampered state, /sessions ends at %s", path)
		}
	})
}

// With --local-login=false the sign-in page offers single sign-on only.
func TestSSOOnly(t *testing.T) {
	t.Parallel()
	base, _ := startSSOConsole(t, "--local-login=false")
	ctx := newTab(t)
	navigate(t, ctx, base+"/login")
	do(t, ctx, "see the single sign-on button", chromedp.WaitVisible(byTestID("sign-in-sso")))
	if n := eval[int](t, ctx, `document.querySelectorAll('input[type="password"]').length`); n != 0 {
		t.Errorf("%d password fields with --local-login=false", n)
	}
}
