package handlers

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgtest"
)

// A state change without the CSRF token (or with a wrong one) is refused and changes nothing.
func TestCSRFRequired(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "gina")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	before := s.count(t, `SELECT count(*) FROM console.web_sessions`)
	for _, token := range []string{"", "forged-token", c.csrf + "x"} {
		for _, req := range []struct {
			path string
			form url.Values
		}{
			{"/sessions", url.Values{"username": {user}, "expire_after": {"1h"}}},
			{"/users/" + user + "/revoke", nil},
			{"/sessions/" + itoa(is.ID) + "/revoke", nil},
			{"/logout", nil},
		} {
			form := url.Values{"_csrf": {token}}
			for k, v := range req.form {
				form[k] = v
			}
			r := c.do("POST", req.path, form, map[string]string{"Sec-Fetch-Site": "same-origin"})
			wantStatus(t, r, http.StatusForbidden)
			wantContains(t, r.body, "CSRF")
			r = c.do("POST", req.path, form, map[string]string{"HX-Request": "true", "X-CSRF-Token": token})
			wantStatus(t, r, http.StatusForbidden)
		}
	}
	if after := s.count(t, `SELECT count(*) FROM console.web_sessions`); after != before {
		t.Errorf("sessions %d -> %d", before, after)
	}
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions WHERE "revokedAt" IS NOT NULL`); n != 0 {
		t.Errorf("%d sessions revoked without a token", n)
	}
	// Still signed in: the refused logout did nothing.
	wantStatus(t, c.get("/sessions"), http.StatusOK)
	// Sign-in needs the token too.
	fresh := s.client(t)
	r := fresh.do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPassword}}, nil)
	wantStatus(t, r, http.StatusForbidden)
	// A cross-site post is refused even with the token.
	r = c.do("POST", "/sessions", url.Values{"_csrf": {c.csrf}, "username": {user}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	wantStatus(t, r, http.StatusForbidden)
}

func TestSecurityHeaders(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	for _, path := range []string{"/login", "/sessions", "/audit", "/no-such-page"} {
		r := c.get(path)
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe: %q", path, csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
			"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		// No inline script or style in the markup.
		if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "style=") || strings.Contains(r.body, "<style") ||
			strings.Contains(r.body, " onclick=") {
			t.Errorf("%s: inline script or style", path)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	r := c.get("/login")
	for _, name := range []string{"app.css", "htmx.min.js", "app.js"} {
		u := s.handler.assets.URL(name)
		if !strings.Contains(r.body, u) {
			t.Errorf("page does not link %s", u)
		}
		a := c.get(u)
		wantStatus(t, a, http.StatusOK)
		if cc := a.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s Cache-Control %q", u, cc)
		}
		if ct := a.Header.Get("Content-Type"); !(strings.HasPrefix(ct, "text/css") || strings.HasPrefix(ct, "text/javascript")) {
			t.Errorf("%s Content-Type %q", u, ct)
		}
		nm := c.do("GET", u, nil, map[string]string{"If-None-Match": a.Header.Get("ETag")})
		wantStatus(t, nm, http.StatusNotModified)
	}
	if !strings.Contains(c.get(s.handler.assets.URL("htmx.min.js")).body, `version:"2.0.11"`) {
		t.Error("vendored htmx is not 2.0.11")
	}
	wantStatus(t, c.get("/static/app.css"), http.StatusNotFound)
	wantStatus(t, c.get("/static/../go.mod"), http.StatusNotFound)
}

// Usernames with HTML and quotes render as text on every page and stay data in every export.
func TestUsernamesAreEscapedEverywhere(t *testing.T) {
	s := newServer(t)
	name := `<b>x"'&</b>`
	s.createRole(t, name)
	is := s.issue(t, name, time.Hour)
	c := s.signIn(t)
	escaped := "&lt;b&gt;x&#34;&#39;&amp;&lt;/b&gt;"
	pages := map[string]response{
		"sessions":  c.get("/sessions?status=all"),
		"filtered":  c.get("/sessions?" + url.Values{"user": {name}}.Encode()),
		"fragment":  c.hxGet("/sessions?" + url.Values{"user": {name}}.Encode()),
		"confirm":   c.hxGet("/users/" + url.PathEscape(name) + "/revoke"),
		"confirm 1": c.get("/sessions/" + itoa(is.ID) + "/revoke"),
		"issue":     c.hxPost("/sessions", url.Values{"username": {name}, "expire_after": {"1h"}}),
		"notice":    c.hxPost("/users/"+url.PathEscape(name)+"/revoke", nil),
		"audit":     c.get("/audit"),
		"not found": c.hxPost("/sessions", url.Values{"username": {name + "<i>"}, "expire_after": {"1h"}}),
	}
	for page, r := range pages {
		if strings.Contains(r.body, "<b>") || strings.Contains(r.body, "<i>") {
			t.Errorf("%s: raw HTML of the username", page)
		}
		if !strings.Contains(r.body, escaped) && !strings.Contains(r.body, "%3Cb%3E") {
			t.Errorf("%s: the escaped username is missing", page)
		}
	}
	r := c.get("/sessions.csv?status=all")
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3 || recs[1][0] != name {
		t.Errorf("CSV: %v %q", err, recs)
	}
	r = c.get("/sessions.json?status=all")
	var objs []map[string]string
	if err := json.Unmarshal([]byte(r.body), &objs); err != nil || len(objs) != 2 || objs[0]["username"] != name {
		t.Errorf("JSON: %v %v", err, objs)
	}
	r = c.get("/audit.csv")
	recs, err = csv.NewReader(strings.NewReader(r.body)).ReadAll()
	found := false
	for _, rec := range recs {
		found = found || (len(rec) > 3 && rec[3] == name)
	}
	if err != nil || !found {
		t.Errorf("audit CSV: %v %q", err, recs)
	}
}

// The CSRF token after sign-in belongs to that admin session: the login form's token, the
// token of an earlier session of the same browser and that of another admin's session are all
// refused, and none is taken from the query string.
func TestCSRFBoundToSession(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "csrfuser")
	issue := url.Values{"username": {user}, "expire_after": {"1h"}}
	issued := func() int { return s.count(t, `SELECT count(*) FROM console.web_sessions`) }

	c := s.client(t)
	c.get("/login")
	loginToken := c.csrf
	wantStatus(t, c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}}), http.StatusSeeOther)
	if ck := c.cookie(csrfCookie); ck != nil {
		t.Errorf("the pre-session cookie outlived the sign-in: %v", ck)
	}
	c.get("/sessions")
	first := c.csrf
	if first == "" || first == loginToken {
		t.Fatalf("the token did not change at sign-in (%q, %q)", loginToken, first)
	}
	other := s.signIn(t) // another admin session, in another browser
	if other.csrf == first {
		t.Fatal("two admin sessions have the same token")
	}
	for name, token := range map[string]string{"login form's": loginToken, "other session's": other.csrf} {
		r := c.do("POST", "/sessions", url.Values{"_csrf": {token}, "username": {user}, "expire_after": {"1h"}}, nil)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("the %s token: status %d, want 403", name, r.StatusCode)
		}
	}
	// Not from the query string either.
	r := c.do("POST", "/sessions?"+url.Values{"_csrf": {first}}.Encode(), issue, nil)
	wantStatus(t, r, http.StatusForbidden)
	if n := issued(); n != 0 {
		t.Fatalf("%d sessions issued with a wrong token", n)
	}
	// The right one works.
	wantStatus(t, c.post("/sessions", issue), http.StatusOK)

	// Sign-out ends the token; the next sign-in gets another.
	wantStatus(t, c.post("/logout", nil), http.StatusSeeOther)
	c.get("/login")
	wantStatus(t, c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}}), http.StatusSeeOther)
	c.get("/sessions")
	if c.csrf == first {
		t.Fatal("the token survived sign-out and the next sign-in")
	}
	r = c.do("POST", "/sessions", url.Values{"_csrf": {first}, "username": {user}, "expire_after": {"1h"}}, nil)
	wantStatus(t, r, http.StatusForbidden)
	if n := issued(); n != 1 {
		t.Errorf("%d sessions issued, want 1", n)
	}
}

// The login form's token is bound to a pre-session the console made and signed: a seed a
// client chooses (say, one an attacker planted in the victim's browser) gets no token.
func TestLoginTokenSeedIsTheServers(t *testing.T) {
	s := newServer(t)
	u, _ := url.Parse(s.url)
	planted := strings.Repeat("A", 43)
	var tokens []string
	for range 2 {
		c := s.client(t)
		c.http.Jar.SetCookies(u, []*http.Cookie{{Name: csrfCookie, Value: planted}})
		r := c.get("/login")
		if ck := c.cookie(csrfCookie); ck == nil || ck.Value == planted {
			t.Errorf("the planted seed was kept (Set-Cookie %q)", r.Header.Values("Set-Cookie"))
		}
		tokens = append(tokens, c.csrf)
		// The planted cookie with any token cannot sign in.
		forged := s.client(t)
		forged.http.Jar.SetCookies(u, []*http.Cookie{{Name: csrfCookie, Value: planted}})
		r = forged.do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {c.csrf}}, nil)
		wantStatus(t, r, http.StatusForbidden)
	}
	if tokens[0] == tokens[1] {
		t.Error("two browsers with the same planted seed got the same token")
	}
}

// Cross-origin state changes are refused before the token is looked at: a browser's
// Sec-Fetch-Site other than same-origin (cross-site, and same-site too), or an Origin of
// another host when the browser sends no Sec-Fetch-Site.
func TestCrossOriginRefused(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "corsuser")
	c := s.signIn(t)
	host := strings.TrimPrefix(s.url, "http://")
	for _, tc := range []struct {
		headers map[string]string
		want    int
	}{
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{map[string]string{"Origin": "http://" + host + ".evil.example"}, http.StatusForbidden},
		{map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": s.url}, http.StatusOK},
		{map[string]string{"Origin": s.url}, http.StatusOK},
		{map[string]string{}, http.StatusOK},
	} {
		form := url.Values{"_csrf": {c.csrf}, "username": {user}, "expire_after": {"1h"}}
		r := c.do("POST", "/sessions", form, tc.headers)
		if r.StatusCode != tc.want {
			t.Errorf("%v: status %d, want %d", tc.headers, r.StatusCode, tc.want)
		}
	}
	// The sign-in form too.
	fresh := s.client(t)
	fresh.get("/login")
	r := fresh.do("POST", "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {fresh.csrf}},
		map[string]string{"Sec-Fetch-Site": "same-site"})
	wantStatus(t, r, http.StatusForbidden)
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions`); n != 3 {
		t.Errorf("%d sessions issued, want the 3 same-origin ones", n)
	}
}

// Under TLS every console cookie has the __Host- prefix (Secure, Path=/, no Domain), and
// signing in, acting and signing out work with them.
func TestHostCookiesUnderTLS(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{Secure: true})
	user := s.createUser(t, "tlsuser")
	c := s.client(t)
	r := c.get("/login")
	checkSet := func(r response) {
		t.Helper()
		for _, v := range r.Header.Values("Set-Cookie") {
			if !strings.HasPrefix(v, "__Host-console_") || !strings.Contains(v, "; Secure") ||
				!strings.Contains(v, "; Path=/") || strings.Contains(strings.ToLower(v), "domain=") {
				t.Errorf("cookie %q", v)
			}
		}
	}
	checkSet(r)
	if c.cookie("__Host-"+csrfCookie) == nil {
		t.Fatal("no __Host- pre-session cookie")
	}
	r = c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	wantStatus(t, r, http.StatusSeeOther)
	checkSet(r)
	c.get("/sessions")
	wantStatus(t, c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"1h"}}), http.StatusOK)
	r = c.post("/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	checkSet(r)
	if r := c.get("/sessions"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", r.StatusCode)
	}
}
