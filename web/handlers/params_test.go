package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
)

// A NUL byte or bytes that are not UTF-8 in any filter answer 400 with a message, not 500.
func TestFilterTextRefused(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	for _, path := range []string{
		"/sessions?user=a%00b", "/sessions?user=%FF", "/sessions?user=%C3", "/sessions?match=prefix&user=%00",
		"/sessions.csv?user=%00", "/sessions.json?user=%FE%FF",
		"/audit?admin=%00", "/audit?target=%FF", "/audit.csv?admin=x%00",
		"/users.suggest?username=%00", "/users.suggest?username=%FF",
	} {
		for _, r := range []response{c.get(path), c.hxGet(path)} {
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", path, r.StatusCode)
				continue
			}
			if !strings.Contains(r.body, "NUL byte") && !strings.Contains(r.body, "not valid UTF-8") {
				t.Errorf("%s: no message: %.300s", path, r.body)
			}
		}
	}
	// A sign-in with such a name is a wrong name, recorded as well as it can be.
	anon := s.client(t)
	anon.get("/login")
	wantStatus(t, anon.post("/login", url.Values{"username": {"a\x00b\xff"}, "password": {"x"}}), http.StatusUnauthorized)
	page, err := s.audit.List(context.Background(), audit.Filter{Action: audit.SignInFailed})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Admin != "a\uFFFDb\uFFFD" {
		t.Errorf("failed sign-in recorded as %v (%v)", page.Entries, err)
	}
}

// Revoke-all of a name no user can have (control characters, NUL, not UTF-8): the
// confirmation and the revoke both refuse it with 400; they never disagree.
func TestRevokeAllOddNamesAgree(t *testing.T) {
	s := newServer(t)
	s.createRole(t, "plain")
	is := s.issue(t, "plain", time.Hour)
	s.pool.Exec(context.Background(), `UPDATE console.web_sessions SET username = $1 WHERE id = $2`, "a\x01b", is.ID)
	c := s.signIn(t)
	for _, seg := range []string{"a%01b", "a%00b", "%FF", "tab%09name"} {
		confirm := c.get("/users/" + seg + "/revoke")
		act := c.post("/users/"+seg+"/revoke", nil)
		if confirm.StatusCode != http.StatusBadRequest || act.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: confirmation %d, revoke %d, want 400 and 400", seg, confirm.StatusCode, act.StatusCode)
		}
		wantContains(t, confirm.body, "Invalid username in the address")
	}
	// A plain name with no session: both work.
	wantStatus(t, c.get("/users/nobody/revoke"), http.StatusOK)
	wantStatus(t, c.post("/users/nobody/revoke", nil), http.StatusSeeOther)
}
