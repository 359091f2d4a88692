package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// logout with filters (for scripts): --rule with the --policy-* flags, --status, created and
// expiry ranges, --dry-run; it revokes exactly what matched, audits it as bulk-revoke, and
// the plain `logout USER` stays cockroach's. Bad input fails, naming the flag, and changes
// nothing. On PostgreSQL and on CockroachDB (the proxy, which refuses full scans: the rule
// filters read the active sessions' index range).
func TestLogoutFilters(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"postgres", "cockroach"} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tg, table := urlTarget(t), "console.web_sessions"
			direct := tg
			user := fmt.Sprintf("lo_user_%d", time.Now().UnixNano())
			if d == "cockroach" {
				tg, direct, _ = cockroachTarget(t)
				table = "system.web_sessions"
				direct.exec(t, `INSERT INTO system.users (username, "isRole", user_id) VALUES ($1, false, 77)`, user)
			} else {
				tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
				t.Cleanup(func() { tg.db(t).Exec(t.Context(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
			}
			login := func(ttl string) int64 {
				t.Helper()
				rows := jsonRows(t, tg.ok(t, "--max-expire-after", "10000h", "auth-session", "login", user, "--expire-after", ttl, "--format", "json"))
				var id int64
				fmt.Sscan(rows[0]["session ID"], &id)
				return id
			}
			long1, long2, short := login("2000h"), login("3000h"), login("1h")
			rootLong := func() int64 {
				rows := jsonRows(t, tg.ok(t, "--max-expire-after", "10000h", "auth-session", "login", "root", "--expire-after", "900h", "--format", "json"))
				var id int64
				fmt.Sscan(rows[0]["session ID"], &id)
				return id
			}()
			active := func() []int64 {
				rows, err := direct.db(t).Query(t.Context(), `SELECT id FROM `+table+` WHERE "revokedAt" IS NULL ORDER BY id`)
				if err != nil {
					t.Fatal(err)
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					t.Fatal(err)
				}
				return ids
			}
			ids := func(out string) []int64 {
				var got []int64
				for _, r := range jsonRows(t, out) {
					var id int64
					fmt.Sscan(r["session ID"], &id)
					got = append(got, id)
				}
				return got
			}

			// A dry run prints what it would revoke and changes nothing.
			before := active()
			out := tg.ok(t, "auth-session", "logout", "--rule", "max-lifetime", "--policy-max-lifetime", "720h", "--dry-run", "--format", "json")
			if got := ids(out); !slices.Equal(got, []int64{long1, long2, rootLong}) {
				t.Errorf("dry run listed %v, want %v", got, []int64{long1, long2, rootLong})
			}
			tsv := tg.ok(t, "auth-session", "logout", "--rule", "max-lifetime", "--policy-max-lifetime", "720h", "--dry-run", "--format", "tsv")
			if !strings.HasPrefix(tsv, "username\tsession ID\tcreated\texpires\n") || strings.Count(tsv, "\n") != 4 {
				t.Errorf("dry run tsv:\n%s", tsv)
			}
			if after := active(); !slices.Equal(after, before) {
				t.Errorf("a dry run revoked: %v -> %v", before, after)
			}

			// A rule with a user: only that user's sessions breaking it.
			out = tg.ok(t, "auth-session", "logout", user, "--rule", "max-lifetime", "--policy-max-lifetime", "2500h", "--format", "json")
			if got := ids(out); !slices.Equal(got, []int64{long2}) {
				t.Errorf("logout USER --rule listed %v, want [%d]", got, long2)
			}
			if n := direct.queryInt(t, `SELECT count(*) FROM console.audit_log WHERE action = 'bulk-revoke' AND target = 'max-lifetime' AND count = 1 AND admin LIKE 'cli:%' AND detail LIKE '%--rule=max-lifetime%'`); n != 1 {
				t.Errorf("%d bulk-revoke audit rows for the logout, want 1", n)
			}
			// The rule from the environment, as serve takes it.
			r := tg.console(t, "auth-session", "logout", "--rule", "root", "--format", "json")
			checkFails(t, r, crdbErr("auth-session logout", "--rule: policy rule not enabled: root (enable it with --policy-root)"), nil)
			out = tg.okEnv(t, []string{"CONSOLE_POLICY_ROOT=true"}, "auth-session", "logout", "--rule", "root", "--format", "json")
			if got := ids(out); !slices.Equal(got, []int64{rootLong}) {
				t.Errorf("--rule root from the environment listed %v", got)
			}
			// Expiry range and status, without a rule.
			out = tg.ok(t, "auth-session", "logout", "--user", user, "--expires-before", time.Now().UTC().Add(2*time.Hour).Format("2006-01-02T15:04"), "--status", "active", "--format", "json")
			if got := ids(out); !slices.Equal(got, []int64{short}) {
				t.Errorf("--expires-before listed %v, want [%d]", got, short)
			}
			tsv = tg.ok(t, "auth-session", "logout", "--user", user, "--created-after", "2000-01-01", "--format", "tsv")
			if strings.Count(tsv, "\n") != 2 || !strings.Contains(tsv, fmt.Sprint(long1)) { // long1 is what is left
				t.Errorf("created-after logout:\n%s", tsv)
			}
			if got := active(); slices.Contains(got, long1) || slices.Contains(got, short) {
				t.Errorf("still active: %v", got)
			}

			// Bad input: clear errors, nothing changed.
			keep := login("1h")
			before = active()
			for args, msg := range map[string]string{
				"--rule sideways":                `--rule: unknown policy rule "sideways" (one of max-lifetime, idle, orphans, root)`,
				"--rule idle --policy-idle soon": `invalid argument "soon" for "--policy-idle" flag`,
				"--rule idle --policy-idle -1h":  "--policy-*: policy durations must not be negative",
				"--status gone":                  `--status: unknown status "gone" (possible values: active, expired, revoked, all)`,
				"--created-after yesterday":      `--created-after: "yesterday" is not a date or date-time`,
				"--rule idle":                    "--rule: policy rule not enabled: idle (enable it with --policy-idle)",
			} {
				r := tg.console(t, append([]string{"auth-session", "logout"}, strings.Fields(args)...)...)
				if r.code == 0 || !strings.Contains(r.stderr, msg) {
					t.Errorf("logout %s: %s\nwant %q", args, r, msg)
				}
			}
			r = tg.console(t, "auth-session", "logout", user, "--user", user, "--status", "active")
			if r.code == 0 || !strings.Contains(r.stderr, "give the user as USER or as --user, not both") {
				t.Errorf("USER and --user: %s", r.stderr)
			}
			r = tg.consoleEnv(t, []string{"CONSOLE_POLICY_IDLE=soon"}, "auth-session", "logout", "--rule", "idle")
			if r.code == 0 || !strings.Contains(r.stderr, `CONSOLE_POLICY_IDLE: invalid value "soon" for --policy-idle`) {
				t.Errorf("bad env: %s", r.stderr)
			}
			if after := active(); !slices.Equal(after, before) || !slices.Contains(after, keep) {
				t.Errorf("bad input changed sessions: %v -> %v", before, after)
			}
			// Nothing matching: the tag alone, as cockroach prints an UPDATE without rows.
			if out := tg.ok(t, "auth-session", "logout", "--user", user, "--status", "expired", "--format", "tsv"); out != "UPDATE 0\n" {
				t.Errorf("empty logout: %q", out)
			}
			if out := tg.ok(t, "auth-session", "logout", "--user", user, "--status", "expired", "--dry-run", "--format", "tsv"); out != "DRY RUN: would revoke 0\n" {
				t.Errorf("empty dry run: %q", out)
			}
			// The plain logout USER is cockroach's: every session of the user, revoked column.
			tsv = tg.ok(t, "auth-session", "logout", user, "--format", "tsv")
			if !strings.HasPrefix(tsv, "username\tsession ID\trevoked\n") {
				t.Errorf("plain logout:\n%s", tsv)
			}
		})
	}
}

// consoleEnv runs the console on the target with extra environment variables.
func (tg *target) consoleEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := consoleCmd(ctx, append(tg.flags(), args...)...)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("console %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// okEnv is ok with extra environment variables.
func (tg *target) okEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := tg.consoleEnv(t, env, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("console %s:\n%s", strings.Join(args, " "), r)
	}
	return r.stdout
}
