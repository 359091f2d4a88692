package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/sessionstore"
)

// /auth/verify answers every method alike (a proxy may forward the original one): no CSRF
// check, no 405, the same headers.
func TestVerifyAnyMethod(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "methods")
	is := s.issue(t, user, time.Hour)
	c := s.client(t)
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "PROPFIND", "TRACE", "FROBNICATE"} {
		r := c.do(m, "/auth/verify", nil, map[string]string{"Cookie": "session=" + is.Cookie.Value(), "Sec-Fetch-Site": "cross-site"})
		if r.StatusCode != http.StatusOK || r.Header.Get("X-Auth-User") != user || r.Header.Get("X-Auth-Session-Id") != itoa(is.ID) {
			t.Errorf("%s with a valid cookie: %d %q %q", m, r.StatusCode, r.Header.Get("X-Auth-User"), r.Header.Get("X-Auth-Session-Id"))
		}
		r = c.do(m, "/auth/verify", nil, nil)
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("X-Auth-User") != "" {
			t.Errorf("%s without a cookie: %d", m, r.StatusCode)
		}
		if m != "HEAD" && r.body != "unauthorized\n" {
			t.Errorf("%s without a cookie: body %q", m, r.body)
		}
	}
}

// countingSessions counts the session lookups of /auth/verify (the store itself is real).
type countingSessions struct {
	*sessionstore.Store
	verifies atomic.Int64
}

func (c *countingSessions) Verify(ctx context.Context, cookie string) (sessionstore.Verified, error) {
	c.verifies.Add(1)
	return c.Store.Verify(ctx, cookie)
}

// /auth/verify skips undecodable `session` cookies without a lookup and looks up at most the
// first MaxVerifyCookies decodable ones, however many a request has.
func TestVerifyCookieCap(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "many")
	good := s.issue(t, user, time.Hour)
	counting := &countingSessions{Store: s.sessions}
	h := New(counting, s.admins, s.audit, s.actions, Config{Keys: testKeys(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e := echo.New()
	h.Register(e)
	unknown := func(i int) string {
		return sessionstore.Cookie{ID: 1<<40 + int64(i), Secret: make([]byte, 16)}.Value()
	}
	verify := func(cookies []string) (int, int64) {
		counting.verifies.Store(0)
		req := httptest.NewRequest("GET", "/auth/verify", nil)
		req.Header.Set("Cookie", "session="+strings.Join(cookies, "; session="))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, counting.verifies.Load()
	}
	var junk []string
	for i := range 2000 {
		junk = append(junk, "junk"+itoa(int64(i)))
	}
	var many []string
	for i := range 2000 {
		many = append(many, unknown(i))
	}
	for _, tc := range []struct {
		name    string
		cookies []string
		status  int
		lookups int64
	}{
		{"good one after 2000 undecodable", append(junk, good.Cookie.Value()), http.StatusOK, 1},
		{"good one third", []string{unknown(1), "junk", unknown(2), good.Cookie.Value()}, http.StatusOK, 3},
		{"good one fourth", []string{unknown(1), unknown(2), unknown(3), good.Cookie.Value()}, http.StatusUnauthorized, 3},
		{"2000 unknown", many, http.StatusUnauthorized, 3},
	} {
		status, lookups := verify(tc.cookies)
		if status != tc.status || lookups != tc.lookups {
			t.Errorf("%s: status %d after %d lookups, want %d after %d", tc.name, status, lookups, tc.status, tc.lookups)
		}
	}
}

// The DB Console's aggregated cookie of v23.1+, session="<b64>,system,<b64>,<tenant>...": the
// segment of the tenant that X-Cockroach-Tenant (first) or the `tenant` cookie names counts,
// else the "system" one; a plain value is one session, whatever the tenant.
func TestVerifyTenantCookie(t *testing.T) {
	s := newServer(t)
	sys, app := s.createUser(t, "sysuser"), s.createUser(t, "appuser")
	a, b := s.issue(t, sys, time.Hour).Cookie.Value(), s.issue(t, app, time.Hour).Cookie.Value()
	agg := `session="` + a + `,system,` + b + `,app"`
	c := s.client(t)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string // the user; "" for 401
	}{
		{"no tenant: system", map[string]string{"Cookie": agg}, sys},
		{"tenant cookie", map[string]string{"Cookie": agg + "; tenant=app"}, app},
		{"tenant header", map[string]string{"Cookie": agg, "X-Cockroach-Tenant": "app"}, app},
		{"header before cookie", map[string]string{"Cookie": agg + "; tenant=app", "X-Cockroach-Tenant": "system"}, sys},
		{"unquoted", map[string]string{"Cookie": "session=" + a + ",system," + b + ",app; tenant=app"}, app},
		{"no such tenant", map[string]string{"Cookie": agg + "; tenant=other"}, ""},
		{"odd parts", map[string]string{"Cookie": `session="` + a + `,system,` + b + `"`}, ""},
		{"plain value, any tenant", map[string]string{"Cookie": "session=" + b + "; tenant=other"}, app},
		{"segments are decoded", map[string]string{"Cookie": `session="junk,system"; session="` + b + `,system"`}, app},
	} {
		r := c.do("GET", "/auth/verify", nil, tc.headers)
		got := r.Header.Get("X-Auth-User")
		if tc.want == "" && r.StatusCode != http.StatusUnauthorized || tc.want != "" && (r.StatusCode != http.StatusOK || got != tc.want) {
			t.Errorf("%s: %d %q, want %q", tc.name, r.StatusCode, got, tc.want)
		}
	}
}

// X-Auth-User carries the exact username: what a header cannot carry or would lose (spaces at
// the ends, control bytes, non-ASCII, '%') is percent-encoded, and percent-decoding gives the
// name back.
func TestVerifyExactUsername(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	for _, tc := range []struct{ name, header string }{
		{"root ", "root%20"},
		{" a b ", "%20a b%20"},
		{"   ", "%20%20%20"},
		{"ü%x", "%C3%BC%25x"},
		{"a\tb", "a%09b"}, // no session can be issued for it: the test writes the name itself
		{"plain.name+tag", "plain.name+tag"},
	} {
		s.createRole(t, tc.name)
		var is sessionstore.Issued
		if strings.ContainsRune(tc.name, '\t') {
			s.createRole(t, "tabless")
			is = s.issue(t, "tabless", time.Hour)
			if tag, err := s.pool.Exec(context.Background(), `UPDATE console.web_sessions SET username = $1 WHERE id = $2`, tc.name, is.ID); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("renaming session %d to %q: %v, %v", is.ID, tc.name, tag, err)
			}
		} else {
			is = s.issue(t, tc.name, time.Hour)
		}
		r := c.do("GET", "/auth/verify", nil, map[string]string{"X-Cockroach-API-Session": is.Cookie.Value()})
		wantStatus(t, r, http.StatusOK)
		got := r.Header.Get("X-Auth-User")
		back, err := url.PathUnescape(got)
		if got != tc.header || err != nil || back != tc.name {
			t.Errorf("user %q: X-Auth-User %q (decodes to %q, %v), want %q", tc.name, got, back, err, tc.header)
		}
	}
}
