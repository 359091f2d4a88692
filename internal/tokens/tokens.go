// Package tokens keeps the console's API tokens: bearer secrets with a name, a role and an
// expiry, for scripts, the JSON API, the exports and metrics scrapers. Only a hash of each
// token is stored; the token itself is shown once, when it is made.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
)

// Errors, wrapped with detail; test them with errors.Is.
var (
	ErrNotFound = errors.New("API token not found")
	ErrExists   = errors.New("API token already exists")
	ErrInvalid  = errors.New("invalid API token name, role or expiry")
	// ErrUnauthorized is a bearer token that is malformed, unknown, revoked or expired: one
	// error for all, so that a caller learns nothing about which.
	ErrUnauthorized = errors.New("API token not valid")
)

// Prefix starts every token, so that secret scanners and people recognise one.
const Prefix = "sct_"

// DefaultTTL and DefaultMaxTTL are the default expiry of a new token and the longest allowed.
const (
	DefaultTTL    = 30 * 24 * time.Hour
	DefaultMaxTTL = 366 * 24 * time.Hour
)

// LastUseEvery is how stale a token's last use may get before a use writes it again.
const LastUseEvery = time.Minute

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$`)

// Migrations create the token table (both dialects).
var Migrations = []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS console.api_tokens (
	name TEXT NOT NULL PRIMARY KEY,
	token_hash BYTEA NOT NULL UNIQUE,
	role TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	expires_at TIMESTAMPTZ NOT NULL,
	last_used_at TIMESTAMPTZ NULL
);
`}}

// Token is a token's record, without its secret.
type Token struct {
	Name      string
	Role      admins.Role
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt is nil until first use; it is at most LastUseEvery behind.
	LastUsedAt *time.Time
}

// Expired reports whether t no longer works at now.
func (t Token) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Store manages tokens. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	flavor pgdb.Flavor // the server's
	maxTTL time.Duration

	mu   sync.Mutex
	used map[string]time.Time // token name -> last use written by this process
}

// Open migrates the token table and returns the store; maxTTL caps new tokens' expiry
// (0: DefaultMaxTTL).
func Open(ctx context.Context, pool *pgxpool.Pool, flavor pgdb.Flavor, maxTTL time.Duration) (*Store, error) {
	if err := pgdb.Migrate(ctx, pool, flavor, "tokens", Migrations); err != nil {
		return nil, err
	}
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	return &Store{pool: pool, flavor: flavor, maxTTL: maxTTL, used: map[string]time.Time{}}, nil
}

// MaxTTL is the longest expiry a new token may have.
func (s *Store) MaxTTL() time.Duration { return s.maxTTL }

// CheckName reports whether name is a valid token name (as admin names: 1-63 letters, digits,
// '_', '.', '@' or '-').
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: token names are 1-63 letters, digits, '_', '.', '@' or '-', starting with a letter or digit", ErrInvalid)
	}
	return nil
}

// CheckTTL reports whether ttl is an acceptable expiry for a new token.
func (s *Store) CheckTTL(ttl time.Duration) error {
	switch {
	case ttl < time.Minute:
		return fmt.Errorf("%w: a token must live at least a minute", ErrInvalid)
	case ttl > s.maxTTL:
		return fmt.Errorf("%w: a token may live at most %s (--max-token-expire-after)", ErrInvalid, s.maxTTL)
	}
	return nil
}

func hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Create makes a token and writes by (a token-create entry) in the same transaction; it
// returns the token, which is not stored and cannot be shown again. A taken name is ErrExists.
func (s *Store) Create(ctx context.Context, name string, role admins.Role, ttl time.Duration, by audit.Entry) (string, Token, error) {
	if err := CheckName(name); err != nil {
		return "", Token{}, err
	}
	if !role.Valid() {
		return "", Token{}, fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
	}
	if err := s.CheckTTL(ttl); err != nil {
		return "", Token{}, err
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := Prefix + base64.RawURLEncoding.EncodeToString(b)
	var t Token
	err := pgdb.RunTx(ctx, s.pool, s.flavor, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO console.api_tokens (name, token_hash, role, created_by, expires_at)
			VALUES ($1, $2, $3, $4, now() + $5::INT8 * INTERVAL '1 microsecond')
			ON CONFLICT (name) DO NOTHING
			RETURNING `+columns, name, hash(secret), string(role), by.Admin, ttl.Microseconds())
		if err != nil {
			return err
		}
		t, err = pgx.CollectExactlyOneRow(rows, scan)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tokens: %q: %w", name, ErrExists)
		}
		if err != nil {
			return err
		}
		by.Action, by.Target = audit.TokenCreate, name
		by.ExpiresAt = &t.ExpiresAt
		by.Detail = "role " + string(role)
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return "", Token{}, dbErr("create", err)
	}
	return secret, t, nil
}

const columns = `name, role, created_by, created_at, expires_at, last_used_at`

func scan(r pgx.CollectableRow) (Token, error) {
	var (
		t    Token
		role string
	)
	err := r.Scan(&t.Name, &role, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt)
	t.Role = admins.Role(role)
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	if t.LastUsedAt != nil {
		u := t.LastUsedAt.UTC()
		t.LastUsedAt = &u
	}
	return t, err
}

// List returns every token (expired ones too), by name.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	var out []Token
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // every row
		rows, err := q.Query(ctx, `SELECT `+columns+` FROM console.api_tokens ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scan)
		return err
	})
	return out, dbErr("list", err)
}

// Revoke deletes a token, which stops working at once, and writes by (a token-revoke entry)
// in the same transaction. An unknown name is ErrNotFound.
func (s *Store) Revoke(ctx context.Context, name string, by audit.Entry) error {
	err := pgdb.RunTx(ctx, s.pool, s.flavor, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM console.api_tokens WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("tokens: %q: %w", name, ErrNotFound)
		}
		by.Action, by.Target = audit.TokenRevoke, name
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	return dbErr("revoke", err)
}

// Authenticate returns the token a bearer secret belongs to, and notes its use (written at
// most every LastUseEvery). Malformed, unknown, revoked and expired tokens are all
// ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, Prefix) || len(secret) > 100 {
		return Token{}, ErrUnauthorized
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM console.api_tokens WHERE token_hash = $1 AND expires_at > now()`, hash(secret))
	if err != nil {
		return Token{}, dbErr("authenticate", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, ErrUnauthorized
	}
	if err != nil {
		return Token{}, dbErr("authenticate", err)
	}
	now := time.Now()
	s.mu.Lock()
	due := now.Sub(s.used[t.Name]) >= LastUseEvery
	if due {
		if len(s.used) > 10000 {
			clear(s.used)
		}
		s.used[t.Name] = now
	}
	s.mu.Unlock()
	if due && (t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= LastUseEvery) {
		if _, err := s.pool.Exec(ctx, `UPDATE console.api_tokens SET last_used_at = now() WHERE name = $1`, t.Name); err != nil {
			return Token{}, dbErr("authenticate", err)
		}
	}
	return t, nil
}

func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, e := range []error{ErrNotFound, ErrExists, ErrInvalid, ErrUnauthorized, audit.ErrNotRecorded} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("tokens: %s: %w", op, pgdb.Unavailable(err))
}
