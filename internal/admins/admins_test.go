package admins

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) {
	Cost = bcrypt.MinCost
	pgtest.Main(m)
}

// cli is the actor of changes made in these tests.
var cli = audit.Entry{Admin: "cli:test"}

func newStore(t *testing.T, cache time.Duration) *Store {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewDB(t), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(ctx, pool, pgdb.Postgres, cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(ctx, pool, pgdb.Postgres); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	pw, err := s.AddFirst(ctx, "admin")
	if err != nil || len(pw) < MinPasswordLength {
		t.Fatalf("AddFirst = %q, %v", pw, err)
	}
	if again, err := s.AddFirst(ctx, "admin"); err != nil || again != "" {
		t.Fatalf("second AddFirst = %q, %v; want no new password", again, err)
	}
	if err := s.Authenticate(ctx, "admin", pw); err != nil {
		t.Fatalf("Authenticate with the first password: %v", err)
	}
	if err := s.Add(ctx, "alice", "correct horse battery", Viewer); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, pw string }{
		{"alice", "wrong password!"}, {"nobody", "correct horse battery"}, {"", ""}, {"alice", ""},
	} {
		if err := s.Authenticate(ctx, c.name, c.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) = %v", c.name, c.pw, err)
		}
	}
	if err := s.Add(ctx, "alice", "another password", Viewer); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate Add: %v", err)
	}
	for _, name := range []string{"", "<b>", "a b", "o'brien", "-x", string(make([]byte, 70))} {
		if err := s.Add(ctx, name, "long enough password", Viewer); !errors.Is(err, ErrInvalid) {
			t.Errorf("Add(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if err := s.Add(ctx, "bob", "short", Viewer); !errors.Is(err, ErrInvalid) {
		t.Errorf("short password: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "admin" || list[1].Name != "alice" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if err := s.SetPassword(ctx, "alice", "a new password", cli); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate(ctx, "alice", "a new password"); err != nil {
		t.Errorf("new password refused: %v", err)
	}
	if err := s.SetPassword(ctx, "nobody", "a new password", cli); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetPassword unknown: %v", err)
	}
	if err := s.Remove(ctx, "alice", cli); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "alice", cli); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	for _, cache := range []time.Duration{0, time.Minute} {
		s := newStore(t, cache)
		if err := s.Add(ctx, "alice", "correct horse battery", Viewer); err != nil {
			t.Fatal(err)
		}
		id, err := s.StartSession(ctx, "alice", SessionMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if who, err := s.CheckSession(ctx, id, time.Hour, time.Hour); err != nil || who.Admin != "alice" || who.Role != Viewer {
			t.Fatalf("CheckSession = %+v, %v", who, err)
		}
		if _, err := s.CheckSession(ctx, "forged", time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("unknown session: %v", err)
		}
		// Signing out ends it at once, even with a cache.
		if err := s.EndSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckSession(ctx, id, time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("cache=%v: ended session still valid: %v", cache, err)
		}
		// Idle and absolute timeouts, judged by the database's clock.
		idle, _ := s.StartSession(ctx, "alice", SessionMeta{})
		s.pool.Exec(ctx, `UPDATE console.admin_sessions SET last_seen = now() - INTERVAL '31 minutes' WHERE id = $1`, idle)
		if _, err := s.CheckSession(ctx, idle, 30*time.Minute, 12*time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("idle session still valid: %v", err)
		}
		old, _ := s.StartSession(ctx, "alice", SessionMeta{})
		s.pool.Exec(ctx, `UPDATE console.admin_sessions SET created_at = now() - INTERVAL '13 hours' WHERE id = $1`, old)
		if _, err := s.CheckSession(ctx, old, 30*time.Minute, 12*time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("session past its absolute timeout still valid: %v", err)
		}
		// A password change ends the admin's sessions.
		live, _ := s.StartSession(ctx, "alice", SessionMeta{})
		s.CheckSession(ctx, live, time.Hour, time.Hour)
		if err := s.SetPassword(ctx, "alice", "a new password", cli); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckSession(ctx, live, time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
			t.Errorf("session survived a password change: %v", err)
		}
	}
}
