package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
)

// The cases' names: the report, the JSON results and the bars know every case by its name,
// never by its place in the run.
const (
	CaseFragment   = "fragment"      // the sessions table fragment (htmx), active, first page of 50
	CaseUserPage   = "fragment-user" // the same, filtered to a user with 10,000 sessions
	CaseDeepPage   = "fragment-deep" // the same as CaseFragment, 100 pages in (keyset)
	CaseWholePage  = "page"          // the whole sessions page of CaseFragment's view
	CaseVerify     = "verify"        // GET /auth/verify with a valid cookie
	CaseIssue      = "issue"         // POST /sessions: issue a session (and its audit row)
	CaseRevokeAll  = "revoke-all"    // POST /users/{heavy1}/revoke: revoke-all of 10,000 sessions
	CaseCSV        = "csv"           // GET /sessions.csv?status=all: every row
	CaseRawList    = "list"          // the reference CLI's list statement on raw pgx (no console side)
	CaseCLIList    = "list-cli"      // console auth-session list --format csv (the binary)
	CaseRevocation = "revocation"    // revoke response -> first 401 from /auth/verify

	// The history's cases (issue 8).
	CaseVerifyNoActivity = "verify-noact"  // CaseVerify against a console recording no activity
	CaseHistoryFirst     = "history-first" // the /history fragment (htmx), all statuses, first page of 50
	CaseHistoryDeep      = "history-deep"  // the same, 100 pages in (keyset)
	CaseSessionPage      = "session-page"  // GET /sessions/{id} of a used session
	CaseUserDetail       = "user-page"     // GET /users/{name} of a user with 10,000 sessions
	CaseSyncIdle         = "sync-idle"     // one history sync pass, nothing new
	CaseSyncNew          = "sync-1000"     // one history sync pass that finds 1,000 new sessions
	CaseOverview         = "overview"      // GET /overview?range=30d (issue 9)
	CasePolicy           = "policy"        // GET /policy, every rule on
	CaseBulkRevoke       = "bulk-revoke"   // "revoke all matching" of a heavy user's sessions
)

// caseKind says which bars a case is judged by (see evaluateBars).
type caseKind string

const (
	// kindPage: a page or fragment an admin looks at. Throughput against the same-size HTTP
	// floor, PostgreSQL CPU per request against that floor's, p99, and scale.
	kindPage   caseKind = "page"
	kindVerify caseKind = "verify" // the reverse proxies' sub-request
	kindIssue  caseKind = "issue"  // an audited write of one row
	kindBulk   caseKind = "bulk"   // one audited write of many rows, one client
	kindStream caseKind = "stream" // an export, rows per second and memory
	kindList   caseKind = "list"   // a comparison figure only
	kindJob    caseKind = "job"    // one pass of a background job, one at a time, no floor
	// kindBaseline: a figure another case's bar compares with, judged by no bar of its own.
	kindBaseline caseKind = "baseline"
)

// A case is one measured comparison: the console doing something over HTTP and, with the same
// concurrency, raw pgx running the same SQL (the floor).
type benchCase struct {
	Key     string // one of the Case* names
	Name    string // what it does, for people
	Kind    caseKind
	Unit    string // what PerSec counts: "req/s" or "rows/s"
	Workers int
	MaxOps  int
	// FloorOf reuses another case's raw and plain-text HTTP floors instead of measuring them
	// (its same-size HTTP floor is still its own: the answers differ in size).
	FloorOf string
	// server is the console the case's console side talks to when it is not the size's main
	// one (its CPU and memory are that server's).
	server *Server
	// sampleRSS samples the server's VmRSS while the console side runs (streams).
	sampleRSS bool
	// path is the console request's path and query (GET cases).
	path string
	// header is sent with every console request, and with the HTTP floor's requests too, so
	// that both receive the same request.
	header http.Header

	console func(ctx context.Context, c *Client, worker, i int) (int64, error)
	// floor does the case's database work on raw pgx; with a non-nil w it also writes the
	// result there as plain text (the plain-text HTTP floor's answer).
	floor func(ctx context.Context, w io.Writer, worker, i int) (int64, error)
	// prepare runs before every operation, untimed, on both sides.
	prepare func(ctx context.Context, worker, i int) error
	// cleanup runs after each side's measured run (and its warm-up), untimed.
	cleanup func(ctx context.Context) error
	// check runs one console operation and checks its answer against the floor's data before
	// anything is timed; the answer it returns is what the same-size HTTP floor answers.
	check func(ctx context.Context, c *Client) (Response, error)

	// answer is the console's answer that check recorded (nil: none, no same-size floor).
	answer atomic.Pointer[recordedAnswer]
}

// recordedAnswer is one answer of the console, replayed byte for byte by the same-size HTTP
// floor.
type recordedAnswer struct {
	status int
	header http.Header
	body   []byte
}

// maxRecordedAnswer bounds the answers a same-size HTTP floor replays (an export's is not).
const maxRecordedAnswer = 1 << 20

// record keeps resp as the answer the same-size HTTP floor gives, without the headers that
// belong to one response (its date, length, cookies).
func (bc *benchCase) record(resp Response) {
	if resp.Body == nil || len(resp.Body) > maxRecordedAnswer {
		return
	}
	h := resp.Header.Clone()
	for _, k := range []string{"Date", "Content-Length", "Set-Cookie", "Connection", "Keep-Alive", "Transfer-Encoding"} {
		h.Del(k)
	}
	bc.answer.Store(&recordedAnswer{status: resp.Status, header: h, body: resp.Body})
}

// sizeEnv is what the cases of one size share.
type sizeEnv struct {
	cfg    *Config
	pool   *pgxpool.Pool
	store  *sessionstore.Store
	seeded *Seeded
	data   Dataset
	logf   func(string, ...any)
	// postmaster is the PostgreSQL server's pid (0 if unknown), for CPU accounting.
	postmaster int
	httpFloor  *httpFloor
}

// sessionRow is a list row as the floor reads it.
type sessionRow struct {
	ID                               int64
	Username                         string
	CreatedAt, ExpiresAt, LastUsedAt time.Time
	RevokedAt, PurgedAt              *time.Time
}

// queryRows runs sql on the pool and reads every row into memory, as a handler must before
// rendering a page.
func queryRows(ctx context.Context, pool *pgxpool.Pool, sql string, args []any) ([]sessionRow, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (sessionRow, error) {
		var s sessionRow
		dst := []any{&s.ID, &s.Username, &s.CreatedAt, &s.ExpiresAt, &s.RevokedAt, &s.LastUsedAt}
		if len(r.FieldDescriptions()) == 7 { // the history's list: its purge time too
			dst = append(dst, &s.PurgedAt)
		}
		return s, r.Scan(dst...)
	})
}

// listPath returns the console URL path of a list filter.
func listPath(f sessionstore.Filter) string {
	q := url.Values{}
	if f.Username != "" {
		q.Set("user", f.Username)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	q.Set("limit", strconv.Itoa(f.Limit))
	if f.After != nil {
		q.Set("after", f.After.String())
	}
	return "/sessions?" + q.Encode()
}

var hxHeader = http.Header{"Hx-Request": {"true"}}

// listCase is a page (or fragment) of the session list against the floor of the store's query.
func (e *sizeEnv) listCase(key, name string, f sessionstore.Filter, fragment bool) (*benchCase, error) {
	sql, args, err := e.store.ListQuery(f)
	if err != nil {
		return nil, err
	}
	bc := e.pageCase(key, name, listPath(f), func(ctx context.Context, w io.Writer) error {
		rows, err := queryRows(ctx, e.pool, sql, args)
		if err == nil && w != nil {
			err = writeRows(w, rows)
		}
		return err
	})
	if fragment {
		bc.header = hxHeader
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		want, err := queryRows(ctx, e.pool, sql, args)
		if err != nil {
			return Response{}, err
		}
		resp, err := c.Do(ctx, Request{Path: bc.path, Header: bc.header, Keep: true})
		if err != nil {
			return resp, err
		}
		if len(want) == 0 {
			return resp, fmt.Errorf("the floor's query found no rows for %s", bc.path)
		}
		n := min(len(want), f.Limit)
		return resp, containsIDs(resp.Body, want[0].ID, want[n-1].ID)
	}
	return bc, nil
}

// pageCase is a GET of path (a page an admin looks at) against floor, the page's database work
// on raw pgx: the plumbing of every page case. The caller may set path, header (htmx) and a check
// that compares the page with the database; without one, the check only records the answer.
func (e *sizeEnv) pageCase(key, name, path string, floor func(ctx context.Context, w io.Writer) error) *benchCase {
	bc := &benchCase{Key: key, Name: name, Kind: kindPage, Unit: "req/s", Workers: e.cfg.Clients, MaxOps: e.cfg.MaxOps}
	bc.console = func(ctx context.Context, c *Client, _, _ int) (int64, error) {
		_, err := c.Do(ctx, Request{Path: bc.path, Header: bc.header})
		return 1, err
	}
	bc.floor = func(ctx context.Context, w io.Writer, _, _ int) (int64, error) {
		return 1, floor(ctx, w)
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		return c.Do(ctx, Request{Path: bc.path, Header: bc.header, Keep: true})
	}
	bc.path = path
	return bc
}

// writeRows writes list rows as plain text, one line each (the HTTP floor's answer).
func writeRows(w io.Writer, rows []sessionRow) error {
	buf := make([]byte, 0, 128*len(rows))
	for _, r := range rows {
		buf = append(buf, r.Username...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, r.ID, 10)
		for _, t := range []time.Time{r.CreatedAt, r.ExpiresAt, r.LastUsedAt} {
			buf = append(buf, ',')
			buf = t.AppendFormat(buf, timestampLayout)
		}
		buf = append(buf, ',')
		if r.RevokedAt != nil {
			buf = r.RevokedAt.AppendFormat(buf, timestampLayout)
		} else {
			buf = append(buf, "NULL"...)
		}
		buf = append(buf, '\n')
	}
	_, err := w.Write(buf)
	return err
}

// containsIDs checks that a page shows the given session IDs (as whole numbers).
func containsIDs(body []byte, ids ...int64) error {
	for _, id := range ids {
		re := regexp.MustCompile(`(^|[^0-9])` + strconv.FormatInt(id, 10) + `($|[^0-9])`)
		if !re.Match(body) {
			return fmt.Errorf("the page does not show session %d, which the same query returns first/last", id)
		}
	}
	return nil
}

// deepCursor returns the cursor after row `depth` of f's order (the last row of page depth/limit).
func (e *sizeEnv) deepCursor(ctx context.Context, f sessionstore.Filter, depth int) (*sessionstore.Cursor, error) {
	f.Limit = depth
	sql, args, err := e.store.ListQuery(f)
	if err != nil {
		return nil, err
	}
	rows, err := queryRows(ctx, e.pool, sql, args)
	if err != nil {
		return nil, err
	}
	if len(rows) < depth {
		return nil, fmt.Errorf("bench: only %d rows for a cursor %d rows deep", len(rows), depth)
	}
	r := rows[depth-1]
	return &sessionstore.Cursor{At: r.CreatedAt, ID: r.ID}, nil
}

// verifyCase: GET /auth/verify with a valid cookie; floor: the point select by ID.
func (e *sizeEnv) verifyCase() *benchCase {
	cookies, ids := e.seeded.Cookies, e.seeded.CookieIDs
	bc := &benchCase{Key: CaseVerify, Name: "GET /auth/verify, valid cookie", Kind: kindVerify, Unit: "req/s", Workers: e.cfg.Clients, MaxOps: e.cfg.MaxOps}
	pick := func(worker, i int) int { return (i*7919 + worker) % len(cookies) }
	// The HTTP floors get the header of one cookie: a request of the same size.
	bc.header = http.Header{"X-Cockroach-Api-Session": {cookies[0]}}
	bc.console = func(ctx context.Context, c *Client, worker, i int) (int64, error) {
		_, err := c.Do(ctx, Request{Path: "/auth/verify",
			Header: http.Header{"X-Cockroach-Api-Session": {cookies[pick(worker, i)]}}})
		return 1, err
	}
	bc.floor = func(ctx context.Context, _ io.Writer, worker, i int) (int64, error) {
		var (
			hashed            []byte
			user              string
			expires, lastUsed time.Time
			revoked           *time.Time
		)
		err := e.pool.QueryRow(ctx, `SELECT "hashedSecret", username, "expiresAt", "revokedAt", "lastUsedAt" FROM console.web_sessions WHERE id = $1`,
			ids[pick(worker, i)]).Scan(&hashed, &user, &expires, &revoked, &lastUsed)
		return 1, err
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		resp, err := c.Do(ctx, Request{Path: "/auth/verify", Header: http.Header{"X-Cockroach-Api-Session": {cookies[0]}}, Keep: true})
		if err != nil {
			return resp, err
		}
		if got, want := resp.Header.Get("X-Auth-Session-Id"), strconv.FormatInt(ids[0], 10); got != want {
			return resp, fmt.Errorf("verify answered X-Auth-Session-Id %q, want %q", got, want)
		}
		_, err = c.Do(ctx, Request{Path: "/auth/verify", Header: http.Header{"X-Cockroach-Api-Session": {"AAAA"}},
			Want: []int{http.StatusUnauthorized}})
		return resp, err
	}
	return bc
}

// issueSQL is sessionstore.Store.Issue's PostgreSQL statement, copied verbatim: the floor of
// issuing a session.
const issueSQL = `WITH lk AS (SELECT pg_advisory_xact_lock(7364022, hashtext($2))),
			u AS (SELECT rolname::text AS username, oid FROM pg_catalog.pg_roles WHERE rolname::text = $2 AND rolcanlogin),
			ts AS (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS now FROM lk)
		INSERT INTO console.web_sessions ("hashedSecret", username, "createdAt", "expiresAt", "lastUsedAt", "auditInfo", user_id)
		SELECT $1, u.username, ts.now, ts.now + $3::INT8 * INTERVAL '1 microsecond', ts.now, NULLIF($4::TEXT, ''), u.oid FROM u, ts
		RETURNING id, username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt"`

// issueActor is who issues the floor's sessions: the admin the bench signs in as, so that the
// floor writes the same "auditInfo" and audit row as the console.
var issueActor = actions.Actor{Kind: actions.Admin, Name: "bench", RemoteAddr: "127.0.0.1"}

// issueCase: POST /sessions (htmx form) issuing a 1h session; floor: what the console's issue
// does in the database, in one transaction as the console's does: Issue's INSERT ... RETURNING
// and the audit row's INSERT (audit.Insert, the console's own).
func (e *sizeEnv) issueCase() *benchCase {
	users := e.seeded.IssueUsers
	bc := &benchCase{Key: CaseIssue, Name: "POST /sessions, issue a session", Kind: kindIssue, Unit: "req/s", Workers: e.cfg.Clients, MaxOps: e.cfg.MaxIssues,
		header: hxHeader}
	bc.console = func(ctx context.Context, c *Client, worker, i int) (int64, error) {
		_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/sessions", Header: hxHeader,
			Form: url.Values{"username": {users[i%len(users)]}, "expire_after": {"1h"}}})
		return 1, err
	}
	bc.floor = func(ctx context.Context, w io.Writer, worker, i int) (int64, error) {
		secret := make([]byte, sessionstore.SecretLength)
		rand.Read(secret)
		hash := sha256.Sum256(secret)
		var sess sessionRow
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, issueSQL, hash[:], users[i%len(users)], time.Hour.Microseconds(), issueActor.AuditInfo("")).
				Scan(&sess.ID, &sess.Username, &sess.CreatedAt, &sess.ExpiresAt, &sess.RevokedAt, &sess.LastUsedAt)
			if err != nil {
				return err
			}
			exp := sess.ExpiresAt
			return audit.Insert(ctx, tx, audit.Entry{Admin: issueActor.AuditName(), RemoteAddr: issueActor.RemoteAddr,
				Action: audit.Issue, Target: sess.Username, SessionID: sess.ID, ExpiresAt: &exp})
		})
		if err == nil && w != nil {
			_, err = io.WriteString(w, sessionstore.Cookie{ID: sess.ID, Secret: secret}.SetCookie()+"\n")
		}
		return 1, err
	}
	// Each side's sessions and their audit rows are deleted afterwards, so that the tables keep
	// their size.
	bc.cleanup = func(ctx context.Context) error {
		for _, sql := range []string{`DELETE FROM console.web_sessions WHERE id > $1`, `DELETE FROM console.audit_log WHERE session_id > $1`} {
			if _, err := e.pool.Exec(ctx, sql, e.seeded.MaxID); err != nil {
				return err
			}
		}
		_, err := e.pool.Exec(ctx, `VACUUM console.web_sessions, console.audit_log`)
		return err
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/sessions", Header: hxHeader, Keep: true,
			Form: url.Values{"username": {users[0]}, "expire_after": {"1h"}}})
		if err != nil {
			return resp, err
		}
		if !strings.Contains(string(resp.Body), "session=") {
			return resp, fmt.Errorf("the issue panel shows no session= cookie: %s", excerpt(resp.Body))
		}
		return resp, nil
	}
	return bc
}

// revokeSQL is sessionstore.Store.EndUserSessions's transaction on PostgreSQL, copied verbatim:
// the user's advisory lock and the clock, then the UPDATE.
const (
	revokeLockSQL   = `SELECT clock_timestamp() AT TIME ZONE 'UTC' FROM (SELECT pg_advisory_xact_lock(7364022, hashtext($1))) AS lk`
	revokeUpdateSQL = `WITH r AS (
			UPDATE console.web_sessions SET "revokedAt" = $2
			WHERE username = $1 AND ("revokedAt" IS NULL OR "revokedAt" > $2)
			RETURNING "expiresAt")
			SELECT count(*), count(*) FILTER (WHERE "expiresAt" > $2) FROM r`
)

// revokeCase: revoke-all of a heavy user (10,000 sessions at 1M), one at a time; before each
// operation, untimed, the sessions that an earlier operation revoked are made unrevoked again,
// so every operation revokes the same rows. Floor: EndUserSessions's transaction.
func (e *sizeEnv) revokeCase() *benchCase {
	user := HeavyUser(1)
	bc := &benchCase{Key: CaseRevokeAll, Kind: kindBulk, Unit: "req/s", Workers: 1, MaxOps: e.cfg.RevokeIterations, header: hxHeader,
		Name: fmt.Sprintf("revoke-all of %s (%d sessions, %d unrevoked)", user, e.data.HeavySessions, e.seeded.HeavyUnrevoked)}
	e.unrevokeBetween(bc, user)
	var lastRevoked int64
	revoke := func(ctx context.Context, c *Client, keep bool) (Response, error) {
		return c.Do(ctx, Request{Method: http.MethodPost, Path: "/users/" + url.PathEscape(user) + "/revoke",
			// Typing the name, as a revoke-all of more than --confirm-by-name-over active
			// sessions asks: without it the console only asks again.
			Header: hxHeader, Form: url.Values{"confirm_name": {user}}, Want: []int{http.StatusOK, http.StatusSeeOther}, Keep: keep})
	}
	bc.console = func(ctx context.Context, c *Client, _, _ int) (int64, error) {
		_, err := revoke(ctx, c, false)
		return 1, err
	}
	bc.floor = func(ctx context.Context, _ io.Writer, _, _ int) (int64, error) {
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			var now time.Time
			if err := tx.QueryRow(ctx, revokeLockSQL, user).Scan(&now); err != nil {
				return err
			}
			var active int64
			return tx.QueryRow(ctx, revokeUpdateSQL, user, now.UTC()).Scan(&lastRevoked, &active)
		})
		if err == nil && lastRevoked != int64(e.seeded.HeavyUnrevoked) {
			err = fmt.Errorf("the floor revoked %d sessions of %s, want %d", lastRevoked, user, e.seeded.HeavyUnrevoked)
		}
		return 1, err
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		if err := bc.prepare(ctx, 0, 0); err != nil {
			return Response{}, err
		}
		resp, err := revoke(ctx, c, true)
		if err != nil {
			return resp, err
		}
		var open int64
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL`, user).Scan(&open); err != nil {
			return resp, err
		}
		if open != 0 {
			return resp, fmt.Errorf("after the console's revoke-all, %s still has %d unrevoked sessions", user, open)
		}
		return resp, nil
	}
	return bc
}

// csvCase: GET /sessions.csv?status=all streaming every row; floor: the same SELECT (the list
// query of status all, newest first, without LIMIT) streamed through encoding/csv to io.Discard.
func (e *sizeEnv) csvCase() (*benchCase, error) {
	sql, args, err := e.store.ListQuery(sessionstore.Filter{Status: sessionstore.StatusAll, Sort: sessionstore.SortCreated, Desc: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	if sql, args, err = withoutLimit(sql, args); err != nil {
		return nil, err
	}
	bc := &benchCase{Key: CaseCSV, Name: "GET /sessions.csv?status=all (all rows)", Kind: kindStream, Unit: "rows/s", Workers: 1,
		MaxOps: e.cfg.CSVIterations, sampleRSS: true}
	bc.console = func(ctx context.Context, c *Client, _, _ int) (int64, error) {
		resp, err := c.Do(ctx, Request{Path: "/sessions.csv?status=all", Count: true})
		if err == nil && resp.Lines != int64(e.seeded.Rows)+1 {
			err = fmt.Errorf("the CSV has %d lines, want %d (a header and every row)", resp.Lines, e.seeded.Rows+1)
		}
		return resp.Lines - 1, err
	}
	bc.floor = func(ctx context.Context, w io.Writer, _, _ int) (int64, error) {
		if w == nil {
			w = io.Discard
		}
		return streamCSV(ctx, e.pool, sql, args, w)
	}
	return bc, nil
}

// withoutLimit removes the trailing ` LIMIT $n` (and its argument) from a list query.
func withoutLimit(sql string, args []any) (string, []any, error) {
	i := strings.LastIndex(sql, " LIMIT $")
	if i < 0 || sql[i+len(" LIMIT $"):] != strconv.Itoa(len(args)) {
		return "", nil, errors.New("bench: the list query does not end in LIMIT $n")
	}
	return sql[:i], args[:len(args)-1], nil
}

const timestampLayout = "2006-01-02 15:04:05.999999"

// streamCSV writes the rows of sql as `auth-session list` CSV to w and returns how many rows
// it wrote.
func streamCSV(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, w io.Writer) (int64, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	bw := bufio.NewWriterSize(w, 32<<10)
	cw := csv.NewWriter(bw)
	cw.Write([]string{"username", "session ID", "created", "expires", "revoked", "last used"})
	var s sessionRow
	rec := make([]string, 6)
	var n int64
	for rows.Next() {
		s.RevokedAt = nil
		if err := rows.Scan(&s.ID, &s.Username, &s.CreatedAt, &s.ExpiresAt, &s.RevokedAt, &s.LastUsedAt); err != nil {
			return n, err
		}
		rec[0], rec[1] = s.Username, strconv.FormatInt(s.ID, 10)
		rec[2], rec[3], rec[5] = s.CreatedAt.Format(timestampLayout), s.ExpiresAt.Format(timestampLayout), s.LastUsedAt.Format(timestampLayout)
		rec[4] = "NULL"
		if s.RevokedAt != nil {
			rec[4] = s.RevokedAt.Format(timestampLayout)
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// cliListSQL is the reference CLI's `auth-session list` statement (no WHERE, no ORDER BY).
const cliListSQL = `SELECT username, id AS "session ID", "createdAt" AS "created", "expiresAt" AS "expires", "revokedAt" AS "revoked", "lastUsedAt" AS "last used" FROM console.web_sessions`

// cliListCase times reading every row with the reference CLI's unfiltered list query.
func (e *sizeEnv) cliListCase() *benchCase {
	bc := &benchCase{Key: CaseRawList, Name: "CLI-style unfiltered list (raw pgx, all rows)", Kind: kindList, Unit: "rows/s", Workers: 1, MaxOps: e.cfg.CSVIterations}
	bc.floor = func(ctx context.Context, _ io.Writer, _, _ int) (int64, error) {
		rows, err := e.pool.Query(ctx, cliListSQL)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var s sessionRow
		var n int64
		for rows.Next() {
			if err := rows.Scan(&s.Username, &s.ID, &s.CreatedAt, &s.ExpiresAt, &s.RevokedAt, &s.LastUsedAt); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	}
	return bc
}

// explain prints the plans of the list floors, with timing and buffers.
func (e *sizeEnv) explain(ctx context.Context, filters ...sessionstore.Filter) error {
	for _, f := range filters {
		sql, args, err := e.store.ListQuery(f)
		if err != nil {
			return err
		}
		if err := e.explainSQL(ctx, sql, args); err != nil {
			return err
		}
	}
	sql, args, err := e.store.ListQuery(sessionstore.Filter{Status: sessionstore.StatusAll, Sort: sessionstore.SortCreated, Desc: true, Limit: 1})
	if err != nil {
		return err
	}
	if sql, args, err = withoutLimit(sql, args); err != nil {
		return err
	}
	return e.explainSQL(ctx, sql, args)
}

func (e *sizeEnv) explainSQL(ctx context.Context, sql string, args []any) error {
	rows, err := e.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		return err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	e.logf("EXPLAIN %s %v\n    %s", sql, args, strings.Join(lines, "\n    "))
	return nil
}

// Statement is one statement the console ran during a case, from pg_stat_statements.
type Statement struct {
	Query      string  `json:"query"`
	CallsPerOp float64 `json:"calls_per_op"`
	MeanMs     float64 `json:"mean_ms"`
	MsPerOp    float64 `json:"ms_per_op"`
}

// statements returns the statements run in this database since the last reset, most time
// first, per operation of the case.
func (e *sizeEnv) statements(ctx context.Context, ops int) ([]Statement, error) {
	if ops <= 0 {
		return nil, nil
	}
	rows, err := e.pool.Query(ctx, `SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, mean_exec_time, total_exec_time
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND query NOT LIKE '%pg_stat_statements%'
		ORDER BY total_exec_time DESC LIMIT 8`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Statement, error) {
		var s Statement
		var calls int64
		var total float64
		err := r.Scan(&s.Query, &calls, &s.MeanMs, &total)
		if len(s.Query) > 110 {
			s.Query = s.Query[:110] + "..."
		}
		s.CallsPerOp, s.MsPerOp = float64(calls)/float64(ops), total/float64(ops)
		return s, err
	})
}

// unrevokeBetween makes bc, a case that revokes user's sessions, start each operation from
// the seeded table: before each, untimed, the sessions the bench revoked are unrevoked (every
// seeded revocation is before e.data.Now, the bench's are after). Each operation leaves ~9,000
// dead row versions and index entries behind, so the table is vacuumed after each side, so
// that every side starts from the same table (as it would be between bursts of revocations,
// after autovacuum).
func (e *sizeEnv) unrevokeBetween(bc *benchCase, user string) {
	since := e.data.Now
	bc.prepare = func(ctx context.Context, _, _ int) error {
		_, err := e.pool.Exec(ctx, `UPDATE console.web_sessions SET "revokedAt" = NULL WHERE username = $1 AND "revokedAt" > $2`, user, since)
		return err
	}
	bc.cleanup = func(ctx context.Context) error {
		_, err := e.pool.Exec(ctx, `VACUUM console.web_sessions`)
		return err
	}
}

// sessionCheckTrip is one round trip to the database, standing in a cached page's floor for
// the admin session check every console page makes.
func (e *sizeEnv) sessionCheckTrip(ctx context.Context) error {
	var one int
	return e.pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
}
