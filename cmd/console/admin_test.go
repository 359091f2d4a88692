package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/pgdb"
)

func waitABit(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	ctx := context.Background()
	tg.ok(t, "admin", "list") // migrate
	store, err := admins.Open(ctx, tg.db(t), pgdb.Postgres, 0)
	if err != nil {
		t.Fatal(err)
	}
	adminsNow := func() string {
		list, err := store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range list {
			names = append(names, a.Name)
		}
		return strings.Join(names, ",")
	}
	authenticates := func(name, password string) bool {
		err := store.Authenticate(ctx, name, password)
		if err != nil && !errors.Is(err, admins.ErrBadCredentials) {
			t.Fatal(err)
		}
		return err == nil
	}
	stdin := func(stdin string, args ...string) result {
		return run(t, stdin, append(tg.flags(), args...)...)
	}

	if r := stdin("correct horse battery\n", "admin", "add", "alice"); r.code != 0 || r.stdout != "added admin \"alice\" with role viewer\n" || r.stderr != "" {
		t.Fatalf("admin add alice:\n%s", r)
	}
	if !authenticates("alice", "correct horse battery") {
		t.Error("alice cannot sign in with her password")
	}
	// Only the first line counts; a CRLF line ending is not part of the password.
	if r := stdin("second password!\r\nignored\n", "admin", "add", "bob"); r.code != 0 {
		t.Fatalf("admin add bob:\n%s", r)
	}
	if !authenticates("bob", "second password!") || authenticates("bob", "second password!\r") {
		t.Error("bob's password is not exactly the first line")
	}

	failures := []struct {
		name, stdin, wantErr string
		args                 []string
	}{
		{"exists", "another password\n", `console: admin "alice" already exists`, []string{"admin", "add", "alice"}},
		{"password argument", "", "console: admin add takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input", []string{"admin", "add", "carol", "a-password-here"}},
		{"empty stdin", "", "console: no password: standard input is empty (give the password on its first line, or run on a terminal to be asked)", []string{"admin", "add", "carol"}},
		{"short password", "short\n", "console: invalid admin name or password: password must be at least 10 characters", []string{"admin", "add", "carol"}},
		{"empty password", "\n", "console: invalid admin name or password: password must be at least 10 characters", []string{"admin", "add", "carol"}},
		{"long password", strings.Repeat("x", 73) + "\n", "console: invalid admin name or password: password must be at most 72 bytes", []string{"admin", "add", "carol"}},
		{"passwd unknown", "a fine password\n", `console: admin "carol" does not exist`, []string{"admin", "passwd", "carol"}},
		{"passwd argument", "", "console: admin passwd takes only NAME: a password is never accepted on the command line; type it at the prompt or give it on standard input", []string{"admin", "passwd", "alice", "new password 123"}},
		{"passwd short", "short\n", "console: invalid admin name or password: password must be at least 10 characters", []string{"admin", "passwd", "alice"}},
		{"remove unknown", "", `console: admin "carol" does not exist`, []string{"admin", "remove", "carol"}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			before := adminsNow()
			args := append(tg.flags(), tc.args...)
			checkFails(t, run(t, tc.stdin, args...), tc.wantErr, args)
			if after := adminsNow(); after != before {
				t.Errorf("admins %q before, %q after", before, after)
			}
		})
	}
	if !authenticates("alice", "correct horse battery") {
		t.Error("a failed command changed alice's password")
	}

	// passwd: the new password works, the old one no longer does, updated moves on.
	if r := stdin("a brand new password\n", "admin", "passwd", "alice"); r.code != 0 || r.stderr != "" ||
		r.stdout != "changed the password of admin \"alice\" and ended its browser sessions\n" {
		t.Fatalf("admin passwd alice:\n%s", r)
	}
	if !authenticates("alice", "a brand new password") || authenticates("alice", "correct horse battery") {
		t.Error("passwd did not replace alice's password")
	}
	list := jsonRows(t, tg.ok(t, "admin", "list", "--format=json"))
	if len(list) != 2 || list[0]["name"] != "alice" || list[1]["name"] != "bob" || list[0]["role"] != "viewer" ||
		list[0]["sign-in"] != "password" || list[0]["last sign-in"] != "NULL" {
		t.Fatalf("admin list: %v", list)
	}
	if created, updated := parseTS(t, list[0]["created"]), parseTS(t, list[0]["updated"]); !updated.After(created) {
		t.Errorf("alice: updated %s is not after created %s", updated, created)
	}
	table := tg.ok(t, "admin", "list", "--format=table")
	if lines := strings.Split(table, "\n"); len(lines) != 6 || !strings.HasPrefix(lines[0], "  name  |  role  | sign-in  |") || lines[4] != "(2 rows)" {
		t.Errorf("admin list --format=table:\n%s", table)
	}

	for _, name := range []string{"alice", "bob"} {
		if got := tg.ok(t, "admin", "remove", name); got != fmt.Sprintf("removed admin %q\n", name) {
			t.Errorf("admin remove %s: %q", name, got)
		}
	}
	if got := tg.ok(t, "admin", "list", "--format=csv"); got != "name,role,sign-in,created,updated,last sign-in\n" {
		t.Errorf("admin list after removing everyone: %q", got)
	}
	if authenticates("alice", "a brand new password") {
		t.Error("a removed admin still signs in")
	}
}

// TestAdminPrompt: on a terminal the password is asked for twice, without echo.
func TestAdminPrompt(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "admin", "list") // migrate
	ctx := context.Background()
	store, err := admins.Open(ctx, tg.db(t), pgdb.Postgres, 0)
	if err != nil {
		t.Fatal(err)
	}

	prompt := func(t *testing.T, name string, answers ...string) (stdout, stderr, echoed string, err error) {
		master, slave := openPTY(t)
		rctx, cancel := context.WithTimeout(ctx, runTimeout)
		defer cancel()
		cmd := consoleCmd(rctx, append(tg.flags(), "admin", "add", name)...)
		var out, errOut strings.Builder
		cmd.Stdin, cmd.Stdout = slave, &out
		errPipe, perr := cmd.StderrPipe()
		if perr != nil {
			t.Fatal(perr)
		}
		echo := readAllPTY(master)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Answer each prompt as it appears.
		r := bufio.NewReader(errPipe)
		for _, a := range answers {
			var seen strings.Builder
			for !strings.HasSuffix(seen.String(), ": ") {
				b, rerr := r.ReadByte()
				if rerr != nil {
					t.Fatalf("waiting for a prompt: %v (got %q)", rerr, seen.String())
				}
				seen.WriteByte(b)
			}
			errOut.WriteString(seen.String())
			waitNoEcho(t, slave)
			master.Write([]byte(a + "\n"))
		}
		rest, _ := readAll(r)
		errOut.WriteString(rest)
		err = cmd.Wait()
		slave.Close()
		return out.String(), errOut.String(), <-echo, err
	}

	t.Run("match", func(t *testing.T) {
		out, errOut, echoed, err := prompt(t, "carol", "typed password 1", "typed password 1")
		if err != nil || out != "added admin \"carol\" with role viewer\n" {
			t.Fatalf("%v\nstdout %q\nstderr %q", err, out, errOut)
		}
		if errOut != "New password for admin \"carol\": \nRepeat the password: \n" {
			t.Errorf("prompts: %q", errOut)
		}
		if strings.Contains(echoed, "typed password") {
			t.Errorf("the terminal echoed the password: %q", echoed)
		}
		if err := store.Authenticate(ctx, "carol", "typed password 1"); err != nil {
			t.Errorf("carol cannot sign in: %v", err)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		out, errOut, _, err := prompt(t, "dave", "typed password 1", "typed password 2")
		if err == nil || out != "" || !strings.HasSuffix(errOut, "console: the passwords do not match\n") {
			t.Fatalf("%v\nstdout %q\nstderr %q", err, out, errOut)
		}
		if list, _ := store.List(ctx); len(list) != 1 {
			t.Errorf("admins after a mismatch: %v", list)
		}
	})
	t.Run("too short", func(t *testing.T) {
		// A password that cannot be accepted is refused before it is asked for again.
		out, errOut, _, err := prompt(t, "erin", "short")
		if err == nil || out != "" || !strings.HasSuffix(errOut, "console: invalid admin name or password: password must be at least 10 characters\n") {
			t.Fatalf("%v\nstdout %q\nstderr %q", err, out, errOut)
		}
	})
}

func readAll(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}
