package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
)

// cells returns, for each <tr> with data-testid=testid, its key attribute's value -> (each
// <td>'s data-label -> the cell's text with its spaces collapsed; for a cell with a <time>,
// "<label> time" -> the time's text as it is and "<label> datetime" -> its datetime).
func cells(t *testing.T, body, testid, key string) map[string]map[string]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *html.Node, name string) string {
		for _, a := range n.Attr {
			if a.Key == name {
				return a.Val
			}
		}
		return ""
	}
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return b.String()
	}
	var find func(n *html.Node, tag string) *html.Node
	find = func(n *html.Node, tag string) *html.Node {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == tag {
				return c
			}
			if f := find(c, tag); f != nil {
				return f
			}
		}
		return nil
	}
	out := map[string]map[string]string{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" && attr(n, "data-testid") == testid {
			row := map[string]string{}
			for td := n.FirstChild; td != nil; td = td.NextSibling {
				if td.Type != html.ElementNode || td.Data != "td" || attr(td, "data-label") == "" {
					continue
				}
				label := attr(td, "data-label")
				row[label] = strings.Join(strings.Fields(text(td)), " ")
				if tm := find(td, "time"); tm != nil {
					row[label+" time"] = text(tm)
					row[label+" datetime"] = attr(tm, "datetime")
				}
			}
			out[attr(n, key)] = row
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// /admins shows each admin's sign-in method, last sign-in and active admin sessions, and each
// token's last use, from known values in the database.
func TestAdminsPageColumns(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	owner := s.signIn(t)
	for _, name := range []string{"pat", "nel"} {
		if err := s.admins.Add(ctx, name, adminPassword, admins.Viewer); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		s.signInAs(t, "pat", adminPassword)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if tag, err := s.pool.Exec(ctx, sql, args...); err != nil || tag.RowsAffected() == 0 {
			t.Fatalf("%s: %v, %v", sql, tag, err)
		}
	}
	// One of pat's three sessions has been idle too long: it no longer counts.
	exec(`UPDATE console.admin_sessions SET last_seen = now() - INTERVAL '2 days'
		WHERE id = (SELECT id FROM console.admin_sessions WHERE admin = 'pat' ORDER BY created_at LIMIT 1)`)
	exec(`UPDATE console.admins SET last_sign_in = '2024-03-05 06:07:08.123456+00' WHERE name = 'pat'`)
	sso, _, err := s.admins.SignInOIDC(ctx, admins.OIDCIdentity{Key: "https://op.example|s1", Name: "oidc:sam@example.com",
		Fallback: "oidc:s1", Role: admins.Operator}, admins.SessionMeta{RemoteAddr: "127.0.0.1"}, audit.Entry{})
	if err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE console.admins SET last_sign_in = '2025-11-12 13:14:15.000001+00' WHERE name = $1`, sso)
	if _, _, err := s.tokens.Create(ctx, "used", admins.Viewer, time.Hour, audit.Entry{Admin: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.tokens.Create(ctx, "unused", admins.Viewer, time.Hour, audit.Entry{Admin: "admin"}); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE console.api_tokens SET last_used_at = '2026-01-02 03:04:05.5+00' WHERE name = 'used'`)

	r := owner.get("/admins")
	wantStatus(t, r, http.StatusOK)
	got := cells(t, r.body, "admin-row", "data-admin")
	const nbsp = "\u00a0"
	for name, want := range map[string]map[string]string{
		"pat": {"Sign-in": "password", "Last sign-in time": "2024-03-05 06:07:08.123456" + nbsp + "UTC",
			"Last sign-in datetime": "2024-03-05T06:07:08.123456Z", "Sessions": "2"},
		"nel": {"Sign-in": "password", "Last sign-in": "never", "Sessions": "0"},
		sso: {"Sign-in": "SSO", "Last sign-in time": "2025-11-12 13:14:15.000001" + nbsp + "UTC",
			"Last sign-in datetime": "2025-11-12T13:14:15.000001Z", "Sessions": "1"},
		"admin": {"Sign-in": "password", "Sessions": "1"}, // this session (its sign-in is now)
	} {
		row, ok := got[name]
		if !ok {
			t.Errorf("no row for %s in %v", name, got)
			continue
		}
		for col, w := range want {
			if g := row[col]; g != w {
				t.Errorf("%s: %s = %q, want %q", name, col, g, w)
			}
		}
		if name == "nel" && row["Last sign-in datetime"] != "" {
			t.Errorf("nel never signed in, but the cell has a time")
		}
	}
	if !strings.Contains(got["admin"]["Last sign-in datetime"], "T") {
		t.Errorf("admin's last sign-in (this one) is not shown: %q", got["admin"]["Last sign-in"])
	}

	toks := cells(t, r.body, "token-row", "data-token")
	if c := toks["used"]; c["Last used time"] != "2026-01-02 03:04:05.500000"+nbsp+"UTC" || c["Last used datetime"] != "2026-01-02T03:04:05.5Z" {
		t.Errorf("used token: Last used %q (datetime %q)", c["Last used time"], c["Last used datetime"])
	}
	if c := toks["unused"]; c["Last used"] != "never" || c["Last used datetime"] != "" {
		t.Errorf("unused token: Last used %q", c["Last used"])
	}
}
