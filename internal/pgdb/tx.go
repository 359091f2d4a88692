package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TxRetries bounds how often RunTx runs a transaction again after the database aborted it to
// keep transactions serializable, and how often Retry repeats a statement.
const TxRetries = 10

// ErrAmbiguousCommit means the connection failed while committing: the database may or may not
// have applied the transaction.
var ErrAmbiguousCommit = errors.New("the database did not confirm the commit: the change may or may not have been applied")

// ErrRetriesExhausted means the database aborted a transaction (or a statement) to keep
// transactions serializable on every one of its 1 + TxRetries tries: a transaction changed
// nothing, and trying again later may work. It wraps the last failure.
var ErrRetriesExhausted = fmt.Errorf("the database aborted it %d times in a row because of conflicting transactions", TxRetries+1)

// TxBeginner starts transactions: a *pgxpool.Pool, a *pgxpool.Conn or a *pgx.Conn.
type TxBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// RunTx runs fn in one transaction on db and commits it. It is the console's only way to run a
// transaction, in both flavors:
//
//   - CockroachDB (flavor Cockroach): through cockroach-go's crdbpgxv5.ExecuteTx, in SERIALIZABLE
//     isolation whatever the cluster's default, with its SAVEPOINT cockroach_restart protocol:
//     a retryable error (SQLSTATE 40001) from any statement or from the commit rolls back to the
//     savepoint and runs fn again, at most TxRetries more times.
//   - PostgreSQL: a new transaction per attempt, retried on serialization failures (40001) and
//     deadlocks (40P01), at most TxRetries more times, with a short growing pause.
//
// fn may therefore run more than once: it must act only through tx (or do what is harmless to
// repeat) and return database errors wrapped with %w, so that they are recognised. A commit whose
// outcome the connection could not learn is ErrAmbiguousCommit (wrapping the cause); running out
// of retries is ErrRetriesExhausted (wrapping the last failure).
func RunTx(ctx context.Context, db TxBeginner, flavor Flavor, fn func(pgx.Tx) error) error {
	if flavor == Cockroach {
		err := crdbpgx.ExecuteTx(crdb.WithMaxRetries(ctx, TxRetries), db, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		var amb *crdb.AmbiguousCommitError
		if errors.As(err, &amb) {
			return fmt.Errorf("%w: %w", ErrAmbiguousCommit, amb.Unwrap())
		}
		var maxed *crdb.MaxRetriesExceededError
		if errors.As(err, &maxed) {
			return fmt.Errorf("%w: %w", ErrRetriesExhausted, err)
		}
		return err
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = postgresTx(ctx, db, fn)
		if err != nil && attempt == TxRetries && retryableTx(err) {
			return fmt.Errorf("%w: %w", ErrRetriesExhausted, err)
		}
		if err == nil || attempt == TxRetries || !retryableTx(err) {
			return err
		}
		if !pause(ctx, attempt) {
			return err
		}
	}
}

// postgresTx runs fn in one PostgreSQL transaction. A COMMIT that was sent but whose answer
// never came (the connection failed) is ErrAmbiguousCommit: it may have been applied.
func postgresTx(ctx context.Context, db TxBeginner, fn func(pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // nothing once committed
	if err := fn(tx); err != nil {
		return err
	}
	err = tx.Commit(ctx)
	var pgErr *pgconn.PgError
	if err != nil && !errors.As(err, &pgErr) && !errors.Is(err, pgx.ErrTxCommitRollback) && !pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", ErrAmbiguousCommit, err)
	}
	return err
}

// Retry runs fn, one idempotent statement (a read, or a write whose repetition changes nothing
// more), again when it failed with a serialization failure (40001) or because the server could
// not tell whether it completed (40003, CockroachDB), at most TxRetries more times. CockroachDB
// retries such statements itself while their results fit its buffer (16 KiB by default); this
// covers the rest. fn must return database errors wrapped with %w.
func Retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = fn()
		if err != nil && attempt == TxRetries && retryableStatement(err) {
			return fmt.Errorf("%w: %w", ErrRetriesExhausted, err)
		}
		if err == nil || attempt == TxRetries || !retryableStatement(err) {
			return err
		}
		if !pause(ctx, attempt) {
			return err
		}
	}
}

// sqlState returns the SQLSTATE of a database error in err's chain, "" if there is none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// Retryable reports whether err means "run the transaction again": a serialization failure
// (40001, which is what CockroachDB's restarts are) or a deadlock (40P01).
func Retryable(err error) bool { return retryableTx(err) }

func retryableTx(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

func retryableStatement(err error) bool {
	switch sqlState(err) {
	case "40001", "40003":
		return true
	}
	return false
}

// pause waits a little before attempt+1 (5 ms more each time); false if ctx ended first.
func pause(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Duration(attempt+1) * 5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
