package admins

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// ErrFormUsed is returned by ClaimForm for a form token that was claimed before.
var ErrFormUsed = errors.New("form already submitted")

// FormMigrations create the table of used one-time form tokens (both dialects). A token
// belongs to an admin session and goes with it (sign-out, timeout, password change).
var FormMigrations = []pgdb.Migration{{Version: 1, SQL: `
CREATE TABLE IF NOT EXISTS console.admin_forms (
	token TEXT NOT NULL PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES console.admin_sessions (id) ON DELETE CASCADE,
	claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	result TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS admin_forms_session_idx ON console.admin_forms (session_id);
`}}

// ClaimForm records that admin session sid submits the form with the one-time token, so that
// the same form submitted again (a reload that posts it again, a second click) is refused. A
// token claimed before is ErrFormUsed, with the result FinishForm recorded for it ("" while the
// first submission is still running, or when it recorded none). Tokens are as long-lived as
// their admin session.
func (s *Store) ClaimForm(ctx context.Context, sid, token string) (prior string, err error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO console.admin_forms (token, session_id) VALUES ($1, $2)
		ON CONFLICT (token) DO NOTHING`, token, sid)
	if err != nil {
		return "", dbErr("claim form", err)
	}
	if tag.RowsAffected() == 1 {
		return "", nil
	}
	err = s.pool.QueryRow(ctx, `SELECT result FROM console.admin_forms WHERE token = $1`, token).Scan(&prior)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", dbErr("claim form", err)
	}
	return prior, fmt.Errorf("admins: %w", ErrFormUsed)
}

// FinishForm records what the submission of a claimed form did, for ClaimForm to tell a
// repeated submission.
func (s *Store) FinishForm(ctx context.Context, token, result string) error {
	_, err := s.pool.Exec(ctx, `UPDATE console.admin_forms SET result = $2 WHERE token = $1`, token, result)
	return dbErr("finish form", err)
}

// ReleaseForm forgets a claim whose submission changed nothing (it was refused), so that the
// same form can be sent again once corrected.
func (s *Store) ReleaseForm(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM console.admin_forms WHERE token = $1 AND result = ''`, token)
	return dbErr("release form", err)
}
