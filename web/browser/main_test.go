package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Timeouts bound waits; no assertion depends on how long anything takes.
const (
	testTimeout  = 60 * time.Second // one browser test, from its first step to its last
	waitTimeout  = 20 * time.Second // one wait for a condition in the page
	startTimeout = 90 * time.Second // building the binary and starting `console serve`
	stopTimeout  = 45 * time.Second // `console serve` leaving after SIGTERM
)

// srv is the console under test, started once by TestMain.
var srv struct {
	bin      string // the console binary
	dataDir  string
	baseURL  string // http://127.0.0.1:PORT
	password string // the first admin's password, as printed

	logMu sync.Mutex
	log   bytes.Buffer // everything serve wrote, stdout and stderr
}

// browserCtx is the chromedp context of the one Chromium every test opens tabs in.
var browserCtx context.Context

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	chromium, err := findChromium()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: browser tests:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "console-browser-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: browser tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// As root, the embedded PostgreSQL runs as `postgres`, which must be able to traverse here.
	if err := os.Chmod(tmp, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: browser tests:", err)
		return 1
	}

	stop, err := startConsole(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: browser tests: starting the console:", err)
		dumpServerLog(os.Stderr, false)
		return 1
	}
	code := func() int {
		ctx, cancel, err := startBrowser(chromium, filepath.Join(tmp, "chromium"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: browser tests: starting Chromium:", err)
			return 1
		}
		defer cancel()
		browserCtx = ctx
		return m.Run()
	}()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: browser tests: stopping the console:", err)
		dumpServerLog(os.Stderr, false)
		code = 1
	}
	return code
}

// findChromium returns the Chromium to run: $CHROMIUM when set, else /usr/bin/chromium, else
// `chromium` on PATH.
func findChromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROMIUM=%s: %v", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("Chromium is not installed (looked for /usr/bin/chromium and chromium on PATH); " +
		"these tests need a real headless browser: run `make test`, which installs it (apt-get install chromium)")
}

var (
	passwordLine = regexp.MustCompile(`^console: created the first admin\. Sign in as admin with password (\S+) \(also in .*\)$`)
	listenLine   = regexp.MustCompile(`^console: listening on (http://\S+)$`)
)

// startConsole builds the console, starts `console serve` on a fresh data directory in tmp and
// returns once it listens. stop sends SIGTERM and waits for a clean exit (which also stops the
// embedded PostgreSQL).
func startConsole(tmp string) (stop func() error, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the console: %w", err)
	}
	srv.bin = filepath.Join(tmp, "console")
	srv.dataDir = filepath.Join(tmp, "data")
	build := exec.Command(goBin, "build", "-o", srv.bin, "github.com/sessionconsole/console/cmd/console")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}

	// The history syncs, the activity flushes and the purge runs often, so that the history
	// pages' tests wait little (they poll; nothing depends on the period). The purge TTL stays
	// the default hour: only a session made to have ended long ago is purged.
	cmd := exec.Command(srv.bin, "serve", "--data-dir", srv.dataDir, "--listen", "127.0.0.1:0",
		"--history-sync", "300ms", "--activity-flush", "200ms", "--purge-interval", "1s", "--overview-refresh", "1s",
		// Policy rules for the policy page's tests (reported, not enforced); sessions over
		// 5000h are the policy tests' own (nothing else mints them).
		"--policy-max-lifetime", "5000h", "--policy-orphans")
	cmd.Dir = tmp
	cmd.Env = consoleEnv()
	cmd.Stderr = serverLog{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			line := sc.Text()
			serverLog{}.Write([]byte(line + "\n"))
			if announced {
				continue
			}
			if m := passwordLine.FindStringSubmatch(line); m != nil {
				srv.password = m[1]
			}
			if m := listenLine.FindStringSubmatch(line); m != nil {
				srv.baseURL = m[1]
				announced = true
				if srv.password == "" {
					ready <- errors.New("serve printed its address but no first-admin password before it")
				} else {
					ready <- nil
				}
			}
		}
		io.Copy(io.Discard, stdout)
		if !announced {
			ready <- errors.New("serve ended its output without printing `console: listening on URL`")
		}
		exited <- cmd.Wait()
	}()

	stop = func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("after SIGTERM, serve exited with %v (want a clean exit)", err)
			}
			return nil
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("serve did not exit within %s of SIGTERM: killed", stopTimeout)
		}
	}
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return nil, err
		}
	case <-time.After(startTimeout):
		stop()
		return nil, fmt.Errorf("serve did not print its address within %s", startTimeout)
	}
	if _, err := url.Parse(srv.baseURL); err != nil {
		stop()
		return nil, fmt.Errorf("serve printed a bad address %q: %v", srv.baseURL, err)
	}
	return stop, nil
}

// consoleEnv is the environment for the console binary: ours without CONSOLE_* settings (a
// CONSOLE_DATABASE_URL of the developer's must not send the tests to another database).
func consoleEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSOLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// serverLog appends to srv.log (serve's output, shown when something fails).
type serverLog struct{}

func (serverLog) Write(p []byte) (int, error) {
	srv.logMu.Lock()
	defer srv.logMu.Unlock()
	return srv.log.Write(p)
}

// dumpServerLog writes the end of serve's output; quiet keeps only its warnings and errors
// (and writes nothing when there are none).
func dumpServerLog(w io.Writer, quiet bool) {
	srv.logMu.Lock()
	defer srv.logMu.Unlock()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(srv.log.String(), "\n"), "\n") {
		if !quiet || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return
	}
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	fmt.Fprintf(w, "--- `console serve` output (last lines%s):\n%s\n",
		map[bool]string{true: ", warnings and errors only"}[quiet], strings.Join(lines, "\n"))
}

// startBrowser starts one headless Chromium with a fresh profile in dir (removed by cancel).
func startBrowser(chromium, dir string) (context.Context, context.CancelFunc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	cancel := func() {
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(dir)
	}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, nil, err
	}
	return ctx, cancel, nil
}

// cli runs the console binary on the test's data directory and returns its standard output.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	return cliInput(t, "", args...)
}

// cliInput is cli with stdin as the command's standard input.
func cliInput(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(srv.bin, append(args, "--data-dir", srv.dataDir)...)
	cmd.Env = consoleEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("console %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// seed creates the login user name and issues n sessions for it from the command line.
func seed(t *testing.T, name string, n int) {
	t.Helper()
	cli(t, "sql", "-e", "CREATE USER "+quoteIdent(name))
	for range n {
		cli(t, "auth-session", "login", name, "--only-cookie")
	}
}

// newTab opens a tab in a browser context of its own (no cookies shared with other tests) and
// returns its chromedp context, bounded by testTimeout. The tab closes when the test ends.
func newTab(t *testing.T) context.Context {
	t.Helper()
	return newTabFor(t, testTimeout)
}

// newTabFor is newTab bounded by timeout instead of testTimeout.
func newTabFor(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	tabCtx, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	if _, err := chromedp.Call(tabCtx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: instrumentJS}); err != nil {
		t.Fatalf("instrument the tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, timeout)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			if dumpServerLog(&b, true); b.Len() > 0 {
				t.Log(b.String())
			}
		}
	})
	return ctx
}

// do runs steps, failing the test with what was being done.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action and returns its value, failing the test with what was being read.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// waitJS waits until the JavaScript expression is truthy in the page (bounded by waitTimeout),
// failing the test with what was awaited and where the page is.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if err := pollJS(ctx, expr); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("waiting for %s (%s): %v; the page is at %s", what, expr, err, loc)
	}
}

// pollJS waits until the JavaScript expression is truthy in the page, at most waitTimeout.
func pollJS(ctx context.Context, expr string) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline))))
		// Right after a navigation chromedp may still name the old document's execution
		// context: poll again in the new one.
		if err == nil || !strings.Contains(err.Error(), "Cannot find context with specified id") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// instrumentJS runs in every document of a tab before the page's own scripts. It tracks the
// page's XMLHttpRequests (htmx's transport) until they end, whatever the outcome, and keeps
// every notice htmx swaps in (a later auto-refresh of the table may replace it before the test
// looks).
const instrumentJS = `(() => {
	window.__xhrPending = new Map();
	window.__notices = [];
	const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
	XMLHttpRequest.prototype.open = function (method, url, ...rest) {
		this.__what = method + " " + url;
		return open.call(this, method, url, ...rest);
	};
	XMLHttpRequest.prototype.send = function (...args) {
		window.__xhrPending.set(this, this.__what);
		this.addEventListener("loadend", () => window.__xhrPending.delete(this));
		return send.apply(this, args);
	};
	document.addEventListener("htmx:afterSwap", () => {
		const n = document.querySelector('[data-testid="notice"]');
		if (n) window.__notices.push(n.textContent);
	});
	// Busy states as they come and go: aria-busy on regions, disabled on buttons.
	window.__busy = [];
	new MutationObserver(ms => ms.forEach(m => {
		const e = m.target, v = e.getAttribute(m.attributeName);
		if (v !== null && v !== "false") window.__busy.push((e.id || e.dataset.testid || e.tagName) + " " + m.attributeName);
	})).observe(document, {subtree: true, attributes: true, attributeFilter: ["aria-busy", "disabled"]});
})()`

// htmxSettledJS is true when the page has no request in flight and htmx has finished every
// swap: htmx binds the hx-* attributes of new content only when the swap settles, so a click
// before that is an ordinary link or form submission.
const htmxSettledJS = `window.__xhrPending.size === 0 && document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added") === null`

// waitSettled waits until htmx is done with its requests and swaps.
func waitSettled(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := pollJS(ctx, htmxSettledJS); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({pending: Array.from(window.__xhrPending.values()),
			busy: Array.from(document.querySelectorAll(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")).map(e => e.tagName + "#" + e.id + "." + e.className)})`))
		t.Fatalf("waiting for htmx to finish its requests and swaps: %v; state: %s", err, state)
	}
}

// pauseAutoRefresh pauses the sessions table's periodic refresh in this tab (as the page's
// pause button does), so that a refresh cannot replace the table between the test's look at
// a row and its click on it.
func pauseAutoRefresh(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[chromedp.Void](t, ctx, `sessionStorage.setItem("console.refresh.paused", "1")`)
}

// typeInto focuses the field with data-testid id and types text into it, as SendKeys does. For
// fields whose attributes change while typing (htmx marks the username field of the issue form
// while it fetches suggestions): chromedp v0.23's SendKeys reads a node's attributes without its
// lock, which the race detector reports when the page changes them at the same time.
func typeInto(t *testing.T, ctx context.Context, what, id, text string) {
	t.Helper()
	do(t, ctx, what, chromedp.Focus(byTestID(id)), chromedp.KeyEvent(text))
}

// setField sets an input's value from script, without any event.
func setField(t *testing.T, ctx context.Context, css, value string) {
	t.Helper()
	eval[chromedp.Void](t, ctx, "document.querySelector("+jsString(css)+").value = "+jsString(value))
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// byTestID is the CSS selector of a data-testid hook.
func byTestID(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// navClick clicks sel and waits for the page load it causes; it returns the document's HTTP
// status (after redirects).
func navClick(t *testing.T, ctx context.Context, what string, sel chromedp.CSS) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		t.Fatalf("%s: the click loaded no document", what)
	}
	return resp.Status
}

// navigate loads u (a path on the console or a full URL) and returns the HTTP status.
func navigate(t *testing.T, ctx context.Context, u string) int64 {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = srv.baseURL + u
	}
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return resp.Status
}

// sqlValue runs a query that returns one value and returns it as text.
func sqlValue(t *testing.T, query string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(cli(t, "sql", "--format", "csv", "-e", query)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%s: want a header and one value, got %q", query, lines)
	}
	return strings.TrimSpace(lines[1])
}

// signIn signs the tab in as the first admin, with the printed password, checks that it lands
// on the overview, and opens the sessions page.
func signIn(t *testing.T, ctx context.Context) {
	t.Helper()
	signInHere(t, ctx)
	if path := eval[string](t, ctx, `location.pathname`); path != "/overview" {
		t.Fatalf("sign-in landed on %s, want /overview", path)
	}
	navigate(t, ctx, "/sessions")
}

// signInHere signs the tab in as the first admin and stays on the page the sign-in lands on.
func signInHere(t *testing.T, ctx context.Context) {
	t.Helper()
	navigate(t, ctx, "/login")
	do(t, ctx, "fill in the sign-in form",
		chromedp.SendKeys(chromedp.ID("login-username"), "admin"),
		chromedp.SendKeys(chromedp.ID("login-password"), srv.password))
	if st := navClick(t, ctx, "sign in", byTestID("sign-in")); st != http.StatusOK {
		t.Fatalf("signing in with the printed credentials: HTTP %d, want 200", st)
	}
	do(t, ctx, "wait for the signed-in admin's name", chromedp.WaitVisible(byTestID("admin-name")))
	if got := get(t, ctx, "read the admin name", chromedp.TextContent(byTestID("admin-name"))); got != "admin" {
		t.Fatalf("after sign-in, admin-name = %q, want %q", got, "admin")
	}
}

// screenshot writes a full-page PNG to $SCREENSHOT_DIR/name.png when SCREENSHOT_DIR is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
