package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
)

var (
	oneTimeSecret = regexp.MustCompile(`data-testid="one-time-secret">([^<]+)<`)
	oneTimeLink   = regexp.MustCompile(`data-testid="one-time-link">([^<]+)<`)
)

func auditOf(t *testing.T, s *server, action string) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT admin || ' ' || target || ' ' || detail FROM console.audit_log WHERE action = $1 ORDER BY id`, action)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		out = append(out, v)
	}
	return out
}

func TestAddAdminOneTimePassword(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	r := owner.get("/admins")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="admins-table"`, `data-admin="admin"`, `data-testid="nav-admins"`, `(you)`)

	r = owner.post("/admins", url.Values{"name": {"olga"}, "role": {"operator"}, "credential": {"password"}})
	wantStatus(t, r, http.StatusOK)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("one-time password page Cache-Control %q", cc)
	}
	m := oneTimeSecret.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no one-time password shown:\n%.3000s", r.body)
	}
	otp := m[1]
	// Shown once: the page afterwards does not have it.
	if again := owner.get("/admins"); strings.Contains(again.body, otp) {
		t.Error("the one-time password is shown again")
	}
	if got := auditOf(t, s, "admin-add"); len(got) != 1 || got[0] != "admin olga role operator, one-time password" {
		t.Errorf("audit: %q", got)
	}

	// With the one-time password, only the account page (and sign-out) can be used.
	olga := s.client(t)
	olga.get("/login")
	r = olga.post("/login", url.Values{"username": {"olga"}, "password": {otp}})
	wantStatus(t, r, http.StatusSeeOther)
	r = olga.get("/sessions")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/account" {
		t.Fatalf("with a one-time password /sessions goes to %q", loc)
	}
	r = olga.get("/account")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="must-change"`)
	u := s.createUser(t, "u")
	r = olga.post("/sessions", url.Values{"username": {u}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusForbidden)
	if n := s.count(t, `SELECT count(*) FROM console.web_sessions`); n != 0 {
		t.Fatal("issued with a one-time password")
	}
	r = olga.post("/account/password", url.Values{"current": {otp}, "password": {"olga's own password"}, "repeat": {"olga's own password"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, olga.get("/sessions"), http.StatusOK)
	r = olga.post("/sessions", url.Values{"username": {u}, "expire_after": {"1h"}})
	wantStatus(t, r, http.StatusOK)

	// Bad input changes nothing.
	for _, form := range []url.Values{
		{"name": {"olga"}, "role": {"viewer"}},
		{"name": {"<b>x</b>"}, "role": {"viewer"}},
		{"name": {"x\u202e"}, "role": {"viewer"}},
		{"name": {"nora"}, "role": {"root"}},
		{"name": {"nora"}, "role": {"viewer"}, "credential": {"carrier pigeon"}},
	} {
		before := s.count(t, `SELECT count(*) FROM console.admins`)
		r := owner.post("/admins", form)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantContains(t, r.body, `data-testid="add-name-error"`)
		if s.count(t, `SELECT count(*) FROM console.admins`) != before {
			t.Errorf("%v added an admin", form)
		}
	}
}

func TestSetPasswordLink(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	r := owner.post("/admins", url.Values{"name": {"lena"}, "role": {"viewer"}, "credential": {"link"}})
	wantStatus(t, r, http.StatusOK)
	m := oneTimeLink.FindStringSubmatch(r.body)
	if m == nil || !strings.HasPrefix(m[1], s.url+"/set-password#") {
		t.Fatalf("no set-password link:\n%.3000s", r.body)
	}
	code := strings.TrimPrefix(m[1], s.url+"/set-password#")
	// Nobody knows lena's password yet.
	if s.admins.Authenticate(context.Background(), "lena", "") == nil {
		t.Fatal("empty password works")
	}
	c := s.client(t)
	r = c.get("/set-password")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-link-code`, `name="_csrf"`)
	// A wrong code, a short password, a mismatch: nothing happens.
	for _, form := range []url.Values{
		{"code": {code + "x"}, "password": {"lena's password"}, "repeat": {"lena's password"}},
		{"code": {code}, "password": {"short"}, "repeat": {"short"}},
		{"code": {code}, "password": {"lena's password"}, "repeat": {"lena's passwort"}},
	} {
		wantStatus(t, c.post("/set-password", form), http.StatusUnprocessableEntity)
	}
	if s.count(t, `SELECT count(*) FROM console.admin_password_links`) != 1 {
		t.Fatal("a failed attempt used the link")
	}
	r = c.post("/set-password", url.Values{"code": {code}, "password": {"lena's password"}, "repeat": {"lena's password"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="password-set"`)
	s.signInAs(t, "lena", "lena's password")
	r = s.client(t).post("/set-password", url.Values{"code": {code}, "password": {"another password"}, "repeat": {"another password"}})
	wantStatus(t, r, http.StatusForbidden) // no CSRF pre-session: refused before the code is looked at
	c2 := s.client(t)
	c2.get("/set-password")
	r = c2.post("/set-password", url.Values{"code": {code}, "password": {"another password"}, "repeat": {"another password"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, `data-testid="code-error"`)
	if got := auditOf(t, s, "password-set"); len(got) != 1 || !strings.HasPrefix(got[0], "lena lena") {
		t.Errorf("audit: %q", got)
	}
}

func TestManageAdmins(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	bob := s.addAdmin(t, "bob", admins.Operator)

	// The last owner can be neither demoted nor removed.
	r := owner.post("/admins/admin/role", url.Values{"role": {"viewer"}})
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r.body, "admin is the last owner")
	r = owner.post("/admins/admin/remove", url.Values{})
	wantStatus(t, r, http.StatusConflict)
	if a, _ := s.admins.Get(context.Background(), "admin"); a.Role != admins.Owner {
		t.Fatal("the last owner was demoted")
	}
	wantStatus(t, owner.post("/admins/nobody/role", url.Values{"role": {"owner"}}), http.StatusNotFound)
	wantStatus(t, owner.post("/admins/bob/role", url.Values{"role": {"king"}}), http.StatusUnprocessableEntity)

	// A role change shows at bob's next request.
	wantStatus(t, bob.get("/admins"), http.StatusForbidden)
	r = owner.post("/admins/bob/role", url.Values{"role": {"owner"}})
	wantStatus(t, r, http.StatusSeeOther)
	time.Sleep(0) // (no cache in the test server: the next request sees it)
	wantStatus(t, bob.get("/admins"), http.StatusOK)
	r = owner.get("/admins")
	wantContains(t, r.body, "bob now has role owner.")

	// One's own password is changed on /account, not reset here.
	wantStatus(t, owner.post("/admins/admin/password", url.Values{"credential": {"password"}}), http.StatusConflict)
	wantStatus(t, owner.get("/admins"), http.StatusOK)

	// Reset: the old password stops working and bob's sessions end.
	r = owner.post("/admins/bob/password", url.Values{"credential": {"password"}})
	wantStatus(t, r, http.StatusOK)
	if oneTimeSecret.FindStringSubmatch(r.body) == nil {
		t.Fatal("no one-time password after a reset")
	}
	if loc := bob.get("/sessions").Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
		t.Errorf("bob's session survived a reset (Location %q)", loc)
	}
	if s.admins.Authenticate(context.Background(), "bob", adminPassword) == nil {
		t.Error("bob's old password still works")
	}

	// End sessions, then remove.
	carol := s.addAdmin(t, "carol", admins.Viewer)
	r = owner.get("/admins")
	wantContains(t, r.body, `data-admin="carol"`)
	r = owner.post("/admins/carol/sessions/end", url.Values{})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := carol.get("/sessions").Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
		t.Errorf("carol's session survived (Location %q)", loc)
	}
	r = owner.hxGet("/admins/carol/remove")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-testid="confirm-submit"`, "carol (viewer) can no longer sign in")
	wantNotContains(t, r.body, "<html")
	// Cancel first and focused, never the destructive button; as a page, the title is its <h1>.
	if _, ok := attrOf(r.body, "confirm-cancel", "autofocus"); !ok || strings.Index(r.body, `data-testid="confirm-cancel"`) > strings.Index(r.body, `data-testid="confirm-submit"`) {
		t.Errorf("the removal dialog does not put a focused Cancel first:\n%s", r.body)
	}
	if _, ok := attrOf(r.body, "confirm-submit", "autofocus"); ok {
		t.Errorf("the removal dialog focuses its destructive button")
	}
	wantContains(t, owner.get("/admins/carol/remove").body, `<h1 id="confirm-title">Remove admin carol?</h1>`)
	wantStatus(t, owner.post("/admins/carol/remove", url.Values{}), http.StatusSeeOther)
	if _, err := s.admins.Get(context.Background(), "carol"); err == nil {
		t.Error("carol is still there")
	}
	for action, want := range map[string]string{
		"admin-role": "admin bob operator -> owner", "admin-password-reset": "admin bob one-time password",
		"admin-sessions-end": "admin carol ", "admin-remove": "admin carol viewer",
	} {
		if got := auditOf(t, s, action); len(got) != 1 || got[0] != want {
			t.Errorf("audit %s: %q, want %q", action, got, want)
		}
	}
}

func TestThrottledAndCleared(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	s.addAdmin(t, "tim", admins.Viewer)
	r := owner.get("/admins")
	if !strings.Contains(r.body, `data-admin="tim"`) || strings.Count(r.body, `data-testid="throttled"`) != 0 {
		t.Fatalf("throttled before any failure:\n%.2000s", r.body)
	}
	c := s.client(t)
	c.get("/login")
	for i := 0; i < admins.DefaultFreeTries; i++ {
		c.post("/login", url.Values{"username": {"tim"}, "password": {"wrong password"}})
	}
	r = owner.get("/admins")
	if strings.Count(r.body, `data-testid="throttled"`) != 1 {
		t.Fatalf("tim not shown as throttled:\n%.4000s", r.body)
	}
	wantStatus(t, owner.post("/admins/tim/throttle/clear", url.Values{}), http.StatusSeeOther)
	r = owner.get("/admins")
	if strings.Count(r.body, `data-testid="throttled"`) != 0 {
		t.Fatal("still throttled after clearing")
	}
	// tim signs in from that address again.
	c.get("/login")
	wantStatus(t, c.post("/login", url.Values{"username": {"tim"}, "password": {adminPassword}}), http.StatusSeeOther)
	if got := auditOf(t, s, "throttle-clear"); len(got) != 1 || !strings.HasPrefix(got[0], "admin tim") {
		t.Errorf("audit: %q", got)
	}
}

func TestAccountSessionsAndPassword(t *testing.T) {
	s := newServer(t)
	laptop := s.addAdmin(t, "amy", admins.Viewer)
	phone := s.client(t)
	phone.headers = map[string]string{"User-Agent": "Phone\u202eBrowser <b>"}
	phone.get("/login")
	wantStatus(t, phone.post("/login", url.Values{"username": {"amy"}, "password": {adminPassword}}), http.StatusSeeOther)

	r := laptop.get("/account")
	wantStatus(t, r, http.StatusOK)
	if n := testids(r.body, "own-session"); n != 2 {
		t.Fatalf("%d sessions listed, want 2", n)
	}
	wantContains(t, r.body, `data-testid="this-session"`, "Phone&lt;U+202E&gt;Browser &lt;b&gt;")
	if n := testids(r.body, "end-session"); n != 1 {
		t.Fatalf("%d end buttons, want 1 (not for this session)", n)
	}
	handle := regexp.MustCompile(`action="/account/sessions/([0-9a-f]+)/end"`).FindStringSubmatch(r.body)[1]
	wantStatus(t, laptop.post("/account/sessions/"+handle+"/end", url.Values{}), http.StatusSeeOther)
	if loc := phone.get("/sessions").Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
		t.Errorf("the phone's session survived (Location %q)", loc)
	}
	// Someone else's session cannot be ended from here.
	other := s.addAdmin(t, "zed", admins.Viewer)
	list, _ := s.admins.Sessions(context.Background(), "zed", time.Hour, time.Hour)
	wantStatus(t, laptop.post("/account/sessions/"+list[0].Handle+"/end", url.Values{}), http.StatusNotFound)
	wantStatus(t, other.get("/sessions"), http.StatusOK)

	// The password: the current one first; the other sessions end, this one stays.
	phone = s.signInAs(t, "amy", adminPassword)
	r = laptop.post("/account/password", url.Values{"current": {"not it at all"}, "password": {"amy's new password"}, "repeat": {"amy's new password"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, `data-testid="current-error"`)
	r = laptop.post("/account/password", url.Values{"current": {adminPassword}, "password": {"amy's new password"}, "repeat": {"amy's new passwort"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r.body, `data-testid="new-error"`)
	r = laptop.post("/account/password", url.Values{"current": {adminPassword}, "password": {"amy's new password"}, "repeat": {"amy's new password"}})
	wantStatus(t, r, http.StatusSeeOther)
	wantStatus(t, laptop.get("/sessions"), http.StatusOK)
	if loc := phone.get("/sessions").Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
		t.Errorf("another session survived the password change (Location %q)", loc)
	}
	if got := auditOf(t, s, "password-change"); len(got) != 1 || got[0] != "amy amy " {
		t.Errorf("audit: %q", got)
	}
	if got := auditOf(t, s, "session-end"); len(got) != 1 || got[0] != "amy amy " {
		t.Errorf("audit: %q", got)
	}
}

// A change on /admins whose audit row cannot be written changes nothing and says so.
func TestAdminChangeNotRecorded(t *testing.T) {
	s := newServer(t)
	owner := s.signIn(t)
	s.addAdmin(t, "bea", admins.Viewer)
	owner.get("/admins")
	if _, err := s.pool.Exec(context.Background(), `ALTER TABLE console.audit_log ADD CONSTRAINT no_rows CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	r := owner.post("/admins/bea/role", url.Values{"role": {"owner"}})
	wantStatus(t, r, http.StatusInternalServerError)
	wantContains(t, r.body, "Nothing was changed: the audit log could not record this action.")
	if a, _ := s.admins.Get(context.Background(), "bea"); a.Role != admins.Viewer {
		t.Errorf("bea's role is %s", a.Role)
	}
}
