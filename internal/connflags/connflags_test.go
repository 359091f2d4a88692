package connflags

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sessionconsole/console/internal/pgtest"
)

// parse applies env (in cockroach's order) and then args, as the console does, and resolves.
func parse(t *testing.T, env map[string]string, args ...string) (*Flags, *Target, error) {
	t.Helper()
	f := New()
	f.certsDir = t.TempDir() // an empty default directory, whatever $HOME holds
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	f.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err := fs.Parse(args); err != nil {
		return f, nil, RedactFlagError(err)
	}
	tg, err := f.Resolve()
	return f, tg, err
}

// connURL is the resolved URL without its query, and the query.
func connURL(t *testing.T, tg *Target) (string, url.Values) {
	t.Helper()
	u, err := url.Parse(tg.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	u.RawQuery = ""
	return u.String(), q
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // URL without query
		sslmode string
	}{
		{"defaults", nil, []string{"--insecure"}, "postgresql://root@localhost:26257/defaultdb", "disable"},
		{"discrete flags", nil, []string{"--host", "db.example", "--port", "5432", "--user", "alice", "--database", "app"},
			"postgresql://alice@db.example:5432/app", "verify-full"},
		{"host:port", nil, []string{"--host=db.example:5433"}, "postgresql://root@db.example:5433/defaultdb", "verify-full"},
		{"IPv6 host:port", nil, []string{"--host=[::1]:5433"}, "postgresql://root@[::1]:5433/defaultdb", "verify-full"},
		{"bare IPv6 host", nil, []string{"--host=::1"}, "postgresql://root@[::1]:26257/defaultdb", "verify-full"},
		{"--port after --host:port wins", nil, []string{"--host=h:1", "--port=2"}, "postgresql://root@h:2/defaultdb", "verify-full"},
		{"--host:port after --port wins", nil, []string{"--port=2", "--host=h:1"}, "postgresql://root@h:1/defaultdb", "verify-full"},
		{"url alone", nil, []string{"--url", "postgresql://bob:pw@u.example:1234/udb?application_name=x"},
			"postgresql://bob:pw@u.example:1234/udb", "verify-full"},
		{"flags after --url override it", nil, []string{"--url", "postgresql://bob@u.example:1234/udb", "--user", "carol", "--host", "h2", "--port", "99", "--database", "d2"},
			"postgresql://carol@h2:99/d2", "verify-full"},
		{"--url overrides flags before it", nil, []string{"--user", "carol", "--host", "h2", "--database", "d2", "--url", "postgresql://bob@u.example:1234/udb"},
			"postgresql://bob@u.example:1234/udb", "verify-full"},
		{"--url without parts keeps earlier flags", nil, []string{"--user", "carol", "--host", "h2", "--url", "postgresql://"},
			"postgresql://carol@h2:26257/defaultdb", "verify-full"},
		{"a new user keeps the URL's password", nil, []string{"--url", "postgresql://bob:pw@h/d", "--user", "carol"},
			"postgresql://carol:pw@h:26257/d", "verify-full"},
		{"the last --url wins", nil, []string{"--url", "postgresql://a@h1/d1", "--url", "postgres://b@h2/d2"},
			"postgres://b@h2:26257/d2", "verify-full"},
		{"env is a default", map[string]string{"COCKROACH_HOST": "envhost", "COCKROACH_USER": "envuser", "COCKROACH_DATABASE": "envdb", "COCKROACH_PORT": "7"}, nil,
			"postgresql://envuser@envhost:7/envdb", "verify-full"},
		{"flags beat env", map[string]string{"COCKROACH_HOST": "envhost", "COCKROACH_USER": "envuser"}, []string{"--host", "h", "--user", "u"},
			"postgresql://u@h:26257/defaultdb", "verify-full"},
		// cockroach applies variables in the alphabetical order of their flags: url after
		// host/port/database, user after url.
		{"COCKROACH_URL beats COCKROACH_HOST, COCKROACH_USER beats COCKROACH_URL",
			map[string]string{"COCKROACH_URL": "postgresql://urluser@urlhost:1/urldb", "COCKROACH_HOST": "envhost", "COCKROACH_DATABASE": "envdb", "COCKROACH_USER": "envuser"}, nil,
			"postgresql://envuser@urlhost:1/urldb", "verify-full"},
		{"CONSOLE_DATABASE_URL beats COCKROACH_URL",
			map[string]string{"COCKROACH_URL": "postgresql://a@h1/d1", "CONSOLE_DATABASE_URL": "postgresql://b@h2/d2"}, nil,
			"postgresql://b@h2:26257/d2", "verify-full"},
		{"flags beat env URL", map[string]string{"COCKROACH_URL": "postgresql://a@h1:5/d1"}, []string{"--database", "d2"},
			"postgresql://a@h1:5/d2", "verify-full"},
		{"a URL's sslmode is kept", nil, []string{"--url", "postgresql://a@h/d?sslmode=require"}, "postgresql://a@h:26257/d", "require"},
		{"sslmode=disable", nil, []string{"--url", "postgresql://a@h/d?sslmode=disable"}, "postgresql://a@h:26257/d", "disable"},
		{"--insecure before a URL without sslmode", nil, []string{"--insecure", "--url", "postgresql://a@h/d"}, "postgresql://a@h:26257/d", "disable"},
		{"a URL asking for TLS turns an earlier --insecure off", nil, []string{"--insecure", "--url", "postgresql://a@h/d?sslmode=require"}, "postgresql://a@h:26257/d", "require"},
		{"--insecure after a URL", nil, []string{"--url", "postgresql://a@h/d?sslmode=verify-full", "--insecure"}, "postgresql://a@h:26257/d", "disable"},
		{"--insecure=false", nil, []string{"--insecure=false"}, "postgresql://root@localhost:26257/defaultdb", "verify-full"},
		{"COCKROACH_INSECURE", map[string]string{"COCKROACH_INSECURE": "true"}, nil, "postgresql://root@localhost:26257/defaultdb", "disable"},
		{"--insecure=false beats COCKROACH_INSECURE", map[string]string{"COCKROACH_INSECURE": "1"}, []string{"--insecure=false"}, "postgresql://root@localhost:26257/defaultdb", "verify-full"},
		{"empty variables are unset", map[string]string{"COCKROACH_HOST": "", "COCKROACH_URL": ""}, []string{"--insecure"}, "postgresql://root@localhost:26257/defaultdb", "disable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, tg, err := parse(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			got, q := connURL(t, tg)
			if got != tc.want || q.Get("sslmode") != tc.sslmode {
				t.Errorf("URL %s sslmode=%s, want %s sslmode=%s", got, q.Get("sslmode"), tc.want, tc.sslmode)
			}
			if strings.Contains(tg.Display, "pw") {
				t.Errorf("Display shows the password: %s", tg.Display)
			}
		})
	}
}

func TestGiven(t *testing.T) {
	f, _, _ := parse(t, nil)
	if f.Given() {
		t.Error("Given with no flags and no variables")
	}
	for _, args := range [][]string{{"--host=h"}, {"--insecure"}, {"--certs-dir=c"}, {"--user=u"}, {"--database=d"}, {"--port=1"}, {"--url=postgresql://h"}} {
		if f, _, _ := parse(t, nil, args...); !f.Given() {
			t.Errorf("not Given with %v", args)
		}
	}
	if f, _, _ := parse(t, map[string]string{"COCKROACH_CERTS_DIR": "c"}); !f.Given() {
		t.Error("not Given with COCKROACH_CERTS_DIR")
	}
	if f, _, _ := parse(t, map[string]string{"CONSOLE_DATABASE_URL": "postgres://h/d"}); !f.Given() {
		t.Error("not Given with CONSOLE_DATABASE_URL")
	}
}

func TestBadValues(t *testing.T) {
	const pw = "s3cret-pw"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"port", nil, []string{"--port", "http"}, `invalid port "http" (1 to 65535)`},
		{"port range", nil, []string{"--port", "70000"}, `invalid port "70000"`},
		{"empty host", nil, []string{"--host", ""}, "empty host"},
		{"scheme", nil, []string{"--url", "mysql://u:" + pw + "@h/d"}, "the scheme must be postgresql:// or postgres://"},
		{"unparsable URL", nil, []string{"--url", "postgresql://u:" + pw + "@h:99999999/d"}, "invalid URL"},
		{"bad URL escape", nil, []string{"--url", "postgresql://u:" + pw + "@h/%zz"}, "invalid URL"},
		{"sslmode", nil, []string{"--url", "postgresql://h/d?sslmode=maybe"}, `unknown sslmode "maybe"`},
		{"insecure", nil, []string{"--insecure=maybe"}, `invalid boolean "maybe"`},
		{"env insecure", map[string]string{"COCKROACH_INSECURE": "maybe"}, nil, `setting --insecure from COCKROACH_INSECURE: invalid boolean "maybe"`},
		{"env URL", map[string]string{"COCKROACH_URL": "http://u:" + pw + "@h/d"}, nil, "setting --url from COCKROACH_URL: invalid URL"},
		{"insecure and certs-dir", nil, []string{"--insecure", "--certs-dir", "certs"}, "--insecure connects without TLS, so --certs-dir cannot be used with it"},
		{"both variables", map[string]string{"COCKROACH_INSECURE": "true", "COCKROACH_CERTS_DIR": "certs"}, nil,
			"COCKROACH_INSECURE connects without TLS, so COCKROACH_CERTS_DIR cannot be used with it"},
		{"explicit certs-dir without ca.crt", nil, []string{"--certs-dir", "/nonexistent/certs"},
			"cannot read the CA certificate /nonexistent/certs/ca.crt: no such file (--certs-dir needs ca.crt to verify the server)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line with %q and no password", err, tc.want)
			}
		})
	}
}

// TestFlagBeatsVariable: --insecure and --certs-dir at different levels do not conflict: the
// command line wins.
func TestFlagBeatsVariable(t *testing.T) {
	dir := certsDir(t, "root")
	_, tg, err := parse(t, map[string]string{"COCKROACH_CERTS_DIR": dir}, "--insecure")
	if err != nil || tg.TLS || strings.Contains(tg.URL, "sslcert") {
		t.Errorf("--insecure with COCKROACH_CERTS_DIR: %+v, %v; want no TLS", tg, err)
	}
	_, tg, err = parse(t, map[string]string{"COCKROACH_INSECURE": "true"}, "--certs-dir", dir)
	if err != nil || !tg.TLS || tg.ClientCert == "" {
		t.Errorf("--certs-dir with COCKROACH_INSECURE: %+v, %v; want TLS with the client certificate", tg, err)
	}
}

// certsDir writes ca.crt and client certificates for users into a new directory.
func certsDir(t *testing.T, users ...string) string {
	t.Helper()
	ca := pgtest.NewCA(t, "ca")
	return pgtest.WriteCertsDir(t, t.TempDir(), ca.PEM, ca, users...)
}

func TestCertsDir(t *testing.T) {
	dir := certsDir(t, "root", "alice")
	_, tg, err := parse(t, nil, "--certs-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	_, q := connURL(t, tg)
	if q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") != filepath.Join(dir, "ca.crt") ||
		q.Get("sslcert") != filepath.Join(dir, "client.root.crt") || q.Get("sslkey") != filepath.Join(dir, "client.root.key") {
		t.Errorf("query %v", q)
	}
	if !strings.HasSuffix(tg.Display, "(TLS verify-full, client certificate "+filepath.Join(dir, "client.root.crt")+")") {
		t.Errorf("Display %q", tg.Display)
	}
	// The user's own certificate.
	_, tg, _ = parse(t, nil, "--certs-dir", dir, "--user", "alice")
	if _, q := connURL(t, tg); q.Get("sslcert") != filepath.Join(dir, "client.alice.crt") {
		t.Errorf("alice: %v", q)
	}
	// No certificate for bob: password authentication, CA still used.
	_, tg, err = parse(t, nil, "--certs-dir", dir, "--url", "postgresql://bob:pw@h/d")
	if err != nil {
		t.Fatal(err)
	}
	if _, q := connURL(t, tg); q.Get("sslcert") != "" || q.Get("sslrootcert") == "" || tg.WantedCert != filepath.Join(dir, "client.bob.crt") {
		t.Errorf("bob: %v %+v", q, tg)
	}
	// The URL's own files win over the directory's.
	other := certsDir(t, "root")
	u := "postgresql://root@h/d?sslrootcert=" + filepath.Join(other, "ca.crt") + "&sslcert=" + filepath.Join(other, "client.root.crt") + "&sslkey=" + filepath.Join(other, "client.root.key")
	_, tg, err = parse(t, nil, "--certs-dir", dir, "--url", u)
	if err != nil {
		t.Fatal(err)
	}
	if _, q := connURL(t, tg); q.Get("sslrootcert") != filepath.Join(other, "ca.crt") || q.Get("sslcert") != filepath.Join(other, "client.root.crt") {
		t.Errorf("URL files: %v", q)
	}
	// --insecure drops every TLS file, even the URL's.
	_, tg, _ = parse(t, nil, "--url", u, "--insecure")
	if _, q := connURL(t, tg); q.Get("sslmode") != "disable" || q.Get("sslrootcert") != "" || q.Get("sslcert") != "" || tg.TLS {
		t.Errorf("--insecure: %v", q)
	}
	// sslmode=require needs no CA.
	empty := t.TempDir()
	if _, _, err := parse(t, nil, "--url", "postgresql://h/d?sslmode=require", "--certs-dir", empty); err != nil {
		t.Errorf("require without ca.crt: %v", err)
	}
}

func TestCertFileErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"missing key", func(d string) { os.Remove(filepath.Join(d, "client.root.key")) },
			"cannot read the client key DIR/client.root.key (for DIR/client.root.crt): no such file"},
		{"missing certificate", func(d string) { os.Remove(filepath.Join(d, "client.root.crt")) },
			"cannot read the client certificate DIR/client.root.crt (for DIR/client.root.key): no such file"},
		{"missing CA", func(d string) { os.Remove(filepath.Join(d, "ca.crt")) },
			"cannot read the CA certificate DIR/ca.crt: no such file"},
		{"CA not PEM", func(d string) { os.WriteFile(filepath.Join(d, "ca.crt"), []byte("hello"), 0o644) },
			"the CA certificate DIR/ca.crt holds no PEM certificate"},
		{"key readable by others", func(d string) { os.Chmod(filepath.Join(d, "client.root.key"), 0o644) },
			"the client key DIR/client.root.key has group or world access (mode 0644); it must be u=rw (0600) or less"},
		{"key readable by the group", func(d string) { os.Chmod(filepath.Join(d, "client.root.key"), 0o640) },
			"has group or world access (mode 0640)"},
		{"key of another certificate", func(d string) {
			o := certsDir(t, "root")
			b, _ := os.ReadFile(filepath.Join(o, "client.root.key"))
			os.WriteFile(filepath.Join(d, "client.root.key"), b, 0o600)
		}, "the client certificate DIR/client.root.crt and key DIR/client.root.key are not a usable pair: private key does not match public key"},
		{"garbage key", func(d string) { os.WriteFile(filepath.Join(d, "client.root.key"), []byte("x"), 0o600) },
			"are not a usable pair"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := certsDir(t, "root")
			tc.setup(dir)
			_, _, err := parse(t, nil, "--certs-dir", dir)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line with %q", err, want)
			}
		})
	}
	// Root reads any file, so as root the check runs again in a copy of this test binary as the
	// unprivileged user nobody, on a key only root may read.
	t.Run("unreadable key", func(t *testing.T) {
		dir := os.Getenv(unreadableKeyDir)
		if dir == "" {
			dir = certsDir(t, "root")
			key := filepath.Join(dir, "client.root.key")
			if err := os.Chmod(key, 0o000); err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() == 0 {
				runAsNobody(t, dir, "^TestCertFileErrors$/^unreadable_key$")
				return
			}
		}
		_, _, err := parse(t, nil, "--certs-dir", dir)
		want := "cannot read the client key " + filepath.Join(dir, "client.root.key") + ": permission denied"
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		fmt.Printf("unreadable key checked as uid %d\n", os.Geteuid())
	})
}

// unreadableKeyDir names, for a copy of the test binary run by runAsNobody, the certificate
// directory to check.
const unreadableKeyDir = "CONNFLAGS_TEST_UNREADABLE_DIR"

// runAsNobody runs the tests matching run in a copy of this test binary as the user nobody,
// with unreadableKeyDir set to dir (made reachable for nobody: its files stay as they are), and
// fails unless they ran and passed as nobody.
func runAsNobody(t *testing.T, dir, run string) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody to read the key as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "client.root.crt"), 0o644)
	// The test binary may sit in a directory only root can enter: nobody runs a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := os.MkdirTemp("", "connflags-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	os.Chmod(binDir, 0o755)
	exe := filepath.Join(binDir, "connflags.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(binDir, "home") // nobody's own, for the temporary directories
	if err := os.Mkdir(home, 0o700); err != nil || os.Chown(home, uid, gid) != nil {
		t.Fatalf("a home for nobody: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run", run, "-test.count=1")
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), unreadableKeyDir+"="+dir, "HOME="+home, "TMPDIR="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("unreadable key checked as uid %d\n", uid)) {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}
