package handlers

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgtest"
)

// attrOf returns the value of attribute attr of the first element with data-testid=id ("" and
// false when there is none).
func attrOf(body, id, attr string) (string, bool) {
	re := regexp.MustCompile(`<[^>]*data-testid="` + regexp.QuoteMeta(id) + `"[^>]*>`)
	tag := re.FindString(body)
	if tag == "" {
		return "", false
	}
	m := regexp.MustCompile(`\s` + regexp.QuoteMeta(attr) + `(?:="([^"]*)")?[\s/>]`).FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

// expireSession moves a session's expiry into the past.
func (s *server) expireSession(t *testing.T, id int64) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `UPDATE console.web_sessions
		SET "createdAt" = "createdAt" - INTERVAL '3 hours', "expiresAt" = now() AT TIME ZONE 'UTC' - INTERVAL '1 hour' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

// Confirmations focus Cancel, not the destructive button, as a dialog and as a page; the page
// (no JavaScript) has its heading as <h1>.
func TestConfirmationFocusesCancel(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "focus")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	for _, path := range []string{"/users/" + user + "/revoke", "/sessions/" + itoa(is.ID) + "/revoke"} {
		for _, partial := range []bool{true, false} {
			r := c.get(path)
			if partial {
				r = c.hxGet(path)
			}
			wantStatus(t, r, http.StatusOK)
			if _, ok := attrOf(r.body, "confirm-cancel", "autofocus"); !ok {
				t.Errorf("%s (htmx %v): Cancel is not focused first", path, partial)
			}
			if _, ok := attrOf(r.body, "confirm-revoke", "autofocus"); ok {
				t.Errorf("%s (htmx %v): the destructive button has autofocus", path, partial)
			}
			if !partial && !regexp.MustCompile(`<h1[^>]*id="confirm-title"`).MatchString(r.body) {
				t.Errorf("%s: the confirmation page has no <h1> title", path)
			}
		}
	}
}

// The texts of a confirmation fit the sessions it is about.
func TestConfirmationTexts(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	active := s.createUser(t, "conf_active")
	expiredOnly := s.createUser(t, "conf_expired")
	revokedOnly := s.createUser(t, "conf_revoked")
	none := s.createUser(t, "conf_none")
	a := s.issue(t, active, time.Hour)
	s.issue(t, active, time.Hour)
	old := s.issue(t, active, time.Hour)
	s.expireSession(t, old.ID)
	e := s.issue(t, expiredOnly, time.Hour)
	s.expireSession(t, e.ID)
	rv := s.issue(t, revokedOnly, time.Hour)
	if _, err := s.sessions.RevokeSession(ctx, rv.ID); err != nil {
		t.Fatal(err)
	}
	c := s.signIn(t)

	cases := []struct {
		name, path string
		want       []string // in the message
		notWant    []string
		button     bool // a revoke button is offered
	}{
		{"revoke-all of active sessions", "/users/" + active + "/revoke",
			[]string{"This ends 2 active sessions of " + active, "1 expired session is marked revoked too"}, nil, true},
		{"revoke-all of expired sessions only", "/users/" + expiredOnly + "/revoke",
			[]string{expiredOnly + " has no active session", "marks 1 expired session as revoked"}, []string{"stops working", "ends"}, true},
		{"revoke-all of revoked sessions only", "/users/" + revokedOnly + "/revoke",
			[]string{revokedOnly + " has nothing left to revoke", "1 session is already revoked"}, []string{"expired"}, false},
		{"revoke-all of a user without sessions", "/users/" + none + "/revoke",
			[]string{none + " has no sessions"}, []string{"expired", "marks"}, false},
		{"an active session", "/sessions/" + itoa(a.ID) + "/revoke",
			[]string{"Session " + itoa(a.ID) + " of " + active + " (active, expires in 1h) stops working at once."}, nil, true},
		{"an expired session", "/sessions/" + itoa(old.ID) + "/revoke",
			[]string{"Session " + itoa(old.ID) + " of " + active + " expired 1h ago", "no longer works", "marks it revoked"},
			[]string{"stops working"}, true},
		{"a revoked session", "/sessions/" + itoa(rv.ID) + "/revoke",
			[]string{"Session " + itoa(rv.ID) + " of " + revokedOnly + " was already revoked at "}, []string{"stops working"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.hxGet(tc.path)
			wantStatus(t, r, http.StatusOK)
			msg := html.UnescapeString(textOf(r.body, "confirm-message"))
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("confirm-message = %q, want it to say %q", msg, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("confirm-message = %q, want it not to say %q", msg, w)
				}
			}
			if got := testids(r.body, "confirm-revoke") > 0; got != tc.button {
				t.Errorf("revoke button offered: %v, want %v", got, tc.button)
			}
			if testids(r.body, "confirm-cancel") != 1 {
				t.Errorf("no way back (confirm-cancel)")
			}
		})
	}
}

// Revoking a session that was already revoked is not shown as a success.
func TestAlreadyRevokedIsNotASuccess(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "twice")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	r := c.hxPost("/sessions/"+itoa(is.ID)+"/revoke", nil)
	if kind, _ := attrOf(r.body, "notice-box", "data-kind"); kind != "success" {
		t.Errorf("first revoke: notice kind %q, want success", kind)
	}
	r = c.hxPost("/sessions/"+itoa(is.ID)+"/revoke", nil)
	if got := textOf(r.body, "notice"); !strings.Contains(got, "was already revoked at") {
		t.Errorf("second revoke notice %q", got)
	}
	if kind, _ := attrOf(r.body, "notice-box", "data-kind"); kind != "info" {
		t.Errorf("second revoke: notice kind %q, want info (not a green success)", kind)
	}
	r = c.hxPost("/users/"+user+"/revoke", nil)
	if kind, _ := attrOf(r.body, "notice-box", "data-kind"); kind != "info" {
		t.Errorf("revoke-all with nothing left: notice kind %q, want info", kind)
	}
}

// Revoke-all of more than ConfirmByNameOver active sessions asks for the username to be typed,
// and the server holds to it: without the name nothing is revoked.
func TestRevokeAllOfManyAsksForTheName(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{ConfirmByNameOver: 3})
	many, few := s.createUser(t, "many"), s.createUser(t, "few")
	for range 4 {
		s.issue(t, many, time.Hour)
	}
	for range 3 {
		s.issue(t, few, time.Hour)
	}
	c := s.signIn(t)

	r := c.hxGet("/users/" + few + "/revoke")
	if testids(r.body, "confirm-name") != 0 {
		t.Errorf("3 active sessions (not over the limit of 3): asks for the name")
	}
	r = c.hxGet("/users/" + many + "/revoke")
	if testids(r.body, "confirm-name") != 1 {
		t.Fatalf("4 active sessions (over the limit of 3): does not ask for the name\n%s", r.body)
	}
	wantContains(t, r.body, "Type "+many+" to confirm")
	activeOf := func(u string) int {
		return s.count(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL`, u)
	}
	for _, typed := range []string{"", "man", many + "x"} {
		for _, partial := range []bool{true, false} {
			form := url.Values{"confirm_name": {typed}}
			var r response
			if partial {
				r = c.hxPost("/users/"+many+"/revoke", form)
			} else {
				r = c.post("/users/"+many+"/revoke", form)
			}
			wantStatus(t, r, http.StatusUnprocessableEntity)
			if got := textOf(r.body, "confirm-name-error"); !strings.Contains(got, "Type "+many) {
				t.Errorf("typed %q: confirm-name-error %q", typed, got)
			}
			if partial && (r.Header.Get("HX-Retarget") != "#confirm-dialog" || r.Header.Get("HX-Reswap") != "innerHTML") {
				t.Errorf("typed %q: the re-asked confirmation goes to %q/%q, want the dialog", typed,
					r.Header.Get("HX-Retarget"), r.Header.Get("HX-Reswap"))
			}
			if n := activeOf(many); n != 4 {
				t.Fatalf("typed %q: %d of 4 sessions left unrevoked", typed, n)
			}
		}
	}
	r = c.hxPost("/users/"+many+"/revoke", url.Values{"confirm_name": {many}})
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "notice"); got != "Revoked 4 sessions of "+many+" (4 were active)." {
		t.Errorf("notice %q", got)
	}
	if n := activeOf(many); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

// Counts in notices use one number format.
func TestNoticeNumbersUseOneFormat(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{ConfirmByNameOver: 5000})
	user := s.createUser(t, "lots")
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', $1, now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 1200)`, user); err != nil {
		t.Fatal(err)
	}
	c := s.signIn(t)
	r := c.hxPost("/users/"+user+"/revoke", nil)
	if got := textOf(r.body, "notice"); got != "Revoked 1,200 sessions of "+user+" (1,200 were active)." {
		t.Errorf("notice %q", got)
	}
}
