package main

// End-to-end tests: the console binary, built once by TestMain, runs as a subprocess against
// real PostgreSQL, either the embedded one in a data directory of the test's (no --url) or a
// database of the test cluster (--url).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgembed"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// consoleBin is the binary under test.
var consoleBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "console-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	consoleBin = filepath.Join(dir, "console")
	build := exec.Command("go", "build", "-o", consoleBin, ".")
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

// target is where the console runs: the embedded PostgreSQL of a data directory, --url, or
// cockroach's discrete connection flags.
type target struct {
	name    string
	dataDir string   // embedded: the --data-dir
	url     string   // --url; for the embedded target, the URL of the test's own attachment
	conn    []string // connection flags (--host, --certs-dir, ...) instead of --url; url is then the test's own

	mu      sync.Mutex
	cluster *pgembed.Cluster // the test process's own attachment to the embedded server
	pool    *pgxpool.Pool
}

// embeddedTarget is a fresh data directory for the embedded PostgreSQL. When the test ends,
// no server may be left running in it.
func embeddedTarget(t *testing.T) *target {
	t.Helper()
	parent, err := os.MkdirTemp("", "console-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o711) // as root, the postgres user must pass through
	tg := &target{name: "embedded", dataDir: filepath.Join(parent, "data")}
	t.Cleanup(func() {
		tg.detach(t)
		if pid, ok := serverPID(t, tg.dataDir); ok {
			t.Errorf("PostgreSQL (pid %d) still runs in %s after every console process left", pid, tg.dataDir)
			syscall.Kill(pid, syscall.SIGQUIT)
		}
		os.RemoveAll(parent)
	})
	return tg
}

// urlTarget is a fresh database of the test cluster, used through --url.
func urlTarget(t *testing.T) *target {
	t.Helper()
	return &target{name: "url", url: pgtest.NewDB(t)}
}

// flags are the global flags that point the console at the target.
func (tg *target) flags() []string {
	switch {
	case tg.dataDir != "":
		return []string{"--data-dir", tg.dataDir}
	case tg.conn != nil:
		return tg.conn
	}
	return []string{"--url", tg.url}
}

// db returns a pool on the target's database for the test's own queries. For the embedded
// target the test process attaches to the server (starting it if no console runs), as a
// console process would; the attachment ends with the test.
func (tg *target) db(t *testing.T) *pgxpool.Pool {
	t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.pool != nil {
		return tg.pool
	}
	ctx := context.Background()
	url := tg.url
	if tg.dataDir != "" {
		c, err := pgembed.Start(ctx, pgembed.Options{DataDir: tg.dataDir})
		if err != nil {
			t.Fatalf("attach to the embedded server: %v", err)
		}
		tg.cluster, url = c, c.URL()
	}
	pool, err := pgdb.Connect(ctx, url, pgdb.Config{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	tg.pool = pool
	if tg.cluster == nil {
		t.Cleanup(pool.Close)
	}
	return pool
}

// detach closes the test's pool and leaves the embedded server.
func (tg *target) detach(t *testing.T) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.cluster == nil {
		return
	}
	if tg.pool != nil {
		tg.pool.Close()
		tg.pool = nil
	}
	if err := tg.cluster.Stop(); err != nil {
		t.Errorf("leave the embedded server: %v", err)
	}
	tg.cluster = nil
}

// store opens a session store on the target's database (PostgreSQL dialect unless given).
func (tg *target) store(t *testing.T, opts sessionstore.Options) *sessionstore.Store {
	t.Helper()
	s, err := sessionstore.Open(context.Background(), tg.db(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (tg *target) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := tg.db(t).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (tg *target) queryInt(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := tg.db(t).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// result is what a console process did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runTimeout bounds every console process: a hang fails the test instead of stalling it.
const runTimeout = 2 * time.Minute

// consoleCmd prepares the console with args, without the caller's CONSOLE_* and COCKROACH_*
// variables. $USER is set to a name that is not the OS account (the audit log must not trust it).
func consoleCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, consoleBin, args...)
	cmd.Env = append(cleanEnv(), "USER=tester")
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs the console with stdin and args and returns what it did.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := consoleCmd(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("console %s: did not finish within %s", strings.Join(args, " "), runTimeout)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("console %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// console runs the console on the target.
func (tg *target) console(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, "", append(tg.flags(), args...)...)
}

// ok runs the console on the target and fails the test unless it succeeds quietly on stderr.
func (tg *target) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := tg.console(t, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("console %s:\n%s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// fails runs the console on the target and checks that it fails with exactly one stderr line,
// wantErr, and prints nothing on stdout.
func (tg *target) fails(t *testing.T, wantErr string, args ...string) {
	t.Helper()
	checkFails(t, tg.console(t, args...), wantErr, args)
}

func checkFails(t *testing.T, r result, wantErr string, args []string) {
	t.Helper()
	if r.code == 0 || r.stdout != "" || r.stderr != wantErr+"\n" {
		t.Errorf("console %s:\n%s\nwant a non-zero exit, no output and stderr %q", strings.Join(args, " "), r, wantErr+"\n")
	}
}

// crdbErr is how an auth-session command prints an error, as cockroach does: "ERROR: msg"
// (and any further SQLSTATE or HINT lines in msg), then "Failed running "cmd"".
func crdbErr(cmd, msg string) string {
	return "ERROR: " + msg + "\nFailed running \"" + cmd + "\""
}

// checkFlagError checks a cockroach-style flag error: exit status 4, the command's usage and a
// blank line, then wantErr, on stderr only.
func checkFlagError(t *testing.T, r result, wantErr string, args []string) {
	t.Helper()
	if r.code != 4 || r.stdout != "" || !strings.HasPrefix(r.stderr, "Usage:\n") || !strings.HasSuffix(r.stderr, "\n\n"+wantErr+"\n") {
		t.Errorf("console %s:\n%s\nwant exit status 4, the usage and %q on stderr", strings.Join(args, " "), r, wantErr)
	}
}

// osActor is the audit actor of the console's command line: cli:<the OS account of the real
// user ID>, whatever $USER says.
func osActor(t *testing.T) string {
	t.Helper()
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		return "cli:uid:" + strconv.Itoa(os.Getuid())
	}
	if u.Username == "tester" {
		t.Fatal("the OS account is called tester, like the $USER the tests set: the check would prove nothing")
	}
	return "cli:" + u.Username
}

// jsonRows parses the json format.
func jsonRows(t *testing.T, out string) []map[string]string {
	t.Helper()
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("parse json output: %v\n%s", err, out)
	}
	return rows
}

const tsLayout = "2006-01-02 15:04:05.999999"

func parseTS(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(tsLayout, s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return ts
}

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// maskCookies replaces the secret of every session cookie in s with zero bytes, keeping the
// session ID: the value has the same width, so table alignment is still checked exactly.
func maskCookies(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for {
		i := strings.Index(s, "session=")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		i += len("session=")
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return r == ';' || r == '"' || r == ',' || r == '\n' || r == '\t' })
		if j < 0 {
			j = len(s)
		}
		c, err := sessionstore.DecodeCookie(s[:j])
		if err != nil {
			t.Fatalf("cookie %q in output: %v", s[:j], err)
		}
		masked := sessionstore.Cookie{ID: c.ID, Secret: make([]byte, sessionstore.SecretLength)}.Value()
		if len(masked) != j {
			t.Fatalf("masked cookie has another width")
		}
		b.WriteString(masked)
		s = s[j:]
	}
}

// serverPID reports the live postmaster of a data directory.
func serverPID(t *testing.T, dataDir string) (int, bool) {
	t.Helper()
	pgData := filepath.Join(dataDir, "pg")
	if b, err := os.ReadFile(filepath.Join(dataDir, "pg-location")); err == nil {
		pgData = strings.TrimSpace(string(b))
	}
	b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return pid, processAlive(pid)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// openPTY returns a new pseudo-terminal: its master and its slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// waitNoEcho waits (a bounded while) until the terminal stops echoing input, as it does while
// a password is read.
func waitNoEcho(t *testing.T, tty *os.File) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		var tio syscall.Termios
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); e != 0 {
			t.Fatalf("tcgetattr: %v", e)
		}
		if tio.Lflag&syscall.ECHO == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the terminal kept echoing: no password prompt")
}

// readAllPTY collects what the master side receives until every slave is closed.
func readAllPTY(m *os.File) <-chan string {
	ch := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, m) // ends with EIO once the slave side is closed everywhere
		ch <- strings.ReplaceAll(b.String(), "\r\n", "\n")
	}()
	return ch
}

// lineReader reads a process's output line by line.
type lineReader struct{ r *bufio.Reader }

func (l lineReader) line(t *testing.T) string {
	t.Helper()
	s, err := l.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read a line: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}
