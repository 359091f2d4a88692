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

// CockroachSettings are the session settings every connection to CockroachDB gets (pgx
// AfterConnect), in order. Optional ones may be unknown to older versions, which then lack what
// they unlock.
var CockroachSettings = []Setting{{
	// v25.4 added the variable (default on); v26.1 turned it off, and with it every query on the
	// system database fails with 42501 (root and admins included). The console reads and writes
	// system.web_sessions and reads system.users. CockroachDB records each such access in its
	// SENSITIVE_ACCESS log channel.
	SQL:      "SET allow_unsafe_internals = on",
	Optional: true,
}}

// Setting is one session setting.
type Setting struct {
	SQL string
	// Optional settings are skipped when the server does not know the variable (42704).
	Optional bool
}

// afterConnect runs on every new pooled connection: it asks the server what it is and, on
// CockroachDB, applies CockroachSettings. On PostgreSQL it sends nothing else.
func afterConnect(ctx context.Context, conn *pgx.Conn) error {
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return err
	}
	if f, _ := ClassifyVersion(v); f != Cockroach {
		return nil
	}
	for _, s := range CockroachSettings {
		if _, err := conn.Exec(ctx, s.SQL); err != nil {
			if s.Optional && sqlState(err) == "42704" { // unrecognized configuration parameter
				continue
			}
			return Privilege(fmt.Errorf("pgdb: %s: %w", s.SQL, err), conn.Config().User, "run "+s.SQL)
		}
	}
	return nil
}

// ErrSystemDatabase means the connection's database is CockroachDB's `system` database.
var ErrSystemDatabase = errors.New(`the database URL names the database "system", which holds CockroachDB's own tables; ` +
	`the console cannot keep its own schema there: connect to defaultdb or another database (for example postgresql://user@host:26257/defaultdb)`)

// checkDatabase refuses CockroachDB's system database as the connection's database.
func checkDatabase(ctx context.Context, pool *pgxpool.Pool) error {
	f, _, err := Detect(ctx, pool)
	if err != nil || f != Cockroach {
		return err
	}
	var db string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return Unavailable(fmt.Errorf("pgdb: %w", err))
	}
	if db == "system" {
		return ErrSystemDatabase
	}
	return nil
}

// PrivilegeError is a statement the SQL user may not run, with what to grant.
type PrivilegeError struct {
	User  string // the SQL user
	What  string // what the console tried: "read and write system.web_sessions"
	Grant string // what fixes it: "GRANT admin TO alice"
	Err   error  // the server's refusal
}

func (e *PrivilegeError) Error() string {
	msg := e.Err.Error()
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		msg = pgErr.Message
	}
	return fmt.Sprintf("the SQL user %q may not %s (%s): %s", e.User, e.What, msg, e.Grant)
}

func (e *PrivilegeError) Unwrap() error { return e.Err }

// Privilege turns a refusal for want of privileges (SQLSTATE 42501) into one clear
// *PrivilegeError saying what to grant; other errors are returned as they are. On CockroachDB
// the console needs the admin role: system.web_sessions and system.users are open to admins
// only.
func Privilege(err error, user, what string) error {
	if sqlState(err) != "42501" {
		return err
	}
	grant := fmt.Sprintf("connect as a member of the admin role (GRANT admin TO %s) or as root", pgx.Identifier{user}.Sanitize())
	if strings.Contains(err.Error(), "allow_unsafe_internals") || strings.Contains(err.Error(), "is restricted") {
		grant = "the console sets allow_unsafe_internals = on on every connection (pgdb.Connect); make sure the cluster lets the user set it, " + grant
	}
	return &PrivilegeError{User: user, What: what, Grant: grant, Err: err}
}

// DBTX is what statements run on: a pool, a connection or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WithFullScan runs fn, whose statement must read a whole table, on one connection of pool.
// On CockroachDB that connection runs with disallow_full_table_scans off for fn only (reset
// afterwards; a connection that cannot be reset is closed, never handed back), so the
// statement works on clusters that refuse full scans by default. On PostgreSQL it sends
// nothing more. Inside a transaction use FullScanInTx instead.
func WithFullScan(ctx context.Context, pool *pgxpool.Pool, flavor Flavor, fn func(q DBTX) error) error {
	if flavor != Cockroach {
		return fn(pool)
	}
	return onConn(ctx, pool, true, fn)
}

// onConn runs fn on one connection of pool, with disallow_full_table_scans off if fullScan.
func onConn(ctx context.Context, pool *pgxpool.Pool, fullScan bool, fn func(q DBTX) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if !fullScan {
		return fn(conn)
	}
	if _, err := conn.Exec(ctx, "SET disallow_full_table_scans = off"); err != nil {
		return err
	}
	err = fn(conn)
	if _, rerr := conn.Exec(context.WithoutCancel(ctx), "RESET disallow_full_table_scans"); rerr != nil {
		conn.Conn().Close(context.WithoutCancel(ctx))
	}
	return err
}

// FullScanInTx lets the rest of transaction tx read whole tables on CockroachDB (SET LOCAL
// disallow_full_table_scans = off, which ends with the transaction); on PostgreSQL it does
// nothing.
func FullScanInTx(ctx context.Context, tx pgx.Tx, flavor Flavor) error {
	if flavor != Cockroach {
		return nil
	}
	_, err := tx.Exec(ctx, "SET LOCAL disallow_full_table_scans = off")
	return err
}

// StreamAttempts bounds how often Stream starts a read again after the database aborted it.
const StreamAttempts = 5

// StreamOptions tune Stream.
type StreamOptions struct {
	// FullScan marks a read of a whole table (see WithFullScan).
	FullScan bool
}

// Stream runs a read whose rows are handed to each as they arrive (exports, `auth-session
// list`, the audit CSV). It is the one place streamed reads get their snapshot:
//
// On CockroachDB the read runs at one fixed AS OF SYSTEM TIME, the server's clock when the
// stream starts, so the database never has to restart it (a read in the past cannot conflict)
// and every attempt sees the same rows. query gets the clause to put at the end of its FROM
// (`AS OF SYSTEM TIME '...'`; "" on PostgreSQL). If the read is aborted anyway with a
// retryable error (40001), Stream calls query again, with the same clause, at most
// StreamAttempts times in all; query must then continue after the last row each was given (a
// keyset cursor), so no row is handed over twice. Errors from each end the stream as they are.
func Stream(ctx context.Context, pool *pgxpool.Pool, flavor Flavor, opts StreamOptions,
	query func(asOf string) (string, []any), each func(pgx.Rows) error) error {
	asOf := ""
	var err error
	for attempt := 0; attempt < StreamAttempts; attempt++ {
		var retry bool
		run := func(q DBTX) error {
			if flavor == Cockroach && asOf == "" {
				var at time.Time
				if err := q.QueryRow(ctx, "SELECT now()").Scan(&at); err != nil {
					return err
				}
				asOf = "AS OF SYSTEM TIME '" + at.UTC().Format("2006-01-02 15:04:05.999999-07:00") + "'"
			}
			sql, args := query(asOf)
			if flavor == Cockroach {
				// Each stream's SQL text is new (its timestamp): no prepared statement to cache.
				args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
			}
			rows, err := q.Query(ctx, sql, args...)
			if err != nil {
				retry = Retryable(err)
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := each(rows); err != nil {
					return err
				}
			}
			retry = Retryable(rows.Err())
			return rows.Err()
		}
		if flavor == Cockroach {
			// One connection for the clock and the read: another node's clock may be behind.
			err = onConn(ctx, pool, opts.FullScan, run)
		} else {
			err = run(pool)
		}
		if !retry {
			return err
		}
	}
	return err
}
