package admins

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
)

// SessionMeta describes the browser a session starts in, for the admin's own list of its
// sessions.
type SessionMeta struct {
	Method     Method
	RemoteAddr string
	UserAgent  string // cut to MaxUserAgent bytes
}

// MaxUserAgent bounds the stored user agent.
const MaxUserAgent = 256

// Identity is the admin behind a live session, as of the last check.
type Identity struct {
	Admin  string
	Role   Role
	Method Method
	// MustChangePassword: signed in with a one-time password, which must be replaced before
	// anything else.
	MustChangePassword bool
}

type seenEntry struct {
	ident     Identity
	created   time.Time
	confirmed time.Time // last checked by CheckSession (which refreshed the idle clock)
	peeked    time.Time // last checked by PeekSession
	active    time.Time // the last activity known (the database's idle clock)
}

// Session is one of an admin's browser sessions, for listing. Its ID (the secret the admin
// cookie names) is never shown: Handle names it instead.
type Session struct {
	Handle     string
	Method     Method
	CreatedAt  time.Time
	LastSeen   time.Time
	RemoteAddr string
	UserAgent  string
}

// Handle is the public name of a session ID: the start of its SHA-256, in hex.
func Handle(id string) string {
	sum := sha256.Sum256([]byte("admin-session/" + id))
	return hex.EncodeToString(sum[:8])
}

// cleanUserAgent cuts a user agent to MaxUserAgent bytes of valid UTF-8 without NUL bytes
// (what the database stores). Pages show it with templates.ShowName, which writes out
// invisible and bidi characters.
func cleanUserAgent(ua string) string {
	ua = strings.ReplaceAll(strings.ToValidUTF8(ua, "\uFFFD"), "\x00", "\uFFFD")
	for len(ua) > MaxUserAgent {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}

// StartSession records a new browser session for admin, notes the sign-in time, and returns
// the session's random ID. An unknown admin is ErrNotFound.
func (s *Store) StartSession(ctx context.Context, admin string, m SessionMeta) (string, error) {
	var id string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = s.StartSessionIn(ctx, tx, admin, m)
		return err
	})
	return id, err
}

// StartSessionIn is StartSession through q, the transaction that also records the sign-in in
// the audit log.
func (s *Store) StartSessionIn(ctx context.Context, q pgdb.DBTX, admin string, m SessionMeta) (string, error) {
	id := newSessionID()
	if m.Method == "" {
		m.Method = MethodPassword
	}
	tag, err := q.Exec(ctx, `UPDATE console.admins SET last_sign_in = now() WHERE name = $1`, admin)
	if err != nil {
		return "", dbErr("start session", err)
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("admins: %q: %w", admin, ErrNotFound)
	}
	if _, err := q.Exec(ctx, `INSERT INTO console.admin_sessions (id, admin, method, remote_addr, user_agent)
		VALUES ($1, $2, $3, $4, $5)`, id, admin, string(m.Method), m.RemoteAddr, cleanUserAgent(m.UserAgent)); err != nil {
		return "", dbErr("start session", err)
	}
	return id, nil
}

func newSessionID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// The session checks of concurrent requests of one admin session share one database check:
// when a cached answer ages out, every request of that browser (a page and its background
// refreshes, 16 tabs) would otherwise run the same UPDATE of one row at once, each waiting for
// the row lock of the one before (measured: 40 checks of ~15 ms per cache period under load,
// as much PostgreSQL time as the pages themselves). The first request asks the database; the
// others wait for its answer (or give up with their own context). Written here rather than
// with x/sync/singleflight because the in-flight check, the cache and the forgetting of ended
// sessions must change under one mutex: an answer that a sign-out or an admin change overtook
// (gen moved while it ran) is returned to the requests that asked before, but never cached,
// and no request that comes after the change waits for it.

// checkKey names one in-flight check.
type checkKey struct {
	id             string
	peek           bool
	idle, absolute time.Duration
}

// sessionCheck is one in-flight check; done closes when ident and err are set.
type sessionCheck struct {
	done    chan struct{}
	ident   Identity
	err     error
	waiters int // requests waiting for it besides the one asking (for tests)
}

// shareCheck returns the answer of the check named by k, running run for it unless the same
// check is in flight already. run gets a context that keeps ctx's deadline and values but not
// its cancellation (other requests wait for the answer) and the generation of forgotten
// sessions when it started; it caches its answer itself, if gen is still current.
func (s *Store) shareCheck(ctx context.Context, k checkKey, run func(ctx context.Context, gen uint64) (Identity, error)) (Identity, error) {
	s.mu.Lock()
	c, inFlight := s.checking[k]
	if inFlight {
		c.waiters++
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.ident, c.err
		case <-ctx.Done():
			return Identity{}, dbErr("check session", ctx.Err())
		}
	}
	c = &sessionCheck{done: make(chan struct{})}
	s.checking[k] = c
	gen := s.gen
	s.mu.Unlock()
	dctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(dctx, d)
		defer cancel()
	}
	c.ident, c.err = run(dctx, gen)
	s.mu.Lock()
	if s.checking[k] == c { // (forget may have dropped it, and another check started since)
		delete(s.checking, k)
	}
	s.mu.Unlock()
	close(c.done)
	return c.ident, c.err
}

// remember caches a checked session unless a session ended or an admin changed since the check
// began (gen). Called with s.mu held.
func (s *Store) remember(id string, gen uint64, e seenEntry) {
	if gen != s.gen {
		return
	}
	if len(s.seen) > 10000 {
		clear(s.seen)
	}
	s.seen[id] = e
}

// forget drops the cached sessions that match and moves the generation on, so that a check
// running meanwhile does not cache what it read; the checks in flight stop taking on requests
// (they answer the ones that asked before; a later request asks the database again). Called
// with s.mu held.
func (s *Store) forget(match func(id string, e seenEntry) bool) {
	s.gen++
	clear(s.checking)
	for id, e := range s.seen {
		if match(id, e) {
			delete(s.seen, id)
		}
	}
}

// CheckSession returns who is behind a live session, refreshing its idle clock. A session is
// dead when ended, idle longer than idle, or older than absolute: ErrNoSession (and a dead one
// is deleted). The role is the admin's current one (at most the store's cache period old).
// Concurrent checks of one session share one database check.
func (s *Store) CheckSession(ctx context.Context, id string, idle, absolute time.Duration) (Identity, error) {
	now := time.Now()
	s.mu.Lock()
	if e, ok := s.seen[id]; ok && now.Sub(e.confirmed) < min(s.cache, idle) && now.Sub(e.created) < absolute {
		s.mu.Unlock()
		return e.ident, nil
	}
	s.mu.Unlock()
	return s.shareCheck(ctx, checkKey{id: id, idle: idle, absolute: absolute}, func(ctx context.Context, gen uint64) (Identity, error) {
		var (
			ident        Identity
			role, method string
			created      time.Time
		)
		err := s.pool.QueryRow(ctx, `UPDATE console.admin_sessions AS s SET last_seen = now()
			FROM console.admins AS a
			WHERE s.id = $1 AND a.name = s.admin
			AND s.last_seen > now() - $2::INT8 * INTERVAL '1 microsecond'
			AND s.created_at > now() - $3::INT8 * INTERVAL '1 microsecond'
			RETURNING s.admin, s.created_at, a.role, s.method, a.must_change_password`,
			id, idle.Microseconds(), absolute.Microseconds()).Scan(&ident.Admin, &created, &role, &method, &ident.MustChangePassword)
		if errors.Is(err, pgx.ErrNoRows) {
			s.EndSession(ctx, id) // unknown, or timed out: gone for good
			return Identity{}, ErrNoSession
		}
		if err != nil {
			return Identity{}, dbErr("check session", err)
		}
		ident.Role, ident.Method = Role(role), Method(method)
		s.mu.Lock()
		s.remember(id, gen, seenEntry{ident: ident, created: created, confirmed: now, active: now})
		s.mu.Unlock()
		return ident, nil
	})
}

// PeekSession is CheckSession for a request the admin did not make (a page's background
// refresh): it returns who is behind a live session without refreshing its idle clock, so that
// an untouched tab times out. A session idle longer than idle, or older than absolute, ends
// (ErrNoSession), as in CheckSession.
func (s *Store) PeekSession(ctx context.Context, id string, idle, absolute time.Duration) (Identity, error) {
	now := time.Now()
	s.mu.Lock()
	e, ok := s.seen[id]
	s.mu.Unlock()
	checked := e.confirmed
	if e.peeked.After(checked) {
		checked = e.peeked
	}
	if ok && now.Sub(checked) < s.cache && now.Sub(e.active) < idle && now.Sub(e.created) < absolute {
		return e.ident, nil
	}
	return s.shareCheck(ctx, checkKey{id: id, peek: true, idle: idle, absolute: absolute}, func(ctx context.Context, gen uint64) (Identity, error) {
		var (
			ident        Identity
			role, method string
			created      time.Time
			idleFor      int64 // microseconds
			stillLive    bool
		)
		// Read, not written: the idle clock (last_seen) stays where the admin's last request left it.
		err := s.pool.QueryRow(ctx, `SELECT s.admin, s.created_at, a.role, s.method, a.must_change_password,
				(extract(epoch FROM now() - s.last_seen) * 1000000)::INT8,
				s.last_seen > now() - $2::INT8 * INTERVAL '1 microsecond'
				AND s.created_at > now() - $3::INT8 * INTERVAL '1 microsecond'
			FROM console.admin_sessions AS s JOIN console.admins AS a ON a.name = s.admin
			WHERE s.id = $1`, id, idle.Microseconds(), absolute.Microseconds()).
			Scan(&ident.Admin, &created, &role, &method, &ident.MustChangePassword, &idleFor, &stillLive)
		switch {
		case errors.Is(err, pgx.ErrNoRows), err == nil && !stillLive:
			s.EndSession(ctx, id) // unknown, or timed out: gone for good
			return Identity{}, ErrNoSession
		case err != nil:
			return Identity{}, dbErr("peek session", err)
		}
		ident.Role, ident.Method = Role(role), Method(method)
		s.mu.Lock()
		e, ok := s.seen[id]
		if !ok {
			e = seenEntry{created: created}
		}
		e.ident = ident
		e.peeked = now
		e.active = now.Add(-time.Duration(idleFor) * time.Microsecond)
		s.remember(id, gen, e)
		s.mu.Unlock()
		return ident, nil
	})
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
	s.forget(func(sid string, _ seenEntry) bool { return sid == id })
	s.mu.Unlock()
	_, err := q.Exec(ctx, `DELETE FROM console.admin_sessions WHERE id = $1`, id)
	return dbErr("end session", err)
}

// Sessions returns admin's live sessions (neither idle longer than idle nor older than
// absolute), the most recently used first. An unknown admin has none.
func (s *Store) Sessions(ctx context.Context, admin string, idle, absolute time.Duration) ([]Session, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, method, created_at, last_seen, remote_addr, user_agent
		FROM console.admin_sessions
		WHERE admin = $1
		AND last_seen > now() - $2::INT8 * INTERVAL '1 microsecond'
		AND created_at > now() - $3::INT8 * INTERVAL '1 microsecond'
		ORDER BY last_seen DESC, created_at DESC`, admin, idle.Microseconds(), absolute.Microseconds())
	if err != nil {
		return nil, dbErr("sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Session, error) {
		var (
			ss     Session
			id, me string
		)
		err := r.Scan(&id, &me, &ss.CreatedAt, &ss.LastSeen, &ss.RemoteAddr, &ss.UserAgent)
		ss.Handle, ss.Method = Handle(id), Method(me)
		ss.CreatedAt, ss.LastSeen = ss.CreatedAt.UTC(), ss.LastSeen.UTC()
		return ss, err
	})
	return out, dbErr("sessions", err)
}

// ActiveSessions returns the number of live sessions per admin (admins without any are
// absent).
func (s *Store) ActiveSessions(ctx context.Context, idle, absolute time.Duration) (map[string]int, error) {
	out := map[string]int{}
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // every admin's sessions
		rows, err := q.Query(ctx, `SELECT admin, count(*) FROM console.admin_sessions
			WHERE last_seen > now() - $1::INT8 * INTERVAL '1 microsecond'
			AND created_at > now() - $2::INT8 * INTERVAL '1 microsecond'
			GROUP BY admin`, idle.Microseconds(), absolute.Microseconds())
		if err != nil {
			return err
		}
		var (
			name string
			n    int
		)
		_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
			out[name] = n
			return nil
		})
		return err
	})
	return out, dbErr("active sessions", err)
}

// EndOwnSession ends the session of admin named by handle (from Sessions) and writes by (a
// session-end entry) in the same transaction. A handle that names no session of admin is ErrNoSession.
func (s *Store) EndOwnSession(ctx context.Context, admin, handle string, by audit.Entry) error {
	var ended string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM console.admin_sessions WHERE admin = $1`, admin)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		ended = ""
		for _, id := range ids {
			if Handle(id) == handle {
				ended = id
			}
		}
		if ended == "" {
			return ErrNoSession
		}
		if _, err := tx.Exec(ctx, `DELETE FROM console.admin_sessions WHERE id = $1`, ended); err != nil {
			return err
		}
		by.Action, by.Target = audit.SessionEnd, admin
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return dbErr("end session", err)
	}
	s.mu.Lock()
	s.forget(func(sid string, _ seenEntry) bool { return sid == ended })
	s.mu.Unlock()
	return nil
}

// EndSessions ends every session of admin and writes by (an admin-sessions-end entry with the
// count) in the same transaction; it returns how many it ended. An unknown admin is ErrNotFound.
func (s *Store) EndSessions(ctx context.Context, admin string, by audit.Entry) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockAdmin(ctx, tx, admin); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM console.admin_sessions WHERE admin = $1`, admin)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		by.Action, by.Target, by.Count = audit.AdminSessionsEnd, admin, n
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	if err != nil {
		return 0, dbErr("end sessions", err)
	}
	s.forgetAdmin(admin)
	return n, nil
}
