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
)

func TestRevokeAllWithConfirmation(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	user, other := s.createUser(t, "dave"), s.createUser(t, "erin")
	a := s.issue(t, user, time.Hour)
	s.issue(t, user, time.Hour)
	keep := s.issue(t, other, time.Hour)
	c := s.signIn(t)
	view := url.Values{"user": {user}, "status": {"all"}}.Encode()
	// Seen (and counted) once, then a session arrives behind the console's back (another
	// process): the confirmation still counts it.
	c.get("/sessions?" + view)
	if _, err := s.pool.Exec(ctx, `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		VALUES ('\x00', $1, now() AT TIME ZONE 'UTC' + INTERVAL '1 hour')`, user); err != nil {
		t.Fatal(err)
	}

	// The confirmation says how many active sessions it ends; as a fragment and as a page.
	r := c.hxGet("/users/" + user + "/revoke?" + url.Values{"return": {view}}.Encode())
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "confirm-message"); !strings.Contains(got, "This ends 3 active sessions of "+user) {
		t.Errorf("confirmation: %q", got)
	}
	wantContains(t, r.body, `hx-post="/users/`+user+`/revoke"`, `name="return" value="`+html.EscapeString(view)+`"`)
	if strings.Contains(r.body, "<html") {
		t.Error("htmx confirmation is a whole page")
	}
	r = c.get("/users/" + user + "/revoke?" + url.Values{"return": {view}}.Encode())
	wantContains(t, r.body, "<!doctype html>", `data-testid="confirm-revoke"`, `href="/sessions?`+html.EscapeString(view)+`"`)

	// htmx: the table comes back with a notice.
	r = c.hxPost("/users/"+user+"/revoke", url.Values{"return": {view}})
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "notice"); got != "Revoked 3 sessions of "+user+" (3 were active)." {
		t.Errorf("notice %q", got)
	}
	for _, rw := range rows(r.body) {
		if rw.user != user || rw.status != "revoked" {
			t.Errorf("after revoke-all: %+v", rw)
		}
	}
	if r.Header.Get("HX-Trigger") != "dialog-done" {
		t.Errorf("HX-Trigger %q", r.Header.Get("HX-Trigger"))
	}
	if _, err := s.sessions.Verify(ctx, a.Cookie.Value()); err == nil {
		t.Error("revoked session still verifies")
	}
	if _, err := s.sessions.Verify(ctx, keep.Cookie.Value()); err != nil {
		t.Errorf("other user's session: %v", err)
	}

	// Without JavaScript: 303 back to the view, the notice shown once.
	s.issue(t, user, time.Hour)
	r = c.post("/users/"+user+"/revoke", url.Values{"return": {view}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/sessions?"+view {
		t.Errorf("Location %q", loc)
	}
	r = c.get("/sessions?" + view)
	if got := textOf(r.body, "notice"); got != "Revoked 1 session of "+user+" (1 was active)." {
		t.Errorf("flash notice %q", got)
	}
	if r = c.get("/sessions?" + view); testids(r.body, "notice") != 0 {
		t.Error("the notice showed twice")
	}

	// Nothing left: says so.
	r = c.hxPost("/users/"+user+"/revoke", nil)
	if got := textOf(r.body, "notice"); got != user+" had no session left to revoke." {
		t.Errorf("empty revoke notice %q", got)
	}
	page, _ := s.audit.List(ctx, audit.Filter{Action: audit.RevokeAll})
	if len(page.Entries) != 3 || page.Entries[2].Count != 3 || page.Entries[2].Target != user {
		t.Errorf("audit: %+v", page.Entries)
	}
}

func TestRevokeOneSession(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	user := s.createUser(t, "frank")
	a := s.issue(t, user, time.Hour)
	b := s.issue(t, user, time.Hour)
	c := s.signIn(t)

	r := c.hxGet("/sessions/" + itoa(a.ID) + "/revoke")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Session "+itoa(a.ID)+" of "+user)
	r = c.hxPost("/sessions/"+itoa(a.ID)+"/revoke", url.Values{"return": {"status=all"}})
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "notice"); got != "Revoked session "+itoa(a.ID)+" of "+user+"." {
		t.Errorf("notice %q", got)
	}
	if _, err := s.sessions.Verify(ctx, a.Cookie.Value()); err == nil {
		t.Error("revoked session verifies")
	}
	if _, err := s.sessions.Verify(ctx, b.Cookie.Value()); err != nil {
		t.Errorf("the other session: %v", err)
	}
	r = c.hxPost("/sessions/"+itoa(a.ID)+"/revoke", nil)
	if got := textOf(r.body, "notice"); !strings.Contains(got, "was already revoked at") {
		t.Errorf("second revoke notice %q", got)
	}
	for _, path := range []string{"/sessions/999999/revoke", "/sessions/abc/revoke"} {
		wantStatus(t, c.hxPost(path, nil), http.StatusNotFound)
		wantStatus(t, c.get(path), http.StatusNotFound)
	}
	page, _ := s.audit.List(ctx, audit.Filter{Action: audit.Revoke})
	if len(page.Entries) != 1 || page.Entries[0].SessionID != a.ID {
		t.Errorf("audit %+v", page.Entries)
	}
}

// Names with slashes, percent signs or spaces survive the trip through the URL path.
func TestRevokeAwkwardUsernames(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	for _, name := range []string{"a/b", "100%", "two words", "ünï", `<b>x"'&</b>`, "x?y#z"} {
		t.Run(name, func(t *testing.T) {
			s.createRole(t, name)
			s.issue(t, name, time.Hour)
			r := c.hxGet("/sessions?" + url.Values{"user": {name}}.Encode())
			if got := rows(r.body); len(got) != 1 || html.UnescapeString(got[0].user) != name {
				t.Fatalf("rows %+v", got)
			}
			r = c.hxPost("/users/"+url.PathEscape(name)+"/revoke", nil)
			wantStatus(t, r, http.StatusOK)
			if got := html.UnescapeString(textOf(r.body, "notice")); got != "Revoked 1 session of "+name+" (1 was active)." {
				t.Errorf("notice %q", got)
			}
		})
	}
}
