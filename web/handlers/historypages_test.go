package handlers

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

// section returns the part of body inside the element with data-testid=id (up to the next
// closing tag of its kind: good enough for tables, lists and definition lists here).
func section(body, id string) string {
	i := strings.Index(body, `data-testid="`+id+`"`)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<")
	tag := body[start+1:]
	tag = tag[:strings.IndexAny(tag, " >")]
	end := strings.Index(body[i:], "</"+tag+">")
	if end < 0 {
		return body[start:]
	}
	return body[start : i+end]
}

var sessionRowRE = regexp.MustCompile(`data-testid="session-row" data-session-id="(\d+)" data-status="(\w+)" data-purged="(\w+)"`)

type listed struct {
	id, status string
	purged     bool
}

func listedRows(body string) []listed {
	var out []listed
	for _, m := range sessionRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, listed{m[1], m[2], m[3] == "true"})
	}
	return out
}

// The session page shows every column, the timeline, the clients seen at verify and the
// audit entries, live, revoked and purged; an unknown ID is a 404 that says so.
func TestSessionPage(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	user := s.createUser(t, "pageuser")
	is := s.issue(t, user, time.Hour)
	if err := s.audit.Record(ctx, audit.Entry{Admin: "admin", Action: audit.Issue, Target: user, SessionID: is.ID, Reason: "ticket <42>"}); err != nil {
		t.Fatal(err)
	}
	for _, ua := range []string{"curl/8.5", "curl/8.5", "Mozilla/5.0 (X11)"} {
		r := c.do("GET", "/auth/verify", nil, map[string]string{"X-Cockroach-API-Session": is.Cookie.Value(), "User-Agent": ua,
			"X-Forwarded-Host": "app.example", "X-Forwarded-Uri": "/dash?x=1"})
		wantStatus(t, r, http.StatusOK)
	}
	s.sync(t)
	id := strconv.FormatInt(is.ID, 10)
	r := c.get("/sessions/" + id)
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "session-status"); got != "active" {
		t.Errorf("status %q", got)
	}
	fields := section(r.body, "session-fields")
	wantContains(t, fields, `href="/users/`+user+`"`, ">createdAt<", ">expiresAt<", ">revokedAt<", ">auditInfo<", "ticket &lt;42&gt;", "admin",
		"app.example/dash")
	wantNotContains(t, fields, "x=1")
	tl := section(r.body, "timeline")
	for _, ev := range []string{"t-created", "t-first-use", "t-last-use", "t-expires"} {
		if !strings.Contains(tl, `data-testid="`+ev+`"`) {
			t.Errorf("timeline lacks %s:\n%s", ev, tl)
		}
	}
	clients := section(r.body, "clients")
	if n := strings.Count(clients, `data-testid="client-row"`); n != 2 {
		t.Errorf("%d client rows, want 2 (two user agents)", n)
	}
	wantContains(t, clients, "Mozilla/5.0 (X11)", "127.0.0.1", ">2<")
	wantContains(t, section(r.body, "audit-table"), `data-action="issue"`, "ticket &lt;42&gt;")
	if testids(r.body, "session-revoke") != 1 {
		t.Error("no revoke button on an active session")
	}
	// A viewer sees the page, without the revoke button.
	viewer := s.addAdmin(t, "vic", admins.Viewer)
	if r := viewer.get("/sessions/" + id); r.StatusCode != http.StatusOK || testids(r.body, "session-revoke") != 0 {
		t.Errorf("viewer: status %d, %d revoke buttons", r.StatusCode, testids(r.body, "session-revoke"))
	}
	if r := viewer.get(userURL(user)); r.StatusCode != http.StatusOK || testids(r.body, "user-revoke-all") != 0 {
		t.Errorf("viewer's user page: status %d, %d revoke-all buttons", r.StatusCode, testids(r.body, "user-revoke-all"))
	}

	// Revoked: no revoke button, the revocation on the timeline.
	c.hxPost("/sessions/"+id+"/revoke", nil)
	r = c.get("/sessions/" + id)
	if textOf(r.body, "session-status") != "revoked" || testids(r.body, "session-revoke") != 0 || testids(r.body, "t-revoked") != 1 {
		t.Errorf("revoked session page: status %q", textOf(r.body, "session-status"))
	}

	// Purged: still there, marked, with its last known state.
	s.sync(t)
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.web_sessions WHERE id = $1`, is.ID); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	r = c.get("/sessions/" + id)
	wantStatus(t, r, http.StatusOK)
	if textOf(r.body, "session-status") != "revoked" || testids(r.body, "session-purged") != 1 || testids(r.body, "t-purged") != 1 || testids(r.body, "f-purged") != 1 {
		t.Errorf("purged session page:\n%.3000s", r.body)
	}

	// Unknown and malformed IDs.
	r = c.get("/sessions/123456789")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r.body, "No session 123456789: it is not in the session table, and the console&#39;s history never saw it.")
	for _, bad := range []string{"abc", "12x", "-", "99999999999999999999"} {
		wantStatus(t, c.get("/sessions/"+bad), http.StatusNotFound)
	}
	// A session the history has not recorded yet (issued just now) still has its page.
	fresh := s.issue(t, user, time.Hour)
	r = c.get("/sessions/" + strconv.FormatInt(fresh.ID, 10))
	wantStatus(t, r, http.StatusOK)
	if testids(r.body, "not-recorded") != 1 {
		t.Error("a session not yet in the history does not say so")
	}
}

// The user page answers for any name: a user, a role, a dropped user, a name never seen;
// it lists the user's sessions in the table and in the history.
func TestUserPage(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	user := s.createUser(t, "upage")
	a, b := s.issue(t, user, time.Hour), s.issue(t, user, time.Hour)
	s.sync(t)
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.web_sessions WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if err := s.audit.Record(ctx, audit.Entry{Admin: "admin", Action: audit.RevokeAll, Target: user, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r := c.get(userURL(user))
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "user-state"); got != "exists" {
		t.Errorf("state %q", got)
	}
	if got := listedRows(section(r.body, "live-sessions")); len(got) != 1 || got[0].id != strconv.FormatInt(b.ID, 10) || got[0].purged {
		t.Errorf("live sessions %+v", got)
	}
	if got := listedRows(section(r.body, "purged-sessions")); len(got) != 1 || got[0].id != strconv.FormatInt(a.ID, 10) || !got[0].purged || got[0].status != "active" {
		t.Errorf("purged sessions %+v", got)
	}
	if textOf(r.body, "count-active") != "1" || textOf(r.body, "count-purged") != "1" {
		t.Errorf("counts active %q purged %q", textOf(r.body, "count-active"), textOf(r.body, "count-purged"))
	}
	wantContains(t, section(r.body, "audit-table"), `data-action="revoke-all"`)
	wantContains(t, r.body, `href="/sessions/`+strconv.FormatInt(b.ID, 10)+`"`, `data-testid="user-revoke-all"`)

	// A role, a dropped user, a name never seen.
	role := "upage_role_" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := s.pool.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()) })
	if got := textOf(c.get(userURL(role)).body, "user-state"); got != "role" {
		t.Errorf("role's state %q", got)
	}
	if _, err := s.pool.Exec(ctx, "DROP ROLE "+pgx.Identifier{user}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	r = c.get(userURL(user))
	if got := textOf(r.body, "user-state"); got != "dropped" || len(listedRows(r.body)) != 2 {
		t.Errorf("dropped user's state %q, rows %v", got, listedRows(r.body))
	}
	for _, name := range []string{"never_seen_here", `<b>"it's"</b>`, "a/b", "x%y", "Ünï"} {
		r = c.get(userURL(name))
		wantStatus(t, r, http.StatusOK)
		if got := html.UnescapeString(textOf(r.body, "user-name")); got != name {
			t.Errorf("user page of %q names %q", name, got)
		}
		if textOf(r.body, "user-state") != "unknown" || testids(r.body, "user-revoke-all") != 0 {
			t.Errorf("%q: state %q", name, textOf(r.body, "user-state"))
		}
		wantNotContains(t, r.body, "<b>")
	}
	for _, bad := range []string{"%00", "a%0Ab", "%FF"} {
		wantStatus(t, c.get("/users/"+bad), http.StatusBadRequest)
	}
}

// The health page shows who purges the table, its state, the days and the jobs.
func TestHealthPage(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	user := s.createUser(t, "hp")
	s.issue(t, user, time.Hour)
	s.sync(t)
	r, err := jobs.New(ctx, s.pool, pgdb.Postgres, jobs.Options{Holder: "replica-1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r.Add(jobs.Job{Name: "history-sync", Every: time.Minute, Run: func(ctx context.Context, p *jobs.Pass) error {
		p.Detail("1 new")
		return nil
	}})
	if ran, err := r.RunNow(ctx, "history-sync"); !ran || err != nil {
		t.Fatalf("RunNow %v %v", ran, err)
	}
	resp := c.get("/health")
	wantStatus(t, resp, http.StatusOK)
	wantContains(t, textOf(resp.body, "purger"), "The console (PostgreSQL)")
	if textOf(resp.body, "live-rows") == "" || testids(resp.body, "day") != 14 || testids(resp.body, "health-ok") != 1 {
		t.Errorf("health page:\n%.3000s", resp.body)
	}
	jobsTable := section(resp.body, "jobs")
	wantContains(t, jobsTable, "history-sync", "replica-1", "1 new")
	wantContains(t, resp.body, `aria-current="page">Health`)
}

// On CockroachDB (the fixture behind the CockroachDB-personality proxy): the cluster's purge
// (simulated by deleting rows) leaves the sessions on the session and user pages, marked
// purged; the user page reads the history (CockroachDB's table has no username index); the
// health page says CockroachDB purges and shows its settings.
func TestCockroachPurgeShownOnPages(t *testing.T) {
	ctx := context.Background()
	dbURL, _, _ := cockroachDB(t)
	s := newServerOn(t, dbURL, Config{})
	c := s.signIn(t)
	var ids []string
	var lastCookie string
	for range 3 {
		r := c.hxPost("/sessions", url.Values{"username": {"web_user"}, "expire_after": {"1h"}})
		wantStatus(t, r, http.StatusOK)
		ids = append(ids, textOf(r.body, "issued-session-id"))
		lastCookie = html.UnescapeString(textOf(r.body, "issued-cookie"))
	}
	if ids[0] == "" {
		t.Fatalf("no issued-session-id in the issue panel")
	}
	// A use at verify: recorded by the console, never written to system.web_sessions; the
	// sessions page shows the recorded last use.
	var tableUsed time.Time
	if err := s.pool.QueryRow(ctx, `SELECT "lastUsedAt" FROM system.web_sessions WHERE id = $1`, ids[2]).Scan(&tableUsed); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	wantStatus(t, c.do("GET", "/auth/verify", nil, map[string]string{"Cookie": strings.Split(lastCookie, ";")[0]}), http.StatusOK)
	s.sync(t)
	var after time.Time
	if err := s.pool.QueryRow(ctx, `SELECT "lastUsedAt" FROM system.web_sessions WHERE id = $1`, ids[2]).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(tableUsed) {
		t.Errorf("verify wrote system.web_sessions: lastUsedAt %s -> %s", tableUsed, after)
	}
	a, _, _ := s.history.Activity(ctx, mustID(t, ids[2]))
	row := c.hxGet("/sessions?status=all&id=" + ids[2]).body
	if iso := a.LastUsedAt.Format(time.RFC3339Nano); !strings.Contains(section(row, "sessions-table"), `<td data-label="Last used"><span class="tc"><time datetime="`+iso+`"`) {
		t.Errorf("the sessions page does not show the recorded last use %s:\n%.1500s", iso, section(row, "sessions-table"))
	}
	// The cluster's purge (after revocation and TTL): gone from system.web_sessions.
	if _, err := s.pool.Exec(ctx, `DELETE FROM system.web_sessions WHERE id = ANY($1::INT8[])`, ids[:2]); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, id := range ids[:2] {
		r := c.get("/sessions/" + id)
		wantStatus(t, r, http.StatusOK)
		if testids(r.body, "session-purged") != 1 || testids(r.body, "f-userid") != 1 || testids(r.body, "session-revoke") != 0 {
			t.Errorf("purged session %s's page:\n%.2500s", id, r.body)
		}
	}
	r := c.get("/users/WEB_USER")
	wantStatus(t, r, http.StatusOK)
	if textOf(r.body, "user-name") != "web_user" || textOf(r.body, "user-state") != "exists" || testids(r.body, "live-note") != 1 {
		t.Errorf("user page: %q %q", textOf(r.body, "user-name"), textOf(r.body, "user-state"))
	}
	if got := listedRows(section(r.body, "purged-sessions")); len(got) != 2 || !got[0].purged {
		t.Errorf("purged sessions %+v", got)
	}
	if got := listedRows(section(r.body, "live-sessions")); len(got) != 1 || got[0].id != ids[2] {
		t.Errorf("live sessions %+v", got)
	}
	if n := s.count(t, `SELECT count(*) FROM `+history.Table+` WHERE purged_at IS NOT NULL`); n != 2 {
		t.Errorf("%d purged in the history", n)
	}
	h := c.get("/health")
	wantContains(t, textOf(h.body, "purger"), "CockroachDB")
	wantContains(t, section(h.body, "settings"), "server.web_session.purge.ttl", "server.log_gc.period")
}

// The address recorded for a use is the client's as the trusted-proxy rules give it: from a
// trusted proxy's X-Forwarded-For or X-Real-IP; never from a peer that is not trusted.
func TestActivityClientAddress(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		trusted []string
		headers map[string]string
		want    string
	}{
		{"trusted X-Forwarded-For", []string{"127.0.0.1"}, map[string]string{"X-Forwarded-For": "203.0.113.5"}, "203.0.113.5"},
		{"trusted X-Real-IP", []string{"127.0.0.1"}, map[string]string{"X-Real-IP": "198.51.100.9"}, "198.51.100.9"},
		{"untrusted headers", nil, map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Real-IP": "198.51.100.9"}, "127.0.0.1"},
		{"spoofed left of the proxy", []string{"127.0.0.0/8"}, map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nets, err := ParseTrustedProxies(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			s := newServerOn(t, pgtest.NewDB(t), Config{TrustedProxies: nets})
			cl := s.client(t)
			user := s.createUser(t, "addr")
			is := s.issue(t, user, time.Hour)
			h := map[string]string{"X-Cockroach-API-Session": is.Cookie.Value()}
			for k, v := range c.headers {
				h[k] = v
			}
			wantStatus(t, cl.do("GET", "/auth/verify", nil, h), http.StatusOK)
			s.sync(t)
			a, ok, err := s.history.Activity(ctx, is.ID)
			if err != nil || !ok || a.LastAddr != c.want {
				t.Errorf("recorded address %q (%v %v), want %q", a.LastAddr, ok, err, c.want)
			}
		})
	}
}

// The audit page's auditor filters: prefix search on admin and target, the session ID, a
// time range; every value in the URL and in the CSV export; bad values are a 400 naming them.
func TestAuditFilters(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	for _, e := range []audit.Entry{
		{Admin: "alice", Action: audit.Issue, Target: "root", SessionID: 41, Reason: "ticket 7"},
		{Admin: "alicia", Action: audit.Revoke, Target: "roots", SessionID: 42},
		{Admin: "bob", Action: audit.RevokeAll, Target: "web_user"},
	} {
		if err := s.audit.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE console.audit_log SET at = TIMESTAMPTZ '2026-11-01 12:00:00+00' +
		(CASE admin WHEN 'alice' THEN 0 WHEN 'alicia' THEN 1 ELSE 2 END) * INTERVAL '1 day'
		WHERE admin IN ('alice', 'alicia', 'bob')`); err != nil {
		t.Fatal(err)
	}
	admins := func(path string) string {
		t.Helper()
		r := c.get(path)
		wantStatus(t, r, http.StatusOK)
		var got []string
		for _, m := range regexp.MustCompile(`<td data-label="Admin"[^>]*>([^<]*)</td>`).FindAllStringSubmatch(r.body, -1) {
			got = append(got, m[1])
		}
		return strings.Join(got, ",")
	}
	for path, want := range map[string]string{
		"/audit?admin=ali&admin_match=prefix":                      "alicia,alice",
		"/audit?admin=ali":                                         "",
		"/audit?target=root&target_match=prefix&action=revoke":     "alicia",
		"/audit?session=41":                                        "alice",
		"/audit?after=2026-11-02&before=2026-11-03":                "alicia",
		"/audit?after=2026-11-02T12:00&admin=b&admin_match=prefix": "bob",
		"/audit?before=2026-11-01%2012:00:00.000001&target=root":   "alice",
	} {
		if got := admins(path); got != want {
			t.Errorf("%s: admins %q, want %q", path, got, want)
		}
	}
	r := c.get("/audit?admin=ali&admin_match=prefix&after=2026-11-01")
	wantContains(t, r.body, `href="/audit.csv?admin=ali&amp;admin_match=prefix&amp;after=2026-11-01"`, `href="/users/root"`, `href="/sessions/41"`, "ticket 7",
		`value="2026-11-01"`)
	csv := c.get("/audit.csv?admin=ali&admin_match=prefix&after=2026-11-01")
	wantStatus(t, csv, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(csv.body), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], ",reason") || !strings.Contains(csv.body, "ticket 7") {
		t.Errorf("CSV:\n%s", csv.body)
	}
	for _, bad := range []string{"/audit?after=yesterday", "/audit?before=2026-13-01", "/audit?session=x", "/audit?session=-1",
		"/audit?admin_match=fuzzy", "/audit?older=0", "/audit?older=5&newer=6"} {
		r := c.get(bad)
		wantStatus(t, r, http.StatusBadRequest)
	}
	wantContains(t, c.get("/audit?after=yesterday").body, "Invalid after time in the address")
}

// /history lists every session seen, purged ones marked, with the sessions page's filters,
// paging and exports (with a purged column), and purged=yes|no; /sessions has the auditors'
// filters too, and refuses purged=.
func TestHistoryPage(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	user := s.createUser(t, "hist")
	var ids []int64
	for range 4 {
		ids = append(ids, s.issue(t, user, time.Hour).ID)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE console.web_sessions SET "createdAt" = '2026-11-03 10:00:00' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	s.sync(t) // (the back-dated row was recorded by the first pass, which reads every row)
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.web_sessions WHERE id = ANY($1)`, ids[:2]); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	byID := func(body string) map[string]bool { // id -> purged
		out := map[string]bool{}
		for _, m := range regexp.MustCompile(`data-session-id="(\d+)" data-username="[^"]*" data-status="\w+"( data-purged="true")?`).FindAllStringSubmatch(body, -1) {
			out[m[1]] = m[2] != ""
		}
		return out
	}
	id := func(i int) string { return strconv.FormatInt(ids[i], 10) }
	r := c.get("/history?user=" + user)
	wantStatus(t, r, http.StatusOK)
	got := byID(r.body)
	if len(got) != 4 || !got[id(0)] || !got[id(1)] || got[id(2)] || got[id(3)] {
		t.Errorf("history rows %v", got)
	}
	wantContains(t, r.body, `aria-current="page">History`, `href="/users/`+user+`"`, `href="/sessions/`+id(2)+`"`,
		`href="/history.csv?user=`+user+`"`, `data-testid="more-filters"`)
	if testids(r.body, "revoke-session") != 0 {
		t.Error("history rows carry revoke buttons")
	}
	for path, want := range map[string][]string{
		"/history?purged=yes&user=" + user: {id(0), id(1)},
		"/history?purged=no&user=" + user:  {id(2), id(3)},
		"/history?id=" + id(1):             {id(1)},
		"/history?created_after=2026-11-03&created_before=2026-11-04&user=" + user: {id(0)},
		"/sessions?status=all&id=" + id(3):                                         {id(3)},
		"/sessions?status=all&created_after=2026-11-03&created_before=2026-11-04":  nil,
	} {
		r := c.hxGet(path)
		wantStatus(t, r, http.StatusOK)
		got := byID(r.body)
		if len(got) != len(want) {
			t.Errorf("%s: rows %v, want %v", path, got, want)
		}
		for _, w := range want {
			if _, ok := got[w]; !ok {
				t.Errorf("%s: rows %v, want %v", path, got, want)
			}
		}
	}
	if r := c.hxGet("/history?purged=yes&user=" + user); textOf(r.body, "count-all") != "2" || textOf(r.body, "count-active") != "2" {
		t.Errorf("purged-only counts: all %q active %q", textOf(r.body, "count-all"), textOf(r.body, "count-active"))
	}
	if r := c.hxGet("/history?purged=no&user=" + user); textOf(r.body, "count-all") != "2" {
		t.Errorf("unpurged counts: all %q", textOf(r.body, "count-all"))
	}
	if r := c.hxGet("/history?user=" + user); textOf(r.body, "count-all") != "4" {
		t.Errorf("history counts: all %q", textOf(r.body, "count-all"))
	}
	csv := c.get("/history.csv?user=" + user + "&purged=yes")
	wantStatus(t, csv, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(csv.body), "\n")
	if len(lines) != 3 || lines[0] != "username,session ID,created,expires,revoked,last used,purged" || strings.HasSuffix(lines[1], ",NULL") {
		t.Errorf("history CSV:\n%s", csv.body)
	}
	js := c.get("/history.json?id=" + id(2))
	wantContains(t, js.body, `"purged":"NULL"`, `"session ID":"`+id(2)+`"`)
	for _, bad := range []string{"/sessions?purged=yes", "/history?purged=maybe", "/history?id=x", "/history?created_after=tuesday", "/sessions?used_before=2026-02-30"} {
		wantStatus(t, c.get(bad), http.StatusBadRequest)
	}
	// The filter form keeps what was asked, open.
	r = c.get("/history?used_after=2026-11-03T09:00&purged=no")
	wantContains(t, r.body, `<details class="more-filters" open`, `value="2026-11-03T09:00"`, `<option value="no" selected>`)
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The issue form takes a reason: it goes to the audit log, the history and the session's
// auditInfo ("console <admin>: <reason>"); with --require-reason a form without one is answered
// 422 with the field's message and issues nothing, as is a reason that is not one line.
func TestIssueReason(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	ctx := context.Background()
	user := s.createUser(t, "why")
	r := c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"1h"}, "reason": {"ticket 42"}})
	wantStatus(t, r, http.StatusOK)
	id := textOf(r.body, "issued-session-id")
	var info, reason string
	if err := s.pool.QueryRow(ctx, `SELECT w."auditInfo", a.reason FROM console.web_sessions w JOIN console.audit_log a ON a.session_id = w.id
		WHERE w.id = $1`, mustID(t, id)).Scan(&info, &reason); err != nil {
		t.Fatal(err)
	}
	if info != "console admin: ticket 42" || reason != "ticket 42" {
		t.Errorf("auditInfo %q, reason %q", info, reason)
	}
	s.sync(t)
	if rec, _ := s.history.Get(ctx, mustID(t, id)); rec.IssueReason != "ticket 42" || rec.IssuedBy != "admin" {
		t.Errorf("history %+v", rec)
	}
	page := c.get("/sessions")
	wantContains(t, page.body, `data-testid="issue-reason"`, "(optional)")

	s.actions.RequireReason(true)
	before := s.count(t, `SELECT count(*) FROM console.web_sessions`)
	for reason, msg := range map[string]string{
		"":           "Say why this session is issued: this console requires a reason.",
		"two\nlines": "For the reason, use one line of text, without control characters.",
	} {
		r := c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"1h"}, "reason": {reason}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if got := html.UnescapeString(textOf(r.body, "issue-reason-error")); got != msg {
			t.Errorf("reason %q: error %q, want %q", reason, got, msg)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions`); n != before {
		t.Errorf("refused issues wrote sessions: %d, had %d", n, before)
	}
	wantContains(t, c.get("/sessions").body, `name="reason"`, "required")
	wantStatus(t, c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"1h"}, "reason": {"given"}}), http.StatusOK)
}

// A revoke asked for on a session's or a user's page comes back there, with its notice; a
// `back` that is not such a page is ignored (no open redirect).
func TestRevokeFromDetailPagesComesBack(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	user := s.createUser(t, "back")
	is := s.issue(t, user, time.Hour)
	id := strconv.FormatInt(is.ID, 10)
	page := c.get("/sessions/" + id)
	href := html.UnescapeString(regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="session-revoke"`).FindStringSubmatch(page.body)[1])
	confirm := c.get(href)
	wantStatus(t, confirm, http.StatusOK)
	wantContains(t, confirm.body, `name="back" value="/sessions/`+id+`"`)
	wantNotContains(t, confirm.body, `hx-post="/sessions/`+id+`/revoke"`)
	r := c.post("/sessions/"+id+"/revoke", url.Values{"back": {"/sessions/" + id}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/sessions/"+id {
		t.Errorf("after the revoke: Location %q", loc)
	}
	back := c.get("/sessions/" + id)
	if textOf(back.body, "session-status") != "revoked" || !strings.Contains(textOf(back.body, "notice"), "Revoked session "+id) {
		t.Errorf("back on the page: status %q, notice %q", textOf(back.body, "session-status"), textOf(back.body, "notice"))
	}
	s.issue(t, user, time.Hour)
	r = c.post(userURL(user)+"/revoke", url.Values{"back": {userURL(user)}})
	if loc := r.Header.Get("Location"); loc != userURL(user) {
		t.Errorf("after revoke-all: Location %q", loc)
	}
	for _, evil := range []string{"https://evil.example/", "//evil.example", "/sessions/1/../../x", "/users/a/b", "/admins"} {
		s.issue(t, user, time.Hour)
		r := c.post(userURL(user)+"/revoke", url.Values{"back": {evil}})
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/sessions") {
			t.Errorf("back %q: Location %q", evil, loc)
		}
	}
}
