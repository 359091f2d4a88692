// Package admins keeps the console's own administrator accounts (bcrypt password hashes) and
// their browser sessions, in the console schema of the console's database.
package admins

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
)

// Errors, wrapped with detail; test them with errors.Is.
var (
	ErrNotFound       = errors.New("admin not found")
	ErrExists         = errors.New("admin already exists")
	ErrInvalid        = errors.New("invalid admin name or password")
	ErrBadCredentials = errors.New("wrong admin name or password")
	ErrNoSession      = errors.New("admin session not valid")
	// ErrLastOwner refuses removing or demoting the only owner.
	ErrLastOwner = errors.New("the last owner cannot be removed or demoted")
	// ErrSSO refuses changing the role or password of an admin that signs in by single
	// sign-on: its role comes from the identity provider at each sign-in, and it has no
	// password here.
	ErrSSO = errors.New("admin signs in by single sign-on")
	// ErrLinkInvalid is a set-password link that is unknown, used or expired.
	ErrLinkInvalid = errors.New("set-password link unknown, used or expired")
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// Cost is the bcrypt cost of stored hashes.
var Cost = bcrypt.DefaultCost

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$`)

// Admin is an account, without its hash.
type Admin struct {
	Name   string
	Role   Role
	Method Method
	// MustChangePassword: the password is a one-time password, to be replaced at the next
	// sign-in before anything else.
	MustChangePassword bool
	CreatedAt          time.Time
	UpdatedAt          time.Time
	// LastSignIn is nil before the first sign-in.
	LastSignIn *time.Time
}

// Migrations create the console's admin tables (both dialects).
var Migrations = []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS console.admins (
	name TEXT NOT NULL PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS console.admin_sessions (
	id TEXT NOT NULL PRIMARY KEY,
	admin TEXT NOT NULL REFERENCES console.admins (name) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	last_seen TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS admin_sessions_admin_idx ON console.admin_sessions (admin);
`}, throttleMigration, rolesMigration, rolesIndexMigration}

// Store manages admin accounts and sessions. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	flavor pgdb.Flavor // the server's
	dummy  []byte      // a hash to compare against for unknown names, so they take as long

	mu       sync.Mutex
	seen     map[string]seenEntry // session ID -> recently confirmed
	checking map[checkKey]*sessionCheck
	// gen counts the times cached sessions were forgotten (a session ended, an admin changed):
	// a check that began before the last one does not cache its answer.
	gen    uint64
	cache  time.Duration
	purged time.Time // when this process last purged the sign-in throttle
}

// Open migrates the admin tables and returns the store. cacheFor is how long a confirmed
// session is trusted without asking the database again (0: always ask); logging out through
// this store forgets it at once.
func Open(ctx context.Context, pool *pgxpool.Pool, flavor pgdb.Flavor, cacheFor time.Duration) (*Store, error) {
	if err := pgdb.Migrate(ctx, pool, flavor, "admins", Migrations); err != nil {
		return nil, err
	}
	if err := pgdb.Migrate(ctx, pool, flavor, "admin-forms", FormMigrations); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), Cost)
	if err != nil {
		return nil, fmt.Errorf("admins: %w", err)
	}
	return &Store{pool: pool, flavor: flavor, dummy: dummy, seen: map[string]seenEntry{},
		checking: map[checkKey]*sessionCheck{}, cache: cacheFor}, nil
}

// CheckName reports whether name is a valid admin name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: admin names are 1-63 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", ErrInvalid)
	}
	return nil
}

// CheckPassword reports whether password is acceptable.
func CheckPassword(password string) error {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLength)
	case len(password) > 72:
		return fmt.Errorf("%w: password must be at most 72 bytes", ErrInvalid)
	}
	return nil
}

// Add creates an admin with a password and a role. An existing name is ErrExists. Add is for
// set-up and tests; the audited way is Create.
func (s *Store) Add(ctx context.Context, name, password string, role Role) error {
	_, err := s.create(ctx, NewAdmin{Name: name, Role: role, Password: password}, nil)
	return err
}

// Count returns the number of admins.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // a count reads every row
		return q.QueryRow(ctx, `SELECT count(*) FROM console.admins`).Scan(&n)
	})
	return n, dbErr("count", err)
}

// AddFirst creates the owner `name` with a random password when there is no admin at all,
// and returns that password ("" when admins exist already).
func (s *Store) AddFirst(ctx context.Context, name string) (string, error) {
	n, err := s.Count(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	password := RandomPassword()
	if err := s.Add(ctx, name, password, Owner); err != nil {
		if errors.Is(err, ErrExists) {
			return "", nil // another process made it first
		}
		return "", err
	}
	return password, nil
}

// RandomPassword returns a new random password (24 URL-safe characters, 144 bits).
func RandomPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Authenticate checks a name and password of an admin that signs in by password. Wrong
// either way (and an admin that signs in by single sign-on) is ErrBadCredentials, after the
// same bcrypt work, so that timing does not tell whether a name exists.
func (s *Store) Authenticate(ctx context.Context, name, password string) error {
	if CheckName(name) != nil { // no such admin can exist (nor would the database take every name)
		bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return ErrBadCredentials
	}
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT password_hash FROM console.admins WHERE name = $1 AND method = 'password'`, name).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return ErrBadCredentials
	}
	if err != nil {
		return dbErr("authenticate", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return ErrBadCredentials
	}
	return nil
}

// forgetAdmin drops the cached sessions of admin name (its role, password or sessions changed).
func (s *Store) forgetAdmin(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(func(_ string, e seenEntry) bool { return e.ident.Admin == name })
}

// inTx runs fn in one transaction through pgdb.RunTx (again on a serialization failure).
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgdb.RunTx(ctx, s.pool, s.flavor, fn)
}

// sentinels are the errors dbErr passes through unchanged.
var sentinels = []error{ErrNotFound, ErrExists, ErrInvalid, ErrBadCredentials, ErrNoSession, ErrLastOwner, ErrSSO, ErrLinkInvalid, audit.ErrNotRecorded}

func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range sentinels {
		if errors.Is(err, e) {
			return err
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return err
	}
	return fmt.Errorf("admins: %s: %w", op, pgdb.Unavailable(err))
}
