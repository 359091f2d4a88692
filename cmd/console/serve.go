package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/web/handlers"
)

type serveFlags struct {
	listen          string
	tlsCert, tlsKey string
	idle, absolute  time.Duration
	clusterURL      string
	behindProxy     bool
	trustedProxies  []string
	throttle        admins.ThrottlePolicy
	maxConns        int32
	adminCache      time.Duration
	debugListen     string
	metricsListen   string
	http            httpLimits
	verifyTimeout   time.Duration
	pageTimeout     time.Duration
	sso             ssoFlags
	confirmByName   int64
	jobs            jobFlags
	policy          policyFlags
}

// httpLimits are the HTTP server's timeouts and connection cap.
type httpLimits struct {
	readHeader, read, write, keepAlive time.Duration
	maxConns                           int
}

// The HTTP server's defaults.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 30 * time.Second
	defaultKeepAliveTimeout  = 60 * time.Second
	defaultMaxConnections    = 1000
)

func newServeCmd(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web console",
		Long: `Serve the web console: the session table with filters, revoke buttons and an issue form,
behind the console's own admin sign-in, plus /auth/verify for reverse proxies, the admins page
(/admins), each admin's account page (/account), and a JSON API (/api/v1) for API tokens.

Admins have a role: viewer (reads everything), operator (also issues and revokes) or owner
(also manages admins and API tokens); the server enforces it on every route. Admins sign in
with a console password or, with --oidc-issuer, through an OpenID Connect provider whose
groups (--oidc-role-claim, --oidc-roles) give the role at each sign-in; --local-login=false
leaves single sign-on only.

On first start with no admin account, it creates the owner "admin" with a random password,
prints it once and writes it to <data-dir>/admin-password (mode 0600). The admin cookie is
signed and encrypted with keys from CONSOLE_COOKIE_KEYS ("hashhex:blockhex,..." current
pair first) or from <data-dir>/cookie-keys (one "hashhex blockhex" pair per line, current
first; created on first start). Older pairs are still accepted, for rotation.`,
		Example: `  console serve                          # embedded PostgreSQL in ./console-data
  console serve --url postgres://root@db:26257/defaultdb?sslmode=verify-full
  console serve --listen :8443 --tls-cert cert.pem --tls-key key.pem
  console serve --oidc-issuer https://login.example.com --oidc-client-id console \
    --oidc-client-secret-file oidc-secret --oidc-roles viewer=ops-ro,operator=ops,owner=ops-admin \
    --oidc-redirect-url https://console.example.com/login/oidc/callback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return serve(cmd.Context(), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", envOr("CONSOLE_LISTEN", "127.0.0.1:8080"), "address to listen on [env CONSOLE_LISTEN]")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fl.DurationVar(&f.idle, "idle-timeout", 30*time.Minute, "sign an admin out after this long without a request")
	fl.DurationVar(&f.absolute, "absolute-timeout", 12*time.Hour, "sign an admin out this long after sign-in, busy or not")
	fl.StringVar(&f.clusterURL, "cluster-url", os.Getenv("CONSOLE_CLUSTER_URL"),
		"the cluster's HTTP address (https://host:8080): the curl line and cookie file of an issued cookie point at its /_status/logfiles/local; default: this console's own /auth/verify [env CONSOLE_CLUSTER_URL]")
	fl.StringArrayVar(&f.trustedProxies, "trusted-proxy", nil,
		"a reverse proxy (CIDR range or address, repeatable) whose X-Forwarded-For is believed: the client is the right-most address that is not a trusted proxy; none: the connection's peer")
	fl.BoolVar(&f.behindProxy, "behind-proxy", false, "replaced by --trusted-proxy")
	fl.MarkHidden("behind-proxy")
	fl.IntVar(&f.throttle.FreeTries, "signin-free-tries", admins.DefaultFreeTries,
		"failed sign-ins of one account from one address before each further attempt from there is delayed")
	fl.IntVar(&f.throttle.AddressFreeTries, "signin-address-free-tries", admins.DefaultAddressFreeTries,
		"failed sign-ins from one address, for any accounts, before each further attempt from there is delayed")
	fl.IntVar(&f.throttle.AccountFreeTries, "signin-account-free-tries", admins.DefaultAccountFreeTries,
		"failed sign-ins of one account from all addresses before addresses that failed for it are delayed (never one that has not)")
	fl.DurationVar(&f.throttle.Window, "signin-window", admins.DefaultThrottleWindow,
		"failed sign-ins are forgotten this long after the last one")
	fl.DurationVar(&f.throttle.MaxDelay, "signin-max-delay", admins.DefaultMaxDelay,
		"longest delay of a throttled sign-in (delays start at 1s and double with each further failure)")
	fl.Int32Var(&f.maxConns, "db-max-conns", 8, "most database connections at once")
	fl.StringVar(&f.debugListen, "debug-listen", os.Getenv("CONSOLE_DEBUG_LISTEN"), "serve Go's net/http/pprof profiles on this address (keep it on loopback); off by default [env CONSOLE_DEBUG_LISTEN]")
	fl.StringVar(&f.metricsListen, "metrics-listen", os.Getenv("CONSOLE_METRICS_LISTEN"), "serve Prometheus metrics at /metrics on this address, without a token (keep it private); off by default, when /metrics on --listen answers only to an API token or a signed-in admin [env CONSOLE_METRICS_LISTEN]")
	fl.DurationVar(&f.http.readHeader, "read-header-timeout", defaultReadHeaderTimeout,
		"longest time a client may take to send a request's headers")
	fl.DurationVar(&f.http.read, "read-timeout", defaultReadTimeout,
		"longest time a client may take to send a whole request, body included")
	fl.DurationVar(&f.http.write, "write-timeout", defaultWriteTimeout,
		"longest time to write a response (a streamed export instead gets this long for each write)")
	fl.DurationVar(&f.http.keepAlive, "keepalive-timeout", defaultKeepAliveTimeout,
		"how long an idle keep-alive connection stays open")
	fl.IntVar(&f.http.maxConns, "max-connections", defaultMaxConnections,
		"most client connections open at once; more wait until one closes")
	fl.DurationVar(&f.verifyTimeout, "verify-timeout", handlers.DefaultVerifyTimeout,
		"deadline of the database work of one /auth/verify request; past it the answer is 503")
	fl.DurationVar(&f.pageTimeout, "page-timeout", handlers.DefaultPageTimeout,
		"deadline of the database work of one page or action (503 past it); an export fails when no row comes for this long")
	fl.Int64Var(&f.confirmByName, "confirm-by-name-over", handlers.DefaultConfirmByNameOver,
		"a revoke-all that ends more active sessions than this asks for the username to be typed")
	fl.DurationVar(&f.adminCache, "admin-session-cache", 2*time.Second,
		"how long a checked admin session is trusted without asking the database (sign-out in this process ends it at once)")
	f.sso.register(fl)
	f.jobs.register(fl)
	f.policy.register(fl, true)
	return cmd
}

func serve(ctx context.Context, g *globalFlags, f *serveFlags) error {
	tuneGC()
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.behindProxy {
		return errors.New("--behind-proxy is gone: name the proxies whose X-Forwarded-For to believe with --trusted-proxy CIDR (for example --trusted-proxy 127.0.0.1)")
	}
	trusted, err := handlers.ParseTrustedProxies(f.trustedProxies)
	if err != nil {
		return err
	}
	if f.http.maxConns < 1 {
		return errors.New("--max-connections must be at least 1")
	}
	if f.clusterURL != "" {
		if u, err := url.Parse(f.clusterURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			// The value is not echoed: it could hold a password.
			return errors.New("--cluster-url: want the cluster's HTTP address, http(s)://host[:port] without user or password, like https://crdb.example:8080")
		}
	}
	ssoClient, err := f.sso.client()
	if err != nil {
		return err
	}
	logOut := newFlushingWriter(os.Stderr, 250*time.Millisecond)
	defer logOut.Close()
	log := slog.New(slog.NewTextHandler(logOut, nil))
	a, err := g.openApp(ctx, openOptions{maxConns: f.maxConns, adminCache: f.adminCache, supervise: true, log: log})
	if err != nil {
		return err
	}
	defer a.Close()
	keys, err := cookieKeys(g.dataDir)
	if err != nil {
		return err
	}
	password, err := a.admins.AddFirst(ctx, "admin")
	if err != nil {
		return err
	}
	policyCfg, err := f.policy.config()
	if err != nil {
		return err
	}
	rules := policy.New(a.sessions, a.history, policyCfg)
	defer rules.Close()
	meter := newMetrics(a)
	runner, recorder, err := startJobs(a, f.jobs, meter, rules, log)
	if err != nil {
		return err
	}
	defer runner.Stop() // after the HTTP server's shutdown: the last uses are flushed
	var activity handlers.ActivityRecorder
	if recorder != nil {
		activity = recorder
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	cfg := handlers.Config{
		Secure: f.tlsCert != "", IdleTimeout: f.idle, AbsoluteTimeout: f.absolute, Keys: keys,
		ClusterURL: f.clusterURL, SelfURL: scheme + "://" + displayAddr(ln.Addr()),
		TrustedProxies: trusted, Throttle: f.throttle, Logger: log,
		VerifyTimeout: f.verifyTimeout, PageTimeout: f.pageTimeout, WriteTimeout: f.http.write,
		Activity: activity, History: a.history, Background: f.jobs.handlerConfig(a),
		Tokens: a.tokens, NoLocalLogin: !f.sso.localLogin, LinkTTL: f.sso.linkTTL,
		ConfirmByNameOver: f.confirmByName,
		Metrics:           meter,
		Overview:          a.history,
		Policy:            rules, BulkBatch: policyCfg.Batch,
	}
	if ssoClient != nil { // (a nil *sso.Client in the interface would not be nil)
		cfg.SSO = ssoClient
	}
	h := handlers.New(a.sessions, a.admins, a.audit, a.actions, cfg)
	h.Register(e)
	ln = netutil.LimitListener(ln, f.http.maxConns)
	srv := &http.Server{Handler: e, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: f.http.readHeader, ReadTimeout: f.http.read, WriteTimeout: f.http.write,
		IdleTimeout: f.http.keepAlive}
	fmt.Printf("console: %s sessions in %s (%s)\n", a.sessions.Flavor(), a.sessions.Table(), databaseName(g))
	if password == "" {
		if pwFile := filepath.Join(g.dataDir, "admin-password"); exists(pwFile) {
			fmt.Printf("console: sign in as an admin (the first admin's password, unless changed since, is in %s)\n", pwFile)
		}
	} else {
		pwFile := filepath.Join(g.dataDir, "admin-password")
		err := os.MkdirAll(g.dataDir, 0o700)
		if err == nil {
			err = os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
		}
		if err != nil {
			fmt.Printf("console: created the first admin. Sign in as admin with password %s (not saved: %v)\n", password, err)
		} else {
			fmt.Printf("console: created the first admin. Sign in as admin with password %s (also in %s)\n", password, pwFile)
		}
	}
	if f.metricsListen != "" {
		addr, err := serveMetrics(ctx, f.metricsListen, meter, f.http.readHeader, log)
		if err != nil {
			return err
		}
		fmt.Printf("console: metrics on http://%s/metrics\n", displayAddr(addr))
	}
	fmt.Printf("console: listening on %s://%s\n", scheme, displayAddr(ln.Addr()))

	if f.debugListen != "" {
		dl, err := net.Listen("tcp", f.debugListen)
		if err != nil {
			return fmt.Errorf("--debug-listen: %w", err)
		}
		defer dl.Close()
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go (&http.Server{Handler: mux, ReadHeaderTimeout: f.http.readHeader}).Serve(dl)
		fmt.Printf("console: profiles on http://%s/debug/pprof/\n", dl.Addr())
	}

	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Println("console: shutting down (letting requests finish)")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// displayAddr turns a listener address into something to open in a browser.
func displayAddr(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// cookieKeys returns the admin cookie's hash/block key pairs, current first: from
// CONSOLE_COOKIE_KEYS, else from <dataDir>/cookie-keys (created with a fresh pair if missing).
func cookieKeys(dataDir string) ([][]byte, error) {
	text := os.Getenv("CONSOLE_COOKIE_KEYS")
	source := "CONSOLE_COOKIE_KEYS"
	if text == "" {
		file := filepath.Join(dataDir, "cookie-keys")
		source = file
		b, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) {
			hashKey, blockKey := make([]byte, 64), make([]byte, 32)
			rand.Read(hashKey)
			rand.Read(blockKey)
			line := hex.EncodeToString(hashKey) + " " + hex.EncodeToString(blockKey) + "\n"
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
				return nil, err
			}
			b = []byte(line)
		} else if err != nil {
			return nil, err
		}
		text = string(b)
	}
	var keys [][]byte
	for _, pair := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		pair = strings.TrimSpace(pair)
		if pair == "" || strings.HasPrefix(pair, "#") {
			continue
		}
		parts := strings.FieldsFunc(pair, func(r rune) bool { return r == ' ' || r == ':' || r == '\t' })
		if len(parts) != 2 {
			return nil, fmt.Errorf("%s: each key pair is \"hashhex blockhex\"", source)
		}
		hashKey, err1 := hex.DecodeString(parts[0])
		blockKey, err2 := hex.DecodeString(parts[1])
		if err1 != nil || err2 != nil || len(hashKey) < 32 || (len(blockKey) != 16 && len(blockKey) != 24 && len(blockKey) != 32) {
			return nil, fmt.Errorf("%s: a hash key is at least 32 bytes of hex and a block key 16, 24 or 32", source)
		}
		keys = append(keys, hashKey, blockKey)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key pair", source)
	}
	return keys, nil
}
