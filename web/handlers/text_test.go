package handlers

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The username filter ignores surrounding space, as people type and paste it.
func TestUserFilterIsTrimmed(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "trim")
	s.issue(t, user, time.Hour)
	c := s.signIn(t)
	r := c.do("GET", "/sessions?"+url.Values{"user": {"  " + user + "\t"}}.Encode(), nil,
		map[string]string{"HX-Request": "true", "HX-Trigger": "filters"})
	wantStatus(t, r, http.StatusOK)
	if got := rows(r.body); len(got) != 1 || got[0].user != user {
		t.Errorf("rows for %q with space around: %+v", user, got)
	}
	if got := r.Header.Get("HX-Push-Url"); got != "/sessions?user="+user {
		t.Errorf("HX-Push-Url %q, want the trimmed name", got)
	}
	r = c.get("/sessions?" + url.Values{"user": {" " + user + " "}}.Encode())
	if v, _ := attrOf(r.body, "filter-user", "value"); v != user {
		t.Errorf("the filter field holds %q, want %q", v, user)
	}
}

// A partial name in exact mode finds nobody: the view says so, offers the prefix view, and has
// no "Revoke all sessions of al" over an empty table.
func TestExactPartialNameOffersNoRevokeAll(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "alberta")
	s.issue(t, user, time.Hour)
	c := s.signIn(t)
	partial := user[:2]
	for _, get := range []func(string) response{c.get, c.hxGet} {
		r := get("/sessions?" + url.Values{"user": {partial}}.Encode())
		wantStatus(t, r, http.StatusOK)
		if n := testids(r.body, "revoke-filtered-user"); n != 0 {
			t.Errorf("exact filter %q with no sessions offers revoke-all", partial)
		}
		href, ok := attrOf(r.body, "try-prefix", "href")
		if !ok || href != "/sessions?match=prefix&user="+partial {
			t.Errorf("try-prefix link = %q (%v), want the prefix view of %q", href, ok, partial)
		}
	}
	// The full name has its one revoke-all.
	r := c.get("/sessions?" + url.Values{"user": {user}}.Encode())
	if n := testids(r.body, "revoke-filtered-user"); n != 1 {
		t.Errorf("the view of %s has %d revoke-all buttons, want 1", user, n)
	}
	if n := testids(r.body, "revoke-user"); n != 0 {
		t.Errorf("rows carry %d revoke-all buttons, want none (one per user view)", n)
	}
}

// The 7d preset and a typed 7d mean the same; the CLI's syntax is unchanged (sessionstore).
func TestIssueAcceptsDaysInTheWebForm(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "days")
	c := s.signIn(t)
	r := c.get("/sessions")
	wantContains(t, r.body, `value="7d"`)
	for _, tc := range []struct {
		form url.Values
		want time.Duration
	}{
		{url.Values{"expire_after": {"7d"}}, 7 * 24 * time.Hour},
		{url.Values{"expire_after": {"custom"}, "expire_custom": {"7d"}}, 7 * 24 * time.Hour},
		{url.Values{"expire_custom": {"1d12h"}}, 36 * time.Hour},
	} {
		tc.form.Set("username", user)
		r := c.hxPost("/sessions", tc.form)
		wantStatus(t, r, http.StatusOK)
		id := textOf(r.body, "issued-session-id")
		var d time.Duration
		if err := s.pool.QueryRow(t.Context(), `SELECT extract(epoch FROM "expiresAt" - "createdAt")::INT8 * 1000000000 FROM console.web_sessions WHERE id = $1`, id).Scan(&d); err != nil {
			t.Fatal(err)
		}
		if d != tc.want {
			t.Errorf("%v: expires - created = %s, want %s", tc.form, d, tc.want)
		}
	}
	for _, bad := range []string{"1.5d", "d", "7dd", "-1d", "32d"} {
		r := c.hxPost("/sessions", url.Values{"username": {user}, "expire_custom": {bad}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if got := html.UnescapeString(textOf(r.body, "issue-expire-error")); got == "" {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := textOf(r.body, "max-expiry"); got != "31d" {
		t.Errorf("max-expiry %q, want 31d", got)
	}
}

// Every page names its icon, so browsers do not ask /favicon.ico and log a 404 per page; the
// old path answers too.
func TestFavicon(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	r := c.get("/login")
	m := iconLink.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the sign-in page has no <link rel=\"icon\">")
	}
	for _, path := range []string{m[1], "/favicon.ico"} {
		r := c.get(path)
		wantStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/") {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
	}
}

var iconLink = regexp.MustCompile(`<link rel="icon" href="([^"]+)"`)
