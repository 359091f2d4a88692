package handlers

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/internal/policy"
)

func (s *server) revokedAt(t *testing.T, id int64) bool {
	t.Helper()
	sess, err := s.sessions.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sess.RevokedAt != nil
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([\w-]+)" value="([^"]*)"`)

// formFields returns the hidden fields of a confirmation, as its form would post them.
func formFields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if m[1] != "_csrf" {
			v.Add(m[1], html.UnescapeString(m[2]))
		}
	}
	return v
}

// The sessions list is a form of checkboxes for an operator (none for a viewer); revoking a
// selection asks for confirmation with the count and the sessions, then revokes exactly those,
// audited in the same transaction, as htmx and as a plain form.
func TestBulkRevokeSelected(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "bulk")
	a, b, keep := s.issue(t, user, time.Hour), s.issue(t, user, time.Hour), s.issue(t, user, time.Hour)
	c := s.signIn(t)
	view := url.Values{"user": {user}}.Encode()
	r := c.get("/sessions?" + view)
	wantStatus(t, r, http.StatusOK)
	if n := testids(r.body, "row-select"); n != 3 {
		t.Errorf("%d row checkboxes, want 3", n)
	}
	wantContains(t, r.body, `<form id="bulk-form" class="bulk" method="post" action="/sessions/revoke"`, `Revoke all 3 matching`,
		`name="id" value="`+fmt.Sprint(a.ID)+`" form="bulk-form"`)
	viewer := s.addAdmin(t, "bulkviewer", admins.Viewer)
	if r := viewer.get("/sessions?" + view); testids(r.body, "row-select") != 0 || testids(r.body, "bulk-form") != 0 {
		t.Error("a viewer gets the bulk form")
	}

	// Nothing selected: said so, nothing changes.
	r = c.hxPost("/sessions/revoke", url.Values{"scope": {"selected"}, "view": {view}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "No session selected")
	wantNotContains(t, r.body, `data-testid="confirm-revoke"`)

	sel := url.Values{"scope": {"selected"}, "view": {view}, "id": {fmt.Sprint(a.ID), fmt.Sprint(b.ID), fmt.Sprint(a.ID)}}
	r = c.hxPost("/sessions/revoke", sel)
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "confirm-message"); !strings.Contains(got, "The 2 selected sessions stop working at once") {
		t.Errorf("confirmation %q", got)
	}
	wantContains(t, r.body, `data-testid="confirm-sample"`, fmt.Sprintf(`href="/sessions/%d"`, a.ID), `hx-post="/sessions/revoke"`)
	if s.revokedAt(t, a.ID) {
		t.Fatal("the confirmation revoked")
	}
	// The confirmation's own form, posted as a plain form (no JavaScript): back to the view.
	r = c.post("/sessions/revoke", formFields(r.body))
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/sessions?"+view {
		t.Errorf("redirect to %q", loc)
	}
	r = c.get("/sessions?" + view)
	if got := textOf(r.body, "notice"); got != "Revoked 2 sessions (2 were active)." {
		t.Errorf("notice %q", got)
	}
	if !s.revokedAt(t, a.ID) || !s.revokedAt(t, b.ID) || s.revokedAt(t, keep.ID) {
		t.Error("revoked the wrong sessions")
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke' AND admin = 'admin' AND count = 2 AND detail = 'web: 2 sessions selected'`); n != 1 {
		t.Errorf("%d audit rows, want 1", n)
	}
	// "All on this page" posts every row's page_id; with htmx the table comes back with the notice.
	r = c.hxPost("/sessions/revoke", url.Values{"scope": {"page"}, "view": {view}, "page_id": {fmt.Sprint(keep.ID)}, "confirmed": {"1"}, "return": {view}})
	wantStatus(t, r, http.StatusOK)
	if got := textOf(r.body, "notice"); got != "Revoked 1 session (1 was active)." || !s.revokedAt(t, keep.ID) {
		t.Errorf("page scope: notice %q", got)
	}
	// Selected again (already revoked): nothing happens, nothing audited.
	r = c.hxPost("/sessions/revoke", url.Values{"scope": {"selected"}, "view": {view}, "id": {fmt.Sprint(a.ID)}, "confirmed": {"1"}})
	if got := textOf(r.body, "notice"); !strings.HasPrefix(got, "No session was left to revoke") {
		t.Errorf("repeat notice %q", got)
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke'`); n != 2 {
		t.Errorf("%d audit rows after a revocation that changed nothing, want 2", n)
	}
}

// "All matching this filter" revokes exactly the sessions that matched when the admin
// confirmed: one issued after the confirmation stays; over ConfirmByNameOver the count must be
// typed; over one batch it runs in the background with a progress page, in audited batches.
func TestBulkRevokeAllMatching(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{ConfirmByNameOver: 3, BulkBatch: 2})
	user, other := s.createUser(t, "allm"), s.createUser(t, "other")
	var ids []int64
	for range 5 {
		ids = append(ids, s.issue(t, user, time.Hour).ID)
	}
	untouched := s.issue(t, other, time.Hour)
	c := s.signIn(t)
	view := url.Values{"user": {user}}.Encode()
	r := c.post("/sessions/revoke", url.Values{"scope": {"all"}, "view": {view}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "<!doctype html>", "Revoke all 5 sessions matching this filter?", `data-testid="confirm-name"`, "Type 5 to confirm", "batches of 2")
	confirm := formFields(r.body)
	if confirm.Get("at") == "" || confirm.Get("confirmed") != "1" {
		t.Fatalf("confirmation fields %v", confirm)
	}
	late := s.issue(t, user, time.Hour) // after the confirmation: not part of it

	// Without the typed count: asked again (422), nothing revoked.
	r = c.post("/sessions/revoke", confirm)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, "Type 5, the number of sessions, to revoke them.")
	if s.revokedAt(t, ids[0]) {
		t.Fatal("revoked without the typed count")
	}
	confirm.Set("confirm_name", "5")
	r = c.post("/sessions/revoke", confirm)
	wantStatus(t, r, http.StatusSeeOther)
	loc := r.Header.Get("Location")
	if !regexp.MustCompile(`^/sessions/revoke/[0-9a-f]{24}$`).MatchString(loc) {
		t.Fatalf("redirect to %q, want the progress page", loc)
	}
	var page string
	for deadline := time.Now().Add(20 * time.Second); ; {
		r = c.get(loc)
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(r.body, `data-finished="true"`) {
			page = r.body
			break
		}
		wantContains(t, r.body, `<meta http-equiv="refresh"`)
		if time.Now().After(deadline) {
			t.Fatal("the bulk revoke did not finish within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantContains(t, page, "Revoked 5 sessions (5 were active).", `data-testid="progress-revoked">5<`, `href="/sessions?`+html.EscapeString(view)+`"`)
	for _, id := range ids {
		if !s.revokedAt(t, id) {
			t.Errorf("session %d not revoked", id)
		}
	}
	if s.revokedAt(t, late.ID) || s.revokedAt(t, untouched.ID) {
		t.Error("revoked a session issued after the confirmation, or another user's")
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke' AND detail LIKE 'web: all matching user=%batch % of 3)'`); n != 3 {
		t.Errorf("%d batch audit rows, want 3", n)
	}
	if n := s.count(t, `SELECT sum(count) FROM console.audit_log WHERE action = 'bulk-revoke'`); n != 5 {
		t.Errorf("audit rows count %d revocations, want 5", n)
	}
	// A viewer cannot see a run's progress.
	viewer := s.addAdmin(t, "allmviewer", admins.Viewer)
	wantStatus(t, viewer.get(loc), http.StatusForbidden)
}

// Bad bulk forms are refused with a 400 that names the problem, and change nothing.
func TestBulkRevokeBadInput(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "badbulk")
	is := s.issue(t, user, time.Hour)
	c := s.signIn(t)
	many := url.Values{"scope": {"selected"}}
	for i := range 1001 {
		many.Add("id", fmt.Sprint(i+1))
	}
	for name, form := range map[string]url.Values{
		"scope":           {"scope": {"everything"}},
		"id":              {"scope": {"selected"}, "id": {"12abc"}},
		"negative id":     {"scope": {"selected"}, "id": {"-4"}},
		"view":            {"scope": {"all"}, "view": {"status=gone"}},
		"at":              {"scope": {"all"}, "confirmed": {"1"}, "at": {"yesterday"}},
		"rule":            {"scope": {"all"}, "view": {"rule=sideways"}},
		"disabled rule":   {"scope": {"all"}, "view": {"rule=idle"}, "confirmed": {"1"}, "at": {time.Now().UTC().Format(time.RFC3339Nano)}},
		"too many":        many,
		"NUL in the view": {"scope": {"all"}, "view": {"user=a%00b"}},
	} {
		r := c.post("/sessions/revoke", form)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400\n%.300s", name, r.StatusCode, r.body)
		}
	}
	// Without the CSRF token: refused.
	c.csrf = "forged"
	r := c.post("/sessions/revoke", url.Values{"scope": {"selected"}, "id": {fmt.Sprint(is.ID)}, "confirmed": {"1"}})
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF: status %d", r.StatusCode)
	}
	if s.revokedAt(t, is.ID) {
		t.Error("bad input revoked a session")
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke'`); n != 0 {
		t.Errorf("%d audit rows from refused requests", n)
	}
}

// The policy page shows each rule's setting and count (data-rule) and its first sessions;
// /sessions?rule= lists exactly those (also in the exports); revoke all N goes through the
// same confirmation; a rule that is off, or no rule, is a 400 in a URL.
func TestPolicyPage(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{Policy: testPolicy{cfg: policy.Config{Root: true, MaxLifetime: 48 * time.Hour}}})
	user := s.createUser(t, "pol")
	long := s.issue(t, user, 100*time.Hour)
	s.issue(t, user, time.Hour)
	var root int64
	if err := s.pool.QueryRow(context.Background(), `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		VALUES ('\x00', 'root', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour') RETURNING id`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	c := s.signIn(t)
	r := c.get("/policy")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `<strong data-rule="root" data-testid="rule-count">1</strong>`, `<strong data-rule="max-lifetime" data-testid="rule-count">1</strong>`,
		`data-testid="rule-idle" data-enabled="false"`, "--policy-idle", `data-testid="rule-value">48h<`, `List all 1 in the sessions list`, fmt.Sprintf(`href="/sessions/%d"`, root),
		`href="/sessions?rule=root"`, `data-testid="rule-revoke"`, "Not enforced", `aria-current="page">Policy</a>`)
	viewer := s.addAdmin(t, "polviewer", admins.Viewer)
	if r := viewer.get("/policy"); r.StatusCode != http.StatusOK || testids(r.body, "rule-revoke") != 0 {
		t.Errorf("viewer: status %d, %d revoke buttons", r.StatusCode, testids(r.body, "rule-revoke"))
	}

	r = c.get("/sessions?rule=max-lifetime")
	wantStatus(t, r, http.StatusOK)
	if got := rows(r.body); len(got) != 1 || got[0].id != fmt.Sprint(long.ID) {
		t.Errorf("rule=max-lifetime rows %v", got)
	}
	wantContains(t, r.body, "Active sessions breaking max-lifetime", `href="/sessions.csv?rule=max-lifetime"`, "Revoke all 1 matching")
	csv := c.get("/sessions.csv?rule=max-lifetime")
	if !strings.Contains(csv.body, fmt.Sprint(long.ID)) || strings.Count(csv.body, "\n") != 2 {
		t.Errorf("csv export of the rule:\n%s", csv.body)
	}
	for _, bad := range []string{"/sessions?rule=idle", "/sessions?rule=nope", "/sessions.json?rule=orphans", "/history?rule=root"} {
		if r := c.get(bad); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, r.StatusCode)
		}
	}

	// The list's filter fields posted as they are (no `view` field): the same confirmation.
	r = c.post("/sessions/revoke", url.Values{"scope": {"all"}, "rule": {"root"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Revoke all 1 session breaking the policy rule root?")

	// Revoke all N from the policy page: the confirmation, then back to the rule's list.
	r = c.post("/sessions/revoke", url.Values{"scope": {"all"}, "view": {"rule=root"}, "return": {"rule=root"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Revoke all 1 session breaking the policy rule root?")
	r = c.post("/sessions/revoke", formFields(r.body))
	wantStatus(t, r, http.StatusSeeOther)
	if !s.revokedAt(t, root) || s.revokedAt(t, long.ID) {
		t.Error("revoke all of root revoked the wrong sessions")
	}
	if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke' AND target = 'root' AND count = 1`); n != 1 {
		t.Errorf("%d audit rows naming the rule", n)
	}
	if r := c.get("/policy"); !strings.Contains(r.body, `<strong data-rule="root" data-testid="rule-count">0</strong>`) {
		t.Error("the root count did not drop to 0 after the revocation through this console")
	}
}

// The policy page keeps its rules rendered while what they show is the same: the same generation
// of counts and samples, the same second, and the same admin (role and CSRF token). Each of
// those changing renders them again.
func TestPolicyRulesRenderedOnce(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{Policy: testPolicy{cfg: policy.Config{Root: true, MaxLifetime: 48 * time.Hour}}})
	user := s.createUser(t, "polcache")
	s.issue(t, user, 100*time.Hour)
	now := time.Now().Truncate(time.Second)
	s.handler.now = func() time.Time { return now }
	owner := s.signIn(t)
	rules := func(c *client) (*renderedRules, string) {
		t.Helper()
		r := c.get("/policy")
		wantStatus(t, r, http.StatusOK)
		return s.handler.policyRules.Load(), r.body
	}
	first, body := rules(owner)
	if first == nil || !strings.Contains(body, first.html) || !strings.Contains(first.html, `data-testid="rule-revoke"`) {
		t.Fatalf("the rules were not kept as rendered (%v)", first)
	}
	if again, again2 := rules(owner); again != first || again2 != body {
		t.Error("a second view in the same second rendered the rules again, or showed something else")
	}

	// Another admin: another CSRF token in the rule forms, and a viewer has no revoke button.
	other := s.addAdmin(t, "polcache_op", admins.Operator)
	opRules, opBody := rules(other)
	if opRules == first || strings.Contains(opBody, first.html) {
		t.Error("another operator got the first admin's rendered rules (and CSRF token)")
	}
	if !strings.Contains(opRules.html, `data-testid="rule-revoke"`) {
		t.Error("the operator's rules have no revoke button")
	}
	viewer := s.addAdmin(t, "polcache_view", admins.Viewer)
	if vr, vb := rules(viewer); vr == opRules || testids(vb, "rule-revoke") != 0 {
		t.Error("the viewer got an operator's rules")
	}

	// The next second: relative times are of it.
	now = now.Add(2 * time.Second)
	if next, _ := rules(owner); next == first || next.key.second != now.Unix() {
		t.Error("the rules were not rendered again in a later second")
	}

	// A session issued through the console's store replaces the counts and samples: the new
	// count shows.
	before, _ := rules(owner)
	s.issue(t, user, 100*time.Hour)
	after, body := rules(owner)
	if after == before || after.key.gen == before.key.gen {
		t.Errorf("an issue through the console did not give a new generation (%d, %d)", before.key.gen, after.key.gen)
	}
	wantContains(t, body, `<strong data-rule="max-lifetime" data-testid="rule-count">2</strong>`)
}
