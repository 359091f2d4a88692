package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/internal/sso"
	"github.com/sessionconsole/console/internal/ssotest"
)

// fixture is what a route's request is made against: the server and the actor's own admin
// ("" for token and anonymous actors).
type fixture struct {
	t     *testing.T
	s     *server
	admin string
}

var fixtureSeq atomic.Int64

func (f *fixture) seq() string { return strconv.FormatInt(fixtureSeq.Add(1), 10) }

// session issues a session for a fresh user and returns its ID.
func (f *fixture) session() string {
	return strconv.FormatInt(f.s.issue(f.t, f.s.createUser(f.t, "u"), time.Hour).ID, 10)
}

// otherAdmin adds a viewer for a route to act on.
func (f *fixture) otherAdmin() string {
	name := "target" + f.seq()
	if err := f.s.admins.Add(context.Background(), name, adminPassword, admins.Viewer); err != nil {
		f.t.Fatal(err)
	}
	f.s.signInAs(f.t, name, adminPassword) // a session to end
	return name
}

func (f *fixture) token() string {
	name := "tok" + f.seq()
	if _, _, err := f.s.tokens.Create(context.Background(), name, admins.Viewer, time.Hour, audit.Entry{Admin: "test"}); err != nil {
		f.t.Fatal(err)
	}
	return name
}

// routeCase is one route: who may call it, and a request that succeeds for those who may.
type routeCase struct {
	need admins.Role // "" : open to anyone
	// tokens: API tokens are accepted (exports and JSON API); elsewhere they get 401.
	tokens bool
	// req returns the URL path and form of a request that succeeds (nil form: none).
	req func(f *fixture) (string, url.Values)
	// ok is the status of that request for an actor allowed to make it.
	ok int
}

func get(path string) func(*fixture) (string, url.Values) {
	return func(*fixture) (string, url.Values) { return path, nil }
}

func post(path string, form url.Values) func(*fixture) (string, url.Values) {
	return func(*fixture) (string, url.Values) { return path, form }
}

// routeCases is every route of the console. A route that Register adds without a case here
// fails TestEveryRouteEveryRole: give it one.
var routeCases = map[string]routeCase{
	// Open routes: not signed in.
	"GET /healthz":             {},
	"GET /readyz":              {},
	"* /auth/verify":           {},
	"GET /static/*":            {},
	"GET /favicon.ico":         {},
	"GET /login":               {},
	"POST /login":              {},
	"GET /set-password":        {},
	"POST /set-password":       {},
	"GET /login/oidc":          {},
	"GET /login/oidc/callback": {},
	"GET /":                    {need: admins.Viewer, req: get("/"), ok: http.StatusSeeOther},
	"POST /logout":             {need: admins.Viewer, req: post("/logout", url.Values{}), ok: http.StatusSeeOther},
	"GET /sessions":            {need: admins.Viewer, req: get("/sessions"), ok: http.StatusOK},
	"GET /users.suggest":       {need: admins.Viewer, req: get("/users.suggest?username=u"), ok: http.StatusOK},
	"GET /users/:name":         {need: admins.Viewer, req: get("/users/someone"), ok: http.StatusOK},
	"GET /history":             {need: admins.Viewer, req: get("/history"), ok: http.StatusOK},
	"GET /health":              {need: admins.Viewer, req: get("/health"), ok: http.StatusOK},
	"GET /sessions/:id": {need: admins.Viewer, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/sessions/" + f.session(), nil
	}},
	"GET /audit":  {need: admins.Viewer, req: get("/audit"), ok: http.StatusOK},
	"GET /policy": {need: admins.Viewer, req: get("/policy"), ok: http.StatusOK},
	"POST /sessions/revoke": {need: admins.Operator, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/sessions/revoke", url.Values{"scope": {"selected"}, "id": {f.session()}, "confirmed": {"1"}}
	}},
	// An unknown run: the role is checked before the handler looks (a viewer gets 403).
	"GET /sessions/revoke/:run": {need: admins.Operator, req: get("/sessions/revoke/0123456789abcdef01234567"), ok: http.StatusNotFound},
	"GET /account":              {need: admins.Viewer, req: get("/account"), ok: http.StatusOK},
	"POST /account/password":    {need: admins.Viewer, req: post("/account/password", url.Values{"current": {adminPassword}, "password": {"a new password!"}, "repeat": {"a new password!"}}), ok: http.StatusSeeOther},
	"POST /account/sessions/:handle/end": {need: admins.Viewer, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		handle := "0000000000000000"
		if f.admin != "" {
			f.s.signInAs(f.t, f.admin, adminPassword)
			list, _ := f.s.admins.Sessions(context.Background(), f.admin, time.Hour, time.Hour)
			handle = list[0].Handle // the newest: not the actor's own
		}
		return "/account/sessions/" + handle + "/end", url.Values{}
	}},
	"POST /sessions": {need: admins.Operator, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/sessions", url.Values{"username": {f.s.createUser(f.t, "u")}, "expire_after": {"1h"}}
	}},
	"POST /sessions/cookie-file": {need: admins.Operator, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		is := f.s.issue(f.t, f.s.createUser(f.t, "u"), time.Hour)
		return "/sessions/cookie-file", url.Values{"cookie": {is.Cookie.Value()}}
	}},
	"GET /sessions/:id/revoke": {need: admins.Operator, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/sessions/" + f.session() + "/revoke", nil
	}},
	"POST /sessions/:id/revoke": {need: admins.Operator, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/sessions/" + f.session() + "/revoke", url.Values{}
	}},
	"GET /users/:name/revoke": {need: admins.Operator, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/users/" + f.s.createUser(f.t, "u") + "/revoke", nil
	}},
	"POST /users/:name/revoke": {need: admins.Operator, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		u := f.s.createUser(f.t, "u")
		f.s.issue(f.t, u, time.Hour)
		return "/users/" + u + "/revoke", url.Values{}
	}},
	"GET /admins": {need: admins.Owner, req: get("/admins"), ok: http.StatusOK},
	"POST /admins": {need: admins.Owner, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/admins", url.Values{"name": {"new" + f.seq()}, "role": {"operator"}, "credential": {"password"}}
	}},
	"POST /admins/:name/role": {need: admins.Owner, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/admins/" + f.otherAdmin() + "/role", url.Values{"role": {"operator"}}
	}},
	"POST /admins/:name/password": {need: admins.Owner, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/admins/" + f.otherAdmin() + "/password", url.Values{"credential": {"link"}}
	}},
	"POST /admins/:name/sessions/end": {need: admins.Owner, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/admins/" + f.otherAdmin() + "/sessions/end", url.Values{}
	}},
	"POST /admins/:name/throttle/clear": {need: admins.Owner, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		name := f.otherAdmin()
		f.s.client(f.t).post("/login", url.Values{"username": {name}, "password": {"wrong password"}})
		return "/admins/" + name + "/throttle/clear", url.Values{}
	}},
	"GET /admins/:name/remove": {need: admins.Owner, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/admins/" + f.otherAdmin() + "/remove", nil
	}},
	"POST /admins/:name/remove": {need: admins.Owner, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/admins/" + f.otherAdmin() + "/remove", url.Values{}
	}},
	"POST /tokens": {need: admins.Owner, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/tokens", url.Values{"name": {"t" + f.seq()}, "role": {"viewer"}, "expire_after": {"24h"}}
	}},
	"GET /tokens/:name/revoke": {need: admins.Owner, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/tokens/" + f.token() + "/revoke", nil
	}},
	"POST /tokens/:name/revoke": {need: admins.Owner, ok: http.StatusSeeOther, req: func(f *fixture) (string, url.Values) {
		return "/tokens/" + f.token() + "/revoke", url.Values{}
	}},
	"GET /sessions.csv":    {need: admins.Viewer, tokens: true, req: get("/sessions.csv"), ok: http.StatusOK},
	"GET /sessions.json":   {need: admins.Viewer, tokens: true, req: get("/sessions.json"), ok: http.StatusOK},
	"GET /audit.csv":       {need: admins.Viewer, tokens: true, req: get("/audit.csv"), ok: http.StatusOK},
	"GET /overview":        {need: admins.Viewer, req: get("/overview?range=7d"), ok: http.StatusOK},
	"GET /metrics":         {need: admins.Viewer, tokens: true, req: get("/metrics"), ok: http.StatusOK},
	"GET /history.csv":     {need: admins.Viewer, tokens: true, req: get("/history.csv"), ok: http.StatusOK},
	"GET /history.json":    {need: admins.Viewer, tokens: true, req: get("/history.json"), ok: http.StatusOK},
	"GET /api/v1/sessions": {need: admins.Viewer, tokens: true, req: get("/api/v1/sessions?status=all"), ok: http.StatusOK},
	"GET /api/v1/sessions/:id": {need: admins.Viewer, tokens: true, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/api/v1/sessions/" + f.session(), nil
	}},
	"POST /api/v1/sessions": {need: admins.Operator, tokens: true, ok: http.StatusCreated, req: func(f *fixture) (string, url.Values) {
		return "/api/v1/sessions", url.Values{"username": {f.s.createUser(f.t, "u")}, "expire_after": {"1h"}}
	}},
	"POST /api/v1/sessions/:id/revoke": {need: admins.Operator, tokens: true, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/api/v1/sessions/" + f.session() + "/revoke", url.Values{}
	}},
	"POST /api/v1/users/:name/revoke": {need: admins.Operator, tokens: true, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		u := f.s.createUser(f.t, "u")
		f.s.issue(f.t, u, time.Hour)
		return "/api/v1/users/" + u + "/revoke", url.Values{}
	}},
	"GET /api/v1/admins": {need: admins.Owner, tokens: true, req: get("/api/v1/admins"), ok: http.StatusOK},
	"GET /api/v1/tokens": {need: admins.Owner, tokens: true, req: get("/api/v1/tokens"), ok: http.StatusOK},
	"POST /api/v1/tokens": {need: admins.Owner, tokens: true, ok: http.StatusCreated, req: func(f *fixture) (string, url.Values) {
		return "/api/v1/tokens", url.Values{"name": {"api" + f.seq()}, "role": {"viewer"}, "expire_after": {"7d"}}
	}},
	"POST /api/v1/tokens/:name/revoke": {need: admins.Owner, tokens: true, ok: http.StatusOK, req: func(f *fixture) (string, url.Values) {
		return "/api/v1/tokens/" + f.token() + "/revoke", url.Values{}
	}},
}

// fingerprint sums up every console table a request could change, leaving out what merely
// reading does (an admin session's last use, a token's last use) and refused-request entries.
func fingerprint(t *testing.T, s *server) string {
	t.Helper()
	var fp string
	err := s.pool.QueryRow(context.Background(), `SELECT md5(concat_ws('|',
		(SELECT string_agg(id::TEXT || username || "expiresAt"::TEXT || coalesce("revokedAt"::TEXT, '-'), ',' ORDER BY id) FROM console.web_sessions),
		(SELECT string_agg(name || role || method || password_hash || must_change_password::TEXT, ',' ORDER BY name) FROM console.admins),
		(SELECT string_agg(id || admin, ',' ORDER BY id) FROM console.admin_sessions),
		(SELECT string_agg(name || role || expires_at::TEXT, ',' ORDER BY name) FROM console.api_tokens),
		(SELECT string_agg(encode(code_hash, 'hex'), ',' ORDER BY code_hash) FROM console.admin_password_links),
		(SELECT string_agg(account || '/' || address || failures::TEXT, ',' ORDER BY account, address) FROM console.signin_failures),
		(SELECT count(*)::TEXT FROM console.audit_log WHERE action <> 'refused')))`).Scan(&fp)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// actor is who makes a request: an admin of a role, an API token of a role, or nobody.
type actor struct {
	name  string
	role  admins.Role
	token bool
}

var actors = []actor{
	{"viewer", admins.Viewer, false}, {"operator", admins.Operator, false}, {"owner", admins.Owner, false},
	{"viewer-token", admins.Viewer, true}, {"operator-token", admins.Operator, true}, {"owner-token", admins.Owner, true},
	{"anonymous", "", false},
}

// TestEveryRouteEveryRole sends every route's request as every role (a signed-in admin and an
// API token of each, and nobody) and checks the status; a refusal must answer 403, change
// nothing and be audited as refused.
func TestEveryRouteEveryRole(t *testing.T) {
	op := ssotest.Start(t, ssotest.Options{ClientID: "console", ClientSecret: "s", RedirectURIs: []string{"http://127.0.0.1/login/oidc/callback"}})
	client, err := sso.New(sso.Config{Issuer: op.Issuer, ClientID: "console", ClientSecret: "s",
		RedirectURL: "http://127.0.0.1/login/oidc/callback", Roles: map[string]admins.Role{"ops": admins.Operator}})
	if err != nil {
		t.Fatal(err)
	}
	s := newServerOn(t, pgtest.NewDB(t), Config{SSO: client})

	// Every registered route has a case, and every case a route.
	e := echo.New()
	s.handler.Register(e)
	seen := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		key := r.Method + " " + r.Path
		if r.Path == "/auth/verify" {
			key = "* /auth/verify"
		}
		if _, ok := routeCases[key]; !ok {
			t.Errorf("route %s has no case in routeCases: say which role it needs", key)
		}
		seen[key] = true
	}
	for key := range routeCases {
		if !seen[key] {
			t.Errorf("routeCases has %s, which is not a route", key)
		}
	}

	for key, rc := range routeCases {
		if rc.need == "" {
			continue
		}
		method, _, _ := strings.Cut(key, " ")
		for _, a := range actors {
			t.Run(key+" as "+a.name, func(t *testing.T) {
				f := &fixture{t: t, s: s}
				c := s.client(t)
				headers := map[string]string{}
				switch {
				case a.token:
					name := "actor" + f.seq()
					secret, _, err := s.tokens.Create(context.Background(), name, a.role, time.Hour, audit.Entry{Admin: "test"})
					if err != nil {
						t.Fatal(err)
					}
					headers["Authorization"] = "Bearer " + secret
				case a.role != "":
					f.admin = a.name + f.seq()
					c = s.addAdmin(t, f.admin, a.role)
					headers["X-CSRF-Token"] = c.csrf // for the JSON API
				}
				path, form := rc.req(f)
				if form != nil && !a.token {
					form.Set("_csrf", c.csrf)
				}
				before := fingerprint(t, s)
				refusedBefore := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'refused'`)
				var r response
				if form != nil {
					r = c.do(method, path, form, headers)
				} else {
					r = c.do(method, path, nil, headers)
				}
				switch {
				case a.role == "": // nobody: pages (and export links) send to sign-in, the rest is 401
					want := http.StatusUnauthorized
					if method == http.MethodGet && !strings.HasPrefix(path, "/api/") && path != "/metrics" {
						want = http.StatusSeeOther
					}
					if r.StatusCode != want || want == http.StatusSeeOther && !strings.HasPrefix(r.Header.Get("Location"), "/login?next=") {
						t.Fatalf("status %d (Location %q), want %d", r.StatusCode, r.Header.Get("Location"), want)
					}
					if after := fingerprint(t, s); after != before {
						t.Error("an anonymous request changed something")
					}
				case a.token && !rc.tokens: // an HTML page
					wantStatus(t, r, http.StatusUnauthorized)
					wantContains(t, r.body, "API tokens are not accepted on the HTML pages")
					if after := fingerprint(t, s); after != before {
						t.Error("a token on an HTML page changed something")
					}
				case !a.role.Allows(rc.need):
					wantStatus(t, r, http.StatusForbidden)
					if after := fingerprint(t, s); after != before {
						t.Error("a refused request changed something")
					}
					if n := s.count(t, `SELECT count(*) FROM console.audit_log WHERE action = 'refused'`); n != refusedBefore+1 {
						t.Errorf("%d refused entries after the refusal, want %d", n, refusedBefore+1)
					}
					if rc.tokens || strings.HasPrefix(path, "/api/") {
						wantContains(t, r.body, `"code":"forbidden"`)
					}
				default:
					if r.StatusCode != rc.ok {
						t.Fatalf("status %d, want %d\n%.800s", r.StatusCode, rc.ok, r.body)
					}
				}
			})
		}
	}
}

// The refused entry names the actor, the route and the roles.
func TestRefusalAudited(t *testing.T) {
	s := newServer(t)
	c := s.addAdmin(t, "vera", admins.Viewer)
	u := s.createUser(t, "u")
	is := s.issue(t, u, time.Hour)
	r := c.post(fmt.Sprintf("/sessions/%d/revoke", is.ID), url.Values{})
	wantStatus(t, r, http.StatusForbidden)
	wantContains(t, r.body, "Your role (viewer) may not do this: it needs operator.")
	var admin, target, detail string
	if err := s.pool.QueryRow(context.Background(), `SELECT admin, target, detail FROM console.audit_log WHERE action = 'refused'`).Scan(&admin, &target, &detail); err != nil {
		t.Fatal(err)
	}
	if admin != "vera" || target != strconv.FormatInt(is.ID, 10) || detail != "POST /sessions/:id/revoke needs operator, has viewer" {
		t.Errorf("refused entry: %q %q %q", admin, target, detail)
	}
	// The page offers a viewer nothing it would refuse: no issue button or panel, no revoke,
	// no revoke-all on the view of one user. An operator gets them on the same pages.
	refused := []string{`data-testid="issue-details"`, `data-testid="issue-open"`, `data-testid="issue-form"`,
		`data-testid="revoke-session"`, `data-testid="revoke-user"`, `data-testid="revoke-filtered-user"`, `data-testid="nav-admins"`}
	op := s.addAdmin(t, "otto", admins.Operator)
	for _, path := range []string{"/sessions?status=all", "/sessions?status=all&user=" + url.QueryEscape(u)} {
		p := c.get(path)
		wantStatus(t, p, http.StatusOK)
		wantNotContains(t, p.body, refused...)
		wantContains(t, p.body, `data-testid="session-row"`, `data-testid="admin-role">viewer<`)
		wantContains(t, op.get(path).body, `data-testid="issue-open"`, `data-testid="revoke-session"`)
	}
	wantContains(t, op.get("/sessions?status=all&user="+url.QueryEscape(u)).body, `data-testid="revoke-filtered-user"`)
}
