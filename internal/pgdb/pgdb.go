// Package pgdb connects to the console's database (PostgreSQL or CockroachDB), tells which of the
// two it is, and applies the versioned schema migrations of the console's own tables.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Flavor is the kind of database behind a connection.
type Flavor int

const (
	// Postgres is PostgreSQL (or a server that reports itself as PostgreSQL).
	Postgres Flavor = iota + 1
	// Cockroach is CockroachDB.
	Cockroach
)

func (f Flavor) String() string {
	switch f {
	case Postgres:
		return "postgres"
	case Cockroach:
		return "cockroach"
	}
	return "unknown"
}

// ErrUnsupported means the server is neither PostgreSQL nor CockroachDB.
var ErrUnsupported = errors.New("pgdb: the database is neither PostgreSQL nor CockroachDB")

// ErrUnavailable wraps every failure to reach the database (refused, timed out, down).
var ErrUnavailable = errors.New("database unavailable")

// Schema is the schema that holds every table the console owns, in both flavors.
const Schema = "console"

// Config sets up a pool.
type Config struct {
	// MaxConns caps the pool (0: pgxpool's default, the larger of 4 and the number of CPUs).
	MaxConns int32
	// ConnectTimeout bounds each connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// BeforeConnect, when set, may change each new connection's settings (the embedded server's
	// current port after a restart: pgembed.Cluster.BeforeConnect).
	BeforeConnect func(context.Context, *pgx.ConnConfig) error
}

// Connect opens a pool on url and checks that the database answers. Every connection runs with
// TimeZone UTC, since session timestamps are UTC wall times without time zone, and on
// CockroachDB with CockroachSettings. CockroachDB's system database is refused
// (ErrSystemDatabase). Errors never contain the URL's password.
func Connect(ctx context.Context, url string, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgdb: invalid database URL: %s", redactParseError(err))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "session-console"
	}
	pc.AfterConnect = afterConnect
	pc.BeforeConnect = cfg.BeforeConnect
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgdb: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		var pe *PrivilegeError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, Unavailable(err)
	}
	if err := checkDatabase(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Unavailable wraps err as ErrUnavailable when it means the database cannot be reached, and
// returns it unchanged otherwise (ErrAmbiguousCommit too, which a retry could apply twice).
func Unavailable(err error) error {
	// A commit without an answer is not "try again later": it may have been applied.
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAmbiguousCommit) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered. Some answers still mean "not usable now".
		switch pgErr.Code[:2] {
		case "08", "53": // connection exception, insufficient resources
			return fmt.Errorf("%w: %s", ErrUnavailable, pgErr.Message)
		case "57": // operator intervention: shutting down, cannot connect now, canceled
			if pgErr.Code != "57000" { // CockroachDB's schema_locked refusal, among others
				return fmt.Errorf("%w: %s", ErrUnavailable, pgErr.Message)
			}
		case "28": // invalid authorization
			return fmt.Errorf("%w: %s", ErrUnavailable, pgErr.Message)
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) || isNetErr(err) {
		return fmt.Errorf("%w: %s", ErrUnavailable, connectMessage(err))
	}
	return err
}

func isNetErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset") || strings.Contains(s, "unexpected EOF") ||
		strings.Contains(s, "conn closed") || strings.Contains(s, "timeout")
}

// connectMessage shortens pgconn's connect errors, which name host and user but never the
// password, to their last cause.
func connectMessage(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "failed to connect") {
		if j := strings.Index(s, "("); j >= 0 && j < i {
			return strings.TrimSpace(s[:j]) + ": " + s[i+2:]
		}
	}
	return s
}

// redactParseError keeps pgx's parse errors free of the URL (which may hold a password).
func redactParseError(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if u := errors.Unwrap(pe); u != nil {
			return u.Error()
		}
		return "cannot parse"
	}
	return "cannot parse"
}

// Detect asks the server what it is (SELECT version()) and returns its flavor and version text.
func Detect(ctx context.Context, q Querier) (Flavor, string, error) {
	var v string
	if err := q.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return 0, "", Unavailable(fmt.Errorf("pgdb: %w", err))
	}
	f, err := ClassifyVersion(v)
	return f, v, err
}

// ClassifyVersion maps the text of SELECT version() to a flavor.
func ClassifyVersion(v string) (Flavor, error) {
	switch {
	case strings.Contains(v, "CockroachDB"):
		return Cockroach, nil
	case strings.HasPrefix(v, "PostgreSQL "):
		return Postgres, nil
	}
	first, _, _ := strings.Cut(v, "\n")
	if len(first) > 80 {
		first = first[:80]
	}
	return 0, fmt.Errorf("%w (it reports %q)", ErrUnsupported, first)
}

// ParseFlavor parses a --dialect value: auto (0, nil), cockroach or postgres.
func ParseFlavor(s string) (Flavor, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return 0, nil
	case "cockroach", "cockroachdb", "crdb":
		return Cockroach, nil
	case "postgres", "postgresql", "pg":
		return Postgres, nil
	}
	return 0, fmt.Errorf("invalid dialect %q (possible values: auto, cockroach, postgres)", s)
}

// Querier is what Detect needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
