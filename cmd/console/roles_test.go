package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/tokens"
)

// auditRows returns "action admin target" of every audit entry, oldest first.
func auditRows(t *testing.T, tg *target) []string {
	t.Helper()
	rows, err := tg.db(t).Query(context.Background(), `SELECT action || ' ' || admin || ' ' || target FROM console.audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func TestAdminRoles(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	in := func(stdin string, args ...string) result { return run(t, stdin, append(tg.flags(), args...)...) }
	if r := in("the owner's password\n", "admin", "add", "olive", "--role", "owner"); r.code != 0 || r.stdout != "added admin \"olive\" with role owner\n" {
		t.Fatalf("add owner:\n%s", r)
	}
	if r := in("an operator's password\n", "admin", "add", "otto", "--role=OPERATOR"); r.code != 0 || r.stdout != "added admin \"otto\" with role operator\n" {
		t.Fatalf("add operator:\n%s", r)
	}
	tg.fails(t, `console: invalid admin name or password: unknown role "root" (possible values: viewer, operator, owner)`,
		"admin", "add", "rita", "--role", "root")
	lastOwner := `console: admin "olive" is the last owner: it can be neither removed nor demoted (make another admin an owner first)`
	tg.fails(t, lastOwner, "admin", "role", "olive", "viewer")
	tg.fails(t, lastOwner, "admin", "remove", "olive")
	tg.fails(t, `console: admin "nobody" does not exist`, "admin", "role", "nobody", "owner")
	tg.fails(t, `console: invalid admin name or password: unknown role "boss" (possible values: viewer, operator, owner)`, "admin", "role", "otto", "boss")
	tg.fails(t, `console: admin role: missing ROLE argument (usage: console admin role NAME ROLE [flags])`, "admin", "role", "otto")

	if got := tg.ok(t, "admin", "role", "otto", "owner"); got != "admin \"otto\" now has role owner\n" {
		t.Fatalf("admin role: %q", got)
	}
	tg.ok(t, "admin", "role", "olive", "viewer")
	list := jsonRows(t, tg.ok(t, "admin", "list", "--format=json"))
	if len(list) != 2 || list[0]["name"] != "olive" || list[0]["role"] != "viewer" || list[1]["role"] != "owner" {
		t.Fatalf("admin list: %v", list)
	}
	tg.fails(t, `console: admin "otto" is the last owner: it can be neither removed nor demoted (make another admin an owner first)`, "admin", "remove", "otto")

	// An admin that signs in by single sign-on has neither a settable role nor a password.
	store, err := admins.Open(context.Background(), tg.db(t), pgdb.Postgres, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.SignInOIDC(context.Background(), admins.OIDCIdentity{Key: "iss sub", Name: "oidc:sam@example.com", Role: admins.Viewer},
		admins.SessionMeta{}, cliEntry()); err != nil {
		t.Fatal(err)
	}
	sso := `console: admin "oidc:sam@example.com" signs in by single sign-on: its role comes from the identity provider at each sign-in, and it has no password here`
	tg.fails(t, sso, "admin", "role", "oidc:sam@example.com", "owner")
	checkFails(t, in("a new password!\n", "admin", "passwd", "oidc:sam@example.com"), sso, []string{"admin", "passwd"})
	if list := jsonRows(t, tg.ok(t, "admin", "list", "--format=json")); list[0]["sign-in"] != "oidc" || list[0]["last sign-in"] == "NULL" {
		t.Errorf("SSO admin listed as %v", list[0])
	}

	want := []string{"admin-add " + cliActor() + " olive", "admin-add " + cliActor() + " otto", "admin-role " + cliActor() + " otto",
		"admin-role " + cliActor() + " olive", "sign-in oidc:sam@example.com "}
	if got := auditRows(t, tg); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit:\n%q\nwant\n%q", got, want)
	}
}

func TestAdminTokens(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	r := tg.console(t, "admin", "token", "create", "ci-export", "--role", "viewer", "--expire-after", "2h")
	if r.code != 0 || !regexp.MustCompile(`^sct_[A-Za-z0-9_-]{43}\n$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`^created API token "ci-export" with role viewer, expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? UTC; it is shown only this once\n$`).MatchString(r.stderr) {
		t.Fatalf("token create:\n%s", r)
	}
	secret := strings.TrimSpace(r.stdout)
	store, err := tokens.Open(context.Background(), tg.db(t), pgdb.Postgres, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := store.Authenticate(context.Background(), secret); err != nil || tok.Role != admins.Viewer {
		t.Fatalf("the printed token does not authenticate: %+v, %v", tok, err)
	}
	list := jsonRows(t, tg.ok(t, "admin", "token", "list", "--format=json"))
	if len(list) != 1 || list[0]["name"] != "ci-export" || list[0]["role"] != "viewer" || list[0]["created by"] != cliActor() ||
		list[0]["status"] != "active" || list[0]["last used"] == "NULL" {
		t.Fatalf("token list: %v", list)
	}
	if exp := parseTS(t, list[0]["expires"]).Sub(parseTS(t, list[0]["created"])); exp != 2*time.Hour {
		t.Errorf("expires - created = %s, want 2h", exp)
	}
	if strings.Contains(tg.ok(t, "admin", "token", "list", "--format=tsv"), secret[4:]) {
		t.Error("token list shows the secret")
	}
	for _, c := range []struct {
		want string
		args []string
	}{
		{`console: API token "ci-export" already exists`, []string{"create", "ci-export"}},
		{`console: invalid duration "7d": use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`, []string{"create", "x", "--expire-after", "7d"}},
		{`console: invalid API token name, role or expiry: a token may live at most 8784h0m0s (--max-token-expire-after)`, []string{"create", "x", "--expire-after", "9000h"}},
		{`console: invalid admin name or password: unknown role "god" (possible values: viewer, operator, owner)`, []string{"create", "x", "--role", "god"}},
		{`console: invalid API token name, role or expiry: token names are 1-63 letters, digits, '_', '.', '@' or '-', starting with a letter or digit`, []string{"create", "<b>"}},
		{`console: API token "nope" does not exist`, []string{"revoke", "nope"}},
	} {
		tg.fails(t, c.want, append([]string{"admin", "token"}, c.args...)...)
	}
	if got := tg.ok(t, "admin", "token", "revoke", "ci-export"); got != "revoked API token \"ci-export\"\n" {
		t.Fatalf("token revoke: %q", got)
	}
	if _, err := store.Authenticate(context.Background(), secret); !errors.Is(err, tokens.ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if got := tg.ok(t, "admin", "token", "list", "--format=csv"); got != "name,role,created by,created,expires,last used,status\n" {
		t.Errorf("token list after revoking: %q", got)
	}
	want := []string{"token-create " + cliActor() + " ci-export", "token-revoke " + cliActor() + " ci-export"}
	if got := auditRows(t, tg); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit: %q, want %q", got, want)
	}
}

// TestTokensEndToEnd: a token made with the command line works against `console serve` with
// the built binary, on the exports and the JSON API, never on the pages, acts with its role,
// is audited as token:<name>, and stops at once when revoked.
func TestTokensEndToEnd(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	srv := startServe(t, append(tg.flags(), "--data-dir", t.TempDir())...)
	tg.ok(t, "sql", "-e", `CREATE USER e2e_user`)
	mint := func(name, role string) string {
		r := tg.console(t, "admin", "token", "create", name, "--role", role, "--expire-after", "1h")
		if r.code != 0 {
			t.Fatalf("token create %s:\n%s", name, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	viewer, operator := mint("e2e-viewer", "viewer"), mint("e2e-operator", "operator")
	call := func(secret, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	issue := `{"username": "e2e_user", "expire_after": "30m"}`
	if st, body := call(viewer, "POST", "/api/v1/sessions", issue); st != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) {
		t.Fatalf("a viewer token issues: %d %s", st, body)
	}
	st, body := call(operator, "POST", "/api/v1/sessions", issue)
	if st != http.StatusCreated || !strings.Contains(body, `"cookie":"session=`) {
		t.Fatalf("an operator token issues: %d %s", st, body)
	}
	if st, body := call(viewer, "GET", "/sessions.csv", ""); st != http.StatusOK || !strings.Contains(body, "e2e_user") {
		t.Fatalf("a viewer token on /sessions.csv: %d %.300s", st, body)
	}
	if st, body := call(viewer, "GET", "/api/v1/sessions?user=e2e_user", ""); st != http.StatusOK || !strings.Contains(body, `"username":"e2e_user"`) {
		t.Fatalf("a viewer token on the JSON API: %d %.300s", st, body)
	}
	if st, _ := call(viewer, "GET", "/sessions", ""); st != http.StatusUnauthorized {
		t.Fatalf("a token on an HTML page: %d, want 401", st)
	}
	list := jsonRows(t, tg.ok(t, "admin", "token", "list", "--format=json"))
	if len(list) != 2 || list[0]["last used"] == "NULL" || list[1]["last used"] == "NULL" {
		t.Errorf("token list after use: %v", list)
	}
	var n int
	tg.db(t).QueryRow(context.Background(), `SELECT count(*) FROM console.audit_log WHERE admin = 'token:e2e-operator' AND action = 'issue' AND target = 'e2e_user'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d issue entries by token:e2e-operator, want 1", n)
	}
	tg.ok(t, "admin", "token", "revoke", "e2e-viewer")
	if st, _ := call(viewer, "GET", "/sessions.csv", ""); st != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", st)
	}
}
