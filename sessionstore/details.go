package sessionstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Detail is one row of the session table with every column but the hashed secret.
type Detail struct {
	Session
	// AuditInfo is the row's "auditInfo" (nil: NULL).
	AuditInfo *string
	// UserID is the row's user_id (CockroachDB v23.1+, or the role's OID on PostgreSQL; nil
	// where the table or the row has none).
	UserID *int64
}

// GetDetail returns every column of one session but its secret; an unknown ID is ErrNotFound.
func (s *Store) GetDetail(ctx context.Context, id int64) (Detail, error) {
	uid := "NULL::INT8"
	if s.hasUserID {
		uid = "user_id::INT8"
	}
	var d Detail
	err := s.pool.QueryRow(ctx, `SELECT id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt", "auditInfo", `+uid+`
		FROM `+s.table+` WHERE id = $1`, id).
		Scan(&d.ID, &d.Username, &d.CreatedAt, &d.ExpiresAt, &d.RevokedAt, &d.LastUsedAt, &d.AuditInfo, &d.UserID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Detail{}, fmt.Errorf("sessionstore: session %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Detail{}, s.dbErr("get", err)
	}
	d.utc()
	return d, nil
}

// UserInfo is what the database says of a name now.
type UserInfo struct {
	// Name is the name as the dialect stores it (normalized on CockroachDB).
	Name string
	// Exists: a user or role of that name exists; CanLogin: sessions can be issued for it (a
	// user on CockroachDB, a role with LOGIN on PostgreSQL).
	Exists, CanLogin bool
	// UserID is its user_id (CockroachDB) or role OID (PostgreSQL), when it exists.
	UserID int64
}

// LookupUser says whether name is a user, a role, or nothing at all now. A name that can never
// be a username wraps ErrInvalidInput.
func (s *Store) LookupUser(ctx context.Context, name string) (UserInfo, error) {
	if err := checkUsername(name); err != nil {
		return UserInfo{}, err
	}
	info := UserInfo{Name: s.Username(name)}
	sql := `SELECT NOT "isRole", user_id::INT8 FROM system.users WHERE username = $1`
	if s.flavor == pgdb.Postgres {
		sql = `SELECT rolcanlogin, oid::INT8 FROM pg_catalog.pg_roles WHERE rolname::text = $1`
	}
	err := s.pool.QueryRow(ctx, sql, info.Name).Scan(&info.CanLogin, &info.UserID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return info, nil
	case err != nil:
		return UserInfo{}, s.dbErr("user", err)
	}
	info.Exists = true
	return info, nil
}

// IndexedByUser reports whether the session table has an index on username (the console's
// own table on PostgreSQL does; CockroachDB's system.web_sessions does not, so a username
// filter there reads the whole table).
func (s *Store) IndexedByUser() bool { return s.flavor == pgdb.Postgres }
