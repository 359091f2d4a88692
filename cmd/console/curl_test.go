package main

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

var (
	csrfMetaRE   = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
	issuedCurlRE = regexp.MustCompile(`data-testid="issued-curl">([^<]*)<`)
)

// issueOnWeb issues a session for user through the sessions page's form (no htmx) and returns
// the curl line the result shows.
func (s *server) issueOnWeb(t *testing.T, web *http.Client, user string) string {
	t.Helper()
	body := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s\n%.500s", resp.Request.Method, resp.Request.URL.Path, resp.Status, b)
		}
		return string(b)
	}
	token := csrfMetaRE.FindStringSubmatch(body(web.Get(s.url + "/sessions")))
	if token == nil {
		t.Fatal("no CSRF token on the sessions page")
	}
	page := body(web.PostForm(s.url+"/sessions", url.Values{"username": {user}, "expire_after": {"15m"}, "_csrf": {token[1]}}))
	m := issuedCurlRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no curl line in the issue result:\n%.2000s", page)
	}
	return html.UnescapeString(m[1])
}

// TestServeCurlLine: with no --cluster-url, the curl line of an issued cookie points at this
// console's own /auth/verify and works as printed (run here through a shell); with one, it
// points at the cluster. A --cluster-url that is no HTTP address is refused.
func TestServeCurlLine(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	user := "curl_web_user"
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.exec(t, "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize()) })

	dataDir := t.TempDir()
	s := startServe(t, "--url", tg.url, "--data-dir", dataDir)
	web := &http.Client{}
	s.signIn(t, web)
	line := s.issueOnWeb(t, web, user)
	if !strings.HasPrefix(line, "curl --cookie 'session=") || !strings.HasSuffix(line, "' "+s.url+"/auth/verify") {
		t.Fatalf("curl line %q, want one against %s/auth/verify", line, s.url)
	}
	out, err := exec.Command("sh", "-c", line+" --silent --include").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	if status, _, _ := strings.Cut(string(out), "\r\n"); !strings.HasSuffix(status, " 200 OK") || !strings.Contains(string(out), "\r\nX-Auth-User: "+user+"\r\n") {
		t.Errorf("the printed curl line did not verify the session:\n%s", out)
	}

	withCluster := startServe(t, "--url", tg.url, "--data-dir", dataDir, "--cluster-url", "https://crdb.example:8080")
	withCluster.password = s.password // the same admin: created by the first
	web2 := &http.Client{}
	withCluster.signIn(t, web2)
	if line := withCluster.issueOnWeb(t, web2, user); !strings.HasSuffix(line, "' https://crdb.example:8080/_status/logfiles/local") {
		t.Errorf("with --cluster-url: curl line %q", line)
	}

	for _, bad := range []string{"crdb.example:8080", "ftp://crdb.example", "https://", "https://user:secret@crdb.example"} {
		if err := startServeErr(t, "--url", tg.url, "--data-dir", t.TempDir(), "--cluster-url", bad); !strings.Contains(err, "--cluster-url") || strings.Contains(err, "secret") {
			t.Errorf("--cluster-url %q: %q", bad, err)
		}
	}
}
