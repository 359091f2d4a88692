package handlers

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/internal/policy"
)

// tableRows returns the text of each cell of each body row of the table data-testid=id.
func tableRows(body, id string) [][]string {
	tbl := section(body, id)
	var out [][]string
	cell := regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
	tag := regexp.MustCompile(`<[^>]+>`)
	for _, tr := range regexp.MustCompile(`(?s)<tr>(.*?)</tr>`).FindAllStringSubmatch(tbl[strings.Index(tbl, "<tbody>")+1:], -1) {
		var row []string
		for _, c := range cell.FindAllStringSubmatch(tr[1], -1) {
			row = append(row, strings.TrimSpace(html.UnescapeString(tag.ReplaceAllString(c[1], ""))))
		}
		out = append(out, row)
	}
	return out
}

// The overview shows the history's rollups: sessions created by origin, revoked and active
// per hour, the top users, the jobs; every chart links to its list and has its numbers as a
// table; a bad range is a 400; a viewer sees it; / leads there and sign-in lands there.
func TestOverviewPage(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	alice, bob := s.createUser(t, "ov_alice"), s.createUser(t, "ov_bob")
	op := s.bearer(t, s.makeToken(t, "ov-op", admins.Operator))
	for range 3 {
		wantStatus(t, op.doBody("POST", "/api/v1/sessions", "application/json", fmt.Sprintf(`{"username": %q, "expire_after": "2h"}`, alice)), http.StatusCreated)
	}
	// From the command line (its auditInfo) and from elsewhere (none), two hours ago; one
	// more from the store itself (no audit row: elsewhere too), revoked.
	if _, err := s.pool.Exec(ctx, `INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "auditInfo")
		VALUES ('\x00', $1, now() AT TIME ZONE 'UTC' - INTERVAL '2 hours', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour', 'cli root: login'),
		       ('\x00', $1, now() AT TIME ZONE 'UTC' - INTERVAL '2 hours', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour', NULL),
		       ('\x00', $1, now() AT TIME ZONE 'UTC' - INTERVAL '2 hours', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour', NULL),
		       ('\x00', $1, now() AT TIME ZONE 'UTC' - INTERVAL '2 hours', now() AT TIME ZONE 'UTC' + INTERVAL '1 hour', NULL)`, bob); err != nil {
		t.Fatal(err)
	}
	is := s.issue(t, bob, time.Hour)
	if _, err := s.sessions.RevokeSession(ctx, is.ID); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if _, err := s.history.RefreshTopUsers(ctx, history.PlainTx{Pool: s.pool}, 10); err != nil {
		t.Fatal(err)
	}

	c := s.signIn(t)
	r := c.get("/")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/overview" {
		t.Fatalf("/: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	r = c.get("/overview")
	wantStatus(t, r, http.StatusOK)
	body := r.body
	for id, want := range map[string]string{"tile-active": "7", "tile-created": "8", "tile-revoked": "1"} {
		if got := regexp.MustCompile(`tile-value">([^<]*)<`).FindStringSubmatch(section(body, id)); got == nil || got[1] != want {
			t.Errorf("%s: %v, want %s", id, got, want)
		}
	}
	// 24 hours by hour; the sums per origin over the table's rows.
	rows := tableRows(body, "table-created")
	if len(rows) != 24 {
		t.Fatalf("%d hours in the created table, want 24: %v", len(rows), rows)
	}
	var sums [3]int
	for _, row := range rows {
		for i := range 3 {
			var n int
			fmt.Sscan(row[i+1], &n)
			sums[i] += n
		}
	}
	if sums != [3]int{3, 1, 4} {
		t.Errorf("created by origin %v, want 3 by this console, 1 by the command line, 4 elsewhere", sums)
	}
	if rows := tableRows(body, "table-revoked"); len(rows) != 24 || rows[23][1] != "1" {
		t.Errorf("revoked table %v", rows)
	}
	active := tableRows(body, "table-active")
	if len(active) != 25 || active[24][0] != "now" || active[24][1] != "7" {
		t.Errorf("active table's last row %v", active[len(active)-1])
	}
	for _, id := range []string{"chart-created", "chart-revoked", "chart-active"} {
		sec := section(body, id)
		if !strings.Contains(sec, `<svg`) || !strings.Contains(sec, `role="img"`) || !regexp.MustCompile(`data-testid="chart-list"[^>]*>|href="/(history|sessions)\?`).MatchString(sec) {
			t.Errorf("%s: no SVG or no link to its list", id)
		}
	}
	if !strings.Contains(section(body, "chart-created"), "<rect") || !strings.Contains(section(body, "chart-active"), "<polyline") {
		t.Error("the charts draw nothing")
	}
	top := section(body, "top-users")
	if !strings.Contains(top, `href="/users/`+bob+`"`) || strings.Index(top, bob) > strings.Index(top, alice) {
		t.Errorf("top users: want %s (4 active) before %s (3)\n%s", bob, alice, top)
	}
	if !strings.Contains(section(body, "overview-policy"), "No policy rules") {
		t.Error("no policy note")
	}

	// Each hour's row links to the history of that hour.
	if !regexp.MustCompile(`href="/history\?created_after=\d{4}-\d\d-\d\dT\d\d%3A00&amp;created_before=[^"]+status=all"`).MatchString(section(body, "table-created")) {
		t.Error("no link from an hour to its sessions")
	}
	for rng, n := range map[string]int{"7d": 7, "30d": 30} {
		r := c.get("/overview?range=" + rng)
		wantStatus(t, r, http.StatusOK)
		if got := len(tableRows(r.body, "table-created")); got != n {
			t.Errorf("range %s: %d rows, want %d", rng, got, n)
		}
		if !strings.Contains(r.body, `aria-current="page">`+strings.TrimSuffix(strings.TrimSuffix(rng, "d"), "h")) {
			t.Errorf("range %s not marked current", rng)
		}
	}
	for _, bad := range []string{"1y", "24h%00", "%3Cscript%3E"} {
		r := c.get("/overview?range=" + bad)
		wantStatus(t, r, http.StatusBadRequest)
		if strings.Contains(r.body, "<script>") {
			t.Errorf("range %q echoed", bad)
		}
	}
	viewer := s.addAdmin(t, "ov_viewer", admins.Viewer)
	wantStatus(t, viewer.get("/overview"), http.StatusOK)
}

// One process reads the rollups of a range at most once per OverviewFresh: a view within it
// shows the same figures, one after it the new ones.
func TestOverviewCache(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "ov_cache")
	now := time.Now()
	s.handler.now = func() time.Time { return now }
	c := s.signIn(t)
	created := func() string {
		t.Helper()
		r := c.get("/overview")
		wantStatus(t, r, http.StatusOK)
		m := regexp.MustCompile(`tile-value">([^<]*)<`).FindStringSubmatch(section(r.body, "tile-created"))
		if m == nil {
			t.Fatal("no created tile")
		}
		return m[1]
	}
	if got := created(); got != "0" {
		t.Fatalf("created %s before any session", got)
	}
	s.issue(t, user, time.Hour)
	s.sync(t)
	if got := created(); got != "0" {
		t.Errorf("created %s within OverviewFresh of the last read, want the cached 0", got)
	}
	now = now.Add(OverviewFresh)
	if got := created(); got != "1" {
		t.Errorf("created %s after OverviewFresh, want 1", got)
	}
}

// With policy rules, the overview's policy card shows each enabled rule's breaches (the
// policy page's cached counts), marked when there are some, each linking to its sessions.
func TestOverviewPolicyCard(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{Policy: testPolicy{cfg: policy.Config{Root: true, MaxLifetime: 48 * time.Hour}}})
	user := s.createUser(t, "ov_policy")
	s.issue(t, user, 100*time.Hour)
	s.issue(t, user, time.Hour)
	c := s.signIn(t)
	r := c.get("/overview")
	wantStatus(t, r, http.StatusOK)
	card := section(r.body, "overview-policy")
	if n := strings.Count(card, `data-testid="policy-rule"`); n != 2 {
		t.Fatalf("%d rules on the card, want 2 (max-lifetime, root):\n%s", n, card)
	}
	wantContains(t, card, `rule=max-lifetime`, `rule=root`, `<code>max-lifetime</code>`, `<strong class="error">1</strong>`)
	if strings.Contains(card, "No policy rules") {
		t.Errorf("the card says there are no rules:\n%s", card)
	}
}

// The charts built for a read are reused while their inputs are the same, and built again when
// the active count they end with changes (a session issued here adjusts the cached count at
// once, within OverviewFresh of the last read).
func TestOverviewChartsFollowTheActiveCount(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "ov_charts")
	now := time.Now()
	s.handler.now = func() time.Time { return now }
	c := s.signIn(t)
	activeNow := func() string {
		t.Helper()
		r := c.get("/overview")
		wantStatus(t, r, http.StatusOK)
		m := regexp.MustCompile(`([0-9,]+) now<`).FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("no active total in the charts:\n%.3000s", r.body)
		}
		return m[1]
	}
	first := activeNow()
	if again := activeNow(); again != first {
		t.Fatalf("active now %s, then %s with nothing changed", first, again)
	}
	s.issue(t, user, time.Hour)
	if got := activeNow(); got == first {
		t.Errorf("active now still %s after a session was issued: the charts were not built again", got)
	}
}
