package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionconsole/console/sessionstore"
)

// TestUsageErrors: wrong command lines fail with a clear message before anything is opened
// (the data directory is not even created). The auth-session commands print as cockroach does:
// flag errors after the usage, with exit status 4; others with status 1.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "never-created")
	const (
		login  = "auth-session login"
		logout = "auth-session logout"
		list   = "auth-session list"
	)
	formats := "(possible values: tsv, csv, table, records, ndjson, json, sql, html, unnumbered-html, raw)"
	tests := []struct {
		args      []string
		wantErr   string
		flagError bool // cockroach style: usage first, exit status 4
	}{
		{[]string{"auth-session", "login"}, crdbErr(login, "missing USER argument (usage: console auth-session login USER [flags])"), false},
		{[]string{"auth-session", "logout"}, crdbErr(logout, "missing USER argument (usage: console auth-session logout USER [flags])"), false},
		{[]string{"auth-session", "login", "a", "b"}, crdbErr(login, `unexpected argument "b" (usage: console auth-session login USER [flags])`), false},
		{[]string{"auth-session", "list", "x"}, crdbErr(list, `unexpected argument "x" (usage: console auth-session list [flags])`), false},
		{[]string{"auth-session", "list", "--format=xml"}, crdbErr(list, `invalid argument "xml" for "--format" flag: invalid table display format: xml `+formats), true},
		{[]string{"auth-session", "logout", "u", "--format=TABLE"}, crdbErr(logout, `invalid argument "TABLE" for "--format" flag: invalid table display format: TABLE `+formats), true},
		{[]string{"auth-session", "login", "u", "--expire-after=1d"}, crdbErr(login, `invalid argument "1d" for "--expire-after" flag: use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`), true},
		{[]string{"auth-session", "login", "u", "--bogus"}, crdbErr(login, "unknown flag: --bogus"), true},
		{[]string{"auth-session", "list", "--port=http"}, crdbErr(list, `invalid argument "http" for "--port" flag: invalid port "http" (1 to 65535)`), true},
		{[]string{"auth-session", "list", "--url=mysql://u:s3cret@h/d"}, crdbErr(list, `invalid argument for "--url" flag: invalid URL: the scheme must be postgresql:// or postgres://`), true},
		{[]string{"auth-session", "list", "--insecure", "--certs-dir=certs"}, crdbErr(list, "--insecure connects without TLS, so --certs-dir cannot be used with it"), false},
		{[]string{"auth-session", "list", "--certs-dir=/nonexistent"}, crdbErr(list, "cannot read the CA certificate /nonexistent/ca.crt: no such file (--certs-dir needs ca.crt to verify the server)"), false},
		{[]string{"--dialect=oracle", "auth-session", "list"}, crdbErr(list, `invalid dialect "oracle" (possible values: auto, cockroach, postgres)`), false},
		{[]string{"admin", "add"}, "console: admin add: missing NAME argument (usage: console admin add NAME [flags])", false},
		{[]string{"admin", "add", "alice", "s3cret-password"}, "console: admin add takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input", false},
		{[]string{"admin", "passwd", "alice", "s3cret-password"}, "console: admin passwd takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input", false},
		{[]string{"admin", "add", "alice", "--password=s3cret-password"}, "console: unknown flag: --password", false},
		{[]string{"admin", "add", "bad name"}, "console: invalid admin name or password: admin names are 1-63 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", false},
		{[]string{"admin", "remove", "a", "b"}, `console: admin remove: unexpected argument "b" (usage: console admin remove NAME [flags])`, false},
		{[]string{"admin", "list", "--format=yaml"}, `console: invalid argument "yaml" for "--format" flag: invalid table display format: yaml ` + formats, false},
		{[]string{"sql", "SELECT 1"}, `console: sql: unexpected argument "SELECT 1" (usage: console sql [-e STATEMENT]... [flags])`, false},
		{[]string{"sql", "-e", "SELECT 1", "--format=x"}, `console: invalid argument "x" for "--format" flag: invalid table display format: x ` + formats, false},
		{[]string{"sql", "-e", "SELECT 1", "--url=postgres://u:s3cret@h:0/d"}, `console: invalid argument for "--url" flag: invalid URL: invalid port "0" (1 to 65535)`, false},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--data-dir", dataDir}, tc.args...)
			r := run(t, "", args...)
			if tc.flagError {
				checkFlagError(t, r, tc.wantErr, args)
			} else {
				checkFails(t, r, tc.wantErr, args)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("the error shows the password: %s", r.stderr)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Fatalf("the data directory was created (%v)", err)
			}
		})
	}
}

// TestBareAuthSession: `auth-session` alone, or with an unknown subcommand, prints the usage
// and fails with cockroach's message.
func TestBareAuthSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"auth-session"}, crdbErr("auth-session", `unknown sub-command: ""`)},
		{[]string{"auth-session", "logn", "u"}, crdbErr("auth-session", `unknown sub-command: "logn u"`)},
	} {
		r := run(t, "", tc.args...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "Usage:\n  console auth-session [flags]\n  console auth-session [command]\n") ||
			!strings.Contains(r.stderr, "Available Commands:\n  list ") || !strings.HasSuffix(r.stderr, "more information about a command.\n"+tc.want+"\n") {
			t.Errorf("console %s:\n%s\nwant exit status 1, the usage and %q on stderr", strings.Join(tc.args, " "), r, tc.want)
		}
	}
}

// TestUnreachableDatabase: a database that cannot be reached, or a server that is not
// PostgreSQL, fails at once with one line that does not show the URL's password.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }))
	t.Cleanup(web.Close)
	// A server that answers anything with an HTTP error at once.
	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()

	const password = "pw-s3cret-Xy"
	urls := []struct {
		name, url, want string
	}{
		{"nothing listens", fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/db", password, closedPort), "connection refused"},
		{"HTTP server", fmt.Sprintf("postgres://u:%s@%s/db?sslmode=disable", password, web.Listener.Addr()), "did not answer as PostgreSQL or CockroachDB would"},
		{"HTTP error at once", fmt.Sprintf("postgresql://u:%s@%s/db?sslmode=disable", password, garbage.Addr()), "did not answer as PostgreSQL or CockroachDB would"},
		// A URL without sslmode asks for TLS (verify-full), as cockroach does.
		{"HTTP error at once, TLS", fmt.Sprintf("postgresql://u:%s@%s/db", password, garbage.Addr()), "server refused TLS connection"},
		{"bad URL", fmt.Sprintf("postgres://u:%s@127.0.0.1:99999999/db", password), `invalid argument for "--url" flag: invalid URL: invalid port "99999999"`},
	}
	commands := [][]string{
		{"auth-session", "login", "root"},
		{"auth-session", "list"},
		{"sql", "-e", "SELECT 1"},
		{"admin", "list"},
	}
	for _, u := range urls {
		for _, c := range commands {
			t.Run(u.name+"/"+strings.Join(c, " "), func(t *testing.T) {
				t.Parallel()
				r := run(t, "", append([]string{"--url", u.url}, c...)...)
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				var ok bool
				if c[0] == "auth-session" {
					// cockroach's form: (a flag error's usage,) the ERROR line, any HINT, then
					// the command.
					errLine := -1
					for i, l := range lines {
						if strings.HasPrefix(l, "ERROR: ") {
							errLine = i
						}
					}
					ok = errLine >= 0 && strings.Contains(lines[errLine], u.want) &&
						lines[len(lines)-1] == `Failed running "auth-session `+c[1]+`"` && len(lines)-errLine <= 3
				} else {
					ok = len(lines) == 1 && strings.HasPrefix(r.stderr, "console: ") && strings.Contains(r.stderr, u.want)
				}
				if r.code == 0 || r.stdout != "" || !ok {
					t.Errorf("%s\nwant a non-zero exit and an error mentioning %q", r, u.want)
				}
				if strings.Contains(r.stderr, password) {
					t.Errorf("the error shows the password: %s", r.stderr)
				}
			})
		}
	}
}

// TestHelp: every command documents itself; the reference page's examples appear as
// console auth-session commands.
func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"auth-session", "admin", "sql", "serve"}},
		{[]string{"auth-session", "--help"}, []string{"login", "logout", "list", "console auth-session login web_user --expire-after=4h30m",
			"--certs-dir", "--insecure", "--host", "--port", "--user", "--database", "--url", "COCKROACH_CERTS_DIR", "Failed running"}},
		{[]string{"auth-session", "login", "--help"}, []string{
			"console auth-session login USER [flags]",
			"console auth-session login web_user\n",
			"console auth-session login web_user --expire-after=4h30m",
			"console auth-session login web_user --only-cookie",
			"--expire-after string", `(default "1h")`, "--only-cookie", "--format string", "--cluster-url string",
			`user "NAME" does not exist`, "stricter than cockroach", "--max-expire-after", "sql, html, unnumbered-html, raw",
		}},
		{[]string{"auth-session", "logout", "--help"}, []string{"console auth-session logout USER [flags]", "console auth-session logout web_user", "UPDATE 0"}},
		{[]string{"serve", "--help"}, []string{"--certs-dir", "--insecure", "--host", "--url"}},
		{[]string{"auth-session", "list", "--help"}, []string{"console auth-session list [flags]", "console auth-session list\n", "NULL"}},
		{[]string{"admin", "--help"}, []string{"add", "passwd", "list", "remove", "never taken from the command line"}},
		{[]string{"admin", "add", "--help"}, []string{"console admin add NAME [flags]", "console admin add alice"}},
		{[]string{"sql", "--help"}, []string{"console sql [-e STATEMENT]... [flags]", `console sql -e "CREATE USER web_user"`, "-e, --execute stringArray"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, "", tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// TestTerminal: on a terminal, login prints curl and wget examples on stderr (stdin a terminal)
// and the output defaults to the table format (stdout a terminal).
func TestTerminal(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "auth-session", "list") // migrate

	// cockroach's block, word for word; the URLs point at --cluster-url when one is set.
	hintFor := func(cookie, target string) string {
		return "#\n# Example uses:\n#\n" +
			"#     curl [-k] --cookie '" + cookie + "' " + target + "\n#\n" +
			"#     wget [--no-check-certificate] --header='Cookie: " + cookie + "' " + target + "\n#\n"
	}
	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		target string
	}{
		{"stdin", nil, nil, "https://..."},
		{"stdin cluster-url", []string{"--cluster-url=https://crdb.example:8080/"}, nil, "https://crdb.example:8080/..."},
		{"stdin CONSOLE_CLUSTER_URL", nil, []string{"CONSOLE_CLUSTER_URL=https://env.example:8080"}, "https://env.example:8080/..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, slave := openPTY(t)
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := consoleCmd(ctx, append(append(tg.flags(), "auth-session", "login", "root"), tc.args...)...)
			cmd.Env = append(cmd.Env, tc.env...)
			var stdout, stderr strings.Builder
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			lines := strings.Split(stdout.String(), "\n")
			if len(lines) != 3 || lines[0] != "username\tsession ID\tauthentication cookie" {
				t.Fatalf("stdout (not a terminal: tsv):\n%s", stdout.String())
			}
			cookie := strings.Split(lines[1], "\t")[2]
			if _, err := sessionstore.DecodeCookie(cookie); err != nil {
				t.Fatal(err)
			}
			if got, want := stderr.String(), hintFor(cookie, tc.target); got != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
		})
	}

	t.Run("stdin only-cookie", func(t *testing.T) {
		_, slave := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "login", "root", "--only-cookie")...)
		var stdout, stderr strings.Builder
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.String() != "" || strings.Count(stdout.String(), "\n") != 1 {
			t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		}
	})

	t.Run("stdout", func(t *testing.T) {
		master, slave := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "list")...)
		var stderr strings.Builder
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), slave, &stderr
		got := readAllPTY(master)
		err := cmd.Run()
		slave.Close()
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		if out := <-got; !strings.HasPrefix(out, "  username | session ID |") || !strings.Contains(out, "\n-----------+") || !strings.HasSuffix(out, " rows)\n") {
			t.Errorf("terminal output %q, want the table format", out)
		}
	})
}

// TestListStreams: list prints rows while it still reads them, so a slow reader holds the
// query open instead of the console loading the whole table into memory.
func TestListStreams(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "auth-session", "list") // migrate
	const n = 200000
	tg.exec(t, `INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt")
		SELECT '\x00', 'user_' || i, '2024-01-01 00:00:00', '2024-01-01 01:00:00', '2024-01-01 00:00:00'
		FROM generate_series(1, $1) AS i`, n)
	dbName := tg.url[strings.LastIndex(tg.url, "/")+1:]
	dbName, _, _ = strings.Cut(dbName, "?")

	for _, format := range []string{"ndjson", "csv", "tsv", "json", "records"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "list", "--format="+format)...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := false
			defer func() {
				if !done { // a failed test: nobody reads on, so do not wait for it
					cmd.Process.Kill()
					cmd.Wait()
				}
			}()
			r := bufio.NewReader(stdout)
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatalf("no first line: %v\n%s", err, stderr.String())
			}
			// Output has begun and nobody reads on: a streaming list is now blocked on its
			// stdout while its query still has rows to send (a list that read every row
			// before printing would have finished its query by now).
			found := false
			for i := 0; i < 600 && !found; i++ {
				found = tg.queryInt(t, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = $1 AND application_name = 'session-console' AND state = 'active'
					AND wait_event = 'ClientWrite' AND query LIKE '%FROM console.web_sessions%ORDER BY id%'`, dbName) == 1
				if !found {
					waitABit(ctx)
				}
			}
			if !found {
				t.Fatalf("the list query never waited on the console to read its rows: the output is not streamed")
			}
			lines := 1
			for {
				_, err := r.ReadString('\n')
				if err != nil {
					break
				}
				lines++
			}
			done = true
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			want := map[string]int{"ndjson": n, "csv": n + 1, "tsv": n + 1, "json": n + 2, "records": 7 * n}[format]
			if lines != want {
				t.Errorf("%d lines, want %d", lines, want)
			}
		})
	}

	t.Run("closed pipe", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "list", "--format=csv")...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "username,session ID,created,expires,revoked,last used\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		stdout.Close() // like `| head -1`
		err = cmd.Wait()
		if cmd.ProcessState.ExitCode() != 1 || stderr.String() != "" {
			t.Errorf("after its reader left: %v, stderr %q; want exit status 1 and nothing on stderr", err, stderr.String())
		}
	})
}
