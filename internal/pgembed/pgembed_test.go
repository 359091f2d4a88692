package pgembed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The test binary doubles as a second console process: with PGEMBED_HELPER_DIR set it starts
// (or attaches to) the cluster there, prints "ready <port>", waits for a line on stdin, stops.
func TestMain(m *testing.M) {
	if dir := os.Getenv("PGEMBED_HELPER_DIR"); dir != "" {
		c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true,
			Supervise: os.Getenv("PGEMBED_HELPER_SUPERVISE") != ""})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", c.Port())
		bufio.NewReader(os.Stdin).ReadString('\n')
		if err := c.Stop(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func tempDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o711) // as root, the postgres user must pass through
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "data")
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestStartRestartKeepsData(t *testing.T) {
	dir := tempDataDir(t)
	ctx := context.Background()
	c, err := Start(ctx, Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	exec1(t, c.URL(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	if got := query(t, c.URL(), "SELECT current_setting('listen_addresses')"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", got)
	}
	if got := query(t, c.URL(), "SELECT current_user"); got != Superuser {
		t.Errorf("current_user = %q, want %q", got, Superuser)
	}
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		t.Fatal("no running server after Start")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("server pid %d still alive after Stop", pid)
	}

	c2, err := Start(ctx, Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Stop() })
	if got := query(t, c2.URL(), "SELECT v FROM kept"); got != "still here" {
		t.Errorf("after restart got %q", got)
	}
	for _, f := range []string{"pg-password"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	dir := tempDataDir(t)
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	bad := strings.Replace(c.URL(), c.pass, "wrong", 1)
	if conn, err := pgx.Connect(context.Background(), bad); err == nil {
		conn.Close(context.Background())
		t.Fatal("connected with a wrong password")
	}
}

type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	port  int
}

func startHelper(t *testing.T, dir string, env ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "PGEMBED_HELPER_DIR="+dir), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := h.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	h.port, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
	})
	return h
}

func (h *helperProc) stop(t *testing.T) {
	t.Helper()
	fmt.Fprintln(h.stdin, "stop")
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper exit: %v", err)
	}
}

// A second process attaches to the running server instead of starting another; the last
// process to leave stops the server, whichever started it.
func TestSecondProcessAttaches(t *testing.T) {
	dir := tempDataDir(t)
	first := startHelper(t, dir)
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port() != first.port {
		t.Fatalf("second start on port %d, first on %d: want one server", c.Port(), first.port)
	}
	if c.cmd != nil {
		t.Fatal("second start started its own server")
	}
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		t.Fatal("no server")
	}
	// The starter leaves first: the server must keep running for the attached process.
	first.stop(t)
	if !alive(pid) {
		t.Fatal("server stopped while another process was still attached")
	}
	query(t, c.URL(), "SELECT 'still serving'")
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

// A process that dies without stopping leaves the server to the next process, which stops it.
func TestKilledStarterIsNotAnOrphan(t *testing.T) {
	dir := tempDataDir(t)
	first := startHelper(t, dir)
	first.cmd.Process.Kill()
	first.cmd.Wait()
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		t.Fatal("no server")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

// The helper process stops the server it started when it gets SIGTERM-like shutdown via stdin;
// here: two processes starting at once end up on one server.
func TestConcurrentStartsShareOneServer(t *testing.T) {
	dir := tempDataDir(t)
	a := startHelperAsync(t, dir)
	b := startHelperAsync(t, dir)
	ha, hb := <-a, <-b
	if ha == nil || hb == nil {
		t.FailNow()
	}
	if ha.port != hb.port {
		t.Fatalf("ports %d and %d: two servers on one data dir", ha.port, hb.port)
	}
	ha.stop(t)
	hb.stop(t)
	if _, _, ok := runningServer(filepath.Join(dir, "pg")); ok {
		t.Fatal("server still running after both processes left")
	}
}

func startHelperAsync(t *testing.T, dir string) <-chan *helperProc {
	ch := make(chan *helperProc, 1)
	go func() {
		defer close(ch)
		ch <- startHelper(t, dir)
	}()
	return ch
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 1500 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("server pid %d still alive", pid)
	}
}

func TestMissingBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: tempDataDir(t), BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"apt-get install postgresql", "--url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

// As root the server runs as the postgres user; an ordinary user runs it as itself. Run the
// helper as the unprivileged postgres user to cover the ordinary-user path too.
func TestOrdinaryUser(t *testing.T) {
	if os.Geteuid() != 0 {
		// Already an ordinary user: the other tests cover this path.
		c, err := Start(context.Background(), Options{DataDir: tempDataDir(t), NoFsync: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Stop()
		return
	}
	cred, err := serverCredential()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "pgembed-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chown(base, int(cred.Uid), int(cred.Gid))
	bin := filepath.Join(base, "pgembed.test")
	copyFile(t, os.Args[0], bin)
	os.Chown(bin, int(cred.Uid), int(cred.Gid))
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{"PGEMBED_HELPER_DIR=" + filepath.Join(base, "data"), "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stdin = strings.NewReader("stop\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ready ") {
		t.Fatalf("as an ordinary user: %v\n%s", err, out)
	}
	if _, _, ok := runningServer(filepath.Join(base, "data", "pg")); ok {
		t.Fatal("server left running")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
