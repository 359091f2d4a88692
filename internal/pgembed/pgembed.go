// Package pgembed runs a private PostgreSQL server from the machine's own server binaries, in a
// data directory of the console's, listening only on a loopback address.
//
// The first Start on an empty data directory runs initdb; later starts reuse the cluster, so data
// survives restarts. Several processes may share one data directory: the first starts the
// server, the others attach to it, and whichever process leaves last stops it. As root, the
// server runs as the `postgres` system user, as PostgreSQL requires.
package pgembed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no PostgreSQL server binaries (initdb, postgres) were found.
var ErrNoBinaries = errors.New("pgembed: PostgreSQL server binaries (initdb, postgres) not found; " +
	"install them (Debian/Ubuntu: apt-get install postgresql) or point the console at a database with --url")

// Superuser is the name of the embedded cluster's superuser. It matches CockroachDB's `root`,
// so `auth-session login root` works on the embedded database as it does on a cluster.
const Superuser = "root"

// Database is the database the console uses inside the embedded cluster.
const Database = "console"

// Options configure Start.
type Options struct {
	// DataDir holds everything: the cluster (DataDir/pg, or a location recorded in
	// DataDir/pg-location when the postgres user cannot reach DataDir), its password, its log.
	DataDir string
	// NoFsync turns fsync off: for throwaway test clusters only.
	NoFsync bool
	// Settings are extra `-c name=value` server settings.
	Settings map[string]string
	// BinDir overrides where initdb and postgres are looked for (see FindBinaries).
	BinDir string
	// Port asks for a fixed loopback port (0: a free one).
	Port int
}

// Cluster is a running embedded PostgreSQL this process started or attached to.
type Cluster struct {
	dataDir string
	pgData  string
	port    int
	pass    string
	cmd     *exec.Cmd     // set when this process started the server
	exited  chan struct{} // closed when cmd has exited
	regFile string        // this process's registration in DataDir/run
	cred    *syscall.Credential

	stopOnce sync.Once
	stopErr  error
}

// URL returns a libpq URL for the console database, with the password in it: keep it out of logs.
func (c *Cluster) URL() string { return c.url(Database) }

// AdminURL returns the URL of the `postgres` maintenance database.
func (c *Cluster) AdminURL() string { return c.url("postgres") }

func (c *Cluster) url(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.pass),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the loopback TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir returns the directory the cluster was started with.
func (c *Cluster) DataDir() string { return c.dataDir }

// FindBinaries returns the directory holding initdb and postgres: the newest
// /usr/lib/postgresql/*/bin, else `pg_config --bindir`, else the directory of initdb on PATH.
func FindBinaries() (string, error) {
	has := hasServerBinaries
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		for _, d := range dirs {
			if has(d) {
				return d, nil
			}
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func hasServerBinaries(dir string) bool {
	for _, b := range []string{"initdb", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start starts the cluster in opts.DataDir, initialising it first if needed, or attaches to the
// server another process already runs there. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgembed: no data directory")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgembed: %w", err)
	}
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindBinaries(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(bin) {
		return nil, ErrNoBinaries
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "run"), 0o700); err != nil {
		return nil, fmt.Errorf("pgembed: data directory: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		// The server's user must be able to pass through the data directory to reach its
		// cluster directory; it still cannot list it or read the files beside it.
		if fi, err := os.Stat(dataDir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(dataDir, fi.Mode().Perm()|0o001)
		}
	}
	unlock, err := lockFile(filepath.Join(dataDir, "pgembed.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	c := &Cluster{dataDir: dataDir, cred: cred}
	if c.pgData, err = c.locatePGData(); err != nil {
		return nil, err
	}
	if c.pass, err = c.password(); err != nil {
		return nil, err
	}
	if !exists(filepath.Join(c.pgData, "PG_VERSION")) {
		if err := c.initdb(ctx, bin); err != nil {
			return nil, err
		}
	}
	if pid, port, ok := runningServer(c.pgData); ok {
		c.port = port
		if err := c.waitReady(ctx, nil); err != nil {
			return nil, fmt.Errorf("pgembed: a server (pid %d) runs in %s but does not answer: %w", pid, c.pgData, err)
		}
	} else if err := c.startServer(ctx, bin, opts); err != nil {
		return nil, err
	}
	if err := c.register(); err != nil {
		c.stopServer()
		return nil, err
	}
	if err := c.ensureDatabase(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop leaves the cluster; the last process to leave stops the server (fast shutdown) and waits
// for it to exit. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		unlock, err := lockFile(filepath.Join(c.dataDir, "pgembed.lock"))
		if err != nil {
			c.stopErr = err
			return
		}
		defer unlock()
		os.Remove(c.regFile)
		if len(liveRegistrations(c.dataDir)) > 0 {
			return // another process still uses it and will stop it
		}
		c.stopErr = c.stopServer()
	})
	return c.stopErr
}

// Destroy stops the cluster and deletes its data directory (for throwaway test clusters).
func (c *Cluster) Destroy() error {
	err := c.Stop()
	if c.pgData != filepath.Join(c.dataDir, "pg") {
		os.RemoveAll(c.pgData)
	}
	if rmErr := os.RemoveAll(c.dataDir); err == nil {
		err = rmErr
	}
	return err
}

func (c *Cluster) stopServer() error {
	if c.cmd != nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
			return nil
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
			return errors.New("pgembed: server did not stop within 30s; killed")
		}
	}
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		return fmt.Errorf("pgembed: stop server pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return nil
		}
	}
	return fmt.Errorf("pgembed: server pid %d did not stop within 30s", pid)
}

// locatePGData returns the cluster directory: DataDir/pg when the server's user can reach it,
// otherwise a directory under /var/tmp recorded in DataDir/pg-location (as root with the data
// directory under, say, /root, which the postgres user cannot enter).
func (c *Cluster) locatePGData() (string, error) {
	locFile := filepath.Join(c.dataDir, "pg-location")
	if b, err := os.ReadFile(locFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pg := filepath.Join(c.dataDir, "pg")
	if err := c.mkdirOwned(pg); err != nil {
		return "", err
	}
	if c.cred == nil || c.reachable(pg) {
		return pg, nil
	}
	os.Remove(pg)
	alt, err := os.MkdirTemp("/var/tmp", "console-pg-")
	if err != nil {
		return "", fmt.Errorf("pgembed: %w", err)
	}
	if err := c.mkdirOwned(alt); err != nil {
		return "", err
	}
	if err := os.WriteFile(locFile, []byte(alt+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pgembed: %w", err)
	}
	return alt, nil
}

// mkdirOwned creates dir (mode 0700) owned by the server's user.
func (c *Cluster) mkdirOwned(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgembed: %w", err)
		}
	}
	return nil
}

// reachable reports whether the server's user can write in dir.
func (c *Cluster) reachable(dir string) bool {
	cmd := exec.Command("test", "-w", dir, "-a", "-x", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.Run() == nil
}

// password returns the superuser's password, creating it on first use.
func (c *Cluster) password() (string, error) {
	f := filepath.Join(c.dataDir, "pg-password")
	if b, err := os.ReadFile(f); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	rand.Read(buf)
	pass := hex.EncodeToString(buf)
	if err := os.WriteFile(f, []byte(pass+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pgembed: %w", err)
	}
	return pass, nil
}

func (c *Cluster) initdb(ctx context.Context, bin string) error {
	// initdb refuses a non-empty directory: start from a clean one (a failed earlier init).
	entries, _ := os.ReadDir(c.pgData)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(c.pgData, e.Name()))
	}
	// The password file lives outside the cluster directory (initdb wants that empty), in the
	// system temporary directory, which the server's user can reach.
	f, err := os.CreateTemp("", "pgembed-pw-")
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	pwFile := f.Name()
	defer os.Remove(pwFile)
	_, err = f.WriteString(c.pass + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && c.cred != nil {
		err = os.Chown(pwFile, int(c.cred.Uid), int(c.cred.Gid))
	}
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", c.pgData, "-U", Superuser, "--pwfile", pwFile,
		"--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
		"--encoding=UTF8", "--no-locale", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Env = serverEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgembed: initdb failed: %w\n%s", err, lastLines(string(out), 10))
	}
	return nil
}

func (c *Cluster) startServer(ctx context.Context, bin string, opts Options) error {
	logFile, err := os.OpenFile(filepath.Join(c.dataDir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	defer logFile.Close()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := opts.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		args := []string{"-D", c.pgData, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
			"-c", "max_connections=200", "-c", "log_min_messages=warning"}
		if opts.NoFsync {
			args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		}
		keys := make([]string, 0, len(opts.Settings))
		for k := range opts.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, "-c", k+"="+opts.Settings[k])
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		// Its own process group: a Ctrl-C in the terminal reaches the console, which then
		// stops the server after in-flight requests finish.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
		cmd.Env = serverEnv()
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("pgembed: start postgres: %w", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		c.port, c.cmd, c.exited = port, cmd, exited
		if lastErr = c.waitReady(ctx, exited); lastErr == nil {
			return nil
		}
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		c.cmd, c.exited = nil, nil
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("pgembed: postgres did not start (see %s): %w", filepath.Join(c.dataDir, "postgres.log"), lastErr)
}

// waitReady polls until the server accepts a connection, the server exits, or 60 s pass.
func (c *Cluster) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.AdminURL())
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			return errors.New("server exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (c *Cluster) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.AdminURL())
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&ok); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if ok {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
		var exists bool
		if conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", Database).Scan(&exists); exists {
			return nil
		}
		return fmt.Errorf("pgembed: create database: %w", err)
	}
	return nil
}

// register records this process as a user of the cluster.
func (c *Cluster) register() error {
	c.regFile = filepath.Join(c.dataDir, "run", strconv.Itoa(os.Getpid())+"-"+rand.Text()[:8])
	if err := os.WriteFile(c.regFile, nil, 0o600); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	return nil
}

// liveRegistrations returns the pids of live processes registered in dataDir (one per Start
// that has not stopped yet), removing the registrations of processes that died.
func liveRegistrations(dataDir string) []int {
	entries, _ := os.ReadDir(filepath.Join(dataDir, "run"))
	var pids []int
	for _, e := range entries {
		pidText, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		} else {
			os.Remove(filepath.Join(dataDir, "run", e.Name()))
		}
	}
	return pids
}

// runningServer reads postmaster.pid and reports the live server's pid and port.
func runningServer(pgData string) (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || !alive(pid) {
		return 0, 0, false
	}
	return pid, port, true
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// serverCredential returns the postgres user's credential when running as root, else nil.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("pgembed: running as root, but there is no `postgres` system user to run the server as " +
			"(it comes with the postgresql package); run as an ordinary user or install postgresql")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func serverEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C", "PATH=" + os.Getenv("PATH")}
	if tz := os.Getenv("TZ"); tz != "" {
		env = append(env, "TZ="+tz)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgembed: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockFile takes an exclusive flock on path and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgembed: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("pgembed: lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
