package sessionstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Tx is one transaction of the store, for writes that must commit together with other rows
// (an action and its audit row). Get one from Store.InTx. The count cache learns of its
// writes only once it has committed.
type Tx struct {
	s     *Store
	tx    pgx.Tx
	after []func() // what to do to the count cache once committed
}

// DB is the transaction itself, for other stores to write in it.
func (t *Tx) DB() pgx.Tx { return t.tx }

// InTx runs fn in one transaction and commits it, through pgdb.RunTx: on a serialization
// failure the whole of fn runs again (on CockroachDB also when the commit fails), so fn must act
// only through t (and t.DB()) and return errors wrapped with %w. fn's error is returned as it
// is; a database error of the commit is prefixed and marked unavailable as other store errors.
func (s *Store) InTx(ctx context.Context, fn func(t *Tx) error) error {
	return s.InTxOn(ctx, s.RunTx, fn)
}

// RunTx is the store's own TxRunner: pgdb.RunTx on its pool, as the server requires.
func (s *Store) RunTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgdb.RunTx(ctx, s.pool, s.server, fn)
}

// TxRunner runs fn in one transaction and commits it, running fn again when the database
// asks for a retry: pgdb.RunTx on a pool, or a leased job's (*jobs.Pass).Tx, whose commit
// also needs the job's lease.
type TxRunner func(ctx context.Context, fn func(tx pgx.Tx) error) error

// InTxOn is InTx through run: the transaction is run's, for writes that must commit only
// under a job's lease (the policy's enforcement).
func (s *Store) InTxOn(ctx context.Context, run TxRunner, fn func(t *Tx) error) error {
	var done *Tx
	var fnErr bool
	err := run(ctx, func(tx pgx.Tx) error {
		t := &Tx{s: s, tx: tx}
		if err := fn(t); err != nil {
			fnErr = true
			return err
		}
		done, fnErr = t, false
		return nil
	})
	if err != nil {
		if fnErr {
			return err
		}
		return s.dbErr("commit", err)
	}
	for _, f := range done.after {
		f()
	}
	if len(done.after) > 0 {
		s.writes.Add(1)
	}
	return nil
}

// Writes counts the transactions through this store that wrote sessions (issued or revoked
// some), since it was opened: caches of numbers derived from the table (the policy's counts)
// compare it to know whether this process changed the table since they counted.
func (s *Store) Writes() uint64 { return s.writes.Load() }

// Issue creates a session for user lasting ttl and returns it with its cookie. The user must
// exist and be able to log in (CockroachDB: a row of system.users that is not a role;
// PostgreSQL: a role with LOGIN); otherwise the error is a *NoSuchUserError. Bad input wraps
// ErrInvalidInput. auditInfo goes into the row's "auditInfo" ("": NULL). Nothing is written on
// error.
func (t *Tx) Issue(ctx context.Context, user string, ttl time.Duration, auditInfo string) (Issued, error) {
	s := t.s
	if err := checkUsername(user); err != nil {
		return Issued{}, err
	}
	if err := s.CheckTTL(ttl); err != nil {
		return Issued{}, err
	}
	name := s.Username(user)
	secret := make([]byte, SecretLength)
	rand.Read(secret)
	hash := sha256.Sum256(secret)
	var sql string
	switch {
	case s.flavor == pgdb.Postgres:
		// The advisory lock orders this insert with a concurrent revoke-all of the same user
		// (see RevokeUser); the timestamp is taken after the lock is held.
		sql = `WITH lk AS (SELECT pg_advisory_xact_lock(7364022, hashtext($2))),
			u AS (SELECT rolname::text AS username, oid FROM pg_catalog.pg_roles WHERE rolname::text = $2 AND rolcanlogin),
			ts AS (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS now FROM lk)
		INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt", "auditInfo", user_id)
		SELECT $1, u.username, ts.now, ts.now + $3::INT8 * INTERVAL '1 microsecond', ts.now, NULLIF($4::TEXT, ''), u.oid FROM u, ts
		RETURNING id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`
	case s.hasUserID:
		sql = `INSERT INTO system.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt", "auditInfo", user_id)
		SELECT $1, u.username, ts.now, ts.now + $3::INT8 * INTERVAL '1 microsecond', ts.now, NULLIF($4::TEXT, ''), u.user_id
		FROM system.users AS u, (SELECT now() AT TIME ZONE 'UTC' AS now) AS ts
		WHERE u.username = $2 AND NOT u."isRole"
		RETURNING id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`
	default:
		sql = `INSERT INTO system.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt", "auditInfo")
		SELECT $1, u.username, ts.now, ts.now + $3::INT8 * INTERVAL '1 microsecond', ts.now, NULLIF($4::TEXT, '')
		FROM system.users AS u, (SELECT now() AT TIME ZONE 'UTC' AS now) AS ts
		WHERE u.username = $2 AND NOT u."isRole"
		RETURNING id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`
	}
	rows, err := t.tx.Query(ctx, sql, hash[:], name, ttl.Microseconds(), auditInfo)
	if err != nil {
		return Issued{}, s.dbErr("issue", err)
	}
	sess, err := pgx.CollectExactlyOneRow(rows, scanSession)
	if errors.Is(err, pgx.ErrNoRows) {
		return Issued{}, &NoSuchUserError{Username: name}
	}
	if err != nil {
		return Issued{}, s.dbErr("issue", err)
	}
	t.after = append(t.after, func() { s.counts.adjust(sess.Username, countDelta{active: 1}) })
	return Issued{Session: sess, Cookie: Cookie{ID: sess.ID, Secret: secret}}, nil
}

// RevokeUser revokes every session of user with the CLI's semantics: a session revoked earlier
// keeps its revocation time, every other gets the current time. It returns every session row of
// that user (none for an unknown user, which is not an error, so that sessions outliving a
// dropped user can still be revoked). On CockroachDB it reads the whole table (see
// FullScanError).
func (t *Tx) RevokeUser(ctx context.Context, user string) ([]Revocation, error) {
	if err := checkUsername(user); err != nil {
		return nil, err
	}
	if err := t.s.fullScan(scanRevokeAll); err != nil {
		return nil, err
	}
	name := t.s.Username(user)
	now, err := t.lockUser(ctx, name)
	if err != nil {
		return nil, t.s.dbErr("revoke user", err)
	}
	rows, err := t.tx.Query(ctx, `UPDATE `+t.s.table+`
			SET "revokedAt" = CASE WHEN "revokedAt" IS NOT NULL AND "revokedAt" <= $2 THEN "revokedAt" ELSE $2 END
			WHERE username = $1
			RETURNING username, id, "revokedAt", "revokedAt" = $2`, name, now)
	if err != nil {
		return nil, t.s.dbErr("revoke user", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Revocation, error) {
		var v Revocation
		err := r.Scan(&v.Username, &v.ID, &v.RevokedAt, &v.Newly)
		v.RevokedAt = v.RevokedAt.UTC()
		return v, err
	})
	if err != nil {
		return nil, t.s.dbErr("revoke user", err)
	}
	t.after = append(t.after, t.s.counts.invalidate)
	return out, nil
}

// EndUserSessions revokes the sessions of user that are not revoked yet and returns how many
// it revoked and how many of those were active. Same effect as RevokeUser, but it writes only
// the rows that change and returns counts, not rows.
func (t *Tx) EndUserSessions(ctx context.Context, user string) (revoked, active int64, err error) {
	if err := checkUsername(user); err != nil {
		return 0, 0, err
	}
	if err := t.s.fullScan(scanRevokeAll); err != nil {
		return 0, 0, err
	}
	name := t.s.Username(user)
	now, err := t.lockUser(ctx, name)
	if err != nil {
		return 0, 0, t.s.dbErr("revoke user", err)
	}
	err = t.tx.QueryRow(ctx, `WITH r AS (
			UPDATE `+t.s.table+` SET "revokedAt" = $2
			WHERE username = $1 AND ("revokedAt" IS NULL OR "revokedAt" > $2)
			RETURNING "expiresAt")
			SELECT count(*), count(*) FILTER (WHERE "expiresAt" > $2) FROM r`, name, now).Scan(&revoked, &active)
	if err != nil {
		return 0, 0, t.s.dbErr("revoke user", err)
	}
	// Exact unless some of those sessions had a revocation time in the future (clock skew),
	// which counted as revoked already; the next refresh corrects that.
	t.after = append(t.after, func() {
		t.s.counts.adjust(name, countDelta{active: -active, expired: -(revoked - active), revoked: revoked})
	})
	return revoked, active, nil
}

// lockUser prepares a revoke-all of name in this transaction and returns the revocation time.
// On PostgreSQL it first takes the user's advisory lock (the one Issue takes) and reads the
// clock after that, so a session issued before a revoke-all began is always revoked by it, and
// one issued after has a later createdAt; on CockroachDB serializable transactions give the
// first of these. In the CockroachDB dialect the revoke reads the whole table: full scans are
// allowed for the rest of this transaction.
func (t *Tx) lockUser(ctx context.Context, name string) (time.Time, error) {
	if t.s.flavor == pgdb.Cockroach {
		if err := pgdb.FullScanInTx(ctx, t.tx, t.s.server); err != nil {
			return time.Time{}, err
		}
	}
	sql := `SELECT now() AT TIME ZONE 'UTC'`
	args := []any{}
	if t.s.flavor == pgdb.Postgres {
		sql = `SELECT clock_timestamp() AT TIME ZONE 'UTC' FROM (SELECT pg_advisory_xact_lock(7364022, hashtext($1))) AS lk`
		args = append(args, name)
	}
	var now time.Time
	err := t.tx.QueryRow(ctx, sql, args...).Scan(&now)
	return now.UTC(), err
}

// RevokeSession revokes one session (keeping an earlier revocation time) and returns it.
// An unknown ID is ErrNotFound.
func (t *Tx) RevokeSession(ctx context.Context, id int64) (Revocation, error) {
	const now = `(now() AT TIME ZONE 'UTC')`
	var v Revocation
	var wasActive bool
	err := t.tx.QueryRow(ctx, `UPDATE `+t.s.table+`
		SET "revokedAt" = CASE WHEN "revokedAt" IS NOT NULL AND "revokedAt" <= `+now+` THEN "revokedAt" ELSE `+now+` END
		WHERE id = $1
		RETURNING username, id, "revokedAt", "revokedAt" = `+now+`, "expiresAt" > `+now, id).Scan(&v.Username, &v.ID, &v.RevokedAt, &v.Newly, &wasActive)
	if errors.Is(err, pgx.ErrNoRows) {
		return Revocation{}, fmt.Errorf("sessionstore: session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Revocation{}, t.s.dbErr("revoke session", err)
	}
	v.RevokedAt = v.RevokedAt.UTC()
	t.after = append(t.after, func() {
		switch {
		case v.Newly && wasActive:
			t.s.counts.adjust(v.Username, countDelta{active: -1, revoked: 1})
		case v.Newly:
			t.s.counts.adjust(v.Username, countDelta{expired: -1, revoked: 1})
		}
	})
	return v, nil
}

// Issue issues a session in a transaction of its own, with no audit row: for tests and tools.
// The console issues through internal/actions, which records the audit row in the same
// transaction.
func (s *Store) Issue(ctx context.Context, user string, ttl time.Duration) (is Issued, err error) {
	err = s.InTx(ctx, func(t *Tx) error {
		is, err = t.Issue(ctx, user, ttl, "")
		return err
	})
	return is, err
}

// RevokeUser is Tx.RevokeUser in a transaction of its own, with no audit row (see Issue).
func (s *Store) RevokeUser(ctx context.Context, user string) (revs []Revocation, err error) {
	err = s.InTx(ctx, func(t *Tx) error {
		revs, err = t.RevokeUser(ctx, user)
		return err
	})
	return revs, err
}

// EndUserSessions is Tx.EndUserSessions in a transaction of its own, with no audit row (see
// Issue).
func (s *Store) EndUserSessions(ctx context.Context, user string) (revoked, active int64, err error) {
	err = s.InTx(ctx, func(t *Tx) error {
		revoked, active, err = t.EndUserSessions(ctx, user)
		return err
	})
	return revoked, active, err
}

// RevokeSession is Tx.RevokeSession in a transaction of its own, with no audit row (see Issue).
func (s *Store) RevokeSession(ctx context.Context, id int64) (r Revocation, err error) {
	err = s.InTx(ctx, func(t *Tx) error {
		r, err = t.RevokeSession(ctx, id)
		return err
	})
	return r, err
}
