package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
)

// bearer is a client that sends an API token and no cookie.
func (s *server) bearer(t *testing.T, secret string) *client {
	c := s.client(t)
	c.headers = map[string]string{"Authorization": "Bearer " + secret}
	return c
}

func (s *server) makeToken(t *testing.T, name string, role admins.Role) string {
	t.Helper()
	secret, _, err := s.tokens.Create(context.Background(), name, role, time.Hour, audit.Entry{Admin: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%.500s", r.Request.URL.Path, err, r.body)
	}
	return v
}

func wantAPIError(t *testing.T, r response, status int, code string) {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	e := decode[apiErrorBody](t, r)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error body %+v, want code %q and a message", e, code)
	}
}

func TestTokenMadeOnAdminsPage(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	r := owner.post("/tokens", url.Values{"name": {"ci"}, "role": {"viewer"}, "expire_after": {"720h"}})
	wantStatus(t, r, http.StatusOK)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	m := oneTimeSecret.FindStringSubmatch(r.body)
	if m == nil || !strings.HasPrefix(m[1], "sct_") {
		t.Fatalf("no token shown:\n%.3000s", r.body)
	}
	secret := m[1]
	wantContains(t, r.body, `data-testid="one-time-curl"`, "curl -H &#39;Authorization: Bearer "+secret)
	list := owner.get("/admins")
	wantContains(t, list.body, `data-token="ci"`)
	wantNotContains(t, list.body, secret)
	var stored int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM console.api_tokens WHERE token_hash = sha256($1::BYTEA)`, []byte(secret)).Scan(&stored)
	if stored != 1 {
		t.Error("the token is not stored as its SHA-256")
	}

	for _, form := range []url.Values{
		{"name": {"ci"}, "role": {"viewer"}, "expire_after": {"24h"}},
		{"name": {"x y"}, "role": {"viewer"}, "expire_after": {"24h"}},
		{"name": {"z"}, "role": {"admin"}, "expire_after": {"24h"}},
		{"name": {"z"}, "role": {"viewer"}, "expire_after": {"24h"}, "expire_custom": {"7dd"}},
		{"name": {"z"}, "role": {"viewer"}, "expire_custom": {"99999h"}},
	} {
		wantStatus(t, owner.post("/tokens", form), http.StatusUnprocessableEntity)
	}
	if n := s.count(t, `SELECT count(*) FROM console.api_tokens`); n != 1 {
		t.Fatalf("%d tokens after bad input", n)
	}

	// It works on the exports, not on the pages; revoked, not at all.
	api := s.bearer(t, secret)
	wantStatus(t, api.get("/sessions.csv"), http.StatusOK)
	r = api.get("/sessions")
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.body, "API tokens are not accepted on the HTML pages")
	wantStatus(t, owner.get("/tokens/ci/revoke"), http.StatusOK)
	wantStatus(t, owner.post("/tokens/ci/revoke", url.Values{}), http.StatusSeeOther)
	wantAPIError(t, api.get("/sessions.csv"), http.StatusUnauthorized, "unauthorized")
	wantStatus(t, owner.post("/tokens/ci/revoke", url.Values{}), http.StatusNotFound)
}

func TestJSONAPI(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "apiuser")
	op := s.bearer(t, s.makeToken(t, "deploy", admins.Operator))
	viewer := s.bearer(t, s.makeToken(t, "reader", admins.Viewer))

	// Issue: JSON in, the cookie once out.
	r := op.do("POST", "/api/v1/sessions", nil, nil)
	wantAPIError(t, r, http.StatusUnprocessableEntity, "invalid_username")
	issue := func(c *client, body string) response {
		return c.doBody("POST", "/api/v1/sessions", "application/json", body)
	}
	r = issue(op, fmt.Sprintf(`{"username": %q, "expire_after": "2h"}`, user))
	wantStatus(t, r, http.StatusCreated)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("issue Cache-Control %q", cc)
	}
	is := decode[apiIssued](t, r)
	if is.Session.Username != user || is.Session.Status != "active" || !strings.HasPrefix(is.Cookie, "session=") ||
		is.Session.ExpiresAt.Sub(is.Session.CreatedAt) != 2*time.Hour || is.Session.RevokedAt != nil {
		t.Fatalf("issued %+v", is)
	}
	for _, c := range []struct{ body, code string }{
		{`{"username": "nobody-here", "expire_after": "1h"}`, "no_such_user"},
		{fmt.Sprintf(`{"username": %q, "expire_after": "1.5d"}`, user), "invalid_expiry"},
		{fmt.Sprintf(`{"username": %q, "expire_after": "9999h"}`, user), "invalid_expiry"},
		{`{"username": "x\u0000y"}`, "invalid_username"},
	} {
		wantAPIError(t, issue(op, c.body), http.StatusUnprocessableEntity, c.code)
	}
	wantAPIError(t, issue(op, `{"username": `), http.StatusBadRequest, "bad_request")
	wantAPIError(t, issue(viewer, fmt.Sprintf(`{"username": %q}`, user)), http.StatusForbidden, "forbidden")
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions`); n != 1 {
		t.Fatalf("%d sessions after refused issues, want 1", n)
	}

	// List with the page's filters, get one.
	r = viewer.get("/api/v1/sessions?user=" + user + "&status=all&limit=1")
	wantStatus(t, r, http.StatusOK)
	list := decode[apiList](t, r)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != is.Session.ID || list.Next != nil {
		t.Fatalf("list %+v", list)
	}
	s.issue(t, user, time.Hour)
	list = decode[apiList](t, viewer.get("/api/v1/sessions?user="+user+"&limit=1"))
	if list.Next == nil || !strings.HasPrefix(*list.Next, "/api/v1/sessions?") {
		t.Fatalf("no next page: %+v", list)
	}
	next := decode[apiList](t, viewer.get(*list.Next))
	if len(next.Sessions) != 1 || next.Sessions[0].ID == list.Sessions[0].ID {
		t.Fatalf("next page %+v", next)
	}
	wantAPIError(t, viewer.get("/api/v1/sessions?status=bogus"), http.StatusBadRequest, "bad_request")
	one := decode[map[string]apiSession](t, viewer.get("/api/v1/sessions/"+is.Session.ID))
	if one["session"].Username != user {
		t.Fatalf("get %+v", one)
	}
	wantAPIError(t, viewer.get("/api/v1/sessions/12345"), http.StatusNotFound, "not_found")
	wantAPIError(t, viewer.get("/api/v1/sessions/abc"), http.StatusNotFound, "not_found")
	wantAPIError(t, viewer.get("/api/v1/nothing"), http.StatusNotFound, "not_found")

	// Revoke one, then all of the user's.
	wantAPIError(t, viewer.do("POST", "/api/v1/sessions/"+is.Session.ID+"/revoke", nil, nil), http.StatusForbidden, "forbidden")
	rev := decode[apiRevoked](t, op.do("POST", "/api/v1/sessions/"+is.Session.ID+"/revoke", nil, nil))
	if !rev.Revoked || rev.Session.Status != "revoked" || rev.Session.RevokedAt == nil {
		t.Fatalf("revoke %+v", rev)
	}
	if again := decode[apiRevoked](t, op.do("POST", "/api/v1/sessions/"+is.Session.ID+"/revoke", nil, nil)); again.Revoked {
		t.Error("a second revoke says it revoked")
	}
	wantAPIError(t, op.do("POST", "/api/v1/sessions/999999/revoke", nil, nil), http.StatusNotFound, "not_found")
	all := decode[apiRevokedUser](t, op.do("POST", "/api/v1/users/"+url.PathEscape(user)+"/revoke", nil, nil))
	if all.Username != user || all.Revoked != 1 || all.Active != 1 {
		t.Fatalf("revoke user %+v", all)
	}
	wantAPIError(t, op.do("POST", "/api/v1/users/a%00b/revoke", nil, nil), http.StatusBadRequest, "invalid_username")

	// Bad tokens.
	for _, h := range []string{"Bearer sct_nope", "Bearer", "Basic YWRtaW46eA==", "bearer  "} {
		c := s.client(t)
		c.headers = map[string]string{"Authorization": h}
		r := c.get("/api/v1/sessions")
		wantAPIError(t, r, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: WWW-Authenticate %q", h, r.Header.Get("WWW-Authenticate"))
		}
	}
	wantAPIError(t, s.client(t).get("/api/v1/sessions"), http.StatusUnauthorized, "unauthorized")

	// Actions by tokens are audited as token:<name>.
	want := map[string]int{"token:deploy issue": 1, "token:deploy revoke": 1, "token:deploy revoke-all": 1, "token:reader refused": 2}
	for k, n := range want {
		who, action, _ := strings.Cut(k, " ")
		if got := s.count(t, `SELECT count(*) FROM console.audit_log WHERE admin = $1 AND action = $2`, who, action); got != n {
			t.Errorf("%d %s entries, want %d", got, k, n)
		}
	}
	if got := s.count(t, `SELECT count(*) FROM console.audit_log WHERE detail LIKE '%sct_%' OR target LIKE '%sct_%'`); got != 0 {
		t.Error("a token reached the audit log")
	}
	if strings.Contains(s.logs.String(), "sct_") {
		t.Error("a token reached the log")
	}
}

// The JSON API also takes the admin session, with its CSRF token for changes.
func TestJSONAPIWithSession(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	user := s.createUser(t, "u")
	wantStatus(t, c.get("/api/v1/sessions"), http.StatusOK)
	body := fmt.Sprintf(`{"username": %q}`, user)
	r := c.doBody("POST", "/api/v1/sessions", "application/json", body)
	wantAPIError(t, r, http.StatusForbidden, "forbidden")
	r = c.doBodyHeaders("POST", "/api/v1/sessions", "application/json", body, map[string]string{"X-CSRF-Token": c.csrf})
	wantStatus(t, r, http.StatusCreated)
}
