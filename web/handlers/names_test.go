package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
)

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	shownRE = regexp.MustCompile(`(?:title|aria-label)="([^"]*)"`)
)

// shownText is what a page shows people: its text, titles and aria-labels (not form values,
// URLs or data- attributes, which must keep the exact name).
func shownText(body string) string {
	var b strings.Builder
	b.WriteString(tagRE.ReplaceAllString(body, " "))
	for _, m := range shownRE.FindAllStringSubmatch(body, -1) {
		b.WriteString(" " + m[1])
	}
	return b.String()
}

// Usernames with invisible, bidirectional or other format characters, or spaces at the ends,
// are shown with those characters written out (<U+202E>), never raw, on every page that shows
// a username.
func TestUsernamesShownVisibly(t *testing.T) {
	s := newServer(t)
	names := map[string]string{ // name -> how it is shown
		"ad\u202Enimda": "ad&lt;U+202E&gt;nimda",
		"zw\u200Bsp":    "zw&lt;U+200B&gt;sp",
		"trail ":        "trail&lt;U+0020&gt;",
	}
	ids := map[string]int64{}
	for name := range names {
		s.createRole(t, name)
		ids[name] = s.issue(t, name, time.Hour).ID
	}
	s.audit.Record(context.Background(), audit.Entry{Admin: "x\u2066y", Action: audit.SignInFailed})
	c := s.signIn(t)
	for name, shown := range names {
		q := url.Values{"user": {name}}.Encode()
		pages := map[string]response{
			"sessions":         c.get("/sessions?status=all"),
			"filtered":         c.get("/sessions?" + q),
			"fragment":         c.hxGet("/sessions?" + q),
			"confirm all":      c.hxGet("/users/" + url.PathEscape(name) + "/revoke"),
			"confirm all page": c.get("/users/" + url.PathEscape(name) + "/revoke"),
			"confirm one":      c.get("/sessions/" + itoa(ids[name]) + "/revoke"),
			"issued":           c.hxPost("/sessions", url.Values{"username": {name}, "expire_after": {"1h"}}),
			"revoke notice":    c.hxPost("/users/"+url.PathEscape(name)+"/revoke", nil),
			"audit":            c.get("/audit"),
		}
		raw := strings.Trim(name, " ")
		if name == "trail " {
			raw = "trail " // a trailing space shows as text only where it is written out
		}
		for page, r := range pages {
			wantStatus(t, r, http.StatusOK)
			text := shownText(r.body)
			if !strings.Contains(text, shown) {
				t.Errorf("%s, %q: not shown as %q", page, name, shown)
			}
			if name != "trail " && strings.Contains(text, raw) {
				t.Errorf("%s: %q shown raw", page, name)
			}
		}
	}
	if r := c.get("/audit"); !strings.Contains(r.body, "x&lt;U+2066&gt;y") || strings.Contains(shownText(r.body), "\u2066") {
		t.Error("audit: an admin name with a bidi isolate is shown raw")
	}
}

// The issue form issues for the exact name typed; the spaces around it are dropped only when
// no user has the name with them.
func TestIssueExactUsername(t *testing.T) {
	s := newServer(t)
	s.createRole(t, "exact ")
	s.createRole(t, "exact")
	s.createRole(t, "solo")
	c := s.signIn(t)
	for _, tc := range []struct{ typed, issuedFor string }{
		{"exact ", "exact "},
		{"exact", "exact"},
		{" solo ", "solo"},
	} {
		r := c.hxPost("/sessions", url.Values{"username": {tc.typed}, "expire_after": {"1h"}})
		wantStatus(t, r, http.StatusOK)
		var got string
		if err := s.pool.QueryRow(context.Background(), `SELECT username FROM console.web_sessions ORDER BY id DESC LIMIT 1`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.issuedFor {
			t.Errorf("typed %q: issued for %q, want %q", tc.typed, got, tc.issuedFor)
		}
	}
	r := c.hxPost("/sessions", url.Values{"username": {" nobody "}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, `user &#34; nobody &#34; does not exist`, `value=" nobody "`)
}
