package handlers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgtest"
)

// refreshHeaders are what the table's background auto-refresh sends (app.js).
var refreshHeaders = map[string]string{"HX-Request": "true", BackgroundHeader: "refresh"}

// The table's background auto-refresh is not admin activity: an untouched tab's refreshes do
// not keep the admin session alive, and a refresh once it is idle past --idle-timeout signs out.
func TestBackgroundRefreshIsNotActivity(t *testing.T) {
	s := newServerOn(t, pgtest.NewDB(t), Config{IdleTimeout: 30 * time.Minute})
	ctx := context.Background()
	c := s.signIn(t)
	idleFor := func(d time.Duration) {
		t.Helper()
		if _, err := s.pool.Exec(ctx, `UPDATE console.admin_sessions SET last_seen = now() - $1::INT8 * INTERVAL '1 microsecond'`, d.Microseconds()); err != nil {
			t.Fatal(err)
		}
	}
	idle := func() time.Duration {
		t.Helper()
		var us int64
		if err := s.pool.QueryRow(ctx, `SELECT (extract(epoch FROM now() - last_seen) * 1000000)::INT8 FROM console.admin_sessions`).Scan(&us); err != nil {
			t.Fatal(err)
		}
		return time.Duration(us) * time.Microsecond
	}

	idleFor(20 * time.Minute)
	for range 3 {
		r := c.do("GET", "/sessions", nil, refreshHeaders)
		wantStatus(t, r, http.StatusOK)
	}
	if d := idle(); d < 20*time.Minute {
		t.Fatalf("after three background refreshes the admin has been idle %s, want the 20m from before (refreshes are not activity)", d)
	}
	// A request the admin made is activity.
	wantStatus(t, c.hxGet("/sessions?status=all"), http.StatusOK)
	if d := idle(); d > time.Minute {
		t.Errorf("after a request of the admin, idle for %s, want ~0", d)
	}

	// Idle past the timeout: the next refresh signs out (htmx is told to go to the sign-in page).
	idleFor(31 * time.Minute)
	r := c.do("GET", "/sessions", nil, refreshHeaders)
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.Header.Get("HX-Redirect"); got != "/login" {
		t.Errorf("HX-Redirect %q, want /login", got)
	}
	if n := s.count(t, `SELECT count(*) FROM console.admin_sessions`); n != 0 {
		t.Errorf("%d admin sessions left after the idle timeout", n)
	}
	r = c.get("/sessions")
	wantStatus(t, r, http.StatusSeeOther)

	// The header counts only for reads: a state change is always activity (and still needs CSRF).
	c = s.signIn(t)
	idleFor(20 * time.Minute)
	user := s.createUser(t, "bg")
	r = c.do("POST", "/users/"+user+"/revoke", nil, map[string]string{"HX-Request": "true", BackgroundHeader: "refresh", "X-CSRF-Token": c.csrf})
	wantStatus(t, r, http.StatusOK)
	if d := idle(); d > time.Minute {
		t.Errorf("a POST marked as background did not count as activity: idle %s", d)
	}
}
