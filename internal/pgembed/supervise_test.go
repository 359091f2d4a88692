package pgembed

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/proctest"
)

// syncBuffer is a log sink the supervisor goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// followingPool is a pool on c that follows the server to a new port, as the console's is.
func followingPool(t *testing.T, c *Cluster) *pgxpool.Pool {
	t.Helper()
	pc, err := pgxpool.ParseConfig(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	pc.BeforeConnect = c.BeforeConnect
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// waitAnswers polls until a server of c answers through the pool (bounded: it fails the test
// after two minutes) and returns its postmaster's pid. A backend of a killed postmaster may
// still answer a moment before it notices: its parent is no server, so it does not count.
func waitAnswers(t *testing.T, c *Cluster, pool *pgxpool.Pool) int {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var pid int
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lastErr = pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
		cancel()
		if lastErr == nil {
			if ppid := proctest.Parent(pid); isServer(ppid, c.pgData) {
				return ppid
			}
		}
	}
	t.Fatalf("the server did not answer again: %v", lastErr)
	return 0
}

// ownPID is the pid of the server this process started, or 0.
func ownPID(c *Cluster) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// killServer kills the postmaster of c with SIGKILL, as a crash or the OOM killer would, and
// returns its pid and those of its children then.
func killServer(t *testing.T, c *Cluster) (int, []int) {
	t.Helper()
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		t.Fatal("no server runs")
	}
	kids := proctest.Children(pid)
	if len(kids) == 0 {
		t.Fatalf("postmaster %d has no children", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proctest.WaitGone(t, pid)
	return pid, kids
}

// A supervised server that is killed comes back, on its old port, as this process's child,
// and the pool reconnects by itself; after Stop nothing of either server is left.
func TestSupervisorRestartsKilledServer(t *testing.T) {
	dir := tempDataDir(t)
	var logs syncBuffer
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true, Supervise: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	pool := followingPool(t, c)
	first := waitAnswers(t, c, pool)
	port := c.Port()

	var gone []int
	for round := 1; round <= 2; round++ {
		pid, kids := killServer(t, c)
		gone = append(append(gone, pid), kids...)
		now := waitAnswers(t, c, pool)
		// The server may answer a moment before the supervisor has seen it ready.
		for deadline := time.Now().Add(time.Minute); strings.Count(logs.String(), "is back") < round && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if now == pid || now == first {
			t.Fatalf("round %d: answered by the killed postmaster %d", round, now)
		}
		if now != ownPID(c) || proctest.Parent(now) != os.Getpid() {
			t.Errorf("round %d: the server (pid %d) is not this process's child", round, now)
		}
		if c.Port() != port {
			t.Errorf("round %d: restarted on port %d, want the old port %d (it was free)", round, c.Port(), port)
		}
	}
	for _, want := range []string{"embedded PostgreSQL stopped; restarting it", "embedded PostgreSQL is back", "how=restarted"} {
		if n := strings.Count(logs.String(), want); n != 2 {
			t.Errorf("log has %q %d times, want 2:\n%s", want, n, logs.String())
		}
	}
	if strings.Contains(logs.String(), c.pass) {
		t.Error("the log holds the server's password")
	}
	last, _, _ := runningServer(c.pgData)
	lastKids := proctest.Children(last)
	pool.Close()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	proctest.WaitGone(t, append(append(gone, last), lastKids...)...)
}

// When the old port is taken by then, the server comes back on another one and a pool that
// uses BeforeConnect follows it.
func TestRestartMovesOffATakenPort(t *testing.T) {
	dir := tempDataDir(t)
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	pool := followingPool(t, c)
	waitAnswers(t, c, pool)
	old := c.Port()
	killServer(t, c)
	<-c.exited
	var taken net.Listener
	for deadline := time.Now().Add(time.Minute); taken == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		taken, _ = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(old))
	}
	if taken == nil {
		t.Fatalf("port %d never became free", old)
	}
	defer taken.Close()

	how, err := c.restart(context.Background())
	if err != nil || how != "restarted" {
		t.Fatalf("restart: %q, %v", how, err)
	}
	if c.Port() == old {
		t.Fatalf("restarted on the taken port %d", old)
	}
	if waitAnswers(t, c, pool) != ownPID(c) {
		t.Error("the pool reached another server than the restarted one")
	}
}

// A process that starts while a supervisor's server is down attaches to the server the
// supervisor brings back instead of starting one of its own; the supervisor stays its owner,
// and once both have left no server remains.
func TestStartDuringRestartAttaches(t *testing.T) {
	dir := tempDataDir(t)
	sup := startHelper(t, dir, "PGEMBED_HELPER_SUPERVISE=1")
	probe, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Freeze the supervisor, so that Start surely comes while the server is down.
	if err := sup.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	pid, kids := killServer(t, probe)
	probe.Stop() // not the last: the supervisor is registered

	started, checked := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(checked)
		defer sup.cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-started: // Start returned while the supervisor was frozen: checked below
		case <-time.After(500 * time.Millisecond):
		}
		if pms := proctest.WithArgs("-D", filepath.Join(dir, "pg")); len(pms) != 0 {
			t.Errorf("while the supervisor was frozen, Start started postmaster %v", pms)
		}
	}()
	c, err := Start(context.Background(), Options{DataDir: dir, NoFsync: true})
	close(started)
	<-checked
	if err != nil {
		t.Fatal(err)
	}
	if ownPID(c) != 0 {
		t.Fatal("Start started a server of its own while a supervisor was registered")
	}
	now, _, ok := runningServer(c.pgData)
	if !ok || now == pid {
		t.Fatalf("after Start: server %d (running %v), killed one %d", now, ok, pid)
	}
	if ppid := proctest.Parent(now); ppid != sup.cmd.Process.Pid {
		t.Errorf("the server's parent is %d, want the supervisor %d", ppid, sup.cmd.Process.Pid)
	}
	query(t, c.URL(), "SELECT 'attached'")
	nowKids := proctest.Children(now)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if !isServer(now, c.pgData) {
		t.Fatal("the server stopped while the supervisor was still registered")
	}
	sup.stop(t)
	proctest.WaitGone(t, append(append(append(kids, pid), now), nowKids...)...)
	if _, _, ok := runningServer(filepath.Join(dir, "pg")); ok {
		t.Fatal("a server still runs after every process left")
	}
}

// A restart that fails is tried again after a wait that doubles from RestartBackoffMin up to
// RestartBackoffMax and stays there; each failure is logged with its cause and the wait before
// the next try, and the success once. The schedule is read from the waits asked for: nothing
// sleeps.
func TestRestartBackoffSchedule(t *testing.T) {
	var logs syncBuffer
	c := &Cluster{dataDir: "/data", log: slog.New(slog.NewTextHandler(&logs, nil))}
	const failures = 12
	calls := 0
	restart := func(context.Context) (string, error) {
		calls++
		if calls <= failures {
			return "", errors.New("pgembed: postgres did not start (try " + strconv.Itoa(calls) + ")")
		}
		return "restarted", nil
	}
	var waits []time.Duration
	wait := func(_ context.Context, d time.Duration) bool { waits = append(waits, d); return true }

	next, ok := c.restartBackingOff(context.Background(), 0, restart, wait)
	if !ok || calls != failures+1 {
		t.Fatalf("ok %v after %d calls, want true after %d", ok, calls, failures+1)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v (the first try at once)", waits, want)
	}
	if next != RestartBackoffMax {
		t.Errorf("the next failure starts from %v, want %v", next, RestartBackoffMax)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != failures+1 {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), failures+1, logs.String())
	}
	for i, l := range lines[:failures] {
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, `msg="embedded PostgreSQL did not restart"`) ||
			!strings.Contains(l, "data_dir=/data") || !strings.Contains(l, "(try "+strconv.Itoa(i+1)+")") ||
			!strings.Contains(l, "retry_in="+want[i].String()) {
			t.Errorf("failure %d logged as %q", i+1, l)
		}
	}
	if l := lines[failures]; !strings.Contains(l, "level=INFO") || !strings.Contains(l, `msg="embedded PostgreSQL is back"`) || !strings.Contains(l, "how=restarted") {
		t.Errorf("success logged as %q", l)
	}

	// A server that dies again soon after (the caller keeps the grown delay) waits before its
	// first try.
	waits, calls = nil, failures
	if _, ok := c.restartBackingOff(context.Background(), 400*time.Millisecond, restart, wait); !ok ||
		!slices.Equal(waits, []time.Duration{400 * time.Millisecond}) {
		t.Errorf("ok %v, waits %v, want one wait of 400ms", ok, waits)
	}

	// Stopping (the context ends) during a wait ends the loop without another try, and so does
	// a restart cut short by it; neither is reported as a failure.
	logs = syncBuffer{}
	calls = 0
	stopAt := 3
	_, ok = c.restartBackingOff(context.Background(), 0, restart, func(_ context.Context, d time.Duration) bool {
		stopAt--
		return stopAt > 0
	})
	if ok || calls != 3 {
		t.Errorf("stopped during the third wait: ok %v after %d tries, want false after 3", ok, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs = syncBuffer{}
	_, ok = c.restartBackingOff(ctx, 0, func(context.Context) (string, error) { cancel(); return "", context.Canceled }, wait)
	if ok || strings.Contains(logs.String(), "did not restart") {
		t.Errorf("a restart cut short by stopping: ok %v, log %q", ok, logs.String())
	}
}
