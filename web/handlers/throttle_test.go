package handlers

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgtest"
)

func cidrs(t *testing.T, s ...string) []*net.IPNet {
	t.Helper()
	n, err := ParseTrustedProxies(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// behindProxy is a configuration that trusts the loopback peer as a proxy, so that a test's
// clients can come from any address through X-Forwarded-For. The delays are an hour and more,
// so nothing frees up while a test runs unless the test moves the clock of the failures back.
func behindProxy(t *testing.T) Config {
	return Config{TrustedProxies: cidrs(t, "127.0.0.1"), Throttle: admins.ThrottlePolicy{
		FreeTries: 3, AddressFreeTries: 8, AccountFreeTries: 5, Window: 24 * time.Hour,
		BaseDelay: time.Hour, MaxDelay: 8 * time.Hour,
	}}
}

// from returns a client of s coming from addr (through the trusted proxy), with the login
// form's token.
func (s *server) from(t *testing.T, addr string) *client {
	c := s.client(t)
	c.headers = map[string]string{"X-Forwarded-For": addr}
	wantStatus(t, c.get("/login"), http.StatusOK)
	return c
}

func (c *client) signInAs(name, password string) response {
	return c.post("/login", url.Values{"username": {name}, "password": {password}})
}

func retryAfter(t *testing.T, r response) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	return n
}

// ageFailures moves the failures recorded for addr back by d, as if d had passed.
func (s *server) ageFailures(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `UPDATE console.signin_failures
		SET last_failure = last_failure - $2::INT8 * INTERVAL '1 second' WHERE address = $1`, addr, int64(d.Seconds())); err != nil {
		t.Fatal(err)
	}
}

// Failures count per (account, address) and per address, in the database: two console
// processes on one database share them. Nobody can lock the admin out: an address that has
// not failed gets in with the right password however many other addresses failed, and an
// address that failed waits a delay that grows, never a lock.
func TestSignInThrottle(t *testing.T) {
	db := pgtest.NewDB(t)
	s1 := newServerOn(t, db, behindProxy(t))
	s2 := newServerOn(t, db, behindProxy(t)) // another replica, or the same one restarted

	// A guesses: the page says how many tries are left, then how long the next one waits.
	a := s1.from(t, "203.0.113.1")
	for _, want := range []string{"2 tries left before", "1 try left before", "The next sign-in from this address must wait 60 minutes."} {
		r := a.signInAs("admin", "wrong")
		wantStatus(t, r, http.StatusUnauthorized)
		wantContains(t, r.body, "Wrong admin name or password.", want)
	}
	// Now A waits, even with the right password, on the other process too.
	a2 := s2.from(t, "203.0.113.1")
	r := a2.signInAs("admin", adminPassword)
	wantStatus(t, r, http.StatusTooManyRequests)
	wantContains(t, r.body, "Too many failed sign-ins from this address. Try again in 60 minutes.")
	if n := retryAfter(t, r); n < 3500 || n > 3600 {
		t.Errorf("Retry-After %d, want about an hour", n)
	}
	if a2.cookie(adminCookie) != nil {
		t.Error("an admin cookie was set for a throttled attempt")
	}
	// A cannot pass for another address by writing it in front of the proxy's entry.
	spoof := s1.from(t, "203.0.113.2, 203.0.113.1")
	wantStatus(t, spoof.signInAs("admin", adminPassword), http.StatusTooManyRequests)

	// B has not failed: the right password gets in at once, on either process.
	wantStatus(t, s2.from(t, "203.0.113.2").signInAs("admin", adminPassword), http.StatusSeeOther)

	// Many addresses fail once each: the account is under attack (3 + 2 = 5 failures).
	for _, addr := range []string{"203.0.113.3", "203.0.113.4"} {
		wantStatus(t, s1.from(t, addr).signInAs("admin", "wrong"), http.StatusUnauthorized)
	}
	// An address that failed for it now waits (even with the right password)...
	c := s2.from(t, "203.0.113.3")
	r = c.signInAs("admin", adminPassword)
	wantStatus(t, r, http.StatusTooManyRequests)
	// ... and an address that has not failed still gets in.
	wantStatus(t, s1.from(t, "203.0.113.5").signInAs("admin", adminPassword), http.StatusSeeOther)

	// The delay grows, and is never a lock: an hour later C may try again; failing once more
	// makes the account's delay two hours; after those, the right password gets in.
	s1.ageFailures(t, "203.0.113.3", 61*time.Minute)
	r = c.signInAs("admin", "wrong")
	wantStatus(t, r, http.StatusUnauthorized)
	wantContains(t, r.body, "The next sign-in from this address must wait 120 minutes.")
	r = c.signInAs("admin", adminPassword)
	wantStatus(t, r, http.StatusTooManyRequests)
	if n := retryAfter(t, r); n < 7100 || n > 7200 {
		t.Errorf("second delay: Retry-After %d, want about two hours", n)
	}
	s1.ageFailures(t, "203.0.113.3", 121*time.Minute)
	wantStatus(t, c.signInAs("admin", adminPassword), http.StatusSeeOther)

	// One address trying many names waits after AddressFreeTries failures, whatever the name.
	g := s1.from(t, "198.51.100.7")
	for i := range 8 {
		wantStatus(t, g.signInAs("guess"+strconv.Itoa(i), "wrong"), http.StatusUnauthorized)
	}
	wantStatus(t, g.signInAs("admin", adminPassword), http.StatusTooManyRequests)

	// The audit log has the client addresses the trusted proxy gave, not the proxy's.
	page, err := s1.audit.List(context.Background(), audit.Filter{Action: audit.SignInFailed, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range page.Entries {
		seen[e.RemoteAddr]++
	}
	if seen["203.0.113.1"] != 3 || seen["198.51.100.7"] != 8 || seen["127.0.0.1"] != 0 {
		t.Errorf("failed sign-ins by address: %v", seen)
	}
}

// Parallel guesses cannot slip past the limit: each attempt is counted before bcrypt runs.
func TestSignInThrottleParallel(t *testing.T) {
	cfg := behindProxy(t)
	cfg.Throttle.FreeTries = 5
	s := newServerOn(t, pgtest.NewDB(t), cfg)
	c := s.from(t, "203.0.113.1")
	codes := make(chan int, 20)
	var wg sync.WaitGroup
	token := c.csrf
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client of its own per goroutine (clients are not safe for concurrent use),
			// sharing the browser's cookies and token.
			own := *c
			codes <- own.do("POST", "/login", url.Values{"username": {"admin"}, "password": {"wrong"}, "_csrf": {token}}, nil).StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for code := range codes {
		counts[code]++
	}
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != 15 {
		t.Errorf("20 parallel wrong passwords: %v, want 5 checked and 15 refused", counts)
	}
	r := c.signInAs("admin", adminPassword)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// X-Forwarded-For counts only from a trusted proxy, and only up to the first address that is
// not one: what a client writes there never reaches the audit log.
func TestTrustedProxies(t *testing.T) {
	db := pgtest.NewDB(t)
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     string
		want    string
	}{
		{"no trusted proxy", nil, "203.0.113.9", "127.0.0.1"},
		{"peer not trusted", []string{"10.0.0.0/8", "192.168.0.0/16"}, "10.1.2.3", "127.0.0.1"},
		{"one proxy", []string{"127.0.0.1"}, "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"two proxies", []string{"127.0.0.0/8", "203.0.113.0/24"}, "198.51.100.1, 203.0.113.9", "198.51.100.1"},
		{"junk", []string{"127.0.0.1"}, "not an address", "127.0.0.1"},
		{"no header", []string{"127.0.0.1"}, "", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.trusted != nil {
				cfg.TrustedProxies = cidrs(t, tc.trusted...)
			}
			s := newServerOn(t, db, cfg)
			c := s.from(t, tc.xff)
			if tc.xff == "" {
				c.headers = nil
			}
			who := "probe-" + strings.ReplaceAll(tc.name, " ", "-")
			wantStatus(t, c.signInAs(who, "wrong"), http.StatusUnauthorized)
			page, err := s.audit.List(context.Background(), audit.Filter{Admin: who})
			if err != nil || len(page.Entries) != 1 {
				t.Fatalf("%v %v", err, page.Entries)
			}
			if got := page.Entries[0].RemoteAddr; got != tc.want {
				t.Errorf("X-Forwarded-For %q with trusted %v: address %q, want %q", tc.xff, tc.trusted, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("--trusted-proxy %q accepted", bad)
		}
	}
}
