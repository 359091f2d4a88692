package admins

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A peek answers like a check but leaves the idle clock where it was; a session idle past the
// timeout ends at a peek too; a peek says who (role and sign-in method) as a check does. With a cache, a peek never hides an activity from the database.
func TestPeekSession(t *testing.T) {
	ctx := context.Background()
	for _, cache := range []time.Duration{0, time.Minute} {
		s := newStore(t, cache)
		if err := s.Add(ctx, "alice", "correct horse battery", Operator); err != nil {
			t.Fatal(err)
		}
		id, _ := s.StartSession(ctx, "alice", SessionMeta{})
		idleFor := func(d time.Duration) {
			s.pool.Exec(ctx, `UPDATE console.admin_sessions SET last_seen = now() - $2::INT8 * INTERVAL '1 microsecond' WHERE id = $1`, id, d.Microseconds())
		}
		lastSeen := func() time.Duration {
			var us int64
			s.pool.QueryRow(ctx, `SELECT (extract(epoch FROM now() - last_seen) * 1000000)::INT8 FROM console.admin_sessions WHERE id = $1`, id).Scan(&us)
			return time.Duration(us) * time.Microsecond
		}
		idleFor(20 * time.Minute)
		for range 3 {
			if who, err := s.PeekSession(ctx, id, 30*time.Minute, time.Hour); err != nil || who != (Identity{Admin: "alice", Role: Operator, Method: MethodPassword}) {
				t.Fatalf("cache %s: PeekSession = %+v, %v", cache, who, err)
			}
		}
		if cache == 0 { // a peek reads the admin's current role, as a check does
			s.pool.Exec(ctx, `UPDATE console.admins SET role = 'viewer' WHERE name = 'alice'`)
			if who, err := s.PeekSession(ctx, id, 30*time.Minute, time.Hour); err != nil || who.Role != Viewer {
				t.Fatalf("after a role change: PeekSession = %+v, %v; want role viewer", who, err)
			}
		}
		if d := lastSeen(); d < 20*time.Minute {
			t.Errorf("cache %s: peeks moved the idle clock: idle %s, want 20m", cache, d)
		}
		if _, err := s.PeekSession(ctx, "forged", 30*time.Minute, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("cache %s: peek of an unknown session: %v", cache, err)
		}
		// Activity after a peek still reaches the database (a peek is no confirmation for
		// CheckSession's cache).
		s.forgetAdmin("alice")
		if _, err := s.CheckSession(ctx, id, 30*time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
		if d := lastSeen(); d > time.Minute {
			t.Errorf("cache %s: a check did not move the idle clock: idle %s", cache, d)
		}
		s.forgetAdmin("alice")
		idleFor(31 * time.Minute)
		if _, err := s.PeekSession(ctx, id, 30*time.Minute, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("cache %s: peek of a session idle past the timeout: %v, want ErrNoSession", cache, err)
		}
		if _, err := s.CheckSession(ctx, id, 30*time.Minute, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("cache %s: the session lives on after a peek found it timed out: %v", cache, err)
		}
	}
}

// A form token is claimed once; a repeat gets what the first submission recorded; a released
// claim can be made again; tokens go with their admin session.
func TestClaimForm(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	if err := s.Add(ctx, "alice", "correct horse battery", Operator); err != nil {
		t.Fatal(err)
	}
	sid, _ := s.StartSession(ctx, "alice", SessionMeta{})
	if prior, err := s.ClaimForm(ctx, sid, "t1"); err != nil || prior != "" {
		t.Fatalf("first claim = %q, %v", prior, err)
	}
	if prior, err := s.ClaimForm(ctx, sid, "t1"); !errors.Is(err, ErrFormUsed) || prior != "" {
		t.Errorf("claim while the first runs = %q, %v; want ErrFormUsed and no result yet", prior, err)
	}
	if err := s.FinishForm(ctx, "t1", "42"); err != nil {
		t.Fatal(err)
	}
	if prior, err := s.ClaimForm(ctx, sid, "t1"); !errors.Is(err, ErrFormUsed) || prior != "42" {
		t.Errorf("repeat claim = %q, %v; want ErrFormUsed with 42", prior, err)
	}
	// A finished claim is not released; an unfinished one is.
	s.ReleaseForm(ctx, "t1")
	if _, err := s.ClaimForm(ctx, sid, "t1"); !errors.Is(err, ErrFormUsed) {
		t.Errorf("a finished claim was released: %v", err)
	}
	s.ClaimForm(ctx, sid, "t2")
	if err := s.ReleaseForm(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimForm(ctx, sid, "t2"); err != nil {
		t.Errorf("claim after release: %v", err)
	}
	if err := s.EndSession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	var n int
	s.pool.QueryRow(ctx, `SELECT count(*) FROM console.admin_forms`).Scan(&n)
	if n != 0 {
		t.Errorf("%d form tokens outlive their admin session", n)
	}
}
