package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/proctest"
)

// TestServeRestartsKilledPostgres: when the embedded PostgreSQL under a running `console serve`
// is killed (SIGKILL, as a crash or the OOM killer would), serve starts it again and its pages
// and /auth/verify answer again; a CLI command started during the restart, and one after it,
// attach to the restarted server (which stays serve's child) instead of starting their own; and
// once serve exits, no PostgreSQL process of the data directory is left.
func TestServeRestartsKilledPostgres(t *testing.T) {
	t.Parallel()
	tg := embeddedTarget(t)
	s := startServe(t, "--data-dir", tg.dataDir)
	web := &http.Client{}
	s.signIn(t, web)
	cookie := strings.TrimSpace(tg.ok(t, "auth-session", "login", "root", "--only-cookie"))
	waitServing(t, s, web, cookie)
	pgData := filepath.Join(tg.dataDir, "pg")
	if b, err := os.ReadFile(filepath.Join(tg.dataDir, "pg-location")); err == nil {
		pgData = strings.TrimSpace(string(b)) // as root, when the postgres user cannot reach it
	}

	var left []int // every process of every server that ran: none may outlive serve
	for round := 1; round <= 2; round++ {
		pid, ok := serverPID(t, tg.dataDir)
		if !ok {
			t.Fatalf("round %d: no server runs", round)
		}
		kids := proctest.Children(pid)
		left = append(append(left, pid), kids...)
		if round == 1 {
			// Freeze serve first, so that the CLI command surely comes while the server is
			// down: it must wait for serve to bring it back, not start one itself.
			if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		proctest.WaitGone(t, pid)
		if round == 1 {
			listed := make(chan result, 1)
			go func() { listed <- tg.console(t, "auth-session", "list", "--format=csv") }()
			select {
			case r := <-listed:
				s.cmd.Process.Signal(syscall.SIGCONT)
				t.Fatalf("the CLI command finished while serve was frozen and the server down:\n%s", r)
			case <-time.After(time.Second):
			}
			if pms := proctest.WithArgs("-D", pgData); len(pms) != 0 {
				t.Errorf("while serve was frozen, the CLI command started postmaster %v", pms)
			}
			s.cmd.Process.Signal(syscall.SIGCONT)
			if r := <-listed; r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "\nroot,") {
				t.Errorf("list during the restart:\n%s", r)
			}
		}
		// Once the old server's backends are gone too, whatever answers is the new server,
		// through connections the pool opened again.
		proctest.WaitGone(t, kids...)
		waitServing(t, s, web, cookie)
		now, ok := serverPID(t, tg.dataDir)
		if !ok || now == pid {
			t.Fatalf("round %d: server %d (running %v) after killing %d", round, now, ok, pid)
		}
		if ppid := proctest.Parent(now); ppid != s.cmd.Process.Pid {
			t.Errorf("round %d: the server's parent is %d, want serve (%d): a CLI command started it", round, ppid, s.cmd.Process.Pid)
		}
		if round == 2 {
			tg.ok(t, "auth-session", "login", "root", "--only-cookie")
			if again, _ := serverPID(t, tg.dataDir); again != now {
				t.Errorf("a CLI command after the restart changed the server from %d to %d", now, again)
			}
		}
		if pms := proctest.WithArgs("-D", pgData); len(pms) != 1 {
			t.Errorf("round %d: postmasters of the data directory: %v, want one", round, pms)
		}
	}
	last, _ := serverPID(t, tg.dataDir)
	left = append(append(left, last), proctest.Children(last)...)

	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not exit after SIGTERM")
	}
	proctest.WaitGone(t, left...)
	if pms := proctest.WithArgs("-D", pgData); len(pms) != 0 {
		t.Errorf("postmasters of the data directory after serve left: %v", pms)
	}
}

// waitServing polls (bounded: two minutes) until serve answers a signed-in page, /readyz and
// /auth/verify for cookie with 200.
func waitServing(t *testing.T, s *server, web *http.Client, cookie string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = ""
		for _, path := range []string{"/sessions", "/readyz", "/auth/verify"} {
			req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
			if path == "/auth/verify" {
				req.Header.Set("X-Cockroach-API-Session", strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "session="))
			}
			resp, err := web.Do(req)
			if err != nil {
				last += path + ": " + err.Error() + "; "
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				last += path + ": " + resp.Status + "; "
			}
		}
		if last == "" {
			return
		}
	}
	t.Fatalf("serve did not answer again: %s", last)
}
