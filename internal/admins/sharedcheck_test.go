package admins

import (
	"context"
	"sync"
	"testing"
	"time"
)

// lockSessionRow holds a lock on the row of admin session id (SELECT ... FOR UPDATE in a
// transaction of its own), so that a check's UPDATE of it waits; the returned func releases it.
func lockSessionRow(t *testing.T, s *Store, id string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM console.admin_sessions WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback(ctx) }) }
	t.Cleanup(release)
	return release
}

// waitForCheck waits until a check of id is in flight with at least waiters requests waiting
// for it besides the one asking, and fails the test after 30 s.
func waitForCheck(t *testing.T, s *Store, id string, waiters int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		n := -1
		for k, c := range s.checking {
			if k.id == id {
				n = c.waiters
			}
		}
		s.mu.Unlock()
		if n >= waiters {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check of the session in flight with %d waiters (have %d)", waiters, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForLockWait waits until a statement of this database that starts with prefix waits for a
// lock (it has begun, with its snapshot, and waits for lockSessionRow's), failing after 30 s.
func waitForLockWait(t *testing.T, s *Store, prefix string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND starts_with(query, $1)`, prefix).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statement %q... waits for the lock", prefix)
		}
	}
}

// Concurrent requests of one admin session whose cached check aged out run one database check
// between them, not one each (which would queue on the row's lock).
func TestConcurrentChecksShareOne(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, time.Hour)
	if err := s.Add(ctx, "alice", "correct horse battery", Viewer); err != nil {
		t.Fatal(err)
	}
	id, err := s.StartSession(ctx, "alice", SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	// Count the UPDATEs of the session's row.
	if _, err := s.pool.Exec(ctx, `CREATE TABLE checks (n INT8 NOT NULL);
		INSERT INTO checks VALUES (0);
		CREATE FUNCTION count_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE checks SET n = n + 1; RETURN NEW; END $$;
		CREATE TRIGGER count_check AFTER UPDATE ON console.admin_sessions FOR EACH ROW EXECUTE FUNCTION count_check();`); err != nil {
		t.Fatal(err)
	}
	release := lockSessionRow(t, s, id)
	const requests = 10
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			if who, err := s.CheckSession(ctx, id, time.Hour, time.Hour); err != nil || who.Admin != "alice" {
				t.Errorf("checked %+v, %v; want alice", who, err)
			}
		})
	}
	waitForCheck(t, s, id, requests-1)
	release()
	wg.Wait()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT n FROM checks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d checks wrote the session's row, want 1 for 10 concurrent requests", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.checking) != 0 {
		t.Errorf("%d checks still marked in flight", len(s.checking))
	}
}

// A check that an admin change overtakes answers the request that asked before the change,
// but is not cached: the next request sees the change, however long the cache period.
func TestOvertakenCheckIsNotCached(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, time.Hour)
	for name, role := range map[string]Role{"owner1": Owner, "alice": Viewer} {
		if err := s.Add(ctx, name, "correct horse battery", role); err != nil {
			t.Fatal(err)
		}
	}
	id, err := s.StartSession(ctx, "alice", SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	release := lockSessionRow(t, s, id)
	done := make(chan Identity, 1)
	go func() {
		who, err := s.CheckSession(ctx, id, time.Hour, time.Hour)
		if err != nil {
			t.Error(err)
		}
		done <- who
	}()
	waitForCheck(t, s, id, 0)
	waitForLockWait(t, s, "UPDATE console.admin_sessions")
	s.mu.Lock()
	var first *sessionCheck
	for k, c := range s.checking {
		if k.id == id {
			first = c
		}
	}
	s.mu.Unlock()
	if err := s.SetRole(ctx, "alice", Operator, cli); err != nil {
		t.Fatal(err)
	}
	// A request after the change does not wait for the check that began before it.
	after := make(chan Identity, 1)
	go func() {
		who, err := s.CheckSession(ctx, id, time.Hour, time.Hour)
		if err != nil {
			t.Error(err)
		}
		after <- who
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		joined := first.waiters > 0
		started := false
		for k, c := range s.checking {
			started = started || k.id == id && c != first
		}
		s.mu.Unlock()
		if joined || started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request after the change never reached a check")
		}
	}
	release()
	if who := <-after; who.Role != Operator {
		t.Errorf("a request after the role change got role %q from the check that began before it, want operator", who.Role)
	}
	// The UPDATE read alice's row as of its start (the join's other rows are not read again
	// after waiting for a lock): the request that asked before the change sees the old role.
	if who := <-done; who.Role != Viewer {
		t.Fatalf("the check in flight saw role %q; this test needs it to have read the old one (viewer)", who.Role)
	}
	who, err := s.CheckSession(ctx, id, time.Hour, time.Hour)
	if err != nil || who.Role != Operator {
		t.Errorf("after the role change: %+v, %v; want operator (the overtaken answer was cached)", who, err)
	}
}
