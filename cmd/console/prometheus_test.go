package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var metricsRE = regexp.MustCompile(`console: metrics on (\S+)`)

// tool finds a program the Makefile installs (make deps-prometheus), failing the test with
// that advice when it is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run make deps-prometheus (Debian: apt-get install prometheus)", name)
	}
	return p
}

// httpGet returns the status and body of a GET with the given headers.
func httpGet(t *testing.T, u string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// freePort is a loopback port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// promQuery asks Prometheus for an instant vector and returns each series' value by the
// value of label (one series without it: key "").
func promQuery(t *testing.T, base, query, label string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if code != http.StatusOK {
		t.Fatalf("query %s: %d %s", query, code, body)
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", query, err, body)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			t.Fatalf("query %s: value %v", query, s.Value)
		}
		out[s.Metric[label]] = v
	}
	return out
}

// The metrics pass promtool's lint, and a real Prometheus (Debian's 2.42, on a loopback port
// with its own configuration and data directory) scrapes the console both ways: the metrics
// listener without a token, and /metrics on the main listener with a viewer's API token;
// console_sessions answers with the sessions of the table, and sessions the command line
// issued are counted as source="cli". Without a token the main listener's /metrics is 401.
func TestPrometheusScrape(t *testing.T) {
	t.Parallel()
	prom, promtool := tool(t, "prometheus"), tool(t, "promtool")
	tg := urlTarget(t)
	user := fmt.Sprintf("scraped_%d", time.Now().UnixNano())
	tg.ok(t, "auth-session", "list") // creates the tables
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })
	seedSessions(t, tg, 40)
	tg.exec(t, `UPDATE console.web_sessions SET "revokedAt" = now() AT TIME ZONE 'UTC' WHERE id IN (SELECT id FROM console.web_sessions ORDER BY id LIMIT 5)`)

	s := startServe(t, append(tg.flags(), "--metrics-listen", "127.0.0.1:0", "--metrics-refresh", "1s",
		"--count-refresh", "1s", "--history-sync", "1s")...)
	var metricsURL string
	for _, l := range s.startup {
		if m := metricsRE.FindStringSubmatch(l); m != nil {
			metricsURL = m[1]
		}
	}
	if metricsURL == "" {
		t.Fatalf("serve did not say where the metrics are: %q", s.startup)
	}
	for range 3 {
		tg.ok(t, "auth-session", "login", user, "--only-cookie")
	}
	r := tg.console(t, "admin", "token", "create", "prometheus", "--role", "viewer", "--expire-after", "1h")
	secret := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(secret, "sct_") {
		t.Fatalf("token create:\n%s", r)
	}

	if code, body := httpGet(t, s.url+"/metrics", nil); code != http.StatusUnauthorized || strings.Contains(body, "console_sessions") {
		t.Fatalf("/metrics on the main listener without a token: %d\n%.300s", code, body)
	}
	code, exposition := httpGet(t, metricsURL, nil)
	if code != http.StatusOK {
		t.Fatalf("metrics listener: %d", code)
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(exposition)
	if out, err := lint.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if strings.Contains(exposition, user) || strings.Contains(exposition, secret) {
		t.Fatal("the exposition names a user or the token")
	}

	dir := t.TempDir()
	main, _ := url.Parse(s.url)
	metrics, _ := url.Parse(metricsURL)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: console
    static_configs:
      - targets: [%q]
  - job_name: console-token
    authorization:
      credentials_file: %q
    static_configs:
      - targets: [%q]
`, metrics.Host, tokenFile, main.Host)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	lint = exec.Command(promtool, "check", "config", configFile)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var log bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+base[len("http://"):], "--storage.tsdb.retention.time=1h")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	// Both targets up, and console_sessions as the table has them (35 active, 5 revoked, then
	// 3 more active from the command line), within a bounded wait.
	deadline := time.Now().Add(90 * time.Second)
	var up, active, revoked, cli map[string]float64
	for {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		if code, _ := probe(base + "/-/ready"); code == http.StatusOK {
			up = promQuery(t, base, "up", "job")
			active = promQuery(t, base, `console_sessions{status="active"}`, "job")
			revoked = promQuery(t, base, `console_sessions{status="revoked"}`, "job")
			cli = promQuery(t, base, `console_sessions_issued_total{source="cli"}`, "job")
			if up["console"] == 1 && up["console-token"] == 1 && active["console"] == 38 && active["console-token"] == 38 &&
				revoked["console"] == 5 && cli["console"] == 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not see the console: up %v, active %v, revoked %v, cli %v\n%s", up, active, revoked, cli, log.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// probe is a GET's status, 0 when nothing answers.
func probe(u string) (int, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
