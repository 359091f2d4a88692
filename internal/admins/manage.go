package admins

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
)

// rolesMigration adds roles, sign-in methods (password or single sign-on), one-time
// passwords, the last sign-in, what the admin's own session list shows, and one-time
// set-password links. Admins that existed before roles could do everything: they become
// owners.
var rolesMigration = pgdb.Migration{Version: 3, SQL: `
ALTER TABLE console.admins ADD COLUMN IF NOT EXISTS role TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE console.admins ADD COLUMN IF NOT EXISTS method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE console.admins ADD COLUMN IF NOT EXISTS oidc_subject TEXT NULL;
ALTER TABLE console.admins ADD COLUMN IF NOT EXISTS must_change_password BOOL NOT NULL DEFAULT false;
ALTER TABLE console.admins ADD COLUMN IF NOT EXISTS last_sign_in TIMESTAMPTZ NULL;
ALTER TABLE console.admin_sessions ADD COLUMN IF NOT EXISTS method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE console.admin_sessions ADD COLUMN IF NOT EXISTS remote_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE console.admin_sessions ADD COLUMN IF NOT EXISTS user_agent TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS console.admin_password_links (
	code_hash BYTEA NOT NULL PRIMARY KEY,
	admin TEXT NOT NULL REFERENCES console.admins (name) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS admin_password_links_admin_idx ON console.admin_password_links (admin);
`}

// rolesIndexMigration indexes the columns rolesMigration added (a step of its own: CockroachDB
// runs a step's statements as one implicit transaction).
var rolesIndexMigration = pgdb.Migration{Version: 4, SQL: `
CREATE UNIQUE INDEX IF NOT EXISTS admins_oidc_subject_idx ON console.admins (oidc_subject);
CREATE INDEX IF NOT EXISTS admins_role_idx ON console.admins (role);
`}

// DefaultLinkTTL is how long a set-password link works by default.
const DefaultLinkTTL = 24 * time.Hour

// Credential is how a new (or reset) admin gets its first password.
type Credential int

const (
	// OneTimePassword: a random password is made and returned; the admin must replace it at
	// its first sign-in.
	OneTimePassword Credential = iota + 1
	// SetPasswordLink: a one-time code for a set-password link is made and returned; until it
	// is used nobody knows the admin's password.
	SetPasswordLink
)

// NewAdmin describes an admin to create.
type NewAdmin struct {
	Name string
	Role Role
	// Password is the password when Credential is 0 (the command line asks for one).
	Password   string
	Credential Credential
	// LinkTTL is how long a set-password link works (0: DefaultLinkTTL).
	LinkTTL time.Duration
}

// Create makes an admin and writes by (an admin-add entry) in the same transaction. It returns
// the one-time password or the set-password code that nc.Credential asked for ("" for a given
// password). A taken name is ErrExists, a bad name, role or password ErrInvalid.
func (s *Store) Create(ctx context.Context, nc NewAdmin, by audit.Entry) (string, error) {
	return s.create(ctx, nc, &by)
}

func (s *Store) create(ctx context.Context, nc NewAdmin, by *audit.Entry) (string, error) {
	if err := CheckName(nc.Name); err != nil {
		return "", err
	}
	if !nc.Role.Valid() {
		return "", fmt.Errorf("%w: unknown role %q", ErrInvalid, nc.Role)
	}
	password, must, secret := nc.Password, false, ""
	switch nc.Credential {
	case OneTimePassword:
		password, must = RandomPassword(), true
		secret = password
	case SetPasswordLink:
		password = RandomPassword() // known to nobody
	default:
		if err := CheckPassword(password); err != nil {
			return "", err
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("admins: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO console.admins (name, password_hash, role, method, must_change_password)
			VALUES ($1, $2, $3, 'password', $4) ON CONFLICT (name) DO NOTHING`, nc.Name, string(hash), string(nc.Role), must)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("admins: %q: %w", nc.Name, ErrExists)
		}
		if nc.Credential == SetPasswordLink {
			if secret, err = newLink(ctx, tx, nc.Name, nc.LinkTTL); err != nil {
				return err
			}
		}
		if by == nil {
			return nil
		}
		e := *by
		e.Action, e.Target, e.Detail = audit.AdminAdd, nc.Name, "role "+string(nc.Role)+credentialDetail(nc.Credential)
		return audit.InsertOrRollBack(ctx, tx, e)
	})
	if err != nil {
		return "", dbErr("add", err)
	}
	return secret, nil
}

func credentialDetail(c Credential) string {
	switch c {
	case OneTimePassword:
		return ", one-time password"
	case SetPasswordLink:
		return ", set-password link"
	}
	return ""
}

// Get returns the admin name. An unknown name is ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Admin, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+adminColumns+` FROM console.admins WHERE name = $1`, name)
	if err != nil {
		return Admin{}, dbErr("get", err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAdmin)
	if errors.Is(err, pgx.ErrNoRows) {
		return Admin{}, fmt.Errorf("admins: %q: %w", name, ErrNotFound)
	}
	return a, dbErr("get", err)
}

// List returns every admin, by name.
func (s *Store) List(ctx context.Context) ([]Admin, error) {
	var out []Admin
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // every row
		rows, err := q.Query(ctx, `SELECT `+adminColumns+` FROM console.admins ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAdmin)
		return err
	})
	return out, dbErr("list", err)
}

const adminColumns = `name, role, method, must_change_password, created_at, updated_at, last_sign_in`

func scanAdmin(r pgx.CollectableRow) (Admin, error) {
	var (
		a            Admin
		role, method string
	)
	err := r.Scan(&a.Name, &role, &method, &a.MustChangePassword, &a.CreatedAt, &a.UpdatedAt, &a.LastSignIn)
	a.Role, a.Method = Role(role), Method(method)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	if a.LastSignIn != nil {
		t := a.LastSignIn.UTC()
		a.LastSignIn = &t
	}
	return a, err
}

// locked is an admin row locked for update.
type locked struct {
	role   Role
	method Method
}

// lockAdmin locks the row of name; an unknown name is ErrNotFound.
func lockAdmin(ctx context.Context, tx pgx.Tx, name string) (locked, error) {
	var l locked
	var role, method string
	err := tx.QueryRow(ctx, `SELECT role, method FROM console.admins WHERE name = $1 FOR UPDATE`, name).Scan(&role, &method)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("admins: %q: %w", name, ErrNotFound)
	}
	l.role, l.method = Role(role), Method(method)
	return l, err
}

// lockOwners locks every owner's row and returns how many there are, so that two owners
// demoting each other at once cannot leave none: the second waits and then counts one.
func lockOwners(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `SELECT name FROM console.admins WHERE role = 'owner' ORDER BY name FOR UPDATE`)
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return len(names), err
}

// lockOwnersAnd locks every owner's row, then name's, and returns name's and how many owners
// there are (the last-owner rule's view).
func lockOwnersAnd(ctx context.Context, tx pgx.Tx, name string) (locked, int, error) {
	owners, err := lockOwners(ctx, tx)
	if err != nil {
		return locked{}, 0, err
	}
	l, err := lockAdmin(ctx, tx, name)
	return l, owners, err
}

// SetRole changes an admin's role and writes by (an admin-role entry) in the same transaction;
// it takes effect at the admin's next request. Demoting the last owner is ErrLastOwner, an
// admin that signs in by single sign-on ErrSSO (its role is the identity provider's), an
// unknown name ErrNotFound.
func (s *Store) SetRole(ctx context.Context, name string, role Role, by audit.Entry) error {
	if !role.Valid() {
		return fmt.Errorf("%w: unknown role %q", ErrInvalid, role)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		l, owners, err := lockOwnersAnd(ctx, tx, name)
		if err != nil {
			return err
		}
		switch {
		case l.method == MethodOIDC:
			return fmt.Errorf("admins: %q: %w: its role comes from the identity provider at each sign-in", name, ErrSSO)
		case l.role == Owner && role != Owner && owners <= 1:
			return fmt.Errorf("admins: %q: %w", name, ErrLastOwner)
		}
		if _, err := tx.Exec(ctx, `UPDATE console.admins SET role = $2, updated_at = now() WHERE name = $1`, name, string(role)); err != nil {
			return err
		}
		by.Action, by.Target, by.Detail = audit.AdminRole, name, string(l.role)+" -> "+string(role)
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return dbErr("set role", err)
	}
	s.forgetAdmin(name)
	return nil
}

// Remove deletes an admin with its sessions and writes by (an admin-remove entry) in the same
// transaction. Removing the last owner is ErrLastOwner, an unknown name ErrNotFound.
func (s *Store) Remove(ctx context.Context, name string, by audit.Entry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		l, owners, err := lockOwnersAnd(ctx, tx, name)
		if err != nil {
			return err
		}
		if l.role == Owner && owners <= 1 {
			return fmt.Errorf("admins: %q: %w", name, ErrLastOwner)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM console.admins WHERE name = $1`, name); err != nil {
			return err
		}
		by.Action, by.Target, by.Detail = audit.AdminRemove, name, string(l.role)
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return dbErr("remove", err)
	}
	s.forgetAdmin(name)
	return nil
}

// SetPassword gives a password admin a new password it chose (not a one-time one), ends its
// sessions and writes by (a password-change entry) in the same transaction. An unknown name
// is ErrNotFound, an admin that signs in by single sign-on ErrSSO.
func (s *Store) SetPassword(ctx context.Context, name, password string, by audit.Entry) error {
	return s.storePassword(ctx, name, password, "", by)
}

// storePassword sets name's own new password, ends its sessions except keep and writes by (a
// password-change entry) in the same transaction.
func (s *Store) storePassword(ctx context.Context, name, password, keep string, by audit.Entry) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return fmt.Errorf("admins: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := setPasswordTx(ctx, tx, name, hash, false, keep); err != nil {
			return err
		}
		by.Action, by.Target = audit.PasswordChange, name
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return dbErr("set password", err)
	}
	s.forgetAdmin(name)
	return nil
}

// setPasswordTx stores hash as name's password, drops its set-password links and ends its
// sessions except keep.
func setPasswordTx(ctx context.Context, tx pgx.Tx, name string, hash []byte, must bool, keep string) error {
	l, err := lockAdmin(ctx, tx, name)
	if err != nil {
		return err
	}
	if l.method != MethodPassword {
		return fmt.Errorf("admins: %q: %w: it has no password here", name, ErrSSO)
	}
	if _, err := tx.Exec(ctx, `UPDATE console.admins SET password_hash = $2, must_change_password = $3, updated_at = now()
		WHERE name = $1`, name, string(hash), must); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM console.admin_password_links WHERE admin = $1`, name); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DELETE FROM console.admin_sessions WHERE admin = $1 AND id <> $2`, name, keep)
	return err
}

// ResetPassword replaces a password admin's password by a one-time password or a
// set-password link (cred), ends its sessions and writes by (an admin-password-reset entry) in
// the same transaction. It returns the one-time password or the link's code. An unknown name
// is ErrNotFound, an admin that signs in by single sign-on ErrSSO.
func (s *Store) ResetPassword(ctx context.Context, name string, cred Credential, linkTTL time.Duration, by audit.Entry) (string, error) {
	if cred != OneTimePassword && cred != SetPasswordLink {
		return "", fmt.Errorf("%w: a reset gives a one-time password or a set-password link", ErrInvalid)
	}
	password := RandomPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("admins: %w", err)
	}
	secret := ""
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := setPasswordTx(ctx, tx, name, hash, cred == OneTimePassword, ""); err != nil {
			return err
		}
		secret = password
		if cred == SetPasswordLink {
			if secret, err = newLink(ctx, tx, name, linkTTL); err != nil {
				return err
			}
		}
		by.Action, by.Target, by.Detail = audit.AdminPasswordReset, name, credentialDetail(cred)[2:]
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return "", dbErr("reset password", err)
	}
	s.forgetAdmin(name)
	return secret, nil
}

// ChangeOwnPassword changes the password of the admin signed in with session keep, after
// checking its current password (wrong: ErrBadCredentials, nothing changed), ends its other
// sessions and writes by (a password-change entry) in the same transaction.
func (s *Store) ChangeOwnPassword(ctx context.Context, name, current, password, keep string, by audit.Entry) error {
	if err := s.Authenticate(ctx, name, current); err != nil {
		return err
	}
	if password == current {
		return fmt.Errorf("%w: the new password must differ from the current one", ErrInvalid)
	}
	return s.storePassword(ctx, name, password, keep, by)
}

// newLink stores a new set-password code for admin (replacing older ones) and returns it.
func newLink(ctx context.Context, tx pgx.Tx, admin string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	b := make([]byte, 32)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	if _, err := tx.Exec(ctx, `DELETE FROM console.admin_password_links WHERE admin = $1`, admin); err != nil {
		return "", err
	}
	_, err := tx.Exec(ctx, `INSERT INTO console.admin_password_links (code_hash, admin, expires_at)
		VALUES ($1, $2, now() + $3::INT8 * INTERVAL '1 microsecond')`, linkHash(code), admin, ttl.Microseconds())
	return code, err
}

func linkHash(code string) []byte {
	sum := sha256.Sum256([]byte(code))
	return sum[:]
}

// LinkAdmin returns the admin a set-password code is for; unknown, used or expired codes are
// ErrLinkInvalid.
func (s *Store) LinkAdmin(ctx context.Context, code string) (string, error) {
	var admin string
	err := s.pool.QueryRow(ctx, `SELECT admin FROM console.admin_password_links WHERE code_hash = $1 AND expires_at > now()`,
		linkHash(code)).Scan(&admin)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrLinkInvalid
	}
	return admin, dbErr("link", err)
}

// SetPasswordByLink uses a set-password code once: it sets the password of the code's admin,
// ends that admin's sessions and writes by (a password-set entry, by.Admin filled with the
// admin) in the same transaction, and returns the admin. An unknown, used or expired code is
// ErrLinkInvalid and changes nothing.
func (s *Store) SetPasswordByLink(ctx context.Context, code, password string, by audit.Entry) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	if err != nil {
		return "", fmt.Errorf("admins: %w", err)
	}
	var admin string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `DELETE FROM console.admin_password_links WHERE code_hash = $1 AND expires_at > now()
			RETURNING admin`, linkHash(code)).Scan(&admin)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLinkInvalid
		}
		if err != nil {
			return err
		}
		if err := setPasswordTx(ctx, tx, admin, hash, false, ""); err != nil {
			return err
		}
		by.Admin, by.Action, by.Target = admin, audit.PasswordSet, admin
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return "", dbErr("set password", err)
	}
	s.forgetAdmin(admin)
	return admin, nil
}

// OIDCIdentity is who the OpenID Provider says signed in.
type OIDCIdentity struct {
	// Key identifies the person for good: the issuer and the subject.
	Key string
	// Name is the admin name to use at the first sign-in ("oidc:<email or subject>"); Fallback
	// is used when Name is taken by someone else ("oidc:<subject>").
	Name, Fallback string
	Role           Role
}

// SignInOIDC records a single sign-on: it creates the admin on its first sign-in (named
// id.Name, or id.Fallback if that is taken; the name stays the same afterwards), sets its role
// to id.Role (re-read at each sign-in), starts a session and writes a sign-in entry (by with
// the admin's name) in one transaction. It returns the admin name and the session ID.
func (s *Store) SignInOIDC(ctx context.Context, id OIDCIdentity, m SessionMeta, by audit.Entry) (string, string, error) {
	if !id.Role.Valid() {
		return "", "", fmt.Errorf("%w: unknown role %q", ErrInvalid, id.Role)
	}
	m.Method = MethodOIDC
	var name, sid string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE console.admins SET role = $2, updated_at = now()
			WHERE oidc_subject = $1 RETURNING name`, id.Key, string(id.Role)).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			name = ""
			for _, candidate := range []string{id.Name, id.Fallback} {
				if candidate == "" {
					continue
				}
				tag, err := tx.Exec(ctx, `INSERT INTO console.admins (name, password_hash, role, method, oidc_subject)
					VALUES ($1, '', $2, 'oidc', $3) ON CONFLICT (name) DO NOTHING`, candidate, string(id.Role), id.Key)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 1 {
					name = candidate
					break
				}
			}
			if name == "" {
				return fmt.Errorf("admins: %q: %w", id.Name, ErrExists)
			}
		} else if err != nil {
			return err
		}
		if sid, err = s.StartSessionIn(ctx, tx, name, m); err != nil {
			return err
		}
		by.Admin, by.Action = name, audit.SignIn
		by.Detail = "oidc, role " + string(id.Role)
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return "", "", dbErr("sign in", err)
	}
	s.forgetAdmin(name)
	return name, sid, nil
}

// RefuseOIDC records a single sign-on that maps to no role: the admin of key, if it exists,
// is removed with its sessions (it may no longer sign in), and by (a sign-in-refused entry)
// is written, in one transaction.
func (s *Store) RefuseOIDC(ctx context.Context, key string, by audit.Entry) error {
	var name string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `DELETE FROM console.admins WHERE oidc_subject = $1 RETURNING name`, key).Scan(&name)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		by.Action = audit.SignInRefused
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return dbErr("refuse", err)
	}
	if name != "" {
		s.forgetAdmin(name)
	}
	return nil
}
