package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgembed"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

func TestVerifyEndpoint(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	user := s.createUser(t, "proxyuser")
	ok := s.issue(t, user, time.Hour)
	revoked := s.issue(t, user, time.Hour)
	s.sessions.RevokeSession(ctx, revoked.ID)
	c := s.client(t) // no admin needed
	good := []map[string]string{
		{"X-Cockroach-API-Session": ok.Cookie.Value()},
		{"Cookie": "session=" + ok.Cookie.Value()},
		{"Cookie": "other=1; session=" + ok.Cookie.Value()},
		{"Cookie": "session=garbage; session=" + ok.Cookie.Value()},
		{"X-Cockroach-API-Session": "cookie", "Cookie": "session=" + ok.Cookie.Value()},
	}
	for _, h := range good {
		r := c.do("GET", "/auth/verify", nil, h)
		wantStatus(t, r, http.StatusOK)
		if r.Header.Get("X-Auth-User") != user || r.Header.Get("X-Auth-Session-Id") != itoa(ok.ID) {
			t.Errorf("%v: headers %q %q", h, r.Header.Get("X-Auth-User"), r.Header.Get("X-Auth-Session-Id"))
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
	}
	wrong := sessionstore.Cookie{ID: ok.ID, Secret: make([]byte, 16)}
	bad := []map[string]string{
		{},
		{"X-Cockroach-API-Session": revoked.Cookie.Value()},
		{"Cookie": "session=" + revoked.Cookie.Value()},
		{"X-Cockroach-API-Session": wrong.Value()},
		{"X-Cockroach-API-Session": "garbage"},
		{"X-Cockroach-API-Session": ok.Cookie.Value()[:20]},
		{"X-Cockroach-API-Session": "cookie"},
		{"Cookie": "session=" + ok.Cookie.Value() + "x"},
	}
	var bodies []string
	for _, h := range bad {
		r := c.do("GET", "/auth/verify", nil, h)
		wantStatus(t, r, http.StatusUnauthorized)
		if r.Header.Get("X-Auth-User") != "" {
			t.Errorf("%v: X-Auth-User on a refusal", h)
		}
		bodies = append(bodies, r.body)
	}
	for _, b := range bodies {
		if b != bodies[0] {
			t.Errorf("refusals differ (%q vs %q): they must not tell why", b, bodies[0])
		}
	}
	// Activity: each use is noted in memory and written by the next flush; lastUsedAt gets
	// the time of the use, not of the write.
	s.sync(t)
	before, _, _ := s.history.Activity(ctx, ok.ID)
	s.pool.Exec(ctx, `UPDATE console.web_sessions SET "lastUsedAt" = "lastUsedAt" - INTERVAL '10 minutes' WHERE id = $1`, ok.ID)
	firstUse := time.Now().UTC()
	for range 3 {
		c.do("GET", "/auth/verify", nil, map[string]string{"X-Cockroach-API-Session": ok.Cookie.Value(),
			"User-Agent": "probe/1.0", "X-Forwarded-Host": "app.example", "X-Original-URI": "/reports?key=secret"})
	}
	lastUse := time.Now().UTC()
	if a, _, _ := s.history.Activity(ctx, ok.ID); a.Uses != before.Uses {
		t.Errorf("verify wrote activity on the request path")
	}
	// The write comes strictly after every use: a lastUsedAt between the first and the last
	// use is the use's time, never the write's (no bound on how long anything takes).
	time.Sleep(50 * time.Millisecond)
	s.sync(t)
	after, _ := s.sessions.Get(ctx, ok.ID)
	if after.LastUsedAt.Before(firstUse.Add(-time.Microsecond)) || after.LastUsedAt.After(lastUse) {
		t.Errorf("lastUsedAt %v, want the time of the last use, between %v and %v (the write came later)", after.LastUsedAt, firstUse, lastUse)
	}
	a, found, err := s.history.Activity(ctx, ok.ID)
	if err != nil || !found || a.Uses != before.Uses+3 || a.LastUserAgent != "probe/1.0" || a.LastHost != "app.example" || a.LastPath != "/reports" || a.LastAddr != "127.0.0.1" {
		t.Errorf("activity %+v %v %v", a, found, err)
	}
}

func TestHealthAndReady(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	for path, want := range map[string]string{"/healthz": `{"status":"ok"}`, "/readyz": `{"status":"ok","database":"ok"}`} {
		r := c.get(path)
		wantStatus(t, r, http.StatusOK)
		if strings.TrimSpace(r.body) != want || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %q %q", path, r.body, r.Header.Get("Content-Type"))
		}
	}
}

func TestExports(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "exp")
	for i := 0; i < 5; i++ {
		s.issue(t, user, time.Hour)
	}
	c := s.signIn(t)
	r := c.get("/sessions.csv?status=all&limit=2&user=" + user)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="sessions-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 6 { // the header and every row: paging does not apply to exports
		t.Fatalf("CSV: %v, %d records", err, len(recs))
	}
	if strings.Join(recs[0], ",") != "username,session ID,created,expires,revoked,last used" {
		t.Errorf("CSV header %q", recs[0])
	}
	if recs[1][4] != "NULL" || recs[1][0] != user {
		t.Errorf("CSV row %q", recs[1])
	}
	r = c.get("/sessions.json?status=all&user=" + user)
	var objs []map[string]string
	if err := json.Unmarshal([]byte(r.body), &objs); err != nil || len(objs) != 5 {
		t.Fatalf("JSON: %v (%d)", err, len(objs))
	}
	for _, k := range []string{"username", "session ID", "created", "expires", "revoked", "last used"} {
		if _, ok := objs[0][k]; !ok {
			t.Errorf("JSON lacks %q: %v", k, objs[0])
		}
	}
	// The filter applies: another user's export is empty.
	r = c.get("/sessions.csv?user=nobody")
	if recs, _ := csv.NewReader(strings.NewReader(r.body)).ReadAll(); len(recs) != 1 {
		t.Errorf("filtered export has %d records", len(recs))
	}
	wantStatus(t, c.get("/sessions.csv?status=bogus"), http.StatusBadRequest)
}

func TestAuditPage(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		s.audit.Record(ctx, audit.Entry{Admin: "admin", Action: audit.Issue, Target: "u" + itoa(int64(i%3)), SessionID: int64(100 + i)})
	}
	s.audit.Record(ctx, audit.Entry{Admin: "other", Action: audit.RevokeAll, Target: "u1", Count: 7})
	c := s.signIn(t)
	r := c.get("/audit")
	wantStatus(t, r, http.StatusOK)
	if n := testids(r.body, "audit-row"); n != 50 {
		t.Errorf("%d rows on the first page", n)
	}
	older := links2(r.body, "audit-older")
	if older == "" {
		t.Fatal("no older link")
	}
	r = c.get(older)
	if n := testids(r.body, "audit-row"); n != 12 { // 60 issues + 1 revoke-all + 1 sign-in = 62
		t.Errorf("%d rows on the second page", n)
	}
	if links2(r.body, "audit-newer") == "" {
		t.Error("no newer link on the second page")
	}
	r = c.get("/audit?" + url.Values{"admin": {"other"}}.Encode())
	if n := testids(r.body, "audit-row"); n != 1 {
		t.Errorf("admin filter: %d rows", n)
	}
	r = c.get("/audit?action=revoke-all&target=u1")
	if n := testids(r.body, "audit-row"); n != 1 {
		t.Errorf("action+target filter: %d rows", n)
	}
	r = c.get("/audit?action=issue&target=u2")
	if n := testids(r.body, "audit-row"); n != 20 {
		t.Errorf("issue u2: %d rows", n)
	}
	wantStatus(t, c.get("/audit?action=explode"), http.StatusBadRequest)
	wantStatus(t, c.get("/audit?before=-3"), http.StatusBadRequest)
	r = c.get("/audit.csv?action=issue")
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 61 || recs[0][0] != "at" {
		t.Errorf("audit CSV: %v, %d records", err, len(recs))
	}
}

func links2(body, testid string) string {
	i := strings.Index(body, `data-testid="`+testid+`"`)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(body[:i], `href="`)
	end := strings.Index(body[j+6:], `"`)
	return strings.ReplaceAll(body[j+6:j+6+end], "&amp;", "&")
}

// With the database down, pages answer 503 with a clear message and nothing internal; when it
// is back, the console recovers without a restart.
func TestDatabaseDownAndBack(t *testing.T) {
	dir := pgtest.TempDir(t) + "/data"
	ctx := context.Background()
	cl, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	port := cl.Port()
	t.Cleanup(func() { cl.Destroy() })
	s := newServerOn(t, cl.URL(), Config{})
	user := s.createUser(t, "downuser")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	wantStatus(t, c.get("/sessions"), http.StatusOK)

	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct {
		name string
		r    response
	}{
		{"page", c.get("/sessions")},
		{"fragment", c.hxGet("/sessions")},
		{"issue", c.hxPost("/sessions", url.Values{"username": {user}})},
		{"verify", c.do("GET", "/auth/verify", nil, map[string]string{"X-Cockroach-API-Session": is.Cookie.Value()})},
		{"readyz", c.get("/readyz")},
		{"login", s.client(t).get("/login")},
	} {
		if req.name == "login" {
			// The sign-in page needs no database.
			wantStatus(t, req.r, http.StatusOK)
			continue
		}
		wantStatus(t, req.r, http.StatusServiceUnavailable)
		if req.name != "readyz" {
			wantContains(t, req.r.body, "The database is unavailable right now")
		}
		wantNotContains(t, req.r.body, "dial tcp", "127.0.0.1", "pgx", "goroutine", "password", "SQLSTATE")
	}
	wantStatus(t, c.get("/healthz"), http.StatusOK)

	cl2, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, NoFsync: true, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl2.Stop() })
	r := c.get("/sessions?status=all&user=" + user)
	wantStatus(t, r, http.StatusOK)
	if len(rows(r.body)) != 1 {
		t.Errorf("after recovery: %d rows", len(rows(r.body)))
	}
	wantStatus(t, c.get("/readyz"), http.StatusOK)
}
