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

// countIn reads the number of a data-count="kind" element.
func countIn(t *testing.T, body, kind string) int64 {
	t.Helper()
	m := regexpCount(kind).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no data-count=%q element", kind)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("data-count=%q holds %q, not a number", kind, m[1])
	}
	return n
}

// Sessions written by another process (the CLI) between two views: the counts above the table
// are never less than the rows it shows, and never older than they say.
func TestCountsCoverTheRowsShown(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	dave := s.createUser(t, "dave")
	c := s.signIn(t)
	for _, view := range []url.Values{{"user": {dave}}, {"user": {dave}, "status": {"all"}}, {}, {"status": {"all"}}} {
		c.hxGet("/sessions?" + view.Encode()) // counted (and cached) before the logins
	}
	// Five CLI logins: another process writes the table.
	if _, err := s.pool.Exec(ctx, `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', $1, now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, 5)`, dave); err != nil {
		t.Fatal(err)
	}
	for _, view := range []url.Values{{"user": {dave}}, {"user": {dave}, "status": {"all"}}, {}, {"status": {"all"}}} {
		for _, partial := range []bool{true, false} {
			r := c.get("/sessions?" + view.Encode())
			if partial {
				r = c.hxGet("/sessions?" + view.Encode())
			}
			wantStatus(t, r, http.StatusOK)
			shown := map[string]int64{}
			for _, rw := range rows(r.body) {
				shown[rw.status]++
				shown["all"]++
			}
			if shown["active"] < 5 {
				t.Fatalf("view %v: %d active rows shown, want dave's 5", view, shown["active"])
			}
			for _, kind := range []string{"active", "expired", "revoked", "all"} {
				if got := countIn(t, r.body, kind); got < shown[kind] {
					t.Errorf("view %v (htmx %v): data-count=%q is %d, but %d such rows are shown", view, partial, kind, got, shown[kind])
				}
			}
			// The counts say when they were counted: after the logins, so they include them.
			at, ok := attrOf(r.body, "counted-at", "datetime")
			if !ok {
				t.Fatalf("no counted-at time")
			}
			counted, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				t.Fatalf("counted-at %q: %v", at, err)
			}
			var latest time.Time
			if err := s.pool.QueryRow(ctx, `SELECT max("createdAt") FROM console.web_sessions`).Scan(&latest); err != nil {
				t.Fatal(err)
			}
			if counted.After(latest) {
				var want int64
				s.pool.QueryRow(ctx, `SELECT count(*) FROM console.web_sessions WHERE ($1 = '' OR username = $1)`, view.Get("user")).Scan(&want)
				if got := countIn(t, r.body, "all"); got != want {
					t.Errorf("view %v: counted at %s (after the last write) says all=%d, the table has %d", view, at, got, want)
				}
			}
		}
	}
}

func regexpCount(kind string) *regexp.Regexp {
	return regexp.MustCompile(`data-count="` + kind + `"[^>]*>([^<]*)<`)
}
