package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a running `console serve` process that the bench started.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// StartServer runs `bin serve --listen 127.0.0.1:PORT --url dbURL --data-dir dataDir [extra...]`
// and waits for its `console: listening on http://...` line. Its stderr goes to dataDir/serve.log.
func StartServer(ctx context.Context, bin, dbURL, dataDir string, extra ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logPath := filepath.Join(dataDir, "serve.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer logFile.Close()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", listen, "--url", dbURL, "--data-dir", dataDir}, extra...)...)
	cmd.Stderr = logFile
	// Its own process group: the bench decides when it stops (a Ctrl-C reaches the bench,
	// which then stops the server and the database in order).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s serve: %w", bin, err)
	}
	s := &Server{URL: "http://" + listen, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			// The first admin's password is printed here; it is never echoed.
			if i := strings.Index(line, "listening on http://"); i >= 0 && !sent {
				ready <- strings.TrimSpace(line[i+len("listening on "):])
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(s.exited) }()
	select {
	case u := <-ready:
		if u != s.URL {
			s.URL = u
		}
	case <-s.exited:
		return nil, fmt.Errorf("bench: console serve exited before listening (%s):\n%s", cmd.ProcessState, s.LogTail(15))
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("bench: console serve did not report listening within 60s:\n%s", s.LogTail(15))
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	return s, nil
}

// PID returns the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Memory returns the server's current and peak resident set sizes in bytes (VmRSS, VmHWM).
func (s *Server) Memory() (rss, peak int64, err error) {
	return procMemory(s.PID())
}

func procMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		if name == "VmRSS" {
			rss = kb * 1024
		} else {
			peak = kb * 1024
		}
	}
	return rss, peak, nil
}

// LogTail returns the last n lines of the server's stderr.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop asks the server to shut down (SIGTERM), kills it after 15 s, and waits for it.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return errors.New("bench: console serve did not stop within 15s; killed")
	}
}

// Exited reports whether the server process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Client talks to the console as a signed-in admin would from a browser: one cookie jar, the
// CSRF token sent with every state change, keep-alive connections over loopback.
type Client struct {
	base string
	http *http.Client
	csrf string

	mu      sync.RWMutex
	cookies map[string]string
}

// NewClient returns a client for the console at base with room for workers concurrent
// keep-alive connections. It follows no redirects: callers check the status they expect.
func NewClient(base string, workers int) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * workers,
		MaxIdleConnsPerHost: 2 * workers,
		IdleConnTimeout:     90 * time.Second,
		ReadBufferSize:      64 << 10,
	}
	return &Client{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{
			Transport:     tr,
			Timeout:       5 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: map[string]string{},
	}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Request describes one request and what a good answer is.
type Request struct {
	Method string
	Path   string
	Form   url.Values
	Header http.Header
	// Want lists the acceptable status codes (default 200).
	Want []int
	// Keep returns the body (otherwise it is read and discarded).
	Keep bool
	// Count counts the body's lines while reading it.
	Count bool
}

// Response is what Do read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Bytes  int64
	Lines  int64
}

// Do sends r with the jar's cookies and, for state changes, the CSRF token; it reads the whole
// body and fails on an unexpected status.
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	var body io.Reader
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	if r.Form != nil {
		if r.Method != http.MethodGet && c.csrf != "" && r.Form.Get("_csrf") == "" {
			r.Form.Set("_csrf", c.csrf)
		}
		body = strings.NewReader(r.Form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
	if err != nil {
		return Response{}, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if r.Form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.Method != http.MethodGet && c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	c.mu.RLock()
	for name, value := range c.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	c.mu.RUnlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	c.remember(resp.Cookies())
	out := Response{Status: resp.StatusCode, Header: resp.Header}
	want := r.Want
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	ok := false
	for _, w := range want {
		ok = ok || w == resp.StatusCode
	}
	switch {
	case !ok || r.Keep:
		out.Body, err = io.ReadAll(resp.Body)
		out.Bytes = int64(len(out.Body))
		if r.Count {
			out.Lines = int64(strings.Count(string(out.Body), "\n"))
		}
	case r.Count:
		out.Bytes, out.Lines, err = countLines(resp.Body)
	default:
		out.Bytes, err = discard(resp.Body)
	}
	if err != nil {
		return out, fmt.Errorf("%s %s: reading the body: %w", r.Method, r.Path, err)
	}
	if !ok {
		return out, fmt.Errorf("%s %s: status %d, want %v: %s", r.Method, r.Path, resp.StatusCode, want, excerpt(out.Body))
	}
	return out, nil
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// discard reads r to its end in large reads (io.Discard's 8 KB ones cost a syscall each).
func discard(r io.Reader) (int64, error) {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	var n int64
	for {
		m, err := r.Read(*bp)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func countLines(r io.Reader) (bytes, lines int64, err error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		bytes += int64(n)
		for _, b := range buf[:n] {
			if b == '\n' {
				lines++
			}
		}
		if err == io.EOF {
			return bytes, lines, nil
		}
		if err != nil {
			return bytes, lines, err
		}
	}
}

func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func (c *Client) remember(cookies []*http.Cookie) {
	if len(cookies) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ck := range cookies {
		if ck.MaxAge < 0 || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now())) {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
}

var (
	csrfInputRE = regexp.MustCompile(`<input[^>]*name="_csrf"[^>]*>`)
	csrfMetaRE  = regexp.MustCompile(`<meta[^>]*name="csrf-token"[^>]*>`)
	valueRE     = regexp.MustCompile(`\bvalue="([^"]*)"`)
	contentRE   = regexp.MustCompile(`\bcontent="([^"]*)"`)
)

// attr finds the first tag matching tagRE in page and returns its attribute matched by attrRE.
func attr(page []byte, tagRE, attrRE *regexp.Regexp) string {
	tag := tagRE.Find(page)
	if tag == nil {
		return ""
	}
	m := attrRE.FindSubmatch(tag)
	if m == nil {
		return ""
	}
	return html.UnescapeString(string(m[1]))
}

// Login signs in as an admin through the login form and keeps the CSRF token of the signed-in
// pages for later state changes.
func (c *Client) Login(ctx context.Context, user, password string) error {
	page, err := c.Do(ctx, Request{Path: "/login", Keep: true})
	if err != nil {
		return fmt.Errorf("bench: login page: %w", err)
	}
	token := attr(page.Body, csrfInputRE, valueRE)
	if token == "" {
		return fmt.Errorf("bench: login page has no _csrf input: %s", excerpt(page.Body))
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/login",
		Form: url.Values{"username": {user}, "password": {password}, "_csrf": {token}},
		Want: []int{http.StatusSeeOther, http.StatusFound}})
	if err != nil {
		return fmt.Errorf("bench: sign in: %w", err)
	}
	if loc := resp.Header.Get("Location"); loc != "/overview" {
		return fmt.Errorf("bench: sign in redirected to %q, want /overview (the landing page)", loc)
	}
	c.csrf = token
	page, err = c.Do(ctx, Request{Path: "/sessions", Keep: true})
	if err != nil {
		return fmt.Errorf("bench: after sign-in: %w", err)
	}
	if t := attr(page.Body, csrfMetaRE, contentRE); t != "" {
		c.csrf = t
	}
	return nil
}
