// Package pgembed runs a private PostgreSQL server from the machine's own server binaries, in a
// data directory of the console's, listening only on a loopback address.
//
// The first Start on an empty data directory runs initdb; later starts reuse the cluster, so data
// survives restarts. Several processes may share one data directory: the first starts the
// server, the others attach to it, and whichever process leaves last stops it. A supervising
// process (Options.Supervise: `console serve`) starts the server again when it dies; a process
// that arrives meanwhile waits for it and attaches. As root, the server runs as the `postgres`
// system user, as PostgreSQL requires.
package pgembed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	// Port asks for a fixed loopback port (0: a free one; a restarted server takes its old
	// port again when that is free).
	Port int
	// Supervise keeps the server running while this process uses it: when it exits (killed,
	// crashed), this process starts it again (or adopts the one another process started),
	// retrying with a back-off from RestartBackoffMin doubling up to RestartBackoffMax. Connect
	// through BeforeConnect, since a restarted server may listen on another port. Stop ends the
	// supervision. Long-running processes (console serve) set it; short commands need not.
	Supervise bool
	// Logger receives the supervisor's reports (nil: slog.Default()). They never hold the
	// password.
	Logger *slog.Logger
}

// Cluster is a running embedded PostgreSQL this process started or attached to.
type Cluster struct {
	dataDir string
	pgData  string
	pass    string
	bin     string
	opts    Options
	regFile string // this process's registration in DataDir/run
	cred    *syscall.Credential
	log     *slog.Logger

	mu     sync.Mutex // guards the server fields below, which change when the server restarts
	port   int
	pid    int           // the postmaster in use
	cmd    *exec.Cmd     // set when this process started that postmaster
	exited chan struct{} // closed when cmd has exited

	cancelSupervisor context.CancelFunc // nil unless supervising
	supervisorDone   chan struct{}      // closed when the supervisor has returned

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
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the loopback TCP port the server listens on (it may change when a supervised
// server restarts).
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// BeforeConnect points a new connection at the server's current port: set it as the
// pgxpool.Config BeforeConnect of a pool on URL, so the pool follows a restarted server.
func (c *Cluster) BeforeConnect(_ context.Context, cc *pgx.ConnConfig) error {
	cc.Port = uint16(c.Port())
	return nil
}

// setServer records the postmaster in use: pid and port, and cmd/exited when this process
// started it.
func (c *Cluster) setServer(pid, port int, cmd *exec.Cmd, exited chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid, c.port, c.cmd, c.exited = pid, port, cmd, exited
}

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
// server another process already runs there. When the server is down but a supervising
// process is registered, Start waits (up to AttachWait) for that process to start it again and
// attaches, rather than starting a server of its own. Call Stop when done.
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
	c := &Cluster{dataDir: dataDir, bin: bin, opts: opts, cred: cred, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := c.startOrAttach(ctx); err != nil {
		return nil, err
	}
	if err := c.ensureDatabase(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	if opts.Supervise {
		sctx, cancel := context.WithCancel(context.Background())
		c.cancelSupervisor, c.supervisorDone = cancel, make(chan struct{})
		go c.supervise(sctx)
	}
	return c, nil
}

// startOrAttach takes the data directory's lock, attaches to its running server or starts one
// (after waiting for a registered supervisor to do it), and registers this process.
func (c *Cluster) startOrAttach(ctx context.Context) error {
	waitUntil := time.Now().Add(AttachWait)
	for {
		started := false
		unlock, err := lockFile(filepath.Join(c.dataDir, "pgembed.lock"))
		if err != nil {
			return err
		}
		if c.pgData == "" {
			if c.pgData, err = c.locatePGData(); err != nil {
				unlock()
				return err
			}
			if c.pass, err = c.password(); err != nil {
				unlock()
				return err
			}
			if !exists(filepath.Join(c.pgData, "PG_VERSION")) {
				if err := c.initdb(ctx, c.bin); err != nil {
					unlock()
					return err
				}
			}
		}
		if pid, port, ok := runningServer(c.pgData); ok {
			c.setServer(pid, port, nil, nil)
			if err := c.waitReady(ctx, nil); err != nil {
				unlock()
				return fmt.Errorf("pgembed: a server (pid %d) runs in %s but does not answer: %w", pid, c.pgData, err)
			}
		} else if supervised(c.dataDir) && time.Now().Before(waitUntil) {
			// A supervising process is bringing the server back: wait for it without the
			// lock (it needs the lock to restart), then look again.
			unlock()
			if err := waitForServer(ctx, c.dataDir, c.pgData, waitUntil); err != nil {
				return err
			}
			continue
		} else if err := c.startServer(ctx, 0); err != nil {
			unlock()
			return err
		} else {
			started = true
		}
		err = c.register()
		if err != nil && started {
			c.stopServer()
		}
		unlock()
		return err
	}
}

// waitForServer polls (without the lock) until a server runs in pgData, no supervising process
// is registered any more, the deadline passes or ctx ends (its error).
func waitForServer(ctx context.Context, dataDir, pgData string, deadline time.Time) error {
	for time.Now().Before(deadline) {
		if _, _, ok := runningServer(pgData); ok || !supervised(dataDir) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Stop ends the supervision, then leaves the cluster; the last process to leave stops the
// server (fast shutdown), whoever started it, and waits for it to exit. It is safe to call more
// than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.cancelSupervisor != nil {
			c.cancelSupervisor()
			<-c.supervisorDone
		}
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

// stopServer stops the server of the data directory: this process's child if it still runs,
// and then any server postmaster.pid names (one another process started, say while this one's
// was down). Call it with the lock held.
func (c *Cluster) stopServer() error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(StopWait):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("pgembed: server did not stop within %s; killed", StopWait)
		}
	}
	pid, _, ok := runningServer(c.pgData)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		return fmt.Errorf("pgembed: stop server pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(StopWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !isServer(pid, c.pgData) {
			return nil
		}
	}
	return fmt.Errorf("pgembed: server pid %d did not stop within %s", pid, StopWait)
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

// startServer starts the postmaster as this process's child, on opts.Port, else on prefer (the
// port of the server it replaces; 0: none) when that is free, else on a free port. Call it with
// the lock held.
func (c *Cluster) startServer(ctx context.Context, prefer int) error {
	opts := c.opts
	logFile, err := os.OpenFile(filepath.Join(c.dataDir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	defer logFile.Close()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := opts.Port
		if port == 0 && prefer != 0 && portFree(prefer) {
			port = prefer
		}
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
		cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
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
		c.setServer(cmd.Process.Pid, port, cmd, exited)
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
		c.setServer(0, port, nil, nil)
		// A server that exited at once may have met the backends of a killed predecessor,
		// still holding its shared memory for a moment: give them time to go.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 250 * time.Millisecond):
		}
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

// register records this process as a user of the cluster; a supervising process says so in
// its registration (supervisorMark), so others wait for it to restart a server that died.
func (c *Cluster) register() error {
	c.regFile = filepath.Join(c.dataDir, "run", strconv.Itoa(os.Getpid())+"-"+rand.Text()[:8])
	var mark []byte
	if c.opts.Supervise {
		mark = []byte(supervisorMark)
	}
	if err := os.WriteFile(c.regFile, mark, 0o600); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	return nil
}

// liveRegistrations returns the pids of live processes registered in dataDir (one per Start
// that has not stopped yet), removing the registrations of processes that died.
func liveRegistrations(dataDir string) []int {
	var pids []int
	for _, reg := range liveRegistrationFiles(dataDir) {
		pids = append(pids, reg.pid)
	}
	return pids
}

type registration struct {
	pid  int
	path string
}

// liveRegistrationFiles lists the registrations of live processes in dataDir, removing those
// of processes that died.
func liveRegistrationFiles(dataDir string) []registration {
	entries, _ := os.ReadDir(filepath.Join(dataDir, "run"))
	var regs []registration
	for _, e := range entries {
		pidText, _, _ := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil {
			continue
		}
		path := filepath.Join(dataDir, "run", e.Name())
		if alive(pid) {
			regs = append(regs, registration{pid, path})
		} else {
			os.Remove(path)
		}
	}
	return regs
}

// supervised reports whether a live process registered in dataDir supervises the server.
func supervised(dataDir string) bool {
	self := os.Getpid()
	for _, reg := range liveRegistrationFiles(dataDir) {
		if reg.pid == self {
			continue
		}
		if b, err := os.ReadFile(reg.path); err == nil && strings.TrimSpace(string(b)) == supervisorMark {
			return true
		}
	}
	return false
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
	if err1 != nil || err2 != nil || !isServer(pid, pgData) {
		return 0, 0, false
	}
	return pid, port, true
}

// isServer reports whether pid is a live postmaster of pgData (its command line's -D names the
// directory, by any path), so a stale postmaster.pid whose pid now belongs to another process,
// or a server killed but not yet reaped, never counts.
func isServer(pid int, pgData string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-D" {
			continue
		}
		if args[i+1] == pgData {
			return true
		}
		a, err1 := os.Stat(args[i+1])
		b, err2 := os.Stat(pgData)
		return err1 == nil && err2 == nil && os.SameFile(a, b)
	}
	return false
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

// portFree reports whether port can be listened on at 127.0.0.1 now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
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
