package handlers

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Issue, revoke-all and revoke commit with their audit rows: when the audit log cannot take
// the row, nothing changes and the admin is told so (before, the web kept the change and only
// logged the failure).
func TestAuditedActionsNeedTheirRow(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	user := s.createUser(t, "audited")
	keep := s.issue(t, user, time.Hour)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `CREATE FUNCTION console.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log is down'; END $$;
		CREATE TRIGGER audit_down BEFORE INSERT ON console.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_down()`); err != nil {
		t.Fatal(err)
	}
	const msg = "Nothing was changed: the audit log could not record this action."
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/sessions", url.Values{"username": {user}, "expire_after": {"1h"}}},
		{"/users/" + user + "/revoke", nil},
		{"/sessions/" + strconv.FormatInt(keep.ID, 10) + "/revoke", nil},
	} {
		r := c.hxPost(post.path, post.form)
		wantStatus(t, r, http.StatusInternalServerError)
		wantContains(t, html.UnescapeString(r.body), msg)
		wantNotContains(t, r.body, "audit log is down") // internal text stays in the log
	}
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1`, user); n != 1 {
		t.Errorf("%d sessions of %s, want the 1 issued before", n, user)
	}
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL`, user); n != 1 {
		t.Errorf("the session was revoked without an audit row")
	}
}

// A sign-in and a sign-out commit with their audit rows too: with the audit log down, no admin
// session starts (and no cookie is set), and a signed-in admin's session does not end
// unrecorded; a failed sign-in is still refused.
func TestSignInAndOutNeedTheirRow(t *testing.T) {
	s := newServer(t)
	signedIn := s.signIn(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `CREATE FUNCTION console.audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log is down'; END $$;
		CREATE TRIGGER audit_down BEFORE INSERT ON console.audit_log FOR EACH ROW EXECUTE FUNCTION console.audit_down()`); err != nil {
		t.Fatal(err)
	}
	before := s.count(t, `SELECT count(*) FROM console.admin_sessions`)
	c := s.client(t)
	c.get("/login")
	r := c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	wantStatus(t, r, http.StatusInternalServerError)
	wantContains(t, html.UnescapeString(r.body), "Nothing was changed: the audit log could not record this action.")
	if c.cookie(adminCookie) != nil {
		t.Error("an admin cookie was set for an unrecorded sign-in")
	}
	wantStatus(t, c.post("/login", url.Values{"username": {"admin"}, "password": {"wrong"}}), http.StatusUnauthorized)
	wantStatus(t, signedIn.post("/logout", nil), http.StatusInternalServerError)
	if after := s.count(t, `SELECT count(*) FROM console.admin_sessions`); after != before {
		t.Errorf("admin sessions %d -> %d without audit rows", before, after)
	}
	wantStatus(t, signedIn.get("/sessions"), http.StatusOK) // still signed in
}
