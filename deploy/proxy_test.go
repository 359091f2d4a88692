// Package deploy holds the reverse-proxy configurations the README shows (nginx, Caddy, Traefik).
// Its tests run the nginx and Caddy files, changed only in their addresses, against the built
// console with the real programs, each on free loopback ports with a prefix, configuration,
// pid and logs of its own (never the system services their packages install), and check the
// Traefik files' structure.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/bench"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

// consoleBin is the console binary under test, built once by TestMain.
var consoleBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	consoleBin = filepath.Join(dir, "console")
	build := exec.Command("go", "build", "-o", consoleBin, "../cmd/console")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the console binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// program finds a proxy's binary; a missing one fails the test (make test installs them).
func program(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	t.Fatalf("%s is not installed: run make deps-proxies (Debian: apt-get install nginx caddy)", name)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits (bounded) until addr accepts connections or the process exits.
func waitListening(t *testing.T, addr string, exited <-chan struct{}, logFile string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("exited before listening on %s:\n%s", addr, b)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

// render returns the configuration file with each old text, which must occur exactly once,
// replaced by its new text: only addresses change, so a test runs the file the README shows.
func render(t *testing.T, file string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(replace); i += 2 {
		if n := strings.Count(s, replace[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", file, replace[i], n)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return s
}

// startProcess runs a proxy until the test ends, then stops it with SIGTERM (its whole
// process group: nginx's workers too) and waits for it.
func startProcess(t *testing.T, logFile string, env []string, name string, args ...string) <-chan struct{} {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return exited
}

// upstream is the application behind the proxy: it answers with the headers it received.
type upstream struct {
	url  string
	mu   sync.Mutex
	hits int
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	})}
	u.url = serveLoopback(t, srv)
	return u
}

func (u *upstream) hitCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

func serveLoopback(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// consoleFront stands between the proxy and the console: it records the headers of every
// verify sub-request, and can hang (a console that does not answer) or be closed (one that is
// down).
type consoleFront struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	seen []http.Header
	hang bool
	done chan struct{} // releases hung requests when the test ends
}

func startConsoleFront(t *testing.T, consoleURL string) *consoleFront {
	t.Helper()
	target, err := url.Parse(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &consoleFront{done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		hang := f.hang
		f.mu.Unlock()
		if hang {
			select {
			case <-f.done:
			case <-r.Context().Done():
			}
			return
		}
		rp.ServeHTTP(w, r)
	})}
	t.Cleanup(func() { close(f.done) })
	f.addr = serveLoopback(t, f.srv)
	return f
}

func (f *consoleFront) last(t *testing.T) http.Header {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the console was never asked")
	}
	return f.seen[len(f.seen)-1]
}

func (f *consoleFront) setHang(h bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = h
}

// startConsole runs `console serve` on the database at dbURL until the test ends and returns
// its URL.
func startConsole(t *testing.T, dbURL string) string {
	t.Helper()
	srv, err := bench.StartServer(context.Background(), consoleBin, dbURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv.URL
}

// sessions are the cookies the cases use, issued on the console's database.
type sessions struct {
	user                    string
	validID                 int64
	valid, revoked, expired string // cookie values
}

func issueSessions(t *testing.T, dbURL string) sessions {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s := sessions{user: "proxy_user"}
	ident := pgx.Identifier{s.user}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE "+ident+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), dbURL); err == nil {
			c.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident)
			c.Close(context.Background())
		}
	})
	// Issued as an operator would, with the CLI.
	issue := func() sessionstore.Cookie {
		cmd := exec.Command(consoleBin, "--url", dbURL, "auth-session", "login", s.user, "--only-cookie")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("auth-session login: %v\n%s", err, out)
		}
		c, err := sessionstore.DecodeCookie(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("auth-session login printed %q: %v", out, err)
		}
		return c
	}
	valid, revoked, expired := issue(), issue(), issue()
	for sql, id := range map[string]int64{
		`UPDATE console.web_sessions SET "revokedAt" = now() AT TIME ZONE 'UTC' WHERE id = $1`:          revoked.ID,
		`UPDATE console.web_sessions SET "expiresAt" = "createdAt" - INTERVAL '1 minute' WHERE id = $1`: expired.ID,
	} {
		if tag, err := conn.Exec(ctx, sql, id); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v %v", sql, tag, err)
		}
	}
	s.validID = valid.ID
	s.valid, s.revoked, s.expired = valid.Value(), revoked.Value(), expired.Value()
	return s
}

// proxyUnderTest is one proxy, running its configuration file in front of the console.
type proxyUnderTest struct {
	name string
	url  string
	// stripsAllXAuth: the proxy removes every client-sent X-Auth-* header, not only the
	// console's two (nginx can only replace headers it names).
	stripsAllXAuth bool
	// uriHeader is where the sub-request carries the original URI.
	uriHeader string
}

// startNginx runs deploy/nginx/console.conf inside a minimal nginx.conf of the test's, with
// its own prefix, pid, error log, access log and temporary directories.
func startNginx(t *testing.T, consoleAddr, appAddr string) proxyUnderTest {
	t.Helper()
	nginx := program(t, "nginx")
	prefix := t.TempDir()
	port := freePort(t)
	site := render(t, "nginx/console.conf",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"server 127.0.0.1:8080;", "server "+consoleAddr+";",
		"server 127.0.0.1:3000;", "server "+appAddr+";")
	if err := os.WriteFile(filepath.Join(prefix, "console.conf"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	var temps strings.Builder
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", d, filepath.Join(prefix, "tmp-"+d))
	}
	main := fmt.Sprintf(`worker_processes 1;
events { worker_connections 64; }
http {
    access_log %s;
%s    include %s;
}
`, filepath.Join(prefix, "access.log"), temps.String(), filepath.Join(prefix, "console.conf"))
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(prefix, "error.log")
	args := []string{"-p", prefix, "-c", conf, "-e", errorLog, "-g", "daemon off; pid " + filepath.Join(prefix, "nginx.pid") + ";"}
	if out, err := exec.Command(nginx, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	exited := startProcess(t, filepath.Join(prefix, "nginx.out"), os.Environ(), nginx, args...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, exited, errorLog)
	return proxyUnderTest{name: "nginx", url: "http://" + addr, uriHeader: "X-Original-Uri"}
}

// startCaddy runs deploy/caddy/Caddyfile with HOME and XDG directories of its own and its
// admin API on a free loopback port.
func startCaddy(t *testing.T, consoleAddr, appAddr string) proxyUnderTest {
	t.Helper()
	caddy := program(t, "caddy")
	dir := t.TempDir()
	port, admin := freePort(t), freePort(t)
	site := render(t, "caddy/Caddyfile",
		"admin localhost:2019", fmt.Sprintf("admin 127.0.0.1:%d", admin),
		"\n:80 {\n", fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\tbind 127.0.0.1\n", port),
		"forward_auth 127.0.0.1:8080 {", "forward_auth "+consoleAddr+" {",
		"reverse_proxy 127.0.0.1:3000 {", "reverse_proxy "+appAddr+" {")
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	logFile := filepath.Join(dir, "caddy.log")
	exited := startProcess(t, logFile, env, caddy, "run", "--config", file, "--adapter", "caddyfile")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, exited, logFile)
	return proxyUnderTest{name: "caddy", url: "http://" + addr, stripsAllXAuth: true, uriHeader: "X-Forwarded-Uri"}
}

// TestProxies runs the nginx and Caddy configurations in front of the console and an echo
// application: only valid sessions pass, the app sees the console's verified X-Auth-* values
// and never the client's, the console gets what it records about a use, and a console that is
// down or hangs lets nothing through.
func TestProxies(t *testing.T) {
	dbURL := pgtest.NewDB(t)
	consoleURL := startConsole(t, dbURL)
	s := issueSessions(t, dbURL)
	for _, start := range []func(*testing.T, string, string) proxyUnderTest{startNginx, startCaddy} {
		app := startUpstream(t)
		front := startConsoleFront(t, consoleURL)
		p := start(t, front.addr, app.url)
		t.Run(p.name, func(t *testing.T) { checkProxy(t, p, app, front, s) })
	}
	// The console recorded the uses with what the proxies passed on (its activity flush runs
	// every few seconds: wait for it, bounded).
	t.Run("activity recorded", func(t *testing.T) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		deadline := time.Now().Add(30 * time.Second)
		for {
			var path, agent string
			var uses int64
			err := conn.QueryRow(ctx, `SELECT last_path, last_user_agent, uses FROM console.session_activity WHERE session_id = $1`, s.validID).
				Scan(&path, &agent, &uses)
			if err == nil && path == "/app/page" && agent == "proxytest/1.0" && uses >= 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("activity of session %d: path %q, user agent %q, %d uses (%v); want the proxies' /app/page without its query", s.validID, path, agent, uses, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// get asks the proxy for /app/page?q=1 and returns the status and body.
func get(t *testing.T, p proxyUnderTest, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url+"/app/page?q=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "proxytest/1.0")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	// A bound, not a speed check: a proxy without timeouts would wait here far longer.
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func checkProxy(t *testing.T, p proxyUnderTest, app *upstream, front *consoleFront, s sessions) {
	// passes asks with headers and expects the app to answer; it returns what the app got.
	passes := func(t *testing.T, headers map[string]string) http.Header {
		t.Helper()
		before := app.hitCount()
		status, body := get(t, p, headers)
		if status != http.StatusOK || app.hitCount() != before+1 {
			t.Fatalf("status %d (app reached %d times), want 200 from the app:\n%s", status, app.hitCount()-before, body)
		}
		var got http.Header
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("app answer: %v\n%s", err, body)
		}
		return got
	}
	// refused asks with headers and expects an answer from the proxy (want, or any 5xx for 0)
	// and nothing let through.
	refused := func(t *testing.T, headers map[string]string, want int) {
		t.Helper()
		before := app.hitCount()
		status, body := get(t, p, headers)
		if app.hitCount() != before {
			t.Fatalf("the app was reached (status %d)", status)
		}
		if want == 0 && status < 500 || want != 0 && status != want {
			t.Fatalf("status %d, want %v:\n%.300s", status, map[bool]any{true: "5xx", false: want}[want == 0], body)
		}
	}
	wantAuth := func(t *testing.T, got http.Header) {
		t.Helper()
		if u, id := got.Values("X-Auth-User"), got.Values("X-Auth-Session-Id"); len(u) != 1 || u[0] != s.user ||
			len(id) != 1 || id[0] != strconv.FormatInt(s.validID, 10) {
			t.Errorf("the app got X-Auth-User %q and X-Auth-Session-Id %q, want %q and %d", u, id, s.user, s.validID)
		}
	}
	cookie := "theme=dark; session=" + s.valid

	t.Run("no cookie", func(t *testing.T) { refused(t, nil, http.StatusUnauthorized) })
	t.Run("valid cookie", func(t *testing.T) {
		got := passes(t, map[string]string{"Cookie": cookie, "X-Forwarded-For": "203.0.113.9"})
		wantAuth(t, got)
		// What the console was told about this use of the session.
		v := front.last(t)
		xff := strings.Split(v.Get("X-Forwarded-For"), ",")
		checks := []struct{ name, got, want string }{
			{"Cookie", v.Get("Cookie"), cookie},
			{"User-Agent", v.Get("User-Agent"), "proxytest/1.0"},
			{"X-Forwarded-For (right-most)", strings.TrimSpace(xff[len(xff)-1]), "127.0.0.1"},
			{"X-Real-IP", v.Get("X-Real-IP"), "127.0.0.1"},
			{"X-Forwarded-Host", v.Get("X-Forwarded-Host"), strings.TrimPrefix(p.url, "http://")},
			{"X-Forwarded-Proto", v.Get("X-Forwarded-Proto"), "http"},
			{"X-Forwarded-Method", v.Get("X-Forwarded-Method"), "GET"},
			{p.uriHeader, v.Get(p.uriHeader), "/app/page?q=1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("the console got %s %q, want %q", c.name, c.got, c.want)
			}
		}
	})
	t.Run("API session header", func(t *testing.T) {
		wantAuth(t, passes(t, map[string]string{"X-Cockroach-API-Session": s.valid}))
		if got := front.last(t).Get("X-Cockroach-API-Session"); got != s.valid {
			t.Errorf("the console got X-Cockroach-API-Session %q", got)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		refused(t, map[string]string{"Cookie": "session=" + s.revoked}, http.StatusUnauthorized)
	})
	t.Run("expired", func(t *testing.T) {
		refused(t, map[string]string{"Cookie": "session=" + s.expired}, http.StatusUnauthorized)
	})
	spoofed := map[string]string{"X-Auth-User": "root", "X-Auth-Session-Id": "1", "X-Auth-Role": "owner"}
	t.Run("spoofed X-Auth-* with a valid cookie", func(t *testing.T) {
		headers := map[string]string{"Cookie": cookie}
		for k, v := range spoofed {
			headers[k] = v
		}
		got := passes(t, headers)
		wantAuth(t, got)
		if p.stripsAllXAuth && got.Get("X-Auth-Role") != "" {
			t.Errorf("the app got the client's X-Auth-Role %q", got.Get("X-Auth-Role"))
		}
	})
	t.Run("spoofed X-Auth-* without a session", func(t *testing.T) { refused(t, spoofed, http.StatusUnauthorized) })
	t.Run("console hangs", func(t *testing.T) {
		front.setHang(true)
		defer front.setHang(false)
		refused(t, map[string]string{"Cookie": cookie}, 0)
	})
	t.Run("console down", func(t *testing.T) {
		front.srv.Close()
		refused(t, map[string]string{"Cookie": cookie}, 0)
	})
}
