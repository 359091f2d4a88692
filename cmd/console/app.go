package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/connflags"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgembed"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
)

// globalFlags are the flags every command takes.
type globalFlags struct {
	conn    *connflags.Flags  // cockroach's SQL connection flags (--url, --host, --certs-dir, ...)
	target  *connflags.Target // where they pointed, once resolved
	dataDir string
	dialect string
	maxTTL  time.Duration
	// refuseFullScans: answer a message instead of reading all of system.web_sessions.
	refuseFullScans bool
	// maxTokenTTL caps the expiry of new API tokens.
	maxTokenTTL time.Duration
	// requireReason: issuing (login, the web form) needs a reason.
	requireReason bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{conn: connflags.New()}
	root := &cobra.Command{
		Use:   "console",
		Short: "Web console and command line for HTTP authentication sessions",
		Long: `console manages CockroachDB's HTTP authentication sessions (system.web_sessions):
list them, revoke them, and issue session cookies, from a browser (console serve) or from
the command line (console auth-session, as cockroach auth-session does). It works against a
CockroachDB cluster, against plain PostgreSQL (in a schema of its own), and, when no database
is given, on an embedded local PostgreSQL kept in --data-dir.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	g.conn.Register(pf)
	g.conn.LoadEnv(os.LookupEnv)
	pf.StringVar(&g.dataDir, "data-dir", envOr("CONSOLE_DATA_DIR", "./console-data"),
		"directory of the embedded PostgreSQL (used when no connection flag is given), the first admin's password and the cookie keys [env CONSOLE_DATA_DIR]")
	pf.StringVar(&g.dialect, "dialect", envOr("CONSOLE_DIALECT", "auto"),
		"session table dialect: auto (from SELECT version()), cockroach (system.web_sessions) or postgres (console.web_sessions) [env CONSOLE_DIALECT]")
	pf.DurationVar(&g.maxTTL, "max-expire-after", sessionstore.DefaultMaxTTL,
		"longest session expiry that login --expire-after and the web console grant; raise it for longer sessions")
	pf.BoolVar(&g.refuseFullScans, "refuse-full-scans", false,
		"CockroachDB: refuse, with a message, what must read all of system.web_sessions (username filters, counts, revoke-all, listing every session) instead of running it with disallow_full_table_scans off")
	pf.BoolVar(&g.requireReason, "require-reason", os.Getenv("CONSOLE_REQUIRE_REASON") != "",
		"issuing a session (auth-session login --reason, the web console's issue form) needs a reason, recorded in the audit log and the session's auditInfo [env CONSOLE_REQUIRE_REASON]")
	root.SetFlagErrorFunc(flagErrorFunc)
	pf.DurationVar(&g.maxTokenTTL, "max-token-expire-after", tokens.DefaultMaxTTL,
		"longest expiry of a new API token (admin token create and the web console)")
	root.AddCommand(newAuthSessionCmd(g), newAdminCmd(g), newSQLCmd(g), newServeCmd(g))
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// app is what commands work with: the database and the stores over it.
type app struct {
	pool     *pgxpool.Pool
	flavor   pgdb.Flavor
	sessions *sessionstore.Store
	admins   *admins.Store
	audit    *audit.Store
	actions  *actions.Service // every audited action, with its audit row in the same transaction
	tokens   *tokens.Store
	history  *history.Store
	server   pgdb.Flavor      // what the database really is (SELECT version())
	cluster  *pgembed.Cluster // nil when connection flags name a database
}

// openOptions tune openApp for a command.
type openOptions struct {
	maxConns   int32
	adminCache time.Duration
	// supervise restarts the embedded server when it dies (serve), reporting to log.
	supervise bool
	log       *slog.Logger
}

// openApp connects where the connection flags say, or starts (or attaches to) the embedded
// PostgreSQL when none is given, then opens the stores. Close releases everything, stopping the embedded server if this process is the last
// to use it.
func (g *globalFlags) openApp(ctx context.Context, o openOptions) (*app, error) {
	flavor, err := pgdb.ParseFlavor(g.dialect)
	if err != nil {
		return nil, err
	}
	a := &app{}
	url, err := g.databaseURL(ctx, a, o)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	var beforeConnect func(context.Context, *pgx.ConnConfig) error
	if a.cluster != nil {
		beforeConnect = a.cluster.BeforeConnect // the embedded server's port after a restart
	}
	a.pool, err = pgdb.Connect(ctx, url, pgdb.Config{MaxConns: o.maxConns, BeforeConnect: beforeConnect})
	if err != nil {
		return nil, err
	}
	detected, _, err := pgdb.Detect(ctx, a.pool)
	if err != nil {
		return nil, err
	}
	if flavor == 0 {
		flavor = detected
	}
	if flavor == pgdb.Postgres && detected == pgdb.Cockroach {
		return nil, errors.New("--dialect postgres needs a PostgreSQL server, and this is CockroachDB (use --dialect auto or cockroach)")
	}
	a.flavor = flavor
	if a.sessions, err = sessionstore.Open(ctx, a.pool, sessionstore.Options{Flavor: flavor, MaxTTL: g.maxTTL, RefuseFullScans: g.refuseFullScans}); err != nil {
		return nil, err
	}
	// Console tables use the server's real flavor, whatever the session dialect.
	if a.admins, err = admins.Open(ctx, a.pool, detected, o.adminCache); err != nil {
		return nil, err
	}
	if a.audit, err = audit.Open(ctx, a.pool, detected); err != nil {
		return nil, err
	}
	a.actions = actions.New(a.sessions, a.audit)
	if a.tokens, err = tokens.Open(ctx, a.pool, detected, g.maxTokenTTL); err != nil {
		return nil, err
	}
	a.actions.RequireReason(g.requireReason)
	if a.history, err = history.Open(ctx, a.pool, history.Options{Live: a.sessions, Server: detected}); err != nil {
		return nil, err
	}
	a.server = detected
	ok = true
	return a, nil
}

// Close releases the pool and leaves the embedded server.
func (a *app) Close() error {
	if a.sessions != nil {
		a.sessions.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
	if a.cluster != nil {
		return a.cluster.Stop()
	}
	return nil
}

// cliBy is the command line as audited actions name it (cliActor without its "cli:").
func cliBy() actions.Actor {
	return actions.Actor{Kind: actions.CLI, Name: strings.TrimPrefix(cliActor(), "cli:")}
}

// cliActor names the command line in the audit log: cli:<os account>, the account of the
// process's real user ID as the system's user database names it (not $USER, which anyone can
// set), or cli:uid:<n> when the database has no entry for it.
func cliActor() string {
	uid := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:uid:" + uid
}
