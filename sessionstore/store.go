// Package sessionstore is the HTTP web-session domain over pgx: the CockroachDB cookie codec,
// and issuing, revoking, listing and verifying sessions in a table of the shape of CockroachDB's
// system.web_sessions, either CockroachDB's own table or the console's copy on PostgreSQL.
package sessionstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Errors returned by the store, wrapped with detail; test them with errors.Is.
var (
	// ErrNoSuchUser: the user does not exist or cannot log in (a role, NOLOGIN).
	ErrNoSuchUser = errors.New("no such user")
	// ErrInvalidInput: a username, duration, filter or cursor that can never be valid.
	ErrInvalidInput = errors.New("invalid input")
	// ErrNotFound: no session has that ID.
	ErrNotFound = errors.New("session not found")
	// ErrInvalidSession: Verify refused a cookie; the error is an *InvalidSessionError.
	ErrInvalidSession = errors.New("invalid session")
)

// NoSuchUserError says which user does not exist, in the CLI's words.
type NoSuchUserError struct{ Username string }

func (e *NoSuchUserError) Error() string { return fmt.Sprintf("user %q does not exist", e.Username) }

// Unwrap makes errors.Is(err, ErrNoSuchUser) hold.
func (e *NoSuchUserError) Unwrap() error { return ErrNoSuchUser }

// Reason is why Verify refused a cookie, in CockroachDB's order of checks.
type Reason string

// The reasons, in the order Verify checks them.
const (
	ReasonMalformed     Reason = "malformed cookie"
	ReasonNoSuchSession Reason = "no such session"
	ReasonRevoked       Reason = "session revoked"
	ReasonExpired       Reason = "session expired"
	ReasonWrongSecret   Reason = "wrong secret"
)

// InvalidSessionError is Verify's refusal.
type InvalidSessionError struct{ Reason Reason }

func (e *InvalidSessionError) Error() string { return "invalid session: " + string(e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalidSession) hold.
func (e *InvalidSessionError) Unwrap() error { return ErrInvalidSession }

// Status is a session's state at a moment.
type Status string

// The statuses. Revoked wins over expired, as in verification.
const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired"
	StatusRevoked Status = "revoked"
	StatusAll     Status = "all"
)

// Session is one row of the session table, without its hashed secret.
type Session struct {
	ID         int64
	Username   string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt time.Time
	// PurgedAt is set on history rows (Filter.From) that left the live table: when the
	// console saw them go. Nil on live rows.
	PurgedAt *time.Time
}

// StatusAt returns the session's status at now.
func (s Session) StatusAt(now time.Time) Status {
	switch {
	case s.RevokedAt != nil:
		return StatusRevoked
	case !now.Before(s.ExpiresAt):
		return StatusExpired
	}
	return StatusActive
}

// Issued is a new session and its cookie. The cookie exists only here: the table keeps a hash.
type Issued struct {
	Session
	Cookie Cookie
}

// Revocation is one row of a revoke-all, as the CLI's logout prints it.
type Revocation struct {
	Username  string
	ID        int64
	RevokedAt time.Time
	// Newly is true when this revocation set RevokedAt (false: it was revoked before).
	Newly bool
}

// Verified is a session that Verify accepted.
type Verified struct {
	Username   string
	SessionID  int64
	LastUsedAt time.Time
}

// Options configure a Store.
type Options struct {
	// Flavor forces a dialect; 0 detects it with SELECT version().
	Flavor pgdb.Flavor
	// MaxTTL is the longest session Issue grants (default DefaultMaxTTL).
	MaxTTL time.Duration
	// CountsMaxAge is how long status counts are reused before they are counted again
	// (default 15 s); writes through this store recount at once.
	CountsMaxAge time.Duration
	// RefuseFullScans makes the statements that must read all of system.web_sessions (see
	// FullScanError) fail with a *FullScanError instead of running. CockroachDB dialect only.
	RefuseFullScans bool
}

// DefaultMaxTTL is the longest session Issue grants unless configured otherwise: 31 days.
const DefaultMaxTTL = 31 * 24 * time.Hour

// Store reads and writes sessions. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	flavor    pgdb.Flavor // the dialect: whose session table
	server    pgdb.Flavor // what the server is: how transactions, streams and full scans run
	refuse    bool        // Options.RefuseFullScans
	table     string
	hasUserID bool
	maxTTL    time.Duration
	counts    *countCache
	now       func() time.Time

	bg     sync.WaitGroup
	shared func(ctx context.Context, table string) (Counts, bool, error)
	writes atomic.Uint64 // committed write transactions (Writes)
}

// Migrations are the PostgreSQL dialect's schema steps for its session table. (On CockroachDB
// the table is system.web_sessions and the console never changes it.)
var Migrations = []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE console.web_sessions (
	id INT8 GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	"hashedSecret" BYTEA NOT NULL,
	username TEXT COLLATE "C" NOT NULL,
	"createdAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
	"expiresAt" TIMESTAMP NOT NULL,
	"revokedAt" TIMESTAMP,
	"lastUsedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
	"auditInfo" TEXT
);
CREATE INDEX web_sessions_createdAt_idx ON console.web_sessions ("createdAt", id);
CREATE INDEX web_sessions_expiresAt_idx ON console.web_sessions ("expiresAt", id);
CREATE INDEX web_sessions_lastUsedAt_idx ON console.web_sessions ("lastUsedAt", id);
CREATE INDEX web_sessions_revokedAt_idx ON console.web_sessions ("revokedAt");
CREATE INDEX web_sessions_username_createdAt_idx ON console.web_sessions (username, "createdAt", id);
`}, {Version: 2, SQL: `
ALTER TABLE console.web_sessions ADD COLUMN IF NOT EXISTS user_id OID NULL;
`}}

// Open returns a store over pool: on CockroachDB it uses system.web_sessions (and sets user_id
// when the table has it); on PostgreSQL it migrates and uses console.web_sessions. The dialect
// (Options.Flavor) may differ from the server's (tests run the CockroachDB dialect on a
// PostgreSQL fixture); transactions, streamed reads and full scans follow the server's.
func Open(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	s := &Store{pool: pool, flavor: opts.Flavor, maxTTL: opts.MaxTTL, now: time.Now, refuse: opts.RefuseFullScans}
	if s.maxTTL <= 0 {
		s.maxTTL = DefaultMaxTTL
	}
	server, _, err := pgdb.Detect(ctx, pool)
	if err != nil {
		return nil, err
	}
	s.server = server
	if s.flavor == 0 {
		s.flavor = server
	}
	switch s.flavor {
	case pgdb.Cockroach:
		s.table = "system.web_sessions"
		err := pgdb.Retry(ctx, func() error {
			_, err := pool.Exec(ctx, "SELECT user_id FROM system.web_sessions LIMIT 0")
			return err
		})
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			s.hasUserID = true
		case errors.As(err, &pgErr) && pgErr.Code == "42703": // undefined_column: v22.2 and older
		default:
			err = pgdb.Privilege(err, pool.Config().ConnConfig.User, "read and write system.web_sessions")
			return nil, pgdb.Unavailable(fmt.Errorf("sessionstore: system.web_sessions: %w", err))
		}
	case pgdb.Postgres:
		s.table = "console.web_sessions"
		if err := pgdb.Migrate(ctx, pool, s.flavor, "sessions", Migrations); err != nil {
			return nil, err
		}
		// As on CockroachDB v23.1+: the OID of the role a session was issued for, so that a
		// session of a role dropped and created again under the same name can be told apart
		// (rows written before migration 2, or by other tools, may have none).
		s.hasUserID = true
	default:
		return nil, fmt.Errorf("sessionstore: unknown dialect %v", s.flavor)
	}
	maxAge := opts.CountsMaxAge
	if maxAge <= 0 {
		maxAge = 15 * time.Second
	}
	s.counts = newCountCache(maxAge, s.table)
	return s, nil
}

// Close waits for background recounts to finish. It does not close the pool.
func (s *Store) Close() {
	s.bg.Wait()
}

// Flavor returns the dialect in use.
func (s *Store) Flavor() pgdb.Flavor { return s.flavor }

// Server returns what the server is (the dialect may differ, see Open).
func (s *Store) Server() pgdb.Flavor { return s.server }

// Table returns the qualified name of the session table.
func (s *Store) Table() string { return s.table }

// HasUserID reports whether the session table has a user_id column: CockroachDB's (v23.1+), or
// the console's on PostgreSQL (the role's OID).
func (s *Store) HasUserID() bool { return s.hasUserID }

// MaxTTL returns the longest session Issue grants.
func (s *Store) MaxTTL() time.Duration { return s.maxTTL }

// Username returns name as the dialect stores it: normalized on CockroachDB, as given on
// PostgreSQL (whose role names are case-sensitive).
func (s *Store) Username(name string) string {
	if s.flavor == pgdb.Cockroach {
		return NormalizeUsername(name)
	}
	return name
}

// CheckTTL reports whether ttl is a duration Issue accepts: positive, at most MaxTTL.
func (s *Store) CheckTTL(ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return fmt.Errorf("%w: expiry must be positive, got %s", ErrInvalidInput, ttl)
	case ttl > s.maxTTL:
		return fmt.Errorf("%w: expiry %s is longer than the maximum %s", ErrInvalidInput, ttl, FormatDuration(s.maxTTL))
	case ttl < time.Second:
		return fmt.Errorf("%w: expiry must be at least 1s, got %s", ErrInvalidInput, ttl)
	}
	return nil
}

// Get returns one session; an unknown ID is ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Session, error) {
	var sess Session
	err := pgdb.Retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, `SELECT id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"
		FROM `+s.table+` WHERE id = $1`, id)
		if err != nil {
			return err
		}
		sess, err = pgx.CollectExactlyOneRow(rows, scanSession)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("sessionstore: session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Session{}, s.dbErr("get", err)
	}
	return sess, nil
}

// Verify checks a cookie value as CockroachDB does, in its order: the row by ID, then revoked,
// then expired (now >= expiresAt), then SHA-256 of the secret (compared in constant time here).
// A refusal is an *InvalidSessionError carrying the reason; database failures are other errors.
func (s *Store) Verify(ctx context.Context, cookie string) (Verified, error) {
	c, err := DecodeCookie(cookie)
	if err != nil {
		return Verified{}, &InvalidSessionError{Reason: ReasonMalformed}
	}
	var (
		hashed    []byte
		v         = Verified{SessionID: c.ID}
		expiresAt time.Time
		revokedAt *time.Time
	)
	err = pgdb.Retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT "hashedSecret", username, "expiresAt", "revokedAt", "lastUsedAt"
		FROM `+s.table+` WHERE id = $1`, c.ID).Scan(&hashed, &v.Username, &expiresAt, &revokedAt, &v.LastUsedAt)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Verified{}, &InvalidSessionError{Reason: ReasonNoSuchSession}
	case err != nil:
		return Verified{}, s.dbErr("verify", err)
	case revokedAt != nil:
		return Verified{}, &InvalidSessionError{Reason: ReasonRevoked}
	case !s.now().UTC().Before(expiresAt):
		return Verified{}, &InvalidSessionError{Reason: ReasonExpired}
	}
	sum := sha256.Sum256(c.Secret)
	if subtle.ConstantTimeCompare(sum[:], hashed) != 1 {
		return Verified{}, &InvalidSessionError{Reason: ReasonWrongSecret}
	}
	v.LastUsedAt = v.LastUsedAt.UTC()
	return v, nil
}

// Users returns up to limit names that Issue accepts and that start with prefix, sorted.
func (s *Store) Users(ctx context.Context, prefix string, limit int) ([]string, error) {
	col, sql := "username", `SELECT username FROM system.users WHERE NOT "isRole"`
	if s.flavor == pgdb.Postgres {
		col, sql = "rolname::text", `SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolcanlogin`
	}
	args := []any{}
	if prefix != "" {
		prefix = s.Username(prefix)
		args = append(args, prefix)
		sql += " AND " + col + " >= $1"
		if hi, ok := prefixEnd(prefix); ok {
			args = append(args, hi)
			sql += " AND " + col + " < $2"
		}
	}
	args = append(args, limit)
	sql += " ORDER BY 1 LIMIT $" + strconv.Itoa(len(args))
	var names []string
	err := pgdb.Retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return names, s.dbErr("users", err)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.dbErr("ping", s.pool.Ping(ctx))
}

// sessionColumns are the columns scanSession reads, in its order.
const sessionColumns = `id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`

func scanSession(r pgx.CollectableRow) (Session, error) {
	var s Session
	err := r.Scan(&s.ID, &s.Username, &s.CreatedAt, &s.ExpiresAt, &s.RevokedAt, &s.LastUsedAt)
	s.utc()
	return s, err
}

// utc puts the times in time.UTC (pgx returns TIMESTAMP values in UTC already, but with a
// location pointer of its own).
func (s *Session) utc() {
	s.CreatedAt, s.ExpiresAt, s.LastUsedAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC(), s.LastUsedAt.UTC()
	if s.RevokedAt != nil {
		t := s.RevokedAt.UTC()
		s.RevokedAt = &t
	}
	if s.PurgedAt != nil {
		t := s.PurgedAt.UTC()
		s.PurgedAt = &t
	}
}

// dbErr prefixes a database error with the operation, marking unreachable databases as
// pgdb.ErrUnavailable.
func (s *Store) dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sessionstore: %s: %w", op, pgdb.Unavailable(err))
}

// FormatDuration prints a duration the way people write them: 1h, 4h30m, 7d... without the
// zero units Go adds (1h0m0s).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// expiryRE is the CLI's duration syntax: Go's, restricted to the units h, m and s.
var expiryRE = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[hms])+$`)

// ExpiryError is a duration ParseExpiry refused: the input and why, in words for people.
type ExpiryError struct{ Input, Reason string }

func (e *ExpiryError) Error() string {
	return fmt.Sprintf("invalid duration %q: %s", e.Input, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) hold.
func (e *ExpiryError) Unwrap() error { return ErrInvalidInput }

// cliExpiryHelp and webExpiryHelp say what ParseExpiry and ParseWebExpiry take.
const (
	cliExpiryHelp = "use hours, minutes and seconds, such as 1h, 90m or 4h30m (units h, m, s)"
	webExpiryHelp = "use days, hours, minutes and seconds, such as 7d, 8h, 90m or 1d12h"
)

// ParseExpiry parses a session duration in the CLI's syntax: Go durations made of the units h,
// m and s (4h30m, 90m, 1.5h, 1h0m0s, +2h), and positive. Anything else is an *ExpiryError. It
// does not check the configured range (see CheckTTL).
func ParseExpiry(s string) (time.Duration, error) {
	if !expiryRE.MatchString(s) {
		return 0, &ExpiryError{Input: s, Reason: cliExpiryHelp}
	}
	d, err := time.ParseDuration(s)
	if err != nil { // the syntax is right, so the number is out of range
		return 0, &ExpiryError{Input: s, Reason: "far too long"}
	}
	if d <= 0 {
		return 0, &ExpiryError{Input: s, Reason: "the expiry must be positive"}
	}
	return d, nil
}

// Day is the unit the web's expiry inputs add to the CLI's syntax.
const Day = 24 * time.Hour

// webDays is a web expiry with whole days in front: sign, days, the rest in the CLI's syntax.
var webDays = regexp.MustCompile(`^([-+]?)([0-9]{1,5})d(.*)$`)

// ParseWebExpiry parses a duration typed or sent to the web console: every expiry of its forms
// and of its JSON API (sessions and API tokens). It takes what ParseExpiry takes and, in front,
// whole days (7d, 1d12h, +7d), so that a typed 7d means what a 7d preset does. Errors are
// *ExpiryError saying what to write. The CLI keeps ParseExpiry, cockroach's syntax.
func ParseWebExpiry(s string) (time.Duration, error) {
	m := webDays.FindStringSubmatch(s)
	if m == nil {
		d, err := ParseExpiry(s)
		var e *ExpiryError
		if errors.As(err, &e) && e.Reason == cliExpiryHelp {
			e.Reason = webExpiryHelp
		}
		return d, err
	}
	days, _ := strconv.Atoi(m[2]) // at most 5 digits
	d := time.Duration(days) * Day
	if rest := m[3]; rest != "" {
		if rest[0] == '-' || rest[0] == '+' || !expiryRE.MatchString(rest) {
			return 0, &ExpiryError{Input: s, Reason: webExpiryHelp}
		}
		r, err := time.ParseDuration(rest)
		if err != nil || d+r < d { // the syntax is right, so the number is out of range
			return 0, &ExpiryError{Input: s, Reason: "far too long"}
		}
		d += r
	}
	if m[1] == "-" || d <= 0 {
		return 0, &ExpiryError{Input: s, Reason: "the expiry must be positive"}
	}
	return d, nil
}

// FormatWebDuration writes a duration as the web shows it: whole days as days (744h is 31d),
// anything else as FormatDuration does.
func FormatWebDuration(d time.Duration) string {
	if d >= Day && d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return FormatDuration(d)
}
