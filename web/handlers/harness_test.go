package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/metrics"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
)

func TestMain(m *testing.M) {
	admins.Cost = bcrypt.MinCost
	pgtest.Main(m)
}

const adminPassword = "correct horse battery staple"

// server is the console on a real listener over a fresh database.
type server struct {
	url      string
	pool     *pgxpool.Pool
	sessions *sessionstore.Store
	admins   *admins.Store
	audit    *audit.Store
	actions  *actions.Service
	tokens   *tokens.Store
	history  *history.Store
	activity *history.Recorder
	metrics  *metrics.Metrics
	handler  *Handler
	// transport reaches the server (nil: the default; with Config.Secure, one that trusts the
	// test server's certificate).
	transport http.RoundTripper
	logs      *logBuffer // what the handler logged
}

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testKeys() [][]byte {
	hash, block := make([]byte, 64), make([]byte, 32)
	rand.Read(hash)
	rand.Read(block)
	return [][]byte{hash, block}
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerOn(t, pgtest.NewDB(t), Config{})
}

func newServerOn(t *testing.T, dbURL string, cfg Config) *server {
	t.Helper()
	return newServerDialect(t, dbURL, cfg, 0)
}

// newServerDialect is newServerOn with the session dialect forced (0: detected).
func newServerDialect(t *testing.T, dbURL string, cfg Config, flavor pgdb.Flavor) *server {
	t.Helper()
	return newServerStore(t, dbURL, cfg, sessionstore.Options{Flavor: flavor})
}

// newServerListener is newServerDialect on a given listener, for tests that must know the
// server's address before it starts (a single sign-on redirect URL).
func newServerListener(t *testing.T, dbURL string, cfg Config, flavor pgdb.Flavor, ln net.Listener) *server {
	t.Helper()
	return newServerStoreListener(t, dbURL, cfg, sessionstore.Options{Flavor: flavor}, ln)
}

// newServerStore is newServerOn with the session store's options (MaxTTL defaults to 31 days).
func newServerStore(t *testing.T, dbURL string, cfg Config, opts sessionstore.Options) *server {
	t.Helper()
	return newServerStoreListener(t, dbURL, cfg, opts, nil)
}

// newServerStoreListener is newServerStore on a given listener (nil: a new one).
func newServerStoreListener(t *testing.T, dbURL string, cfg Config, opts sessionstore.Options, ln net.Listener) *server {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, dbURL, pgdb.Config{ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := &server{pool: pool}
	if opts.MaxTTL == 0 {
		opts.MaxTTL = 31 * 24 * time.Hour
	}
	if s.sessions, err = sessionstore.Open(ctx, pool, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.sessions.Close)
	// Console tables follow the server, whatever the session dialect (as cmd/console does).
	if s.admins, err = admins.Open(ctx, pool, s.sessions.Server(), 0); err != nil {
		t.Fatal(err)
	}
	if s.audit, err = audit.Open(ctx, pool, s.sessions.Server()); err != nil {
		t.Fatal(err)
	}
	s.actions = actions.New(s.sessions, s.audit)
	if s.tokens, err = tokens.Open(ctx, pool, s.sessions.Server(), 0); err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens == nil {
		cfg.Tokens = s.tokens
	}
	if s.history, err = history.Open(ctx, pool, history.Options{Live: s.sessions, Server: s.sessions.Server()}); err != nil {
		t.Fatal(err)
	}
	s.activity = s.history.NewRecorder()
	if cfg.Activity == nil {
		cfg.Activity = s.activity
	}
	cfg.History = s.history
	if cfg.Overview == nil {
		cfg.Overview = s.history
	}
	s.metrics = metrics.New(pool, nil)
	s.actions.OnCommit(s.metrics.Committed)
	if cfg.Metrics == nil {
		cfg.Metrics = s.metrics
	}
	if tp, ok := cfg.Policy.(testPolicy); ok { // a test's policy, on this server's stores
		cfg.Policy = policy.New(s.sessions, s.history, tp.cfg)
	}
	if cfg.Background.SyncEvery == 0 {
		cfg.Background = HistoryConfig{SyncEvery: 30 * time.Second, PurgeTTL: time.Hour, PurgeEvery: time.Hour}
	}
	if _, err := jobs.New(ctx, pool, s.sessions.Server(), jobs.Options{}); err != nil { // the lease tables the health page reads
		t.Fatal(err)
	}
	cfg.Background.Jobs = func(ctx context.Context) ([]jobs.Status, error) { return jobs.Statuses(ctx, pool, s.sessions.Server()) }
	if err := s.admins.Add(ctx, "admin", adminPassword, admins.Owner); err != nil && !errors.Is(err, admins.ErrExists) {
		t.Fatal(err) // (a second server on the same database finds the admin there)
	}
	if cfg.Keys == nil {
		cfg.Keys = testKeys()
	}
	s.logs = &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(s.logs, nil))
	s.handler = New(s.sessions, s.admins, s.audit, s.actions, cfg)
	e := echo.New()
	s.handler.Register(e)
	hs := httptest.NewUnstartedServer(e)
	if ln != nil {
		hs.Listener.Close()
		hs.Listener = ln
	}
	if cfg.Secure {
		hs.StartTLS()
		s.transport = hs.Client().Transport
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// testPolicy asks the harness for a policy of cfg over the server's own stores.
type testPolicy struct {
	noPolicy
	cfg policy.Config
}

var userSeq atomic.Int64

// createUser makes a LOGIN role with a name unique to the test (roles are cluster-wide).
func (s *server) createUser(t *testing.T, base string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d", base, userSeq.Add(1))
	s.createRole(t, name)
	return name
}

func (s *server) createRole(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := s.pool.Exec(ctx, "CREATE ROLE "+ident+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident) })
}

func (s *server) issue(t *testing.T, user string, ttl time.Duration) sessionstore.Issued {
	t.Helper()
	is, err := s.sessions.Issue(context.Background(), user, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// sync runs a history sync pass and flushes the activity noted so far, as the background
// jobs would.
func (s *server) sync(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := s.activity.Flush(ctx, history.PlainTx{Pool: s.pool}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.history.Sync(ctx, history.PlainTx{Pool: s.pool}); err != nil {
		t.Fatal(err)
	}
}

func (s *server) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// client is a browser stand-in: a cookie jar, no redirects followed, the CSRF token it saw last.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
	// headers go with every request (say X-Forwarded-For, as a trusted proxy would set it).
	headers map[string]string
}

func (s *server) client(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: s.url, http: &http.Client{
		Jar:           jar,
		Transport:     s.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	body string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)

func (c *client) do(method, path string, form url.Values, headers map[string]string) response {
	c.t.Helper()
	var body io.Reader
	h := map[string]string{}
	if form != nil {
		body = strings.NewReader(form.Encode())
		h["Content-Type"] = "application/x-www-form-urlencoded"
	}
	for k, v := range headers {
		h[k] = v
	}
	return c.doReader(method, path, body, h)
}

func (c *client) doReader(method, path string, body io.Reader, headers map[string]string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfMeta.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return response{resp, string(b)}
}

func (c *client) get(path string) response { return c.do("GET", path, nil, nil) }

// doBody sends a raw body of a content type (a JSON API request).
func (c *client) doBody(method, path, contentType, body string) response {
	c.t.Helper()
	return c.doBodyHeaders(method, path, contentType, body, nil)
}

func (c *client) doBodyHeaders(method, path, contentType, body string, headers map[string]string) response {
	c.t.Helper()
	h := map[string]string{"Content-Type": contentType}
	for k, v := range headers {
		h[k] = v
	}
	return c.doReader(method, path, strings.NewReader(body), h)
}

func (c *client) hxGet(path string) response {
	return c.do("GET", path, nil, map[string]string{"HX-Request": "true"})
}

// post sends a form with the CSRF token the client saw last.
func (c *client) post(path string, form url.Values) response {
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", c.csrf)
	}
	return c.do("POST", path, form, nil)
}

// hxPost posts as htmx does: the token in the header.
func (c *client) hxPost(path string, form url.Values) response {
	if form == nil {
		form = url.Values{}
	}
	return c.do("POST", path, form, map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf})
}

// signIn returns a client signed in as admin.
func (s *server) signIn(t *testing.T) *client {
	t.Helper()
	return s.signInAs(t, "admin", adminPassword)
}

// signInAs returns a client signed in with a name and password.
func (s *server) signInAs(t *testing.T, name, password string) *client {
	t.Helper()
	c := s.client(t)
	c.get("/login")
	r := c.post("/login", url.Values{"username": {name}, "password": {password}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/overview" {
		t.Fatalf("sign-in: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	if p := c.get("/sessions"); p.StatusCode != http.StatusOK {
		t.Fatalf("sessions after sign-in: %d", p.StatusCode)
	}
	return c
}

// addAdmin makes an admin with a role and returns a client signed in as it.
func (s *server) addAdmin(t *testing.T, name string, role admins.Role) *client {
	t.Helper()
	if err := s.admins.Add(context.Background(), name, adminPassword, role); err != nil {
		t.Fatal(err)
	}
	return s.signInAs(t, name, adminPassword)
}

func (c *client) cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%.600s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, r.body)
	}
}

func wantContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %q\n%.2000s", s, body)
		}
	}
}

func wantNotContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Errorf("body contains %q", s)
		}
	}
}

// testids returns how many elements carry data-testid=id.
func testids(body, id string) int { return strings.Count(body, `data-testid="`+id+`"`) }

var rowRE = regexp.MustCompile(`<tr data-testid="session-row" data-session-id="(\d+)" data-username="([^"]*)" data-status="(\w+)">`)

type row struct{ id, user, status string }

func rows(body string) []row {
	var out []row
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, row{m[1], m[2], m[3]})
	}
	return out
}

var testidText = regexp.MustCompile(`data-testid="([\w-]+)"[^>]*>([^<]*)<`)

// textOf returns the text of the first element with data-testid=id.
func textOf(body, id string) string {
	for _, m := range testidText.FindAllStringSubmatch(body, -1) {
		if m[1] == id {
			return m[2]
		}
	}
	return ""
}
