package handlers

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
