package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionconsole/console/internal/audit"
)

func TestSignInFlow(t *testing.T) {
	s := newServer(t)
	c := s.client(t)

	r := c.get("/")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/login?next=%2F" {
		t.Errorf("/ redirects to %q", loc)
	}
	r = c.get("/sessions?status=all&user=bob")
	if loc := r.Header.Get("Location"); loc != "/login?next=%2Fsessions%3Fstatus%3Dall%26user%3Dbob" {
		t.Errorf("deep link redirects to %q", loc)
	}

	r = c.get("/login")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `name="username"`, `name="password"`, `name="_csrf"`)
	if c.csrf == "" {
		t.Fatal("no CSRF token on the login page")
	}

	r = c.post("/login", url.Values{"username": {"admin"}, "password": {"wrong password"}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.body, `data-testid="login-error"`, "Wrong admin name or password.")
	r = c.post("/login", url.Values{"username": {"nobody"}, "password": {adminPassword}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.body, "Wrong admin name or password.") // the same words: no hint that a name exists

	r = c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"/sessions?status=all"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/sessions?status=all" {
		t.Errorf("after sign-in, Location %q", loc)
	}
	var set string
	for _, v := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, adminCookie+"=") {
			set = v
		}
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, attr) {
			t.Errorf("admin cookie %q lacks %s", set, attr)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("admin cookie is Secure without TLS: %q", set)
	}
	r = c.get("/sessions")
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "admin-name"); got != "admin" {
		t.Errorf("admin name shown: %q", got)
	}
	// A signed-in admin visiting /login goes to the sessions.
	if r := c.get("/login"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("/login when signed in: %d", r.StatusCode)
	}

	page, _ := s.audit.List(context.Background(), audit.Filter{Limit: 10})
	var actions []string
	for _, e := range page.Entries {
		actions = append(actions, string(e.Action)+":"+e.Admin)
	}
	if got := strings.Join(actions, ","); got != "sign-in:admin,sign-in-failed:nobody,sign-in-failed:admin" {
		t.Errorf("audit = %s", got)
	}
}

func TestOpenRedirectRefused(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "/login",
		"/\t/evil.example", "/\t\\evil.example", "/\n/evil.example", "/x\\..\\\\evil.example"} {
		c.get("/login")
		r := c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {next}})
		if loc := r.Header.Get("Location"); loc != "/overview" {
			t.Errorf("next=%q sent to %q", next, loc)
		}
		c.get("/sessions") // the signed-in page's token signs out
		wantStatus(t, c.post("/logout", nil), http.StatusSeeOther)
	}
}

func TestSignOutEndsCookieEvenReplayed(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	old := c.cookie(adminCookie)
	if old == nil {
		t.Fatal("no admin cookie")
	}
	r := c.post("/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/login" {
		t.Errorf("logout goes to %q", r.Header.Get("Location"))
	}
	// Replay the old cookie from a fresh client.
	replay := s.client(t)
	u, _ := url.Parse(s.url)
	replay.http.Jar.SetCookies(u, []*http.Cookie{{Name: adminCookie, Value: old.Value}})
	r = replay.get("/sessions")
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("replayed cookie: redirected to %q", r.Header.Get("Location"))
	}
	r = replay.hxGet("/sessions")
	wantStatus(t, r, http.StatusUnauthorized)
	if r.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("htmx request with a dead cookie: HX-Redirect %q", r.Header.Get("HX-Redirect"))
	}
	page, _ := s.audit.List(context.Background(), audit.Filter{Action: audit.SignOut})
	if len(page.Entries) != 1 {
		t.Errorf("%d sign-out entries", len(page.Entries))
	}
}

func TestTamperedAdminCookieRefused(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	good := c.cookie(adminCookie).Value
	u, _ := url.Parse(s.url)
	for name, v := range map[string]string{
		"flipped char": good[:10] + string(rune('A'+(good[10]-'A'+1)%26)) + good[11:],
		"truncated":    good[:len(good)/2],
		"empty":        "",
		"garbage":      "not-a-cookie",
	} {
		t.Run(name, func(t *testing.T) {
			other := s.client(t)
			other.http.Jar.SetCookies(u, []*http.Cookie{{Name: adminCookie, Value: v}})
			r := other.get("/sessions")
			wantStatus(t, r, http.StatusSeeOther)
		})
	}
	// Another server's keys: refused too.
	s2 := newServer(t)
	other := s2.client(t)
	u2, _ := url.Parse(s2.url)
	other.http.Jar.SetCookies(u2, []*http.Cookie{{Name: adminCookie, Value: good}})
	if r := other.get("/sessions"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("cookie of another key accepted: %d", r.StatusCode)
	}
}

// Keys rotate: a cookie made with the old key pair still works when that pair follows a new one.
func TestCookieKeyRotation(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	oldKeys := s.handler.cfg.Keys
	rotated := New(s.sessions, s.admins, s.audit, s.actions, Config{Keys: append(testKeys(), oldKeys...), Logger: s.handler.log})
	if sid, err := securecookieDecode(rotated, adminCookie, c.cookie(adminCookie).Value); err != nil || sid == "" {
		t.Fatalf("old cookie under rotated keys: %v", err)
	}
	// And a fresh cookie is made with the new pair, which the old configuration refuses.
	enc, err := securecookieEncode(rotated, adminCookie, "sid")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := securecookieDecode(s.handler, adminCookie, enc); err == nil {
		t.Error("the old key pair decoded a cookie of the new one")
	}
}
