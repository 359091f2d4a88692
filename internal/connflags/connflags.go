// Package connflags implements cockroach's SQL connection flags for the console's commands:
// --url, --host, --port, --user, --database, --certs-dir and --insecure, with the environment
// variables cockroach reads for them (COCKROACH_URL, COCKROACH_HOST, ...), and turns them into
// one libpq connection URL for pgx.
//
// Precedence is cockroach's (pkg/cli/clienturl, pkg/security/clientsecopts, pkg/cli/cliflagcfg):
//
//   - Environment variables are flag defaults: they are applied before the command line, in
//     the alphabetical order of their flags (certs-dir, database, host, insecure, port, url,
//     user), so COCKROACH_URL overrides COCKROACH_HOST and COCKROACH_USER overrides the user of
//     COCKROACH_URL. The console's own CONSOLE_DATABASE_URL is applied right after COCKROACH_URL.
//   - On the command line the last word wins: --url sets the user, host, port and database it
//     names (as if they were given at its place), and a discrete flag given after it overrides
//     that part of it; one given before it is overridden by the URL.
//   - A URL without sslmode gets verify-full, or disable when an --insecure given before it
//     says so; a URL that asks for TLS turns an earlier --insecure off. --insecure given after
//     the URL connects without TLS.
//   - With TLS, a URL without sslrootcert uses <certs-dir>/ca.crt, and one without sslcert uses
//     <certs-dir>/client.<user>.crt and .key when they exist (otherwise password
//     authentication, as cockroach).
//
// Where the console is stricter than cockroach (each a clear error, never a silent fallback):
// an --insecure and a --certs-dir given at the same level (both flags, or both variables) are
// refused; an explicitly given certs directory must hold ca.crt; a client certificate without
// its key (or the reverse) is refused; every certificate and key file is read and checked before
// connecting, and a private key readable by group or others is refused as libpq refuses it.
package connflags

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// Defaults of the discrete flags, as cockroach's.
const (
	DefaultHost     = "localhost"
	DefaultPort     = "26257"
	DefaultUser     = "root"
	DefaultDatabase = "defaultdb"
)

// source is where a setting came from; a later source overrides an earlier one.
type source int

const (
	unset source = iota
	fromEnv
	fromFlag
)

// Flags holds the connection settings while flags and variables are applied.
type Flags struct {
	host, port, user, database, certsDir string
	insecure                             bool
	url                                  *url.URL // the explicit URL (password included), or nil

	src map[string]source // per flag name; the URL marks user, host, port, database
	cur source            // the source being applied
	// names of the variables that set a flag, for messages
	envName map[string]string
	envErr  error
}

// New returns the settings with cockroach's defaults: localhost:26257, user root, database
// defaultdb, certificates in ~/.cockroach-certs.
func New() *Flags {
	f := &Flags{host: DefaultHost, port: DefaultPort, user: DefaultUser, database: DefaultDatabase,
		src: map[string]source{}, cur: fromFlag, envName: map[string]string{}}
	if home, err := os.UserHomeDir(); err == nil {
		f.certsDir = filepath.Join(home, ".cockroach-certs")
	}
	return f
}

// flagDef is one flag: its name, help and how a value is applied.
type flagDef struct {
	name, help string
	envs       []string
	set        func(f *Flags, v string) error
	get        func(f *Flags) string
	isBool     bool
}

var defs = []flagDef{
	{name: "certs-dir", envs: []string{"COCKROACH_CERTS_DIR"},
		help: "directory of the CA certificate (ca.crt) and the client certificate and key (client.<user>.crt, client.<user>.key) for TLS to the database [env COCKROACH_CERTS_DIR] (default ${HOME}/.cockroach-certs)",
		set:  func(f *Flags, v string) error { f.certsDir = v; return nil },
		get:  func(f *Flags) string { return f.certsDir }},
	{name: "database", envs: []string{"COCKROACH_DATABASE"},
		help: "database to connect to; the console's own tables live in its schema console [env COCKROACH_DATABASE] (default defaultdb)",
		set:  func(f *Flags, v string) error { f.database = v; return nil },
		get:  func(f *Flags) string { return f.database }},
	{name: "host", envs: []string{"COCKROACH_HOST"},
		help: "database server host, or host:port [env COCKROACH_HOST] (default localhost)",
		set:  (*Flags).setHost,
		get:  func(f *Flags) string { return f.host }},
	{name: "insecure", envs: []string{"COCKROACH_INSECURE"}, isBool: true,
		help: "connect without TLS (refuses --certs-dir) [env COCKROACH_INSECURE]; without it, TLS is required and the server's certificate and name are verified",
		set: func(f *Flags, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("invalid boolean %q", v)
			}
			f.insecure = b
			return nil
		},
		get: func(f *Flags) string { return strconv.FormatBool(f.insecure) }},
	{name: "port", envs: []string{"COCKROACH_PORT"},
		help: "database server port [env COCKROACH_PORT] (default 26257)",
		set:  (*Flags).setPort,
		get:  func(f *Flags) string { return f.port }},
	{name: "url", envs: []string{"COCKROACH_URL", "CONSOLE_DATABASE_URL"},
		help: "connection URL (postgresql://[user[:password]@]host[:port]/[database][?sslmode=...]) of a CockroachDB cluster or a PostgreSQL database; flags after it override its parts [env COCKROACH_URL, CONSOLE_DATABASE_URL]. Without any connection flag the embedded PostgreSQL in --data-dir is used",
		set:  (*Flags).setURL,
		get:  func(f *Flags) string { return "" }},
	{name: "user", envs: []string{"COCKROACH_USER"},
		help: "database user to connect as (an admin on CockroachDB) [env COCKROACH_USER] (default root)",
		set:  func(f *Flags, v string) error { f.user = v; return nil },
		get:  func(f *Flags) string { return f.user }},
}

// value adapts one flag to pflag.
type value struct {
	f *Flags
	d *flagDef
}

func (v value) String() string { return v.d.get(v.f) }
func (v value) Type() string {
	switch {
	case v.d.isBool:
		return "bool"
	case v.d.name == "url":
		return "<postgresql://...>"
	}
	return "string"
}
func (v value) Set(s string) error {
	if err := v.d.set(v.f, s); err != nil {
		return err
	}
	v.f.src[v.d.name] = v.f.cur
	return nil
}

// RedactFlagError keeps the value of --url, which may hold a password, out of a flag parsing
// error (pflag repeats the value it could not parse); other errors pass unchanged.
func RedactFlagError(err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) && ive.GetFlag() != nil && ive.GetFlag().Name == "url" {
		return fmt.Errorf("invalid argument for \"--url\" flag: %w", ive.Unwrap())
	}
	return err
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	for i := range defs {
		d := &defs[i]
		fl := fs.VarPF(value{f, d}, d.name, "", d.help)
		fl.DefValue = ""
		if d.isBool {
			fl.NoOptDefVal = "true"
		}
	}
}

// LoadEnv applies the environment variables (read through lookup, e.g. os.LookupEnv) as
// defaults, in cockroach's order. Call it after Register and before the command line is parsed.
// A bad value is reported by Resolve, so that commands that do not connect still run.
func (f *Flags) LoadEnv(lookup func(string) (string, bool)) {
	f.cur = fromEnv
	defer func() { f.cur = fromFlag }()
	for i := range defs {
		d := &defs[i]
		for _, env := range d.envs {
			v, ok := lookup(env)
			if !ok || v == "" {
				continue
			}
			if err := (value{f, d}).Set(v); err != nil && f.envErr == nil {
				f.envErr = fmt.Errorf("setting --%s from %s: %w", d.name, env, err)
			}
			f.envName[d.name] = env
		}
	}
}

// Given reports whether any connection flag or variable was given: then the console connects
// where they say instead of using its embedded PostgreSQL.
func (f *Flags) Given() bool {
	for _, s := range f.src {
		if s != unset {
			return true
		}
	}
	return f.envErr != nil
}

// name is how messages refer to a setting: --flag, or the variable that set it.
func (f *Flags) name(flag string) string {
	if f.src[flag] == fromEnv && f.envName[flag] != "" {
		return f.envName[flag]
	}
	return "--" + flag
}

func (f *Flags) setHost(v string) error {
	if v == "" {
		return errors.New("empty host")
	}
	host, port := v, ""
	if strings.HasPrefix(v, "[") || strings.Count(v, ":") == 1 {
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			if !strings.Contains(err.Error(), "missing port") {
				return fmt.Errorf("invalid host %q", v)
			}
			h = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		}
		host, port = h, p
	}
	if host == "" {
		return fmt.Errorf("invalid host %q", v)
	}
	f.host = host
	if port != "" {
		if err := f.setPort(port); err != nil {
			return err
		}
		f.src["port"] = f.cur
	}
	return nil
}

func (f *Flags) setPort(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q (1 to 65535)", v)
	}
	f.port = v
	return nil
}

// setURL applies a connection URL as cockroach's --url does: its user, host, port and database
// become the current settings; its TLS mode decides --insecure.
func (f *Flags) setURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return errors.New("invalid URL: the scheme must be postgresql:// or postgres://")
	}
	u.RawFragment, u.Fragment = "", ""
	q := u.Query()
	if name := u.User.Username(); name != "" {
		f.user = name
		f.src["user"] = f.cur
	}
	if h := u.Hostname(); h != "" {
		f.host = h
		f.src["host"] = f.cur
	}
	if p := u.Port(); p != "" {
		if err := f.setPort(p); err != nil {
			return fmt.Errorf("invalid URL: %v", err)
		}
		f.src["port"] = f.cur
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		f.database = db
		f.src["database"] = f.cur
	}
	switch mode := q.Get("sslmode"); mode {
	case "":
		if f.src["insecure"] != unset && f.insecure {
			q.Set("sslmode", "disable")
		} else {
			q.Set("sslmode", "verify-full")
			f.insecure = false
		}
	case "disable":
	case "allow", "prefer", "require", "verify-ca", "verify-full":
		f.insecure = false
	default:
		return fmt.Errorf("invalid URL: unknown sslmode %q (disable, allow, prefer, require, verify-ca or verify-full)", mode)
	}
	u.RawQuery = q.Encode()
	f.url = u
	return nil
}

// Target is where to connect.
type Target struct {
	// URL is the libpq URL for pgx, password included: keep it out of logs and messages.
	URL string
	// Display names the target without secrets: user@host:port/database and the TLS mode.
	Display string
	// TLS reports whether the connection uses TLS.
	TLS bool
	// CA is the CA certificate file that verifies the server ("" for the system's roots).
	CA string
	// ClientCert is the client certificate file presented ("" for none); WantedCert is the one
	// looked for in the certificate directory when none was found.
	ClientCert, WantedCert string
	// Insecure names the setting that turned TLS off ("--insecure", COCKROACH_INSECURE, or
	// "sslmode=disable"), or "".
	Insecure string
}

// Resolve checks the settings and the certificate files and returns the target. Every error is
// one line that names the setting or the file at fault, never a password.
func (f *Flags) Resolve() (*Target, error) {
	if f.envErr != nil {
		return nil, f.envErr
	}
	insecure := f.insecure
	useCertsDir := true
	if insecure && f.src["certs-dir"] != unset {
		switch {
		case f.src["certs-dir"] == f.src["insecure"]:
			return nil, fmt.Errorf("%s connects without TLS, so %s cannot be used with it", f.name("insecure"), f.name("certs-dir"))
		case f.src["certs-dir"] == fromFlag: // --certs-dir beats COCKROACH_INSECURE
			insecure = false
		default: // --insecure beats COCKROACH_CERTS_DIR
			useCertsDir = false
		}
	}
	u := &url.URL{Scheme: "postgresql"}
	if f.url != nil {
		c := *f.url
		u = &c
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			u.User = url.UserPassword(f.user, pw)
		} else {
			u.User = url.User(f.user)
		}
	} else {
		u.User = url.User(f.user)
	}
	u.Host = net.JoinHostPort(f.host, f.port)
	u.Path, u.RawPath = "/"+f.database, ""
	q := u.Query()
	t := &Target{}
	tlsDesc := "no TLS"
	if insecure {
		t.Insecure = f.name("insecure")
		q.Set("sslmode", "disable")
		for _, k := range []string{"sslrootcert", "sslcert", "sslkey", "sslpassword"} {
			q.Del(k)
		}
	} else if mode := q.Get("sslmode"); mode == "disable" {
		t.Insecure = "sslmode=disable"
	} else {
		if mode == "" {
			mode = "verify-full"
			q.Set("sslmode", mode)
		}
		t.TLS = true
		tlsDesc = "TLS " + mode
		explicitDir := useCertsDir && f.src["certs-dir"] != unset
		dir := ""
		if useCertsDir {
			dir = f.certsDir
		}
		if ca := q.Get("sslrootcert"); ca != "" {
			if err := checkCA(ca); err != nil {
				return nil, err
			}
			t.CA = ca
		} else if mode == "verify-full" || mode == "verify-ca" {
			ca := filepath.Join(dir, "ca.crt")
			switch {
			case dir != "" && exists(ca):
				if err := checkCA(ca); err != nil {
					return nil, err
				}
				q.Set("sslrootcert", ca)
				t.CA = ca
			case explicitDir:
				return nil, fmt.Errorf("cannot read the CA certificate %s: no such file (%s needs ca.crt to verify the server)", ca, f.name("certs-dir"))
			}
			// Otherwise the system's trusted roots verify the server, as in cockroach.
		}
		cert, key := q.Get("sslcert"), q.Get("sslkey")
		if cert == "" && key == "" && dir != "" {
			c, k := filepath.Join(dir, "client."+f.user+".crt"), filepath.Join(dir, "client."+f.user+".key")
			t.WantedCert = c
			switch ce, ke := exists(c), exists(k); {
			case ce && ke:
				cert, key = c, k
			case ce:
				return nil, fmt.Errorf("cannot read the client key %s (for %s): no such file", k, c)
			case ke:
				return nil, fmt.Errorf("cannot read the client certificate %s (for %s): no such file", c, k)
			}
		}
		if cert != "" || key != "" {
			if err := checkKeyPair(cert, key); err != nil {
				return nil, err
			}
			q.Set("sslcert", cert)
			q.Set("sslkey", key)
			t.ClientCert, t.WantedCert = cert, ""
			tlsDesc += ", client certificate " + cert
		}
	}
	u.RawQuery = q.Encode()
	display := url.URL{Host: u.Host, Path: u.Path, User: url.User(f.user)}
	t.URL = u.String()
	t.Display = strings.TrimPrefix(display.String(), "//") + " (" + tlsDesc + ")"
	return t, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readErr is the reason a file cannot be read, without repeating its path.
func readErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkCA reads a CA certificate file and checks that it holds a PEM certificate.
func checkCA(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the CA certificate %s: %s", path, readErr(err))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("the CA certificate %s holds no PEM certificate", path)
	}
	return nil
}

// checkKeyPair reads a client certificate and its key, refuses a key that group or others may
// access (libpq's rule: u=rw (0600) or less when the key is the user's own, u=rw,g=r (0640) or
// less otherwise, e.g. owned by root), and checks that the two belong together.
func checkKeyPair(cert, key string) error {
	switch {
	case cert == "":
		return fmt.Errorf("the client key %s has no certificate (sslcert)", key)
	case key == "":
		return fmt.Errorf("the client certificate %s has no key (sslkey)", cert)
	}
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		return fmt.Errorf("cannot read the client certificate %s: %s", cert, readErr(err))
	}
	fi, err := os.Stat(key)
	if err != nil {
		return fmt.Errorf("cannot read the client key %s: %s", key, readErr(err))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		perm := fi.Mode().Perm()
		if st.Uid == uint32(os.Geteuid()) && perm&0o077 != 0 || st.Uid != uint32(os.Geteuid()) && perm&0o037 != 0 {
			return fmt.Errorf("the client key %s has group or world access (mode %04o); it must be u=rw (0600) or less, or u=rw,g=r (0640) or less if another user (root) owns it", key, perm)
		}
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return fmt.Errorf("cannot read the client key %s: %s", key, readErr(err))
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("the client certificate %s and key %s are not a usable pair: %s", cert, key, strings.TrimPrefix(err.Error(), "tls: "))
	}
	return nil
}
