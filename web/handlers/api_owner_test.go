package handlers

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
)

// An owner's token does what an owner may beyond an operator: list the admins, list, make
// and revoke API tokens, through the JSON API, audited as token:<name>. Other roles get 403.
func TestOwnerAPI(t *testing.T) {
	s := newServer(t)
	owner := s.bearer(t, s.makeToken(t, "root-ops", admins.Owner))
	operator := s.bearer(t, s.makeToken(t, "deploy", admins.Operator))

	// The admins, as /admins shows them.
	r := owner.get("/api/v1/admins")
	wantStatus(t, r, http.StatusOK)
	list := decode[map[string][]apiAdmin](t, r)["admins"]
	if len(list) != 1 || list[0].Name != "admin" || list[0].Role != "owner" || list[0].Method != "password" ||
		list[0].LastSignIn != nil || list[0].Sessions != 0 || list[0].Throttled {
		t.Fatalf("admins %+v", list)
	}
	wantNotContains(t, r.body, "password_hash", "$2a$")
	s.signIn(t)
	list = decode[map[string][]apiAdmin](t, owner.get("/api/v1/admins"))["admins"]
	if len(list) != 1 || list[0].LastSignIn == nil || list[0].Sessions != 1 {
		t.Fatalf("admins after a sign-in %+v", list)
	}

	// Make a token: the secret is in this answer only, not cached; it works at once.
	create := func(c *client, body string) response {
		return c.doBody("POST", "/api/v1/tokens", "application/json", body)
	}
	r = create(owner, `{"name": "ci", "role": "viewer", "expire_after": "7d"}`)
	wantStatus(t, r, http.StatusCreated)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("create Cache-Control %q, want no-store", cc)
	}
	made := decode[apiNewToken](t, r)
	if !strings.HasPrefix(made.Secret, "sct_") || made.Token.Name != "ci" || made.Token.Role != "viewer" ||
		made.Token.CreatedBy != "token:root-ops" || made.Token.ExpiresAt.Sub(made.Token.CreatedAt) != 7*24*time.Hour ||
		made.Token.LastUsedAt != nil || made.Token.Expired {
		t.Fatalf("made %+v", made)
	}
	sum := sha256.Sum256([]byte(made.Secret))
	if n := s.count(t, `SELECT count(*) FROM console.api_tokens WHERE name = 'ci' AND token_hash = $1`, sum[:]); n != 1 {
		t.Error("the new token is not stored as its SHA-256")
	}
	ci := s.bearer(t, made.Secret)
	wantStatus(t, ci.get("/api/v1/sessions"), http.StatusOK)
	wantAPIError(t, ci.get("/api/v1/tokens"), http.StatusForbidden, "forbidden")

	// Listed with its last use, never with a secret.
	r = owner.get("/api/v1/tokens")
	wantStatus(t, r, http.StatusOK)
	wantNotContains(t, r.body, made.Secret, "sct_")
	toks := map[string]apiToken{}
	for _, tok := range decode[map[string][]apiToken](t, r)["tokens"] {
		toks[tok.Name] = tok
	}
	if len(toks) != 3 || toks["ci"].LastUsedAt == nil || toks["root-ops"].LastUsedAt == nil || toks["deploy"].LastUsedAt != nil {
		t.Fatalf("tokens %+v", toks)
	}

	// Bad requests change nothing.
	before := s.count(t, `SELECT count(*) FROM console.api_tokens`)
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name": "ci", "role": "viewer"}`, http.StatusConflict, "token_exists"},
		{`{"name": "x y", "role": "viewer"}`, http.StatusUnprocessableEntity, "invalid_name"},
		{`{"name": "<b>", "role": "viewer"}`, http.StatusUnprocessableEntity, "invalid_name"},
		{`{"name": "z", "role": "root"}`, http.StatusUnprocessableEntity, "invalid_role"},
		{`{"name": "z"}`, http.StatusUnprocessableEntity, "invalid_role"},
		{`{"name": "z", "role": "viewer", "expire_after": "7dd"}`, http.StatusUnprocessableEntity, "invalid_expiry"},
		{`{"name": "z", "role": "viewer", "expire_after": "999d"}`, http.StatusUnprocessableEntity, "invalid_expiry"},
		{`{"name": "z", "role": "viewer", "expire_after": "30s"}`, http.StatusUnprocessableEntity, "invalid_expiry"},
		{`{"name": `, http.StatusBadRequest, "bad_request"},
	} {
		wantAPIError(t, create(owner, c.body), c.status, c.code)
	}
	wantAPIError(t, create(operator, `{"name": "z", "role": "owner"}`), http.StatusForbidden, "forbidden")
	if n := s.count(t, `SELECT count(*) FROM console.api_tokens`); n != before {
		t.Fatalf("%d tokens after bad requests, want %d", n, before)
	}

	// Revoke: it stops working at once; a second revoke finds nothing.
	wantAPIError(t, operator.do("POST", "/api/v1/tokens/ci/revoke", nil, nil), http.StatusForbidden, "forbidden")
	r = owner.do("POST", "/api/v1/tokens/ci/revoke", nil, nil)
	wantStatus(t, r, http.StatusOK)
	if rev := decode[apiRevokedToken](t, r); rev.Name != "ci" || !rev.Revoked {
		t.Fatalf("revoke %+v", rev)
	}
	wantAPIError(t, ci.get("/api/v1/sessions"), http.StatusUnauthorized, "unauthorized")
	wantAPIError(t, owner.do("POST", "/api/v1/tokens/ci/revoke", nil, nil), http.StatusNotFound, "not_found")
	wantAPIError(t, owner.do("POST", "/api/v1/tokens/a%20b/revoke", nil, nil), http.StatusNotFound, "not_found")

	// Audited as the token that acted; the secret never reaches the audit log or the log.
	for k, n := range map[string]int{"token:root-ops token-create ci": 1, "token:root-ops token-revoke ci": 1,
		"token:deploy refused ": 2, "token:ci refused ": 1} {
		parts := strings.SplitN(k, " ", 3)
		q := `SELECT count(*) FROM console.audit_log WHERE admin = $1 AND action = $2 AND ($3 = '' OR target = $3)`
		if got := s.count(t, q, parts[0], parts[1], parts[2]); got != n {
			t.Errorf("%d %q entries, want %d", got, k, n)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE strpos(concat_ws('|', admin, target, detail), $1) > 0`, made.Secret); n != 0 {
		t.Error("the secret reached the audit log")
	}
	if strings.Contains(s.logs.String(), made.Secret) {
		t.Error("the secret reached the log")
	}

	// A signed-in owner uses the same API with the session's CSRF token.
	browser := s.signIn(t)
	wantStatus(t, browser.get("/api/v1/tokens"), http.StatusOK)
	form := url.Values{"name": {"by-form"}, "role": {"operator"}, "expire_after": {"36h"}}
	wantStatus(t, browser.do("POST", "/api/v1/tokens", form, nil), http.StatusForbidden)
	r = browser.do("POST", "/api/v1/tokens", form, map[string]string{"X-CSRF-Token": browser.csrf})
	wantStatus(t, r, http.StatusCreated)
	if tok := decode[apiNewToken](t, r).Token; tok.CreatedBy != "admin" || tok.ExpiresAt.Sub(tok.CreatedAt) != 36*time.Hour {
		t.Errorf("made by a session %+v", tok)
	}
}

// A token made through the API whose audit row cannot be written is not made.
func TestOwnerAPINotRecorded(t *testing.T) {
	s := newServer(t)
	owner := s.bearer(t, s.makeToken(t, "root-ops", admins.Owner))
	if _, err := s.pool.Exec(context.Background(), `ALTER TABLE console.audit_log ADD CONSTRAINT no_rows CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	r := owner.doBody("POST", "/api/v1/tokens", "application/json", `{"name": "ci", "role": "viewer"}`)
	wantAPIError(t, r, http.StatusInternalServerError, "internal")
	wantContains(t, r.body, "Nothing was changed")
	wantNotContains(t, r.body, "sct_")
	if n := s.count(t, `SELECT count(*) FROM console.api_tokens WHERE name = 'ci'`); n != 0 {
		t.Error("the token was made without its audit row")
	}
	r = owner.do("POST", "/api/v1/tokens/root-ops/revoke", nil, nil)
	wantAPIError(t, r, http.StatusInternalServerError, "internal")
	if n := s.count(t, `SELECT count(*) FROM console.api_tokens WHERE name = 'root-ops'`); n != 1 {
		t.Error("the token was revoked without its audit row")
	}
}
