package handlers

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
)

func TestIssueSession(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "web_user")
	c := s.signIn(t)
	ctx := context.Background()
	cases := []struct {
		name string
		form url.Values
		ttl  time.Duration
	}{
		{"preset 8h", url.Values{"username": {user}, "expire_after": {"8h"}}, 8 * time.Hour},
		{"preset 7d", url.Values{"username": {user}, "expire_after": {"7d"}}, 168 * time.Hour},
		{"168h", url.Values{"username": {user}, "expire_after": {"168h"}}, 168 * time.Hour},
		{"default", url.Values{"username": {user}}, time.Hour},
		{"custom", url.Values{"username": {user}, "expire_after": {"custom"}, "expire_custom": {"4h30m"}}, 4*time.Hour + 30*time.Minute},
		{"custom field only", url.Values{"username": {user}, "expire_custom": {"90m"}}, 90 * time.Minute},
		{"custom typed, preset left (no JavaScript)", url.Values{"username": {user}, "expire_after": {"1h"}, "expire_custom": {"2h15m"}}, 2*time.Hour + 15*time.Minute},
		{"duration in expire_after", url.Values{"username": {user}, "expire_after": {"45m"}}, 45 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.hxPost("/sessions", tc.form)
			wantStatus(t, r, http.StatusOK)
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
			}
			if r.Header.Get("HX-Trigger") != "sessions-changed" {
				t.Errorf("HX-Trigger %q", r.Header.Get("HX-Trigger"))
			}
			if !strings.HasPrefix(r.body, `<div id="issue-panel"`) {
				t.Errorf("not the panel: %.100s", r.body)
			}
			cookie := html.UnescapeString(textOf(r.body, "issued-cookie"))
			if !strings.HasPrefix(cookie, "session=") || !strings.HasSuffix(cookie, "; Path=/; HttpOnly; Secure") {
				t.Fatalf("issued cookie %q", cookie)
			}
			v, err := s.sessions.Verify(ctx, cookie)
			if err != nil || v.Username != user {
				t.Fatalf("issued cookie does not verify: %+v %v", v, err)
			}
			if got := textOf(r.body, "issued-session-id"); got != itoa(v.SessionID) {
				t.Errorf("shown id %s, want %d", got, v.SessionID)
			}
			sess, _ := s.sessions.Get(ctx, v.SessionID)
			if d := sess.ExpiresAt.Sub(sess.CreatedAt); d != tc.ttl {
				t.Errorf("expires - created = %s, want %s", d, tc.ttl)
			}
			value := strings.TrimSuffix(strings.TrimPrefix(cookie, "session="), "; Path=/; HttpOnly; Secure")
			wantContains(t, html.UnescapeString(r.body), "curl --cookie '"+cookie+"' ", "X-Cockroach-API-Session: "+value,
				`action="/sessions/cookie-file"`)
			// The audit log has the issue, never the cookie.
			page, _ := s.audit.List(ctx, audit.Filter{Action: audit.Issue, Limit: 1})
			if len(page.Entries) != 1 || page.Entries[0].SessionID != v.SessionID || page.Entries[0].Target != user ||
				page.Entries[0].ExpiresAt == nil || !page.Entries[0].ExpiresAt.Equal(sess.ExpiresAt) || page.Entries[0].Admin != "admin" {
				t.Errorf("audit entry %+v", page.Entries)
			}
			if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE detail LIKE '%'||$1||'%' OR target LIKE '%'||$1||'%'`, value); n != 0 {
				t.Error("the cookie reached the audit log")
			}
		})
	}

	// Without htmx: the whole page with the result, not cached.
	r := c.post("/sessions", url.Values{"username": {user}, "expire_after": {"15m"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "<!doctype html>", `data-testid="issued-cookie"`, `id="results"`)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("redirected to %q: the cookie cannot survive a redirect", loc)
	}
}

func TestIssueBadInput(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "carol")
	c := s.signIn(t)
	before := s.count(t, `SELECT count(*) FROM console.web_sessions`)
	for _, tc := range []struct {
		name, user, expire, custom, field, want string
	}{
		{"unknown user", "nosuch", "1h", "", "issue-username-error", `user "nosuch" does not exist`},
		{"quotes", `o'brien"x`, "1h", "", "issue-username-error", `does not exist`},
		{"html", "<script>alert(1)</script>", "1h", "", "issue-username-error", "does not exist"},
		{"percent", "100%", "1h", "", "issue-username-error", "does not exist"},
		{"underscore", "_", "1h", "", "issue-username-error", "does not exist"},
		{"spaces", "two words", "1h", "", "issue-username-error", "does not exist"},
		{"unicode", "ünïcødé", "1h", "", "issue-username-error", "does not exist"},
		{"200 chars", strings.Repeat("x", 200), "1h", "", "issue-username-error", "does not exist"},
		{"empty user", "", "1h", "", "issue-username-error", "Enter the username"},
		{"0s", user, "custom", "0s", "issue-expire-error", "must be positive"},
		{"-1h", user, "custom", "-1h", "issue-expire-error", "must be positive"},
		{"1.5d", user, "custom", "1.5d", "issue-expire-error", "use days, hours, minutes and seconds"},
		{"1d-1h", user, "custom", "1d-1h", "issue-expire-error", "use days, hours, minutes and seconds"},
		{"abc", user, "custom", "abc", "issue-expire-error", "invalid duration"},
		{"999999h", user, "custom", "999999h", "issue-expire-error", "longer than the maximum 744h"},
		{"empty custom", user, "custom", "", "issue-expire-error", "use days, hours, minutes and seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.hxPost("/sessions", url.Values{"username": {tc.user}, "expire_after": {tc.expire}, "expire_custom": {tc.custom}})
			wantStatus(t, r, http.StatusUnprocessableEntity)
			if got := html.UnescapeString(textOf(r.body, tc.field)); !strings.Contains(got, tc.want) {
				t.Errorf("%s = %q, want %q", tc.field, got, tc.want)
			}
			if testids(r.body, "issued-cookie") != 0 {
				t.Error("a cookie was shown")
			}
			// The form keeps the input.
			if tc.user != "" {
				wantContains(t, r.body, `value="`+html.EscapeString(tc.user)+`"`)
			}
			wantNotContains(t, r.body, "<script>alert(1)</script>")
		})
	}
	if after := s.count(t, `SELECT count(*) FROM console.web_sessions`); after != before {
		t.Errorf("%d sessions written by refused issues", after-before)
	}
	// Without htmx the error is the whole page, status 422.
	r := c.post("/sessions", url.Values{"username": {"nosuch"}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, "<!doctype html>", "does not exist")
}

func TestCookieFileDownload(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "dl")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	r := c.post("/sessions/cookie-file", url.Values{"cookie": {is.Cookie.Value()}})
	wantStatus(t, r, http.StatusOK)
	if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, itoa(is.ID)) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	wantContains(t, r.body, "# Netscape HTTP Cookie File", "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t"+is.Cookie.Value()+"\n")
	r = c.post("/sessions/cookie-file", url.Values{"cookie": {"not a cookie"}})
	wantStatus(t, r, http.StatusBadRequest)
	if _, err := sessionstore.DecodeCookie(is.Cookie.Value()); err != nil {
		t.Fatal(err)
	}
}

func TestUserSuggestions(t *testing.T) {
	s := newServer(t)
	a, b := s.createUser(t, "suggest_a"), s.createUser(t, "suggest_b")
	c := s.signIn(t)
	r := c.hxGet("/users.suggest?username=suggest_")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `<option value="`+a+`">`, `<option value="`+b+`">`)
	r = c.hxGet("/users.suggest?username=" + url.QueryEscape(a))
	if strings.Contains(r.body, b) || !strings.Contains(r.body, a) {
		t.Errorf("suggestions for %s: %s", a, r.body)
	}
	if r := c.hxGet("/users.suggest?username=%25"); strings.Contains(r.body, "<option") {
		t.Errorf("%% matched: %s", r.body)
	}
	// Pages do not carry the user list.
	if r := c.get("/sessions"); strings.Contains(r.body, `<option value="`+a+`">`) {
		t.Error("the page lists users")
	}
}
