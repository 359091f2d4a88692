package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Three `console serve` processes of the built binary on one database: every background job
// runs in one of them at a time; killing the holder (SIGKILL: no lease given up) hands its
// jobs to another, and they go on exactly once: no two passes of a job overlap, sessions are
// recorded once and purged once (the daily counts match what was written), and every use seen
// at /auth/verify by any replica is counted once.
func TestReplicasShareJobsUnderLeases(t *testing.T) {
	tg := urlTarget(t)
	dataDir := t.TempDir() // shared cookie keys, as replicas behind one address would share them
	args := []string{"--url", tg.url, "--data-dir", dataDir, "--history-sync", "300ms", "--job-lease", "1500ms",
		"--purge-interval", "500ms", "--purge-ttl", "1s", "--activity-flush", "200ms", "--count-refresh", "300ms"}
	var replicas []*server
	for range 3 {
		replicas = append(replicas, startServe(t, args...))
	}
	pidOf := map[int]*server{}
	for _, r := range replicas {
		pidOf[r.cmd.Process.Pid] = r
	}
	ctx := context.Background()
	db := tg.db(t)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	holderPID := func(job string) int {
		var holder string
		if err := db.QueryRow(ctx, `SELECT holder FROM console.job_leases WHERE job = $1 AND expires_at > now()`, job).Scan(&holder); err != nil {
			return 0
		}
		parts := strings.Split(holder, ":")
		pid, _ := strconv.Atoi(parts[len(parts)-2])
		return pid
	}
	runs := func(job string) int64 {
		return tg.queryInt(t, `SELECT count(*) FROM console.job_runs WHERE job = $1`, job)
	}
	for _, job := range []string{jobHistorySync, jobPurge, jobRetention, jobCounts} {
		wait(job+" held by a replica", func() bool { return pidOf[holderPID(job)] != nil })
	}
	wait("a few sync passes", func() bool { return runs(jobHistorySync) >= 3 })

	user := fmt.Sprintf("replica_user_%d", time.Now().UnixNano())
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { db.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
	cookie := strings.TrimSpace(tg.ok(t, "auth-session", "login", user, "--expire-after", "1h", "--only-cookie"))
	value := strings.TrimPrefix(strings.Split(cookie, ";")[0], "session=")
	var sessionID int64
	if err := db.QueryRow(ctx, `SELECT id FROM console.web_sessions WHERE username = $1`, user).Scan(&sessionID); err != nil {
		t.Fatal(err)
	}
	expectedSessions, expectedPurged := int64(1), int64(0)
	// writeSessions adds n sessions of user, every other one already expired (purged soon).
	writeSessions := func(n int) {
		t.Helper()
		tg.exec(t, `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
			SELECT '\x00', $1, CASE WHEN i % 2 = 0 THEN now() AT TIME ZONE 'UTC' - INTERVAL '1 minute' ELSE now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' END
			FROM generate_series(1, $2) AS i`, user, n)
		expectedSessions += int64(n)
		expectedPurged += int64(n / 2)
	}
	settled := func() bool {
		return tg.queryInt(t, `SELECT count(*) FROM console.session_history WHERE username = $1`, user) == expectedSessions &&
			tg.queryInt(t, `SELECT count(*) FROM console.session_history WHERE username = $1 AND purged_at IS NOT NULL`, user) == expectedPurged &&
			tg.queryInt(t, `SELECT count(*) FROM console.web_sessions WHERE username = $1`, user) == expectedSessions-expectedPurged
	}
	uses := int64(0)
	verifyOn := func(rs []*server, n int) {
		t.Helper()
		for i := range n {
			req, _ := http.NewRequest("GET", rs[i%len(rs)].url+"/auth/verify", nil)
			req.Header.Set("X-Cockroach-API-Session", value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("verify on replica %d: %d", i%len(rs), resp.StatusCode)
			}
		}
		uses += int64(n)
	}
	recordedUses := func() int64 {
		return tg.queryInt(t, `SELECT COALESCE((SELECT uses FROM console.session_activity WHERE session_id = $1), 0)`, sessionID)
	}

	writeSessions(40)
	verifyOn(replicas, 30)
	wait("the first sessions recorded and purged", settled)
	wait("every replica's uses recorded", func() bool { return recordedUses() == uses })

	// Kill the history sync's holder outright.
	victimPID := holderPID(jobHistorySync)
	victim := pidOf[victimPID]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-victim.exited // (its exit status is known before the helper's cleanup looks)
	var survivors []*server
	for _, r := range replicas {
		if r != victim {
			survivors = append(survivors, r)
		}
	}
	writeSessions(40)
	verifyOn(survivors, 20)
	wait("another replica to take the sync over", func() bool {
		p := holderPID(jobHistorySync)
		return p != victimPID && pidOf[p] != nil
	})
	wait("the later sessions recorded and purged", settled)
	wait("the survivors' uses recorded", func() bool { return recordedUses() == uses })
	before := runs(jobHistorySync)
	wait("the sync going on", func() bool { return runs(jobHistorySync) >= before+3 })

	// Exactly once: the daily counts the jobs keep match what was written.
	if got := tg.queryInt(t, `SELECT COALESCE(sum(created), 0) FROM console.history_daily`); got != expectedSessions {
		t.Errorf("history counted %d sessions created, want %d", got, expectedSessions)
	}
	if got := tg.queryInt(t, `SELECT COALESCE(sum(purged), 0) FROM console.history_daily`); got != expectedPurged {
		t.Errorf("history counted %d sessions purged, want %d", got, expectedPurged)
	}
	if got := recordedUses(); got != uses {
		t.Errorf("%d uses recorded, want %d", got, uses)
	}
	// No two passes of one job overlapped, none ran in the killed process after its death,
	// and the passes after the kill ran elsewhere.
	for _, job := range []string{jobHistorySync, jobPurge, jobCounts} {
		rows, err := db.Query(ctx, `SELECT seq, holder, started_at, finished_at FROM console.job_runs WHERE job = $1 ORDER BY seq`, job)
		if err != nil {
			t.Fatal(err)
		}
		type run struct {
			seq             int64
			holder          string
			started, finish time.Time
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
			var x run
			return x, r.Scan(&x.seq, &x.holder, &x.started, &x.finish)
		})
		if err != nil {
			t.Fatal(err)
		}
		victimTag := ":" + strconv.Itoa(victimPID) + ":"
		holders, holdersBefore := map[string]bool{}, map[string]bool{}
		after := 0
		for i, x := range all {
			holders[x.holder] = true
			if x.finish.Before(killedAt) {
				holdersBefore[x.holder] = true
			}
			if i > 0 && x.started.Before(all[i-1].finish) {
				t.Errorf("%s: pass %d (%s) started before pass %d (%s) finished", job, x.seq, x.holder, all[i-1].seq, all[i-1].holder)
			}
			if strings.Contains(x.holder, victimTag) && x.started.After(killedAt) {
				t.Errorf("%s: pass %d ran in the killed replica after its death", job, x.seq)
			}
			if x.started.After(killedAt) {
				after++
			}
		}
		if after == 0 {
			t.Errorf("%s: no pass after the kill", job)
		}
		if len(holdersBefore) != 1 {
			t.Errorf("%s: passes by %d replicas while all three were alive, want one: %v", job, len(holdersBefore), holdersBefore)
		}
		if job == jobHistorySync && len(holders) < 2 {
			t.Errorf("%s: every pass by one holder %v, though it was killed", job, holders)
		}
	}
}
