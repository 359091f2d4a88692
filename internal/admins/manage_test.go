package admins

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
)

// auditActions returns the actions recorded so far, oldest first.
func auditActions(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT action || ' ' || admin || ' ' || target FROM console.audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		rows.Scan(&a)
		out = append(out, a)
	}
	return out
}

func TestRolesAndLastOwner(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, time.Minute)
	if _, err := s.AddFirst(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	first, err := s.Get(ctx, "admin")
	if err != nil || first.Role != Owner || first.Method != MethodPassword {
		t.Fatalf("first admin = %+v, %v; want an owner", first, err)
	}
	// The only owner can be neither demoted nor removed, and nothing is written.
	if err := s.SetRole(ctx, "admin", Operator, cli); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("demote last owner: %v", err)
	}
	if err := s.Remove(ctx, "admin", cli); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("remove last owner: %v", err)
	}
	if got := auditActions(t, s); len(got) != 0 {
		t.Fatalf("refused changes were audited as done: %q", got)
	}
	if _, err := s.Create(ctx, NewAdmin{Name: "bob", Role: Operator, Password: "bob's password!"}, cli); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, NewAdmin{Name: "eve", Role: "superuser", Password: "eve's password!"}, cli); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	// A role change shows at the next check, even through this process's cache.
	sid, err := s.StartSession(ctx, "bob", SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := s.CheckSession(ctx, sid, time.Hour, time.Hour); id.Role != Operator {
		t.Fatalf("role = %q", id.Role)
	}
	if err := s.SetRole(ctx, "bob", Owner, cli); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.CheckSession(ctx, sid, time.Hour, time.Hour); id.Role != Owner {
		t.Fatalf("role after promotion = %q", id.Role)
	}
	// With two owners, one may go.
	if err := s.SetRole(ctx, "admin", Viewer, cli); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "bob", cli); !errors.Is(err, ErrLastOwner) {
		t.Fatalf("remove the remaining owner: %v", err)
	}
	if err := s.SetRole(ctx, "nobody", Owner, cli); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown admin: %v", err)
	}
	want := []string{"admin-add cli:test bob", "admin-role cli:test bob", "admin-role cli:test admin"}
	if got := auditActions(t, s); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit = %q, want %q", got, want)
	}
}

// Two owners demoting each other at the same time leave one owner.
func TestLastOwnerConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	for i := 0; i < 5; i++ {
		for _, n := range []string{"a", "b"} {
			s.Remove(ctx, n, cli)
		}
		s.pool.Exec(ctx, `DELETE FROM console.admins`)
		for _, n := range []string{"a", "b"} {
			if err := s.Add(ctx, n, "long enough password", Owner); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 0 {
					errs[i] = s.SetRole(ctx, n, Viewer, cli)
				} else {
					errs[i] = s.Remove(ctx, n, cli)
				}
			}()
		}
		wg.Wait()
		var owners int
		s.pool.QueryRow(ctx, `SELECT count(*) FROM console.admins WHERE role = 'owner'`).Scan(&owners)
		if owners != 1 {
			t.Fatalf("round %d: %d owners left (errors %v)", i, owners, errs)
		}
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrLastOwner) {
			t.Fatalf("round %d: errors %v, want exactly one ErrLastOwner", i, errs)
		}
	}
}

func TestOneTimePasswordAndLinks(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	s.Add(ctx, "admin", "the owner's password", Owner)
	otp, err := s.Create(ctx, NewAdmin{Name: "olga", Role: Viewer, Credential: OneTimePassword}, cli)
	if err != nil || len(otp) < MinPasswordLength {
		t.Fatalf("one-time password %q, %v", otp, err)
	}
	if err := s.Authenticate(ctx, "olga", otp); err != nil {
		t.Fatal(err)
	}
	sid, _ := s.StartSession(ctx, "olga", SessionMeta{RemoteAddr: "192.0.2.1", UserAgent: "Test\u202eUA\x00"})
	if id, _ := s.CheckSession(ctx, sid, time.Hour, time.Hour); !id.MustChangePassword {
		t.Fatal("one-time password does not ask for a new one")
	}
	// Its own change needs the current password and keeps only the current session.
	other, _ := s.StartSession(ctx, "olga", SessionMeta{})
	if err := s.ChangeOwnPassword(ctx, "olga", "wrong password", "olga's own password", sid, cli); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong current password: %v", err)
	}
	if err := s.ChangeOwnPassword(ctx, "olga", otp, "olga's own password", sid, audit.Entry{Admin: "olga"}); err != nil {
		t.Fatal(err)
	}
	if id, err := s.CheckSession(ctx, sid, time.Hour, time.Hour); err != nil || id.MustChangePassword {
		t.Fatalf("current session after the change: %+v, %v", id, err)
	}
	if _, err := s.CheckSession(ctx, other, time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("other session survived a password change: %v", err)
	}
	list, _ := s.Sessions(ctx, "olga", time.Hour, time.Hour)
	if len(list) != 1 || list[0].Handle != Handle(sid) || list[0].RemoteAddr != "192.0.2.1" || list[0].UserAgent != "Test\u202eUA\uFFFD" {
		t.Fatalf("sessions = %+v", list)
	}

	// A set-password link: nobody knows the password until it is used, once.
	code, err := s.Create(ctx, NewAdmin{Name: "lena", Role: Operator, Credential: SetPasswordLink}, cli)
	if err != nil || len(code) < 40 {
		t.Fatalf("link code %q, %v", code, err)
	}
	if who, err := s.LinkAdmin(ctx, code); err != nil || who != "lena" {
		t.Fatalf("LinkAdmin = %q, %v", who, err)
	}
	if _, err := s.LinkAdmin(ctx, code+"x"); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("tampered code: %v", err)
	}
	if _, err := s.SetPasswordByLink(ctx, code, "short", cli); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if who, err := s.SetPasswordByLink(ctx, code, "lena's own password", cli); err != nil || who != "lena" {
		t.Fatalf("SetPasswordByLink = %q, %v", who, err)
	}
	if err := s.Authenticate(ctx, "lena", "lena's own password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPasswordByLink(ctx, code, "another password", cli); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("used code: %v", err)
	}
	// Expired codes do not work.
	code, _ = s.ResetPassword(ctx, "lena", SetPasswordLink, time.Hour, cli)
	if err := s.Authenticate(ctx, "lena", "lena's own password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password after a reset: %v", err)
	}
	s.pool.Exec(ctx, `UPDATE console.admin_password_links SET expires_at = now() - INTERVAL '1 second'`)
	if _, err := s.SetPasswordByLink(ctx, code, "another password", cli); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("expired code: %v", err)
	}
	// A reset to a one-time password ends the admin's sessions.
	lsid, _ := s.StartSession(ctx, "olga", SessionMeta{})
	otp, err = s.ResetPassword(ctx, "olga", OneTimePassword, 0, cli)
	if err != nil || s.Authenticate(ctx, "olga", otp) != nil {
		t.Fatalf("reset: %q, %v", otp, err)
	}
	if _, err := s.CheckSession(ctx, lsid, time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session survived a reset: %v", err)
	}
	if n, err := s.EndSessions(ctx, "olga", cli); err != nil || n != 0 {
		t.Fatalf("EndSessions = %d, %v", n, err)
	}
	if _, err := s.EndSessions(ctx, "nobody", cli); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EndSessions unknown: %v", err)
	}
}

func TestOIDCAdmins(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, time.Minute)
	s.Add(ctx, "admin", "the owner's password", Owner)
	id := OIDCIdentity{Key: "https://idp.example sub-1", Name: "oidc:ann@example.com", Fallback: "oidc:sub-1", Role: Operator}
	name, sid, err := s.SignInOIDC(ctx, id, SessionMeta{UserAgent: "browser"}, audit.Entry{RemoteAddr: "192.0.2.9"})
	if err != nil || name != "oidc:ann@example.com" {
		t.Fatalf("SignInOIDC = %q, %v", name, err)
	}
	who, err := s.CheckSession(ctx, sid, time.Hour, time.Hour)
	if err != nil || who.Admin != name || who.Role != Operator || who.Method != MethodOIDC {
		t.Fatalf("CheckSession = %+v, %v", who, err)
	}
	// No password, no password changes, no role changes here.
	if err := s.Authenticate(ctx, name, ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("password sign-in of an SSO admin: %v", err)
	}
	if err := s.SetRole(ctx, name, Owner, cli); !errors.Is(err, ErrSSO) {
		t.Fatalf("SetRole of an SSO admin: %v", err)
	}
	if _, err := s.ResetPassword(ctx, name, OneTimePassword, 0, cli); !errors.Is(err, ErrSSO) {
		t.Fatalf("ResetPassword of an SSO admin: %v", err)
	}
	// The role is read again at the next sign-in; the name stays.
	id.Role, id.Name = Viewer, "oidc:ann@new.example"
	name2, sid2, err := s.SignInOIDC(ctx, id, SessionMeta{}, audit.Entry{})
	if err != nil || name2 != name {
		t.Fatalf("second SignInOIDC = %q, %v", name2, err)
	}
	if who, _ := s.CheckSession(ctx, sid, time.Hour, time.Hour); who.Role != Viewer {
		t.Fatalf("old session's role after re-sign-in = %q (cache must follow)", who.Role)
	}
	// Someone else with the same e-mail gets the subject-based name.
	other := OIDCIdentity{Key: "https://idp.example sub-2", Name: "oidc:ann@example.com", Fallback: "oidc:sub-2", Role: Owner}
	if n, _, err := s.SignInOIDC(ctx, other, SessionMeta{}, audit.Entry{}); err != nil || n != "oidc:sub-2" {
		t.Fatalf("colliding name: %q, %v", n, err)
	}
	// A refused sign-in removes the admin and ends its sessions.
	if err := s.RefuseOIDC(ctx, id.Key, audit.Entry{Admin: name, Detail: "no role"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckSession(ctx, sid2, time.Hour, time.Hour); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session of a refused admin: %v", err)
	}
	if _, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused admin still listed: %v", err)
	}
	want := []string{"sign-in oidc:ann@example.com ", "sign-in oidc:ann@example.com ", "sign-in oidc:sub-2 ", "sign-in-refused oidc:ann@example.com "}
	if got := auditActions(t, s); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit = %q, want %q", got, want)
	}
}

// Admins made before roles existed could do everything: the migration makes them owners.
func TestMigrationMakesOwners(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	s.pool.Exec(ctx, `DELETE FROM console.schema_migrations WHERE component = 'admins' AND version > 1`)
	s.pool.Exec(ctx, `ALTER TABLE console.admin_sessions DROP COLUMN method, DROP COLUMN remote_addr, DROP COLUMN user_agent`)
	s.pool.Exec(ctx, `DROP TABLE console.admin_password_links`)
	if _, err := s.pool.Exec(ctx, `ALTER TABLE console.admins DROP COLUMN role, DROP COLUMN method, DROP COLUMN oidc_subject,
		DROP COLUMN must_change_password, DROP COLUMN last_sign_in`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO console.admins (name, password_hash) VALUES ('old', 'x')`); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, s.pool, s.flavor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := s2.Get(ctx, "old"); err != nil || a.Role != Owner || a.Method != MethodPassword {
		t.Fatalf("migrated admin = %+v, %v", a, err)
	}
}

// A change whose audit row cannot be written does not happen.
func TestNotRecordedChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, 0)
	s.Add(ctx, "admin", "the owner's password", Owner)
	s.Add(ctx, "bob", "bob's password!", Viewer)
	if _, err := s.pool.Exec(ctx, `ALTER TABLE console.audit_log ADD CONSTRAINT no_rows CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRole(ctx, "bob", Owner, cli); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("SetRole without its audit row: %v", err)
	}
	if err := s.Remove(ctx, "bob", cli); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("Remove without its audit row: %v", err)
	}
	if a, err := s.Get(ctx, "bob"); err != nil || a.Role != Viewer {
		t.Fatalf("bob after refused changes: %+v, %v", a, err)
	}
}
