package handlers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgtest"
)

// lockSessions holds an exclusive lock on the session table of db, in a transaction of its own
// connection, until the transaction ends (or the test does).
func lockSessions(t *testing.T, db string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE console.web_sessions IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return tx
}

// hungCalls are requests whose database work hits the session table.
func hungCalls(t *testing.T, c *client, cookie, user string) map[string]response {
	return map[string]response{
		"verify":   c.do("GET", "/auth/verify", nil, map[string]string{"Cookie": "session=" + cookie}),
		"page":     c.get("/sessions"),
		"fragment": c.hxGet("/sessions"),
		"export":   c.get("/sessions.csv?status=all"),
		"issue":    c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"1h"}}),
		"revoke":   c.hxPost("/users/"+user+"/revoke", nil),
	}
}

func want503(t *testing.T, name string, r response) {
	t.Helper()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s: status %d, want 503", name, r.StatusCode)
		return
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", name)
	}
	if name != "verify" && name != "export" {
		wantContains(t, r.body, "The database is unavailable right now")
	}
}

// A database that hangs (here: another transaction holds an exclusive lock on the session
// table) makes /auth/verify and the pages answer 503 once their deadline passes, instead of
// never; when the lock goes, they work again.
func TestHungDatabaseLock(t *testing.T) {
	db := pgtest.NewDB(t)
	s, c := hungServer(t, db)
	user := s.createUser(t, "hung")
	is := s.issue(t, user, time.Hour)

	ctx := context.Background()
	tx := lockSessions(t, db)
	for name, r := range hungCalls(t, c, is.Cookie.Value(), user) {
		want503(t, name, r)
	}
	// The rest of the database answers (at once or after a few tries: the short page deadline
	// may also catch a busy machine; a page that needed the locked table never would).
	waitFor(t, "the audit page to answer 200 while the sessions are locked", func() bool {
		return c.get("/audit").StatusCode == http.StatusOK
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	recovers(t, c, is.Cookie.Value())
}

// hungServer returns a console with short database deadlines on db and a client of it signed
// in (through another console with the default deadlines and the same keys: signing in on a
// busy test machine may take longer than the short ones).
func hungServer(t *testing.T, db string) (*server, *client) {
	keys := testKeys()
	setup := newServerOn(t, db, Config{Keys: keys})
	c := setup.signIn(t)
	hung := newServerOn(t, db, Config{Keys: keys, VerifyTimeout: 300 * time.Millisecond, PageTimeout: 500 * time.Millisecond})
	c.base = hung.url                 // the cookie jar does not tell ports apart
	c.http.Timeout = 30 * time.Second // a hang fails the test instead of stopping it
	return hung, c
}

// recovers checks that verify and the sessions page work again once the database does (at
// once or after a few tries: the short deadlines may also catch a busy machine).
func recovers(t *testing.T, c *client, cookie string) {
	t.Helper()
	waitFor(t, "verify and the page to answer 200 again", func() bool {
		return c.do("GET", "/auth/verify", nil, map[string]string{"Cookie": "session=" + cookie}).StatusCode == http.StatusOK &&
			c.get("/sessions").StatusCode == http.StatusOK
	})
}

// stallProxy forwards TCP connections to target until paused: then it forwards nothing, in
// either direction, on old and new connections alike (a network that stalls), until resumed.
type stallProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	conns  []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go p.pipe(out, in)
			go p.pipe(in, out)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.resume()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.paused {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			dst.Close()
			return
		}
	}
}

func (p *stallProxy) pause() { p.mu.Lock(); p.paused = true; p.mu.Unlock() }

func (p *stallProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	p.cond.Broadcast()
}

// The same with a network that stops forwarding between the console and its database.
func TestHungDatabaseNetwork(t *testing.T) {
	db := pgtest.NewDB(t)
	u, _ := url.Parse(db)
	p := newStallProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	s, c := hungServer(t, u.String())
	user := s.createUser(t, "stalled")
	is := s.issue(t, user, time.Hour)
	p.pause()
	for name, r := range hungCalls(t, c, is.Cookie.Value(), user) {
		want503(t, name, r)
	}
	p.resume()
	recovers(t, c, is.Cookie.Value())
}

// A client that goes away while its page waits for the database is logged as such, not as a
// failure with a 500.
func TestClientDisconnectLogged(t *testing.T) {
	db := pgtest.NewDB(t)
	s := newServerOn(t, db, Config{PageTimeout: 20 * time.Second})
	c := s.signIn(t)
	ctx := context.Background()
	tx := lockSessions(t, db)
	for _, path := range []string{"/sessions", "/sessions.csv"} {
		reqCtx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(reqCtx, "GET", s.url+path, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := c.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		// Wait until the page's query waits for the lock, then hang up.
		waitFor(t, "a query waiting for the lock", func() bool {
			return s.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND application_name = 'session-console'`) > 0
		})
		cancel()
		<-done
		waitFor(t, "the disconnect in the log", func() bool { return strings.Contains(s.logs.String(), "client disconnected") })
		tx.Rollback(ctx) // the queries end
		tx = lockSessions(t, db)
	}
	logs := s.logs.String()
	for _, bad := range []string{"request failed", "status=500", "export aborted"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log has %q:\n%s", bad, logs)
		}
	}
	if !strings.Contains(logs, "status=499") {
		t.Errorf("the access log does not say 499 for the disconnected client:\n%s", logs)
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// The access log names what was asked for: the path (never the query) for 404s and static
// assets, so a missing icon is recognisable; but the route where the path holds a username.
func TestAccessLogPaths(t *testing.T) {
	s := newServer(t)
	c := s.signIn(t)
	for _, path := range []string{"/no-such-page", "/apple-touch-icon.png", "/static/missing.css", "/sessions?user=querysecret",
		"/users/secretname/revoke", "/users/secretname/bogus", "/sessions/12345/revoke"} {
		c.get(path)
	}
	logs := s.logs.String()
	for _, want := range []string{
		`path=/no-such-page status=404`, `path=/apple-touch-icon.png status=404`, `path=/static/missing.css status=404`,
		`path=/sessions status=200`, `path=/users/:name/revoke`, `path=/users/*`, `path=/sessions/12345/revoke`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"secretname", "querysecret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log has %q:\n%s", secret, logs)
		}
	}
}
