package sessionstore

import (
	"context"
	"errors"

	"github.com/sessionconsole/console/internal/pgdb"
)

// ErrFullScanRefused: a statement that must read all of system.web_sessions was refused
// because of Options.RefuseFullScans; the error is a *FullScanError.
var ErrFullScanRefused = errors.New("full table scan refused")

// FullScanError names a refused operation and why it scans. In the CockroachDB dialect these
// statements read the whole of system.web_sessions, whose only secondary indexes are on
// expiresAt, createdAt, revokedAt and lastUsedAt (the console never adds one to a system
// table):
//
//   - a username filter (exact or prefix) of the list and of its counts,
//   - the status counts without a filter,
//   - revoke-all of a user (the web's and `auth-session logout`),
//   - a streamed read of every session (exports with status all, `auth-session list`).
//
// On CockroachDB each of them runs with disallow_full_table_scans off for itself only, so they
// work on clusters that refuse full scans; Options.RefuseFullScans refuses them instead.
type FullScanError struct {
	// What is the operation, as people say it: "filtering sessions by username".
	What string
	// Why it cannot use an index: "system.web_sessions has no index on username".
	Why string
}

func (e *FullScanError) Error() string {
	return e.What + " reads the whole system.web_sessions table (" + e.Why + "), and the console runs with --refuse-full-scans"
}

// Unwrap makes errors.Is(err, ErrFullScanRefused) hold.
func (e *FullScanError) Unwrap() error { return ErrFullScanRefused }

// scanOp is an operation that scans, as FullScanError names it.
type scanOp struct{ what, why string }

const noUsernameIndex = "it has no index on username"

var (
	scanUserFilter = scanOp{"filtering sessions by username", noUsernameIndex}
	scanCounts     = scanOp{"counting sessions", "a count reads every row"}
	scanRevokeAll  = scanOp{"revoking every session of a user", noUsernameIndex}
	scanEveryRow   = scanOp{"listing every session", "the list has every row"}
)

// fullScan refuses an operation that reads all of system.web_sessions when the store was
// opened with RefuseFullScans; nil otherwise (and always in the PostgreSQL dialect, whose table
// has the indexes).
func (s *Store) fullScan(op scanOp) error {
	if s.refuse && s.flavor == pgdb.Cockroach {
		return &FullScanError{What: op.what, Why: op.why}
	}
	return nil
}

// scanning runs fn, one statement that reads all of system.web_sessions (op), with full
// scans allowed for it on CockroachDB, or refuses it (see fullScan). In the PostgreSQL dialect
// it just runs fn.
func (s *Store) scanning(ctx context.Context, op scanOp, fn func(q pgdb.DBTX) error) error {
	if s.flavor != pgdb.Cockroach {
		return fn(s.pool)
	}
	if err := s.fullScan(op); err != nil {
		return err
	}
	return pgdb.WithFullScan(ctx, s.pool, s.server, fn)
}
