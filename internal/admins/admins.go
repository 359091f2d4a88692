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

	"github.com/sessionconsole/console/internal/pgdb"
)

// Errors, wrapped with detail; test them with errors.Is.
var (
	ErrNotFound       = errors.New("admin not found")
	ErrExists         = errors.New("admin already exists")
	ErrInvalid        = errors.New("invalid admin name or password")
	ErrBadCredentials = errors.New("wrong admin name or password")
	ErrNoSession      = errors.New("admin session not valid")
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// Cost is the bcrypt cost of stored hashes.
var Cost = bcrypt.DefaultCost

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$`)

// Admin is an account, without its hash.
type Admin struct {
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
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
`}, throttleMigration}

// Store manages admin accounts and sessions. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	flavor pgdb.Flavor // the server's
	dummy  []byte      // a hash to compare against for unknown names, so they take as long

	mu     sync.Mutex
	seen   map[string]seenEntry // session ID -> recently confirmed
	cache  time.Duration
	purged time.Time // when this process last purged the sign-in throttle
}

type seenEntry struct {
	admin     string
	created   time.Time
	confirmed time.Time
}

// Open migrates the admin tables and returns the store. cacheFor is how long a confirmed
// session is trusted without asking the database again (0: always ask); logging out through
// this store forgets it at once.
func Open(ctx context.Context, pool *pgxpool.Pool, flavor pgdb.Flavor, cacheFor time.Duration) (*Store, error) {
	if err := pgdb.Migrate(ctx, pool, flavor, "admins", Migrations); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), Cost)
	if err != nil {
		return nil, fmt.Errorf("admins: %w", err)
	}
	return &Store{pool: pool, flavor: flavor, dummy: dummy, seen: map[string]seenEntry{}, cache: cacheFor}, nil
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

// Add creates an admin. An existing name is ErrExists.
func (s *Store) Add(ctx context.Context, name, password string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return fmt.Errorf("admins: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO console.admins (name, password_hash) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, string(hash))
	if err != nil {
		return dbErr("add", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("admins: %q: %w", name, ErrExists)
	}
	return nil
}

// SetPassword changes an admin's password and ends that admin's sessions. An unknown name is
// ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return fmt.Errorf("admins: %w", err)
	}
	err = pgdb.RunTx(ctx, s.pool, s.flavor, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE console.admins SET password_hash = $2, updated_at = now() WHERE name = $1`, name, string(hash))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("admins: %q: %w", name, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `DELETE FROM console.admin_sessions WHERE admin = $1`, name)
		return err
	})
	if err != nil {
		return dbErr("set password", err)
	}
	s.forgetAdmin(name)
	return nil
}

// Remove deletes an admin and its sessions. An unknown name is ErrNotFound.
func (s *Store) Remove(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM console.admins WHERE name = $1`, name)
	if err != nil {
		return dbErr("remove", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("admins: %q: %w", name, ErrNotFound)
	}
	s.forgetAdmin(name)
	return nil
}

// List returns every admin, by name.
func (s *Store) List(ctx context.Context) ([]Admin, error) {
	var out []Admin
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // every row
		rows, err := q.Query(ctx, `SELECT name, created_at, updated_at FROM console.admins ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Admin, error) {
			var a Admin
			err := r.Scan(&a.Name, &a.CreatedAt, &a.UpdatedAt)
			a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
			return a, err
		})
		return err
	})
	return out, dbErr("list", err)
}

// Count returns the number of admins.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // a count reads every row
		return q.QueryRow(ctx, `SELECT count(*) FROM console.admins`).Scan(&n)
	})
	return n, dbErr("count", err)
}

// AddFirst creates the admin `name` with a random password when there is no admin at all,
// and returns that password ("" when admins exist already).
func (s *Store) AddFirst(ctx context.Context, name string) (string, error) {
	n, err := s.Count(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	password := RandomPassword()
	if err := s.Add(ctx, name, password); err != nil {
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

// Authenticate checks a name and password. Wrong either way is ErrBadCredentials, after the
// same bcrypt work, so that timing does not tell whether a name exists.
func (s *Store) Authenticate(ctx context.Context, name, password string) error {
	if CheckName(name) != nil { // no such admin can exist (nor would the database take every name)
		bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return ErrBadCredentials
	}
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT password_hash FROM console.admins WHERE name = $1`, name).Scan(&hash)
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

// StartSession records a new browser session for admin and returns its random ID.
func (s *Store) StartSession(ctx context.Context, admin string) (string, error) {
	return s.StartSessionIn(ctx, s.pool, admin)
}

// StartSessionIn is StartSession through q, such as the transaction that also records the
// sign-in in the audit log.
func (s *Store) StartSessionIn(ctx context.Context, q pgdb.DBTX, admin string) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	if _, err := q.Exec(ctx, `INSERT INTO console.admin_sessions (id, admin) VALUES ($1, $2)`, id, admin); err != nil {
		return "", dbErr("start session", err)
	}
	return id, nil
}

// CheckSession returns the admin of a live session, refreshing its idle clock. A session is
// dead when ended, idle longer than idle, or older than absolute: ErrNoSession (and a dead one
// is deleted).
func (s *Store) CheckSession(ctx context.Context, id string, idle, absolute time.Duration) (string, error) {
	now := time.Now()
	s.mu.Lock()
	if e, ok := s.seen[id]; ok && now.Sub(e.confirmed) < min(s.cache, idle) && now.Sub(e.created) < absolute {
		s.mu.Unlock()
		return e.admin, nil
	}
	s.mu.Unlock()
	var (
		admin   string
		created time.Time
	)
	err := s.pool.QueryRow(ctx, `UPDATE console.admin_sessions SET last_seen = now()
		WHERE id = $1
		AND last_seen > now() - $2::INT8 * INTERVAL '1 microsecond'
		AND created_at > now() - $3::INT8 * INTERVAL '1 microsecond'
		RETURNING admin, created_at`, id, idle.Microseconds(), absolute.Microseconds()).Scan(&admin, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		s.EndSession(ctx, id) // unknown, or timed out: gone for good
		return "", ErrNoSession
	}
	if err != nil {
		return "", dbErr("check session", err)
	}
	s.mu.Lock()
	if len(s.seen) > 10000 {
		clear(s.seen)
	}
	s.seen[id] = seenEntry{admin: admin, created: created, confirmed: now}
	s.mu.Unlock()
	return admin, nil
}

// EndSession ends a session at once (sign-out): later checks of its ID fail, in this process
// immediately and in others once their cache entry ages out.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.EndSessionIn(ctx, s.pool, id)
}

// EndSessionIn is EndSession through q, such as the transaction that also records the
// sign-out in the audit log. This process forgets the session at once, committed or not (a
// session it forgot is asked of the database again).
func (s *Store) EndSessionIn(ctx context.Context, q pgdb.DBTX, id string) error {
	s.mu.Lock()
	delete(s.seen, id)
	s.mu.Unlock()
	_, err := q.Exec(ctx, `DELETE FROM console.admin_sessions WHERE id = $1`, id)
	return dbErr("end session", err)
}

func (s *Store) forgetAdmin(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.seen {
		if e.admin == name {
			delete(s.seen, id)
		}
	}
}

func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return err
	}
	return fmt.Errorf("admins: %s: %w", op, pgdb.Unavailable(err))
}
