// Package actions is the one place an audited action runs: the change and its audit row commit
// in one transaction (pgdb.RunTx, retried as a whole on serialization failures, in both
// dialects), or neither does. The web console, the command line and later the API call these
// methods; nothing else writes sessions on an actor's behalf.
//
// If the audit row cannot be written, the action does not happen: the error wraps
// ErrNotRecorded, and nothing was changed.
package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
)

// ErrNotRecorded means the audit log could not record an action, so the action was not
// carried out (its transaction was rolled back). It is audit.ErrNotRecorded, which the admin
// and token stores return too.
var ErrNotRecorded = audit.ErrNotRecorded

// NotRecordedError carries the audit log's failure (audit.NotRecordedError).
type NotRecordedError = audit.NotRecordedError

// Kind is what sort of actor acts.
type Kind string

// The kinds of actor. Only Admin and CLI act today; the others are for sign-in through OpenID
// Connect, API tokens and the console's own policy enforcement.
const (
	Admin  Kind = "admin"  // a console admin signed in with a password: recorded as the admin name
	CLI    Kind = "cli"    // the command line: cli:<OS account>
	OIDC   Kind = "oidc"   // an admin signed in through OpenID Connect: oidc:<subject>
	Token  Kind = "token"  // an API token: token:<name>
	Policy Kind = "policy" // the console's policy enforcement: policy, or policy:<rule>
)

// Actor is who acts, as the audit log names them.
type Actor struct {
	Kind Kind
	// Name is the admin name, OS account, subject, token name or policy rule.
	Name string
	// RemoteAddr is the client address the action came from ("" for the CLI and policy).
	RemoteAddr string
}

// AuditName is the actor as the audit log's admin column holds it: the admin name for Admin,
// kind:name for the others (the bare kind when Name is empty).
func (a Actor) AuditName() string {
	switch {
	case a.Kind == Admin || a.Kind == "":
		return a.Name
	case a.Name == "":
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + a.Name
}

// AuditInfo is what the console writes into "auditInfo" of a session it issues, so that the
// cluster's own table says where the session came from: "console alice: ticket 42" for an
// admin, "cli ops: restore test" for the command line, kind and name for the other actors; no
// colon and no reason when none was given.
func (a Actor) AuditInfo(reason string) string {
	var s string
	switch a.Kind {
	case Admin, "":
		s = "console " + a.Name
	default:
		s = string(a.Kind) + " " + a.Name
	}
	if reason != "" {
		s += ": " + reason
	}
	return s
}

// MaxReason bounds a reason, in bytes.
const MaxReason = 500

// ErrReasonRequired: the service requires a reason for issuing (RequireReason) and none was
// given.
var ErrReasonRequired = errors.New("a reason is required")

// ErrBadReason: the reason is not one line of printable text, or longer than MaxReason.
var ErrBadReason = errors.New("invalid reason")

// CheckReason reports whether reason can be recorded: one line of printable text (trimmed),
// at most MaxReason bytes, and present when the service requires one.
func (s *Service) CheckReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		if s.requireReason {
			return ErrReasonRequired
		}
		return nil
	case len(reason) > MaxReason:
		return fmt.Errorf("%w: keep it to %d bytes", ErrBadReason, MaxReason)
	case !utf8.ValidString(reason) || strings.IndexFunc(reason, func(r rune) bool { return unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("%w: use one line of text, without control characters", ErrBadReason)
	}
	return nil
}

// RequireReason makes Issue refuse a request without a reason (--require-reason).
func (s *Service) RequireReason(on bool) { s.requireReason = on }

// ReasonRequired reports whether Issue requires a reason.
func (s *Service) ReasonRequired() bool { return s.requireReason }

// Note is what an actor may say about an action: both optional.
type Note struct {
	// Reason is why, in the actor's words; recorded in the audit row.
	Reason string
	// Detail says how the action was asked for ("auth-session logout"); recorded too.
	Detail string
}

// IssueRequest asks for a session.
type IssueRequest struct {
	User string
	TTL  time.Duration
	Note
}

// Service runs audited actions. It is safe for concurrent use.
type Service struct {
	sessions      *sessionstore.Store
	log           *audit.Store
	requireReason bool
	committed     func(by Actor, e audit.Entry)
}

// OnCommit sets fn to be called after each action commits, with its actor and audit entry
// (for the metrics: sessions issued and revoked). Set it before the service is used.
func (s *Service) OnCommit(fn func(by Actor, e audit.Entry)) { s.committed = fn }

// New returns the service over the session store and the audit log (on the same database).
func New(sessions *sessionstore.Store, log *audit.Store) *Service {
	return &Service{sessions: sessions, log: log}
}

// Do runs change and then records the entry it returns, in one transaction: the entry's
// Admin and RemoteAddr come from by. change may run more than once (see pgdb.RunTx), so it must
// act only through t. It is the building block of the actions below and of actions kept
// elsewhere (an admin's sign-in writes its session row through t.DB()).
func (s *Service) Do(ctx context.Context, by Actor, change func(t *sessionstore.Tx) (audit.Entry, error)) error {
	return s.DoOn(ctx, nil, by, change)
}

// DoOn is Do in a transaction of run (a leased job's, whose commit needs the lease; nil: the
// store's own).
func (s *Service) DoOn(ctx context.Context, run sessionstore.TxRunner, by Actor, change func(t *sessionstore.Tx) (audit.Entry, error)) error {
	if run == nil {
		run = s.sessions.RunTx
	}
	var done audit.Entry
	err := s.sessions.InTxOn(ctx, run, func(t *sessionstore.Tx) error {
		e, err := change(t)
		if err != nil {
			return err
		}
		done = e
		return s.record(ctx, t.DB(), by, e)
	})
	if err == nil {
		s.notify(by, done)
	}
	return err
}

func (s *Service) notify(by Actor, e audit.Entry) {
	if s.committed != nil {
		s.committed(by, e)
	}
}

func (s *Service) record(ctx context.Context, tx pgx.Tx, by Actor, e audit.Entry) error {
	e.Admin, e.RemoteAddr = by.AuditName(), by.RemoteAddr
	if err := s.log.RecordIn(ctx, tx, e); err != nil {
		return &NotRecordedError{Err: err}
	}
	return nil
}

// Record writes an entry whose action changes nothing else (a failed sign-in).
func (s *Service) Record(ctx context.Context, by Actor, e audit.Entry) error {
	e.Admin, e.RemoteAddr = by.AuditName(), by.RemoteAddr
	if err := s.log.Record(ctx, e); err != nil {
		return &NotRecordedError{Err: err}
	}
	return nil
}

// Issue issues a session (sessionstore.Tx.Issue: its errors) and records it, with the reason
// in the audit row and, with who issued it, in the session's "auditInfo" (Actor.AuditInfo). A
// missing reason the service requires is ErrReasonRequired; a reason it cannot record,
// ErrBadReason.
func (s *Service) Issue(ctx context.Context, by Actor, r IssueRequest) (sessionstore.Issued, error) {
	r.Reason = strings.TrimSpace(r.Reason)
	if err := s.CheckReason(r.Reason); err != nil {
		return sessionstore.Issued{}, err
	}
	var out sessionstore.Issued
	err := s.Do(ctx, by, func(t *sessionstore.Tx) (audit.Entry, error) {
		is, err := t.Issue(ctx, r.User, r.TTL, by.AuditInfo(r.Reason))
		if err != nil {
			return audit.Entry{}, err
		}
		out = is
		exp := is.ExpiresAt
		return audit.Entry{Action: audit.Issue, Target: is.Username, SessionID: is.ID, ExpiresAt: &exp,
			Reason: r.Reason, Detail: r.Detail}, nil
	})
	if err != nil {
		return sessionstore.Issued{}, err
	}
	return out, nil
}

// RevokeUser revokes every session of user and returns every session row of that user, as
// `auth-session logout` prints them (sessionstore.Tx.RevokeUser). The audit row counts the
// sessions it revoked now; it is written even when that is none.
func (s *Service) RevokeUser(ctx context.Context, by Actor, user string, n Note) ([]sessionstore.Revocation, error) {
	var out []sessionstore.Revocation
	err := s.Do(ctx, by, func(t *sessionstore.Tx) (audit.Entry, error) {
		revs, err := t.RevokeUser(ctx, user)
		if err != nil {
			return audit.Entry{}, err
		}
		out = revs
		var newly int64
		for _, r := range revs {
			if r.Newly {
				newly++
			}
		}
		return audit.Entry{Action: audit.RevokeAll, Target: s.sessions.Username(user), Count: newly,
			Reason: n.Reason, Detail: n.Detail}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EndUserSessions revokes the sessions of user not revoked yet and returns how many it revoked
// and how many of those were active (sessionstore.Tx.EndUserSessions); recorded like
// RevokeUser.
func (s *Service) EndUserSessions(ctx context.Context, by Actor, user string, n Note) (revoked, active int64, err error) {
	err = s.Do(ctx, by, func(t *sessionstore.Tx) (audit.Entry, error) {
		r, a, err := t.EndUserSessions(ctx, user)
		if err != nil {
			return audit.Entry{}, err
		}
		revoked, active = r, a
		return audit.Entry{Action: audit.RevokeAll, Target: s.sessions.Username(user), Count: r,
			Reason: n.Reason, Detail: n.Detail}, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return revoked, active, nil
}

// RevokeSession revokes one session (sessionstore.Tx.RevokeSession). A session that was
// revoked already is returned with Newly false, and nothing is recorded: nothing changed.
func (s *Service) RevokeSession(ctx context.Context, by Actor, id int64, n Note) (sessionstore.Revocation, error) {
	var out sessionstore.Revocation
	var e audit.Entry
	err := s.sessions.InTx(ctx, func(t *sessionstore.Tx) error {
		r, err := t.RevokeSession(ctx, id)
		if err != nil {
			return err
		}
		out = r
		if !r.Newly {
			return nil
		}
		e = audit.Entry{Action: audit.Revoke, Target: r.Username, SessionID: r.ID, Count: 1, Reason: n.Reason, Detail: n.Detail}
		return s.record(ctx, t.DB(), by, e)
	})
	if err != nil {
		return sessionstore.Revocation{}, err
	}
	if out.Newly {
		s.notify(by, e)
	}
	return out, nil
}
