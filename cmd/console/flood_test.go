package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// floodSize is how many connections each flood opens; the server under test may hold at most
// floodCap at once and has floodFDs file descriptors in all (fewer than the two floods need).
const (
	floodSize = 150
	floodCap  = 100
	floodFDs  = 256
)

// An idle keep-alive flood and a slow-body flood, together more connections than the server
// has file descriptors, do not stop /auth/verify or the pages: the connection cap keeps the
// descriptors for the database and for new clients, and the timeouts close what the floods
// hold, so the slots free up. Everything is on loopback, bounded in count and time.
func TestServeFloods(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatal("the flood test runs serve through /bin/sh to lower its descriptor limit")
	}
	tg := urlTarget(t)
	cookie := strings.TrimSpace(tg.ok(t, "auth-session", "login", "root", "--only-cookie"))
	value := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "session=")
	s := startServeWrapped(t, []string{"/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, floodFDs)},
		"--url", tg.url, "--data-dir", t.TempDir(), "--max-connections", fmt.Sprint(floodCap),
		"--read-header-timeout", "2s", "--read-timeout", "2s", "--keepalive-timeout", "2s")
	addr := strings.TrimPrefix(s.url, "http://")

	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	// Each flood connection ends when the server closes it; one still open after a minute
	// means the server never would.
	ended := make(chan error, 2*floodSize)
	var sent sync.WaitGroup // the floods' requests are out: a new client comes after them
	sent.Add(2 * floodSize)
	flood := func(kind, request string, readAnswer bool) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			sent.Done()
			ended <- fmt.Errorf("%s: dial: %w", kind, err)
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		c.SetDeadline(time.Now().Add(time.Minute))
		_, err = io.WriteString(c, request)
		sent.Done()
		if err != nil {
			ended <- nil // closed by the server already
			return
		}
		r := bufio.NewReader(c)
		if readAnswer {
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				ended <- fmt.Errorf("%s: the first answer: %w", kind, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		_, err = io.Copy(io.Discard, r) // until the server closes the connection
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			ended <- fmt.Errorf("%s: the server kept the connection open for a minute", kind)
			return
		}
		ended <- nil
	}
	for range floodSize {
		// Idle: one request, then nothing, on a keep-alive connection.
		go flood("idle", "GET /healthz HTTP/1.1\r\nHost: console\r\n\r\n", true)
		// Slow body: headers promising a body that never comes.
		go flood("slow body", "POST /login HTTP/1.1\r\nHost: console\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
			"Content-Length: 60000\r\n\r\nusername=a", false)
	}

	sent.Wait()
	// Meanwhile /auth/verify and the pages answer.
	client := &http.Client{Timeout: time.Minute}
	req, _ := http.NewRequest("GET", s.url+"/auth/verify", nil)
	req.Header.Set("Cookie", "session="+value)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("/auth/verify during the floods: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-User") != "root" {
		t.Errorf("/auth/verify during the floods: %d %q", resp.StatusCode, resp.Header.Get("X-Auth-User"))
	}
	if page := s.signIn(t, client); !strings.Contains(page, `data-testid="chart-created"`) {
		t.Error("signing in during the floods did not land on the overview")
	}
	for range 2 * floodSize {
		if err := <-ended; err != nil {
			t.Error(err)
		}
	}
}

// serve's help names the server's limits, the deadlines, the trusted proxies and the sign-in
// throttle with their defaults; --behind-proxy is gone with a pointer to its replacement.
func TestServeFlags(t *testing.T) {
	t.Parallel()
	r := run(t, "", "serve", "--help")
	for _, want := range []string{
		"--read-header-timeout duration", "(default 10s)", "--read-timeout duration", "(default 30s)",
		"--write-timeout duration", "--keepalive-timeout duration", "(default 1m0s)",
		"--max-connections int", "(default 1000)", "--verify-timeout duration", "(default 2s)",
		"--page-timeout duration", "(default 5s)", "--trusted-proxy stringArray",
		"--signin-free-tries int", "(default 5)", "--signin-address-free-tries int", "(default 20)",
		"--signin-account-free-tries int", "(default 10)", "--signin-window duration", "(default 15m0s)",
		"--signin-max-delay duration",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "--behind-proxy") {
		t.Error("serve --help still offers --behind-proxy")
	}
	tg := urlTarget(t)
	for args, want := range map[string]string{
		"--behind-proxy":           "--behind-proxy is gone: name the proxies whose X-Forwarded-For to believe with --trusted-proxy CIDR",
		"--trusted-proxy=10.0.0/8": `--trusted-proxy "10.0.0/8": not an address or a CIDR range such as 10.0.0.0/8`,
		"--max-connections=0":      "--max-connections must be at least 1",
	} {
		if got := startServeErr(t, "--url", tg.url, args); !strings.Contains(got, want) {
			t.Errorf("serve %s: %q, want %q", args, got, want)
		}
	}
}

// A streamed export outlives the server's read and write timeouts as a whole (each write has
// its own deadline), even for a client that pauses longer than the read timeout, twice.
func TestServeLongExport(t *testing.T) {
	tg := urlTarget(t)
	s := startServe(t, "--url", tg.url, "--data-dir", t.TempDir(), "--read-timeout", "1s", "--write-timeout", "2s")
	const n = 50000 // some 5 MB: more than the sockets buffer, so the server waits for the client
	seedSessions(t, tg, n)
	// A small receive buffer, so that what is in flight stays well under the export's size.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: dialer.DialContext}}
	s.signIn(t, c)
	resp, err := c.Get(s.url + "/sessions.csv?status=all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := readLines(t, bufio.NewReader(resp.Body), func(lines int) {
		if lines == 1 || lines == n/5 {
			time.Sleep(1500 * time.Millisecond) // the client dawdles
		}
	})
	if lines != n+1 {
		t.Errorf("the export had %d lines, want %d", lines, n+1)
	}
}
