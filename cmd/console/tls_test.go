package main

// End-to-end tests of cockroach's SQL connection flags: the built binary against a PostgreSQL
// that accepts only TLS with client certificates (pgtest.TLS), and the variables and precedence
// on the plain test cluster.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

// tlsTarget is a fresh database of the TLS cluster, reached with --host, --certs-dir (root's
// certificate) and --database.
func tlsTarget(t *testing.T) (tg *target, certs string) {
	t.Helper()
	tc := pgtest.TLS(t)
	db := tc.NewDB(t)
	certs = tc.CertsDir(t, "root")
	hostPort := tc.Host + ":" + strconv.Itoa(tc.Port)
	return &target{name: "tls", url: tc.URL(db), conn: []string{"--host", hostPort, "--certs-dir", certs, "--database", db}}, certs
}

// TestCertsDir: the reference page's examples, typed with console for cockroach, on a cluster
// that takes only TLS with client certificates, through --certs-dir.
func TestCertsDir(t *testing.T) {
	t.Parallel()
	tg, certs := tlsTarget(t)
	pool := tg.db(t)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP ROLE IF EXISTS web_user"); err != nil {
			t.Error(err)
		}
	})
	referenceScenario(t, tg)

	// As typed on the page, in the directory holding certs/, the cluster named by the
	// environment as an operator's shell would.
	tc := pgtest.TLS(t)
	typed := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		var env []string
		for len(args) > 0 && strings.HasPrefix(args[0], "COCKROACH_") {
			env, args = append(env, args[0]), args[1:]
		}
		cmd := consoleCmd(ctx, args...)
		cmd.Dir = filepath.Dir(certs)
		cmd.Env = append(cmd.Env, "COCKROACH_HOST="+tc.Host+":"+strconv.Itoa(tc.Port), "COCKROACH_DATABASE="+tg.conn[5])
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if err != nil {
			r.code = 1
		}
		return r
	}
	// $ cockroach auth-session login web_user --certs-dir=certs --only-cookie > $HOME/.cockroachdb_api_key
	r := typed("auth-session", "login", "web_user", "--certs-dir=certs", "--only-cookie")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("login --certs-dir=certs --only-cookie:\n%s", r)
	}
	keyFile := filepath.Join(t.TempDir(), ".cockroachdb_api_key")
	if err := os.WriteFile(keyFile, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(keyFile)
	store := tg.store(t, sessionstore.Options{Flavor: pgdb.Postgres})
	if v, err := store.Verify(context.Background(), strings.TrimSpace(string(b))); err != nil || v.Username != "web_user" {
		t.Errorf("the cookie file's session: %+v, %v", v, err)
	}
	// $ cockroach auth-session logout web_user  (and list), still with the certificates.
	if r := typed("auth-session", "logout", "web_user", "--certs-dir=certs", "--format=csv"); r.code != 0 || !strings.HasPrefix(r.stdout, "username,session ID,revoked\nweb_user,") {
		t.Errorf("logout:\n%s", r)
	}
	if r := typed("auth-session", "list", "--certs-dir=certs"); r.code != 0 || !strings.HasPrefix(r.stdout, "username\tsession ID\tcreated\texpires\trevoked\tlast used\n") {
		t.Errorf("list:\n%s", r)
	}
	// The certificates directory from the environment, as cockroach reads it.
	if r := typed("COCKROACH_CERTS_DIR=certs", "auth-session", "list", "--format=csv"); r.code != 0 || !strings.HasPrefix(r.stdout, "username,session ID,") {
		t.Errorf("list with COCKROACH_CERTS_DIR:\n%s", r)
	}
	// Without the certificates there is no way in.
	if r := typed("auth-session", "list"); r.code == 0 {
		t.Errorf("list without --certs-dir succeeded:\n%s", r)
	}
}

// TestCertsDirServe: serve connects with --certs-dir, says so (without secrets) and is ready.
func TestCertsDirServe(t *testing.T) {
	t.Parallel()
	tg, certs := tlsTarget(t)
	s := startServe(t, append(tg.conn, "--data-dir", t.TempDir())...)
	want := fmt.Sprintf("console: postgres sessions in console.web_sessions (root@%s/%s (TLS verify-full, client certificate %s))",
		tg.conn[1], tg.conn[5], filepath.Join(certs, "client.root.crt"))
	if len(s.startup) == 0 || s.startup[0] != want {
		t.Errorf("serve printed %q, want first %q", s.startup, want)
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
}

// TestCertsDirFailures: a wrong CA, a missing client key and a plain-text server without
// --insecure each fail with their own message, in every command and in serve, and change
// nothing.
func TestCertsDirFailures(t *testing.T) {
	t.Parallel()
	tg, _ := tlsTarget(t)
	tc := pgtest.TLS(t)
	hostPort, db := tg.conn[1], tg.conn[5]
	tg.ok(t, "auth-session", "list") // migrate
	sessions := func() int64 { return tg.queryInt(t, "SELECT count(*) FROM console.web_sessions") }

	wrongCA := pgtest.WriteCertsDir(t, filepath.Join(t.TempDir(), "certs"), pgtest.NewCA(t, "another CA").PEM, tc.CA, "root")
	noKey := pgtest.WriteCertsDir(t, filepath.Join(t.TempDir(), "certs"), tc.CA.PEM, tc.CA, "root")
	os.Remove(filepath.Join(noKey, "client.root.key"))
	openKey := pgtest.WriteCertsDir(t, filepath.Join(t.TempDir(), "certs"), tc.CA.PEM, tc.CA, "root")
	os.Chmod(filepath.Join(openKey, "client.root.key"), 0o644)
	noCert := pgtest.WriteCertsDir(t, filepath.Join(t.TempDir(), "certs"), tc.CA.PEM, tc.CA)
	plain := pgtest.Cluster(t)
	plainPort := strconv.Itoa(plain.Port())

	cases := []struct {
		name    string
		flags   []string
		msg     string // the ERROR line's message (all of it when exact)
		exact   bool
		hint    string
		env     []string
		console string // serve's one line contains this
	}{
		{name: "wrong CA", flags: []string{"--host", hostPort, "--certs-dir", wrongCA, "--database", db},
			msg:  "certificate signed by unknown authority",
			hint: "the server's certificate is not signed by the CA in " + filepath.Join(wrongCA, "ca.crt")},
		{name: "missing client key", flags: []string{"--host", hostPort, "--certs-dir", noKey, "--database", db}, exact: true,
			msg: "cannot read the client key " + filepath.Join(noKey, "client.root.key") + " (for " + filepath.Join(noKey, "client.root.crt") + "): no such file"},
		{name: "key readable by others", flags: []string{"--host", hostPort, "--certs-dir", openKey, "--database", db}, exact: true,
			msg: "the client key " + filepath.Join(openKey, "client.root.key") + " has group or world access (mode 0644); it must be u=rw (0600) or less, or u=rw,g=r (0640) or less if another user (root) owns it"},
		{name: "no client certificate", flags: []string{"--host", hostPort, "--certs-dir", noCert, "--database", db},
			msg:  "connection requires a valid client certificate",
			hint: "no client certificate was presented: " + filepath.Join(noCert, "client.root.crt") + " and its key were not found"},
		{name: "plain text without --insecure", flags: []string{"--host", "127.0.0.1", "--port", plainPort}, env: []string{"HOME=" + t.TempDir()},
			msg:  "server refused TLS connection",
			hint: "the server does not accept TLS connections; --insecure connects without TLS (only on a network you trust)"},
		{name: "--insecure to a TLS-only server", flags: []string{"--host", hostPort, "--insecure", "--database", db},
			msg:  `no pg_hba.conf entry for host "127.0.0.1", user "root", database "` + db + `", no encryption`,
			hint: "the server accepts only TLS connections here; leave out --insecure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := sessions()
			for _, cmd := range [][]string{{"login", "root"}, {"logout", "root"}, {"list"}} {
				ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
				p := consoleCmd(ctx, append(append([]string{"auth-session"}, cmd...), c.flags...)...)
				p.Env = append(p.Env, c.env...)
				var stdout, stderr strings.Builder
				p.Stdout, p.Stderr = &stdout, &stderr
				err := p.Run()
				cancel()
				got := stderr.String()
				name := "auth-session " + cmd[0]
				var ok bool
				if c.exact {
					ok = got == crdbErr(name, c.msg)+"\n"
				} else {
					lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
					ok = len(lines) == 3 && strings.HasPrefix(lines[0], "ERROR: ") && strings.Contains(lines[0], c.msg) &&
						lines[1] == "HINT: "+c.hint && lines[2] == `Failed running "`+name+`"`
				}
				if err == nil || stdout.String() != "" || !ok {
					t.Errorf("%s: %v\nstdout %q\nstderr:\n%s\nwant the error %q (hint %q)", name, err, stdout.String(), got, c.msg, c.hint)
				}
			}
			// serve: one line with the same message.
			out := startServeErr(t, append(c.flags, "--data-dir", t.TempDir())...)
			if !strings.Contains(out, c.msg) || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "console: ") {
				t.Errorf("serve: %q, want one line with %q", out, c.msg)
			}
			if after := sessions(); after != before {
				t.Errorf("%d sessions before, %d after", before, after)
			}
		})
	}
}

// TestConnectionVariables: COCKROACH_* and CONSOLE_DATABASE_URL point the console at a
// database, with cockroach's precedence between them and the flags.
func TestConnectionVariables(t *testing.T) {
	t.Parallel()
	db1, db2 := pgtest.NewDB(t), pgtest.NewDB(t)
	u1, _ := url.Parse(db1)
	name := func(u string) string { p, _ := url.Parse(u); return strings.TrimPrefix(p.Path, "/") }
	password, _ := u1.User.Password()
	where := func(env []string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append([]string{"sql", "-e", "SELECT current_user || '@' || current_database()", "--format=csv"}, args...)...)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v %v: %v\n%s", env, args, err, out)
		}
		return strings.TrimSpace(strings.TrimPrefix(string(out), "?column?\n"))
	}
	root := "root@"
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"COCKROACH_URL", []string{"COCKROACH_URL=" + db1}, nil, root + name(db1)},
		{"a flag after the variable's URL", []string{"COCKROACH_URL=" + db1}, []string{"--database", name(db2)}, root + name(db2)},
		{"--url after --database", nil, []string{"--database", name(db2), "--url", db1}, root + name(db1)},
		{"--database after --url", nil, []string{"--url", db1, "--database", name(db2)}, root + name(db2)},
		{"CONSOLE_DATABASE_URL over COCKROACH_URL", []string{"COCKROACH_URL=" + db1, "CONSOLE_DATABASE_URL=" + db2}, nil, root + name(db2)},
		{"discrete variables", []string{"COCKROACH_HOST=" + u1.Hostname(), "COCKROACH_PORT=" + u1.Port(), "COCKROACH_INSECURE=true",
			"COCKROACH_DATABASE=" + name(db1), "COCKROACH_USER=root", "PGPASSWORD=" + password}, nil, root + name(db1)},
		{"host:port variable", []string{"COCKROACH_HOST=" + u1.Host, "COCKROACH_INSECURE=true", "COCKROACH_DATABASE=" + name(db1), "PGPASSWORD=" + password}, nil, root + name(db1)},
		{"discrete flags", []string{"PGPASSWORD=" + password}, []string{"--host", u1.Hostname(), "--port", u1.Port(), "--insecure", "--user", "root", "--database", name(db2)}, root + name(db2)},
		{"flags over variables", []string{"COCKROACH_HOST=nowhere.invalid", "COCKROACH_DATABASE=nodb", "PGPASSWORD=" + password},
			[]string{"--host", u1.Host, "--insecure", "--database", name(db2)}, root + name(db2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := where(tc.env, tc.args...); got != tc.want {
				t.Errorf("connected to %q, want %q", got, tc.want)
			}
		})
	}
	// auth-session on variables alone.
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := consoleCmd(ctx, "auth-session", "list", "--format=csv")
	cmd.Env = append(cmd.Env, "COCKROACH_URL="+db1)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "username,session ID,created,expires,revoked,last used\n" {
		t.Errorf("auth-session list with COCKROACH_URL: %v\n%s", err, out)
	}
}

// TestNonRootUser: --user and COCKROACH_USER really choose the SQL user, not only root (the
// default): a user with the grants the console needs connects as itself (current_user), logs a
// session in, lists and logs out; a user without them is refused with a message naming it; on
// the TLS cluster --user picks that user's client certificate, which authenticates it.
func TestNonRootUser(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "auth-session", "list") // migrate, as root
	u, _ := url.Parse(tg.url)
	db := strings.TrimPrefix(u.Path, "/")
	alice, bob := fmt.Sprintf("console_alice_%d", os.Getpid()), fmt.Sprintf("console_bob_%d", os.Getpid())
	for _, r := range []string{alice, bob} {
		tg.exec(t, "CREATE ROLE "+r+" LOGIN PASSWORD 'pw-"+r+"'")
	}
	t.Cleanup(func() {
		pool := tg.db(t)
		for _, r := range []string{alice, bob} {
			pool.Exec(context.Background(), "DROP OWNED BY "+r)
			pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+r)
		}
	})
	tg.exec(t, "CREATE ROLE web_user_"+strconv.Itoa(os.Getpid())+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS web_user_"+strconv.Itoa(os.Getpid())) })
	tg.exec(t, "GRANT CREATE ON DATABASE "+db+" TO "+alice+"; GRANT USAGE, CREATE ON SCHEMA console TO "+alice+
		"; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA console TO "+alice+"; GRANT USAGE ON ALL SEQUENCES IN SCHEMA console TO "+alice)

	as := func(env []string, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, args...)
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if err != nil {
			r.code = 1
		}
		return r
	}
	flags := func(user string) []string {
		return []string{"--host", u.Hostname(), "--port", u.Port(), "--insecure", "--user", user, "--database", db}
	}
	pw := func(user string) []string { return []string{"PGPASSWORD=pw-" + user} }
	whoami := []string{"sql", "-e", "SELECT current_user || '@' || current_database()", "--format=csv"}
	if r := as(pw(alice), append(whoami, flags(alice)...)...); r.code != 0 || r.stdout != "?column?\n"+alice+"@"+db+"\n" {
		t.Errorf("--user %s:\n%s", alice, r)
	}
	env := append(pw(alice), "COCKROACH_HOST="+u.Hostname(), "COCKROACH_PORT="+u.Port(), "COCKROACH_INSECURE=true",
		"COCKROACH_DATABASE="+db, "COCKROACH_USER="+alice)
	if r := as(env, whoami...); r.code != 0 || r.stdout != "?column?\n"+alice+"@"+db+"\n" {
		t.Errorf("COCKROACH_USER=%s:\n%s", alice, r)
	}
	// A flag beats the variable: --user bob with COCKROACH_USER=alice connects as bob.
	if r := as(append(env[1:], "PGPASSWORD=pw-"+bob), append(whoami, "--user", bob)...); r.code != 0 || r.stdout != "?column?\n"+bob+"@"+db+"\n" {
		t.Errorf("--user %s over COCKROACH_USER:\n%s", bob, r)
	}
	// alice does the console's work as herself.
	webUser := "web_user_" + strconv.Itoa(os.Getpid())
	if r := as(env, "auth-session", "login", webUser, "--only-cookie"); r.code != 0 || r.stderr != "" {
		t.Errorf("login as %s:\n%s", alice, r)
	}
	if r := as(env, "auth-session", "logout", webUser, "--format=csv"); r.code != 0 || !strings.HasPrefix(r.stdout, "username,session ID,revoked\n"+webUser+",") {
		t.Errorf("logout as %s:\n%s", alice, r)
	}
	// bob may only connect: the refusal names him and the grant.
	before := tg.queryInt(t, "SELECT count(*) FROM console.web_sessions")
	r := as(pw(bob), append([]string{"auth-session", "login", webUser}, flags(bob)...)...)
	if r.code == 0 || !strings.Contains(r.stderr, `the SQL user "`+bob+`" may not`) || !strings.Contains(r.stderr, "permission denied") ||
		!strings.Contains(r.stderr, `TO "`+bob+`"`) {
		t.Errorf("login as %s, who has no grants:\n%s", bob, r)
	}
	if after := tg.queryInt(t, "SELECT count(*) FROM console.web_sessions"); after != before {
		t.Errorf("%d sessions before %s's refused login, %d after", before, bob, after)
	}

	// TLS: --user alice takes client.alice.crt, and the server's cert method maps it to alice.
	tc := pgtest.TLS(t)
	tlsAlice := fmt.Sprintf("tls_alice_%d", os.Getpid())
	admin, err := pgx.Connect(context.Background(), tc.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "CREATE ROLE "+tlsAlice+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+tlsAlice) })
	certs := tc.CertsDir(t, "root", tlsAlice)
	hostPort := tc.Host + ":" + strconv.Itoa(tc.Port)
	if r := as(nil, append(whoami, "--host", hostPort, "--certs-dir", certs, "--user", tlsAlice, "--database", "postgres")...); r.code != 0 ||
		r.stdout != "?column?\n"+tlsAlice+"@postgres\n" {
		t.Errorf("--user %s --certs-dir:\n%s", tlsAlice, r)
	}
	if r := as([]string{"COCKROACH_USER=" + tlsAlice}, append(whoami, "--host", hostPort, "--certs-dir", certs, "--database", "postgres")...); r.code != 0 ||
		r.stdout != "?column?\n"+tlsAlice+"@postgres\n" {
		t.Errorf("COCKROACH_USER=%s --certs-dir:\n%s", tlsAlice, r)
	}
}

// forward accepts connections on a free port of the loopback address addr and passes their
// bytes (TLS included) to target unchanged, until the test ends. It returns its host:port.
func forward(t *testing.T, addr, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return ln.Addr().String()
}

// TestVerifyFullChecksTheName: verify-full (what --certs-dir asks for) refuses a server whose
// certificate, though signed by the right CA, does not name the host connected to, with one
// clear line in every command and in serve; the names it carries work, and verify-ca through
// the same way in shows that the name was the only objection.
func TestVerifyFullChecksTheName(t *testing.T) {
	t.Parallel()
	tg, certs := tlsTarget(t)
	tc := pgtest.TLS(t)
	db := tg.conn[5]
	// 127.0.0.2 is loopback too, but the server's certificate names only 127.0.0.1 and localhost.
	other := forward(t, "127.0.0.2", net.JoinHostPort(tc.Host, strconv.Itoa(tc.Port)))
	tg.ok(t, "auth-session", "list") // migrate
	sessions := func() int64 { return tg.queryInt(t, "SELECT count(*) FROM console.web_sessions") }
	before := sessions()
	const refusal = "certificate is valid for 127.0.0.1, not 127.0.0.2"
	for _, cmd := range [][]string{{"login", "root"}, {"logout", "root"}, {"list"}} {
		r := run(t, "", append(append([]string{"auth-session"}, cmd...), "--host", other, "--certs-dir", certs, "--database", db)...)
		name := "auth-session " + cmd[0]
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code == 0 || r.stdout != "" || len(lines) != 3 || !strings.HasPrefix(lines[0], "ERROR: ") || !strings.Contains(lines[0], refusal) ||
			lines[1] != "HINT: the server's certificate does not name the host connected to; use the host name it was issued for" ||
			lines[2] != `Failed running "`+name+`"` {
			t.Errorf("%s through 127.0.0.2:\n%s\nwant an ERROR line with %q", name, r, refusal)
		}
		if cmd[0] == "list" {
			t.Logf("an operator sees:\n%s", r.stderr)
		}
	}
	out := startServeErr(t, "--host", other, "--certs-dir", certs, "--database", db, "--data-dir", t.TempDir())
	if !strings.HasPrefix(out, "console: ") || !strings.Contains(out, refusal) || strings.Count(out, "\n") != 1 {
		t.Errorf("serve through 127.0.0.2: %q, want one line with %q", out, refusal)
	}
	if after := sessions(); after != before {
		t.Errorf("%d sessions before, %d after the refused logins", before, after)
	}

	// The names the certificate carries: localhost (a DNS name) and 127.0.0.1 (an address).
	for _, host := range []string{"localhost", tc.Host} {
		if r := run(t, "", "auth-session", "login", "root", "--only-cookie", "--host", net.JoinHostPort(host, strconv.Itoa(tc.Port)), "--certs-dir", certs, "--database", db); r.code != 0 || r.stderr != "" {
			t.Errorf("login through %s:\n%s", host, r)
		}
	}
	// verify-ca (the CA, not the name) through 127.0.0.2 gets in.
	q := url.Values{"sslmode": {"verify-ca"}, "sslrootcert": {filepath.Join(certs, "ca.crt")},
		"sslcert": {filepath.Join(certs, "client.root.crt")}, "sslkey": {filepath.Join(certs, "client.root.key")}}
	caOnly := (&url.URL{Scheme: "postgresql", User: url.User("root"), Host: other, Path: "/" + db, RawQuery: q.Encode()}).String()
	if r := run(t, "", "auth-session", "list", "--format=csv", "--url", caOnly); r.code != 0 || !strings.HasPrefix(r.stdout, "username,session ID,") {
		t.Errorf("verify-ca through 127.0.0.2:\n%s", r)
	}
}
