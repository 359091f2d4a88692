package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// server is a running `console serve`.
type server struct {
	cmd      *exec.Cmd
	url      string
	password string
	startup  []string // the lines printed up to "listening on"
	exited   chan error
}

var (
	listeningRE = regexp.MustCompile(`console: listening on (\S+)`)
	passwordRE  = regexp.MustCompile(`with password (\S+)`)
)

func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	return startServeWrapped(t, nil, args...)
}

// startServeWrapped starts serve through wrapper (a command that runs its arguments, such as
// a shell that lowers a limit first; nil: none).
func startServeWrapped(t *testing.T, wrapper []string, args ...string) *server {
	t.Helper()
	argv := append(append(wrapper, consoleBin, "serve", "--listen", "127.0.0.1:0"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan error, 1)}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		s.startup = append(s.startup, lines.Text())
		if m := passwordRE.FindStringSubmatch(lines.Text()); m != nil {
			s.password = m[1]
		}
		if m := listeningRE.FindStringSubmatch(lines.Text()); m != nil {
			s.url = m[1]
			break
		}
	}
	go func() {
		io.Copy(io.Discard, out)
		s.exited <- cmd.Wait()
	}()
	if s.url == "" {
		cmd.Process.Kill()
		t.Fatalf("serve printed no URL: %v", <-s.exited)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(45 * time.Second):
				cmd.Process.Kill()
			}
		}
	})
	return s
}

// seedSessions inserts n active sessions of 100 users straight into console.web_sessions.
func seedSessions(t *testing.T, tg *target, n int) {
	t.Helper()
	if _, err := tg.db(t).Exec(t.Context(), `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
		SELECT '\x00', 'user' || (i % 100), now() AT TIME ZONE 'UTC' + INTERVAL '1 hour' FROM generate_series(1, $1) AS i`, n); err != nil {
		t.Fatal(err)
	}
}

// readLines reads r to its end and returns how many lines it had, calling before (when not
// nil) with the number of lines read so far before each line; a broken stream fails the test.
func readLines(t *testing.T, r *bufio.Reader, before func(lines int)) int {
	t.Helper()
	lines := 0
	for {
		if before != nil {
			before(lines)
		}
		_, err := r.ReadString('\n')
		if err == io.EOF {
			return lines
		}
		if err != nil {
			t.Fatalf("the download broke off after %d lines: %v", lines, err)
		}
		lines++
	}
}

// signIn signs c in as the first admin through the login form (giving c a cookie jar if it
// has none) and returns the page it lands on (the overview).
func (s *server) signIn(t *testing.T, c *http.Client) string {
	t.Helper()
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil)
	}
	resp, err := c.Get(s.url + "/login")
	if err != nil {
		t.Fatalf("the login page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || token == nil {
		t.Fatalf("the login page: %d, no CSRF token", resp.StatusCode)
	}
	resp, err = c.PostForm(s.url+"/login", url.Values{"username": {"admin"}, "password": {s.password}, "_csrf": {string(token[1])}})
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return string(body)
}

// cleanEnv is the environment without the console's own variables and cockroach's connection
// variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSOLE_") && !strings.HasPrefix(kv, "COCKROACH_") {
			env = append(env, kv)
		}
	}
	return env
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// Under TLS the console serves HTTPS, marks its cookies Secure and sends HSTS.
func TestServeTLS(t *testing.T) {
	tg := urlTarget(t)
	cert, key := selfSigned(t)
	s := startServe(t, "--url", tg.url, "--data-dir", t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("URL %q", s.url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get(s.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Errorf("HSTS %q", hsts)
	}
	for _, c := range resp.Header.Values("Set-Cookie") {
		if !strings.Contains(c, "; Secure") {
			t.Errorf("cookie without Secure under TLS: %q", c)
		}
	}
	if err := startServeErr(t, "--url", tg.url, "--tls-cert", cert); !strings.Contains(err, "--tls-cert and --tls-key go together") {
		t.Errorf("half a TLS configuration: %q", err)
	}
}

// startServeErr runs serve expecting it to fail and returns its stderr.
func startServeErr(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(consoleBin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve %v succeeded", args)
	}
	return string(out)
}

// SIGTERM lets a request in flight finish (a long CSV export here), then stops the server and
// the embedded PostgreSQL it started.
func TestServeGracefulShutdown(t *testing.T) {
	tg := embeddedTarget(t)
	s := startServe(t, "--data-dir", tg.dataDir)
	if s.password == "" {
		t.Fatal("the first admin's password was not printed")
	}
	if b, err := os.ReadFile(filepath.Join(tg.dataDir, "admin-password")); err != nil || strings.TrimSpace(string(b)) != s.password {
		t.Fatalf("admin-password file: %q %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(tg.dataDir, "admin-password")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-password mode %v", fi.Mode().Perm())
	}
	const n = 200000
	seedSessions(t, tg, n)
	tg.detach(t)

	c := &http.Client{}
	s.signIn(t, c)
	resp, err := c.Get(s.url + "/sessions.csv?status=all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil { // the header: the export is under way
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	if lines := readLines(t, r, nil); lines != n {
		t.Errorf("export had %d rows, want %d", lines, n)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	// embeddedTarget's cleanup checks that no PostgreSQL is left in the data dir.
}

// serve starts on CockroachDB v26.1 (through the proxy, full scans refused by default): the
// first admin is created, the console's tables are migrated (the audit table's later ALTER
// unlocking and locking it again) and the console is ready.
func TestServeCockroach(t *testing.T) {
	t.Parallel()
	tg, _, p := cockroachTarget(t)
	s := startServe(t, "--url", tg.url, "--data-dir", t.TempDir())
	if s.password == "" {
		t.Fatal("no first admin")
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	if !p.SchemaLocked("audit_log") {
		t.Error("console.audit_log is not schema_locked again after its ALTER")
	}
	// The first-admin check above and these read whole tables of the console's schema, which
	// the proxy refuses unless the statement's connection turned the guard off.
	if list := jsonRows(t, tg.ok(t, "admin", "list", "--format=json")); len(list) != 1 || list[0]["name"] != "admin" {
		t.Errorf("admin list on a cluster that refuses full scans: %v", list)
	}
	if got := tg.ok(t, "admin", "token", "list", "--format=csv"); !strings.HasPrefix(got, "name,") {
		t.Errorf("admin token list: %q", got)
	}
}
