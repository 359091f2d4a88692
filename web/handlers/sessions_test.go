package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSessionsPageAndFragment(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	alice, bob := s.createUser(t, "alice"), s.createUser(t, "bob")
	for i := 0; i < 3; i++ {
		s.issue(t, alice, time.Hour)
	}
	b := s.issue(t, bob, time.Hour)
	gone := s.issue(t, bob, time.Hour)
	if _, err := s.sessions.RevokeSession(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	c := s.signIn(t)

	// The whole page: frame, filters, issue form, table; default status active.
	r := c.get("/sessions")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "<!doctype html>", `id="filters"`, `data-testid="issue-form"`, `id="results"`)
	if got := len(rows(r.body)); got != 4 {
		t.Errorf("active rows: %d, want 4", got)
	}
	for _, id := range []string{"count-active", "count-revoked", "count-all"} {
		if textOf(r.body, id) == "" {
			t.Errorf("no %s", id)
		}
	}
	if a, rv, all := textOf(r.body, "count-active"), textOf(r.body, "count-revoked"), textOf(r.body, "count-all"); a != "4" || rv != "1" || all != "5" {
		t.Errorf("counts active %s revoked %s all %s", a, rv, all)
	}
	if !strings.Contains(r.Header.Get("Vary"), "HX-Request") {
		t.Errorf("Vary = %q", r.Header.Get("Vary"))
	}

	// htmx asks for the fragment: only the table section, no page frame.
	r = c.hxGet("/sessions?user=" + url.QueryEscape(bob) + "&status=all")
	wantStatus(t, r, http.StatusOK)
	if !strings.HasPrefix(r.body, `<section id="results"`) || strings.Contains(r.body, "<html") {
		t.Errorf("fragment is not just the table: %.200s", r.body)
	}
	got := rows(r.body)
	if len(got) != 2 || got[0].user != bob || got[1].user != bob {
		t.Fatalf("bob's rows: %+v", got)
	}
	// Newest first by default: the revoked one was issued last.
	if got[0].status != "revoked" || got[1].id != itoa(b.ID) {
		t.Errorf("order/status: %+v", got)
	}
	wantContains(t, r.body, `data-testid="revoke-filtered-user"`) // exact user: a revoke-all bar

	// The filter form's request pushes the canonical URL of its view.
	r = c.do("GET", "/sessions?user=&match=&status=active&sort=created&dir=desc&limit=50", nil,
		map[string]string{"HX-Request": "true", "HX-Trigger": "filters"})
	if got := r.Header.Get("HX-Push-Url"); got != "/sessions" {
		t.Errorf("HX-Push-Url %q", got)
	}
	// A history restore or a boosted request gets the whole page.
	for _, h := range []map[string]string{{"HX-Request": "true", "HX-History-Restore-Request": "true"}, {"HX-Request": "true", "HX-Boosted": "true"}} {
		r = c.do("GET", "/sessions?status=all", nil, h)
		wantContains(t, r.body, "<!doctype html>")
	}

	// Prefix match, status and order all come from the URL.
	r = c.hxGet("/sessions?user=alic&match=prefix&status=active&sort=expires&dir=asc")
	if got := rows(r.body); len(got) != 3 || got[0].user != alice {
		t.Errorf("prefix rows: %+v", got)
	}
	r = c.hxGet("/sessions?user=alic")
	if got := rows(r.body); len(got) != 0 {
		t.Errorf("exact match on a prefix found %d rows", len(got))
	}
	r = c.hxGet("/sessions?status=revoked")
	if got := rows(r.body); len(got) != 1 || got[0].id != itoa(gone.ID) {
		t.Errorf("revoked rows: %+v", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var nextRE = regexp.MustCompile(`href="([^"]*)"[^>]*data-testid="(next-page|prev-page|first-page)"`)

func links(body string) map[string]string {
	out := map[string]string{}
	for _, m := range nextRE.FindAllStringSubmatch(body, -1) {
		out[m[2]] = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return out
}

// Keyset pages: next walks forward, previous walks back, the URL alone reproduces a page.
func TestSessionsPaging(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "pager")
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append([]string{itoa(s.issue(t, user, time.Hour).ID)}, ids...) // newest first
	}
	c := s.signIn(t)
	var seen []string
	pages := []string{"/sessions?user=" + user + "&limit=3"}
	r := c.hxGet(pages[0])
	for {
		for _, rw := range rows(r.body) {
			seen = append(seen, rw.id)
		}
		next, ok := links(r.body)["next-page"]
		if !ok {
			break
		}
		pages = append(pages, next)
		r = c.hxGet(next)
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged %v, want %v", seen, ids)
	}
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3", len(pages))
	}
	// Back from the last page.
	prev := links(r.body)["prev-page"]
	r = c.hxGet(prev)
	if got := rows(r.body); len(got) != 3 || got[0].id != ids[3] {
		t.Errorf("previous page: %+v, want from %s", got, ids[3])
	}
	// A bookmark of page 2 shows page 2 as a whole page.
	r = c.get(pages[1])
	if got := rows(r.body); len(got) != 3 || got[0].id != ids[3] {
		t.Errorf("bookmarked page 2: %+v", got)
	}
	wantContains(t, r.body, "<!doctype html>")
}

func TestSessionsBadQuery(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	for _, q := range []string{"status=zombie", "sort=username%3BDROP", "dir=sideways", "limit=0", "limit=100000", "limit=x",
		"after=nope", "after=2022-08-02T16:47:36.342338Z_1&before=2022-08-02T16:47:36.342338Z_1", "match=regex"} {
		r := c.get("/sessions?" + q)
		wantStatus(t, r, http.StatusBadRequest)
		wantContains(t, r.body, `data-testid="error-message"`, "Invalid")
		r = c.hxGet("/sessions?" + q)
		wantStatus(t, r, http.StatusBadRequest)
		if strings.Contains(r.body, "<html") {
			t.Errorf("htmx error for %s is a whole page", q)
		}
	}
}

func TestSQLLookingFiltersAreHarmless(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "victim")
	s.issue(t, user, time.Hour)
	c := s.signIn(t)
	for _, f := range []string{"' OR '1'='1", "x'; DROP TABLE console.web_sessions; --", "%", "_", `\`, "a\"b", "1 UNION SELECT 1"} {
		for _, match := range []string{"", "prefix"} {
			r := c.hxGet("/sessions?" + url.Values{"user": {f}, "match": {match}, "status": {"all"}}.Encode())
			wantStatus(t, r, http.StatusOK)
			if got := rows(r.body); len(got) != 0 {
				t.Errorf("filter %q (match %q) found %d rows", f, match, len(got))
			}
		}
	}
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions`); n != 1 {
		t.Errorf("table has %d rows", n)
	}
}

func TestRootRedirects(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	r := c.get("/")
	wantStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/overview" {
		t.Errorf("/ -> %q", r.Header.Get("Location"))
	}
	r = c.get("/no/such/page")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r.body, "There is no such page.")
}
