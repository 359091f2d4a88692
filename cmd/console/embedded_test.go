package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestEmbeddedSharedDataDir: console processes on one data directory share one server: a
// process that finds it running attaches to it, and the last to leave stops it.
func TestEmbeddedSharedDataDir(t *testing.T) {
	t.Parallel()
	tg := embeddedTarget(t)

	t.Run("started together", func(t *testing.T) {
		// Three processes race to initialise and start the server of a fresh data directory.
		var wg sync.WaitGroup
		results := make([]result, 3)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = tg.console(t, "auth-session", "list", "--format=csv")
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.code != 0 || r.stderr != "" || r.stdout != "username,session ID,created,expires,revoked,last used\n" {
				t.Errorf("process %d:\n%s", i, r)
			}
		}
		if pid, ok := serverPID(t, tg.dataDir); ok {
			t.Errorf("PostgreSQL (pid %d) still runs after all three left", pid)
		}
	})

	t.Run("one holds, others attach", func(t *testing.T) {
		// A console sql reading statements from a pipe keeps the server while others come
		// and go.
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		holder := consoleCmd(ctx, append(tg.flags(), "sql", "--format=tsv")...)
		in, err := holder.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		outPipe, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		holder.Stderr = &stderr
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		out := lineReader{bufio.NewReader(outPipe)}
		ask := func(value string) {
			t.Helper()
			fmt.Fprintf(in, "SELECT '%s' AS v;\n", value)
			if h, v := out.line(t), out.line(t); h != "v" || v != value {
				t.Fatalf("holder answered %q, %q; want v, %s (stderr: %s)", h, v, value, stderr.String())
			}
		}
		ask("ready")
		pid, ok := serverPID(t, tg.dataDir)
		if !ok {
			t.Fatal("no server runs while the holder is connected")
		}

		tg.ok(t, "sql", "-e", "CREATE USER web_user")
		rows := jsonRows(t, tg.ok(t, "auth-session", "login", "web_user", "--format=json"))
		list := jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
		if len(rows) != 1 || len(list) != 1 || list[0]["session ID"] != rows[0]["session ID"] {
			t.Errorf("login %v, then list %v", rows, list)
		}
		if now, ok := serverPID(t, tg.dataDir); !ok || now != pid {
			t.Fatalf("server pid %d (running: %v) after the others came and went, want the holder's %d still running", now, ok, pid)
		}
		ask("still here") // the others leaving did not stop the holder's server

		in.Close()
		if err := holder.Wait(); err != nil {
			t.Fatalf("holder: %v\n%s", err, stderr.String())
		}
		if processAlive(pid) {
			t.Errorf("PostgreSQL (pid %d) still runs after the last process left", pid)
		}
		if _, ok := serverPID(t, tg.dataDir); ok {
			t.Error("postmaster.pid names a live server after the last process left")
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		// Ctrl-C while console sql waits for input ends it, and it stops the server it started.
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := consoleCmd(ctx, append(tg.flags(), "sql")...)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		outPipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(in, "SELECT 1 AS one;")
		out := lineReader{bufio.NewReader(outPipe)}
		if h, v := out.line(t), out.line(t); h != "one" || v != "1" {
			t.Fatalf("got %q, %q", h, v)
		}
		pid, ok := serverPID(t, tg.dataDir)
		if !ok {
			t.Fatal("no server runs")
		}
		cmd.Process.Signal(os.Interrupt)
		err = cmd.Wait()
		if cmd.ProcessState.ExitCode() != 1 || stderr.String() != "console: context canceled\n" {
			t.Errorf("after an interrupt: %v, stderr %q", err, stderr.String())
		}
		if processAlive(pid) {
			t.Errorf("PostgreSQL (pid %d) still runs after the interrupted console left", pid)
		}
	})

	t.Run("restart keeps data", func(t *testing.T) {
		list := jsonRows(t, tg.ok(t, "auth-session", "list", "--format=json"))
		if len(list) != 1 || list[0]["username"] != "web_user" {
			t.Errorf("list after a restart: %v", list)
		}
	})
}
