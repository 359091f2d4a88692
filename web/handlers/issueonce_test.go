package handlers

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var formOnceField = regexp.MustCompile(`<input type="hidden" name="form_once" value="([^"]+)"`)

// issueFormOf returns the issue form's fields as a page shows them (its one-time token and
// return view included).
func issueFormOf(t *testing.T, body string) url.Values {
	t.Helper()
	m := formOnceField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the issue form has no one-time token (form_once)")
	}
	return url.Values{"form_once": {m[1]}}
}

// Without JavaScript, reloading the page after issuing posts the same form again: nothing is
// issued a second time, and the page says that the cookie was already shown. A form token is
// bound to the admin session that got it.
func TestRepeatedIssueFormIssuesNothing(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "once")
	c := s.signIn(t)
	sessionsOf := func() int {
		return s.count(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1`, user)
	}
	form := issueFormOf(t, c.get("/sessions").body)
	form.Set("username", user)
	form.Set("expire_after", "1h")

	r := c.post("/sessions", form)
	wantStatus(t, r, http.StatusOK)
	id := textOf(r.body, "issued-session-id")
	if id == "" || sessionsOf() != 1 {
		t.Fatalf("first submission: session %q, %d sessions", id, sessionsOf())
	}
	fresh := issueFormOf(t, r.body)
	if fresh.Get("form_once") == form.Get("form_once") {
		t.Errorf("the page after issuing carries the used token again")
	}

	for _, post := range []func(string, url.Values) response{c.post, c.hxPost} {
		r = post("/sessions", form) // the reload (re-POST), or the same form sent again
		wantStatus(t, r, http.StatusConflict)
		if n := sessionsOf(); n != 1 {
			t.Fatalf("the repeated form issued again: %d sessions", n)
		}
		if testids(r.body, "issued-cookie") != 0 {
			t.Errorf("the repeated form shows a cookie")
		}
		msg := textOf(r.body, "issue-repeated")
		if !strings.Contains(msg, "already shown") || !strings.Contains(msg, "session "+id) {
			t.Errorf("issue-repeated = %q, want it to say the cookie of session %s was already shown", msg, id)
		}
	}

	// Another admin session cannot use this session's token.
	other := s.signIn(t)
	form2 := issueFormOf(t, c.get("/sessions").body)
	form2.Set("username", user)
	r = other.post("/sessions", form2)
	wantStatus(t, r, http.StatusConflict)
	if n := sessionsOf(); n != 1 {
		t.Errorf("a token of another admin session issued a session: %d sessions", n)
	}
	// The token's own session still can.
	form2.Del("_csrf") // post set other's
	r = c.post("/sessions", form2)
	wantStatus(t, r, http.StatusOK)
	if n := sessionsOf(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}
