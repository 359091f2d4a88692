package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Two `console serve` processes of the built binary on one database with --policy-enforce:
// the enforcement runs on one of them at a time, revokes every session breaking the rule once
// (sessions within the rule stay), and audits each run once as policy:<rule>. A dry-run replica
// set revokes nothing and audits what it would revoke.
func TestPolicyEnforcementReplicas(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	db := tg.db(t)
	dataDir := t.TempDir()
	user := fmt.Sprintf("enforced_%d", time.Now().UnixNano())
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { db.Exec(t.Context(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })

	// A dry run first: nothing revoked, the would-be count audited.
	long := func(n int) {
		tg.exec(t, `INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt")
			SELECT '\x00', $1, now() AT TIME ZONE 'UTC' - INTERVAL '1 second', now() AT TIME ZONE 'UTC' + INTERVAL '900 hours' FROM generate_series(1, $2)`, user, n)
	}
	tg.ok(t, "auth-session", "login", user, "--expire-after", "1h", "--only-cookie") // within the rule
	long(3)
	args := []string{"--url", tg.url, "--data-dir", dataDir, "--job-lease", "1500ms", "--history-sync", "0",
		"--policy-max-lifetime", "720h", "--policy-enforce", "--policy-interval", "200ms"}
	dry := startServe(t, append(args, "--policy-dry-run")...)
	waitFor(t, "a dry run audited", func() bool {
		return tg.queryInt(t, `SELECT count(*) FROM console.audit_log WHERE action = 'policy-dry-run' AND admin = 'policy:max-lifetime' AND count = 3`) > 0
	})
	stopServe(t, dry)
	if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NOT NULL`, user); n != 0 {
		t.Fatalf("the dry run revoked %d sessions", n)
	}

	replicas := []*server{startServe(t, args...), startServe(t, args...)}
	waitFor(t, "the 3 long sessions revoked", func() bool {
		return tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL AND "expiresAt" > now() AT TIME ZONE 'UTC' + INTERVAL '800 hours'`, user) == 0
	})
	long(4) // more, while both run
	waitFor(t, "the next 4 revoked", func() bool {
		return tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL AND "expiresAt" > now() AT TIME ZONE 'UTC' + INTERVAL '800 hours'`, user) == 0
	})
	for _, r := range replicas {
		stopServe(t, r)
	}
	if n := tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL`, user); n != 1 {
		t.Errorf("%d sessions of %s left, want the one within the rule", n, user)
	}
	if sum := tg.queryInt(t, `SELECT coalesce(sum(count), 0) FROM console.audit_log WHERE action = 'bulk-revoke' AND admin = 'policy:max-lifetime' AND target = 'max-lifetime'`); sum != 7 {
		t.Errorf("the enforcement's audit rows count %d revocations, want 7", sum)
	}
	if dup := tg.queryInt(t, `SELECT count(*) FROM (SELECT detail FROM console.audit_log WHERE action = 'bulk-revoke' GROUP BY detail HAVING count(*) > 1) d`); dup != 0 {
		t.Errorf("%d runs audited more than once", dup)
	}
	out := tg.ok(t, "auth-session", "list", "--user", user, "--format", "tsv")
	if strings.Count(out, "\n") != 9 { // header and 8 sessions
		t.Errorf("list:\n%s", out)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopServe ends a serve process with SIGTERM and waits for it.
func stopServe(t *testing.T, s *server) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(45 * time.Second):
		s.cmd.Process.Kill()
		t.Fatal("serve did not exit within 45s of SIGTERM")
	}
}
