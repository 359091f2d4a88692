package handlers

import (
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionconsole/console/internal/pgtest"
)

// The issued cookie's curl line and cookie file point at the cluster when a cluster URL is
// configured, and otherwise at this console's own /auth/verify, where they work as printed:
// the test runs them with curl.
func TestIssuedCurlLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		cfg        Config
		wantTarget func(s *server) string
		wantFile   func(s *server) string // the cookie line's domain and HTTPS-only columns
		runs       bool                   // the target is this test's console
	}{
		{"no cluster URL: this console, by the request", Config{},
			func(s *server) string { return s.url + "/auth/verify" },
			func(s *server) string { return "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t" }, true},
		{"no cluster URL: this console, by its listener", Config{SelfURL: "http://localhost:9"},
			func(*server) string { return "http://localhost:9/auth/verify" },
			func(*server) string { return "#HttpOnly_localhost\tFALSE\t/\tFALSE\t" }, false},
		{"cluster URL", Config{ClusterURL: "https://crdb.example:8080/", SelfURL: "http://localhost:9"},
			func(*server) string { return "https://crdb.example:8080/_status/logfiles/local" },
			func(*server) string { return "#HttpOnly_crdb.example\tFALSE\t/\tTRUE\t" }, false},
		{"not a cluster URL: ignored", Config{ClusterURL: "crdb.example:8080"},
			func(s *server) string { return s.url + "/auth/verify" },
			func(s *server) string { return "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServerOn(t, pgtest.NewDB(t), tc.cfg)
			user := s.createUser(t, "curl_user")
			c := s.signIn(t)
			r := c.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"15m"}})
			wantStatus(t, r, http.StatusOK)
			cookie := html.UnescapeString(textOf(r.body, "issued-cookie"))
			line := html.UnescapeString(textOf(r.body, "issued-curl"))
			if want := "curl --cookie '" + cookie + "' " + tc.wantTarget(s); line != want {
				t.Fatalf("curl line\n%s\nwant\n%s", line, want)
			}
			value := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "session=")
			f := c.post("/sessions/cookie-file", url.Values{"cookie": {value}})
			wantStatus(t, f, http.StatusOK)
			wantContains(t, f.body, "Use: curl --cookie THIS-FILE "+tc.wantTarget(s)+"\n",
				tc.wantFile(s)+"0\tsession\t"+value+"\n")
			if !tc.runs {
				return
			}
			// As printed, through a shell; -i adds the response's headers to the output.
			out := runCurl(t, line+" --silent --include")
			wantCurlVerified(t, out, user)
			file := filepath.Join(t.TempDir(), "session.cookies")
			if err := os.WriteFile(file, []byte(f.body), 0o600); err != nil {
				t.Fatal(err)
			}
			wantCurlVerified(t, runCurl(t, "curl --cookie "+file+" "+tc.wantTarget(s)+" --silent --include"), user)
		})
	}
}

func runCurl(t *testing.T, line string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

func wantCurlVerified(t *testing.T, out, user string) {
	t.Helper()
	status, _, _ := strings.Cut(out, "\r\n")
	if !strings.HasSuffix(status, " 200 OK") || !strings.Contains(out, "\r\nX-Auth-User: "+user+"\r\n") {
		t.Errorf("curl did not verify the session for %s:\n%s", user, out)
	}
}
