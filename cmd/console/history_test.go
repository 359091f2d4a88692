package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
)

// auth-session list takes the web console's filters (user, status, ID, created, expires and
// last-used ranges) and lists the history with --history, purged sessions included; bad
// values fail, naming the flag, and print nothing.
func TestListFiltersAndHistory(t *testing.T) {
	tg := urlTarget(t)
	ctx := context.Background()
	user := fmt.Sprintf("lister_%d", time.Now().UnixNano())
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
	for range 3 {
		tg.ok(t, "auth-session", "login", user, "--only-cookie")
	}
	var ids []int64
	rows, _ := tg.db(t).Query(ctx, `SELECT id FROM console.web_sessions WHERE username = $1 ORDER BY id`, user)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) != 3 {
		t.Fatalf("sessions %v %v", ids, err)
	}
	tg.exec(t, `UPDATE console.web_sessions SET "createdAt" = '2026-11-03 10:00:00' WHERE id = $1`, ids[0])
	tg.exec(t, `UPDATE console.web_sessions SET "revokedAt" = now() AT TIME ZONE 'UTC' WHERE id = $1`, ids[2])
	idsOf := func(args ...string) []string {
		t.Helper()
		var out []string
		for _, r := range jsonRows(t, tg.ok(t, append([]string{"auth-session", "list", "--format", "json", "--user", user}, args...)...)) {
			out = append(out, r["session ID"])
		}
		return out
	}
	s := func(id int64) string { return fmt.Sprint(id) }
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{s(ids[0]), s(ids[1]), s(ids[2])}},
		{[]string{"--created-after", "2026-11-03", "--created-before", "2026-11-04"}, []string{s(ids[0])}},
		{[]string{"--created-after", "2026-11-04"}, []string{s(ids[1]), s(ids[2])}},
		{[]string{"--status", "revoked"}, []string{s(ids[2])}},
		{[]string{"--id", s(ids[1])}, []string{s(ids[1])}},
		{[]string{"--expires-before", "2000-01-01"}, nil},
		{[]string{"--used-after", "2026-11-03T09:59", "--used-before", "2026-11-03 10:00:01"}, nil},
	} {
		if got := idsOf(c.args...); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("list %v: %v, want %v", c.args, got, c.want)
		}
	}
	for args, msg := range map[string]string{
		"--created-after yesterday": `--created-after: "yesterday" is not a date or date-time (use 2026-11-03, 2026-11-03T14:05 or 2026-11-03 14:05:09, UTC)`,
		"--status gone":             `--status: unknown status "gone" (possible values: active, expired, revoked, all)`,
		"--purged yes":              `--purged needs --history`,
		"--history --purged maybe":  `--purged: unknown purged filter "maybe" (possible values: any, yes, no)`,
	} {
		tg.fails(t, crdbErr("auth-session list", msg), append([]string{"auth-session", "list"}, strings.Fields(args)...)...)
	}

	// The history keeps a purged session, marked, with its last known state.
	live, err := sessionstore.Open(ctx, tg.db(t), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := audit.Open(ctx, tg.db(t), pgdb.Postgres); err != nil {
		t.Fatal(err)
	}
	h, err := history.Open(ctx, tg.db(t), history.Options{Live: live, Server: pgdb.Postgres})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Sync(ctx, history.PlainTx{Pool: tg.db(t)}); err != nil {
		t.Fatal(err)
	}
	tg.exec(t, `DELETE FROM console.web_sessions WHERE id = $1`, ids[0])
	if _, err := h.Sync(ctx, history.PlainTx{Pool: tg.db(t)}); err != nil {
		t.Fatal(err)
	}
	out := jsonRows(t, tg.ok(t, "auth-session", "list", "--format", "json", "--history", "--user", user))
	if len(out) != 3 || out[0]["session ID"] != s(ids[0]) || out[0]["purged"] == "NULL" || out[1]["purged"] != "NULL" {
		t.Errorf("history list %v", out)
	}
	if got := idsOf("--history", "--purged", "yes"); strings.Join(got, ",") != s(ids[0]) {
		t.Errorf("purged only: %v", got)
	}
	if got := idsOf(); len(got) != 2 {
		t.Errorf("the table still lists %v", got)
	}
	table := tg.ok(t, "auth-session", "list", "--format", "table", "--history", "--user", user, "--id", s(ids[1]))
	if !strings.Contains(table, "| purged") || !strings.Contains(table, "| NULL\n") {
		t.Errorf("history table:\n%s", table)
	}
}

// login --reason records the reason in the audit log and writes auditInfo "cli <os user>:
// <reason>"; with --require-reason a login without one fails and issues nothing.
func TestLoginReason(t *testing.T) {
	tg := urlTarget(t)
	ctx := context.Background()
	user := fmt.Sprintf("reasoned_%d", time.Now().UnixNano())
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
	tg.ok(t, "auth-session", "login", user, "--only-cookie", "--reason", "restore test, ticket 42")
	var info, reason string
	if err := tg.db(t).QueryRow(ctx, `SELECT w."auditInfo", a.reason FROM console.web_sessions w
		JOIN console.audit_log a ON a.session_id = w.id WHERE w.username = $1`, user).Scan(&info, &reason); err != nil {
		t.Fatal(err)
	}
	actor := strings.TrimPrefix(osActor(t), "cli:")
	if info != "cli "+actor+": restore test, ticket 42" || reason != "restore test, ticket 42" {
		t.Errorf("auditInfo %q, reason %q", info, reason)
	}
	tg.fails(t, crdbErr("auth-session login", `a reason is required: give one with --reason "..." (the console runs with --require-reason)`),
		"--require-reason", "auth-session", "login", user)
	tg.fails(t, crdbErr("auth-session login", "--reason: use one line of text, without control characters"),
		"auth-session", "login", user, "--reason", "two\nlines")
	if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1`, user); n != 1 {
		t.Errorf("%d sessions after refused logins, want 1", n)
	}
	tg.ok(t, "--require-reason", "auth-session", "login", user, "--only-cookie", "--reason", "given")
}
