package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/proctest"
)

// capConns is the --max-connections of TestServeConnectionCap.
const capConns = 8

// --max-connections N holds the server to N client connections: with N open (kept alive,
// each served, /auth/verify answering on every one of them), the next connections are
// completed by the kernel but not accepted by the server, so their requests get no answer;
// each held connection that closes lets exactly one waiting connection in, the one that came
// first. Shown by counts and order, not by durations: the listening socket's accept queue
// (/proc/net/tcp) says how many connections the server has not taken.
func TestServeConnectionCap(t *testing.T) {
	tg := urlTarget(t)
	cookie := strings.TrimSpace(tg.ok(t, "auth-session", "login", "root", "--only-cookie"))
	value := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "session=")
	s := startServe(t, "--url", tg.url, "--data-dir", t.TempDir(), "--max-connections", strconv.Itoa(capConns),
		"--keepalive-timeout", "10m") // no held connection times out during the test
	addr := strings.TrimPrefix(s.url, "http://")
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	queue := func() int {
		t.Helper()
		n, ok := proctest.AcceptQueue(port)
		if !ok {
			t.Fatalf("no socket listens on port %d", port)
		}
		return n
	}
	// waitQueue waits (bounded) until want connections wait to be accepted.
	waitQueue := func(want int, what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); queue() != want && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := queue(); n != want {
			t.Fatalf("%s: %d connections wait to be accepted, want %d", what, n, want)
		}
	}

	type conn struct {
		net.Conn
		r *bufio.Reader
	}
	dial := func() *conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute)) // a bound: the test stops by itself
		return &conn{c, bufio.NewReader(c)}
	}
	send := func(c *conn) {
		t.Helper()
		if _, err := io.WriteString(c, "GET /auth/verify HTTP/1.1\r\nHost: console\r\nCookie: session="+value+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(c *conn, what string) {
		t.Helper()
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", what, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-User") != "root" {
			t.Fatalf("%s: /auth/verify answered %d, X-Auth-User %q", what, resp.StatusCode, resp.Header.Get("X-Auth-User"))
		}
	}

	waitQueue(0, "before any client")
	held := make([]*conn, capConns)
	for i := range held {
		held[i] = dial()
		send(held[i])
		answered(held[i], fmt.Sprintf("connection %d of the cap", i+1))
	}
	// Two more: the kernel completes them, the server does not take them.
	waiting := []*conn{dial(), dial()}
	for _, c := range waiting {
		send(c)
	}
	// The held connections are still served, the database still reached: /auth/verify answers
	// on each while the two wait.
	for i, c := range held {
		send(c)
		answered(c, fmt.Sprintf("connection %d of the cap, again", i+1))
	}
	waitQueue(2, fmt.Sprintf("with the %d connections of the cap open", capConns))

	// A held connection closes: the first waiting one is taken and answered, the other waits.
	held[0].Close()
	answered(waiting[0], "the first connection over the cap, after one closed")
	if n := queue(); n != 1 {
		t.Fatalf("after one closed and one was let in, %d connections wait, want 1", n)
	}
	held[1].Close()
	answered(waiting[1], "the second connection over the cap, after another closed")
	if n := queue(); n != 0 {
		t.Fatalf("%d connections still wait, want none", n)
	}
}
