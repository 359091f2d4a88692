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

// TestUsageErrors: wrong command lines fail with one clear line before anything is opened
// (the data directory is not even created).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "never-created")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"auth-session", "login"}, "console: auth-session login: missing USER argument (usage: console auth-session login USER [flags])"},
		{[]string{"auth-session", "logout"}, "console: auth-session logout: missing USER argument (usage: console auth-session logout USER [flags])"},
		{[]string{"auth-session", "login", "a", "b"}, `console: auth-session login: unexpected argument "b" (usage: console auth-session login USER [flags])`},
		{[]string{"auth-session", "list", "x"}, `console: auth-session list: unexpected argument "x" (usage: console auth-session list [flags])`},
		{[]string{"auth-session", "list", "--format=xml"}, "console: invalid table display format: xml (possible values: tsv, csv, table, records, ndjson, json)"},
		{[]string{"auth-session", "logout", "u", "--format=TABLE"}, "console: invalid table display format: TABLE (possible values: tsv, csv, table, records, ndjson, json)"},
		{[]string{"auth-session", "login", "u", "--format=html"}, "console: invalid table display format: html (possible values: tsv, csv, table, records, ndjson, json)"},
		{[]string{"auth-session", "login", "u", "--expire-after=1d"}, `console: invalid --expire-after "1d": use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)`},
		{[]string{"auth-session", "login", "u", "--bogus"}, "console: unknown flag: --bogus"},
		{[]string{"auth-session", "logn", "u"}, `console: unknown command "logn" for "console auth-session" (did you mean "login"?)`},
		{[]string{"admin", "add"}, "console: admin add: missing NAME argument (usage: console admin add NAME [flags])"},
		{[]string{"admin", "add", "alice", "s3cret-password"}, "console: admin add takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input"},
		{[]string{"admin", "passwd", "alice", "s3cret-password"}, "console: admin passwd takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input"},
		{[]string{"admin", "add", "alice", "--password=s3cret-password"}, "console: unknown flag: --password"},
		{[]string{"admin", "add", "bad name"}, "console: invalid admin name or password: admin names are 1-63 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"},
		{[]string{"admin", "remove", "a", "b"}, `console: admin remove: unexpected argument "b" (usage: console admin remove NAME [flags])`},
		{[]string{"admin", "list", "--format=yaml"}, "console: invalid table display format: yaml (possible values: tsv, csv, table, records, ndjson, json)"},
		{[]string{"sql", "SELECT 1"}, `console: sql: unexpected argument "SELECT 1" (usage: console sql [-e STATEMENT]... [flags])`},
		{[]string{"sql", "-e", "SELECT 1", "--format=x"}, "console: invalid table display format: x (possible values: tsv, csv, table, records, ndjson, json)"},
		{[]string{"--dialect=oracle", "auth-session", "list"}, `console: invalid dialect "oracle" (possible values: auto, cockroach, postgres)`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--data-dir", dataDir}, tc.args...)
			checkFails(t, run(t, "", args...), tc.wantErr, args)
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Fatalf("the data directory was created (%v)", err)
			}
		})
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
		{"HTTP error at once", fmt.Sprintf("postgresql://u:%s@%s/db", password, garbage.Addr()), "did not answer as PostgreSQL or CockroachDB would"},
		{"bad URL", fmt.Sprintf("postgres://u:%s@127.0.0.1:99999999/db", password), "invalid database URL"},
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
				if r.code == 0 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
					!strings.HasPrefix(r.stderr, "console: ") || !strings.Contains(r.stderr, u.want) {
					t.Errorf("%s\nwant a non-zero exit and one stderr line mentioning %q", r, u.want)
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
		{[]string{"auth-session"}, []string{"login", "logout", "list", "console auth-session login web_user --expire-after=4h30m"}},
		{[]string{"auth-session", "login", "--help"}, []string{
			"console auth-session login USER [flags]",
			"console auth-session login web_user\n",
			"console auth-session login web_user --expire-after=4h30m",
			"console auth-session login web_user --only-cookie",
			"--expire-after string", `(default "1h")`, "--only-cookie", "--format string",
			`user "NAME" does not exist`,
		}},
		{[]string{"auth-session", "logout", "--help"}, []string{"console auth-session logout USER [flags]", "console auth-session logout web_user"}},
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

	t.Run("stdin", func(t *testing.T) {
		_, slave := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "login", "root")...)
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
		hint := stderr.String()
		for _, want := range []string{
			"curl --cookie '" + cookie + "' https://...\n",
			"wget --header='Cookie: " + cookie + "' https://...\n",
		} {
			if !strings.Contains(hint, want) {
				t.Errorf("stderr lacks %q:\n%s", want, hint)
			}
		}
		for _, l := range strings.Split(strings.TrimSuffix(hint, "\n"), "\n") {
			if !strings.HasPrefix(l, "#") {
				t.Errorf("stderr line %q is not a # comment", l)
			}
		}
	})

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
		cmd := consoleCmd(ctx, append(tg.flags(), "auth-session", "logout", "nobody")...)
		var stderr strings.Builder
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), slave, &stderr
		got := readAllPTY(master)
		err := cmd.Run()
		slave.Close()
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		want := "  username | session ID | revoked\n-----------+------------+----------\n(0 rows)\n"
		if out := <-got; out != want {
			t.Errorf("terminal output %q, want the table format %q", out, want)
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
