package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessionconsole/console/internal/pgdb"
)

// SortKey is a column the session list can be ordered by (ties broken by ID).
type SortKey string

// The sort keys.
const (
	SortCreated  SortKey = "created"
	SortExpires  SortKey = "expires"
	SortLastUsed SortKey = "last_used"
	SortID       SortKey = "id"
)

func (k SortKey) column() (string, bool) {
	switch k {
	case SortCreated, "":
		return `"createdAt"`, true
	case SortExpires:
		return `"expiresAt"`, true
	case SortLastUsed:
		return `"lastUsedAt"`, true
	case SortID:
		return "id", true
	}
	return "", false
}

// MaxPageSize bounds Filter.Limit.
const MaxPageSize = 500

// Filter selects and orders sessions. The zero value lists every session, oldest first.
type Filter struct {
	// Username selects one user's sessions; with Prefix, every user whose name starts with it.
	Username string
	Prefix   bool
	// Status selects active, expired or revoked sessions ("" or StatusAll: all).
	Status Status
	// Sort and Desc order the list; ties are broken by ID in the same direction.
	Sort SortKey
	Desc bool
	// Limit is the page size for List (1..MaxPageSize, default 50). Each ignores it.
	Limit int
	// After and Before are keyset cursors: the page after or before that row (at most one).
	After, Before *Cursor
	// ID selects one session (0: any).
	ID int64
	// Time ranges, UTC: a zero time is no bound; After bounds are inclusive, Before bounds
	// exclusive (CreatedAfter=Nov 3, CreatedBefore=Nov 4 is the sessions created on Nov 3).
	CreatedAfter, CreatedBefore time.Time
	ExpiresAfter, ExpiresBefore time.Time
	UsedAfter, UsedBefore       time.Time
	// From lists another table of sessions (the console's history) instead of the live one.
	From *Source
	// Purged, with From, selects rows that left the live table (PurgedOnly) or that are
	// still in it (PurgedNot); "" lists both.
	Purged PurgedFilter
	// Cond is a further condition on each row, defined elsewhere (internal/policy's rules).
	Cond Condition
	// At, when set, judges the filter at that moment instead of now: statuses and Cond are
	// those at At, and only sessions created at or before At match. A bulk action uses it to
	// act on exactly the sessions that matched when it was confirmed, never on one that
	// started matching later.
	At time.Time
}

// Condition is a predicate on a session row that another package defines (the policy rules)
// and a Filter carries, so that lists, counts, exports and bulk revocations apply it alike.
type Condition interface {
	// SQL returns the predicate on the row of the session table (or the history) that the
	// statement names ref (columns as ref."createdAt"; ref is the table's name without its
	// schema), as it stands at now; values go through arg, which returns their placeholder.
	SQL(ref string, now time.Time, arg func(any) string) string
}

// TableRef is how a statement on table without an alias names its rows: the table's name
// without its schema (system.web_sessions -> web_sessions).
func TableRef(table string) string {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		return table[i+1:]
	}
	return table
}

// Source is a table of sessions with the live table's columns plus the time each row left the
// live table: the console's history (internal/history), listed with the same filters, sorting
// and paging as the live table.
type Source struct {
	Table  string // qualified name
	Purged string // the TIMESTAMP column of when the row left the live table, NULL while it has not
}

// PurgedFilter selects history rows by whether they left the live table.
type PurgedFilter string

// The purged filters.
const (
	PurgedAny  PurgedFilter = ""
	PurgedOnly PurgedFilter = "yes"
	PurgedNot  PurgedFilter = "no"
)

// ParsePurged parses a purged filter: "", "any", "yes" or "no".
func ParsePurged(s string) (PurgedFilter, error) {
	switch PurgedFilter(s) {
	case PurgedAny, PurgedOnly, PurgedNot:
		return PurgedFilter(s), nil
	case "any":
		return PurgedAny, nil
	}
	return "", fmt.Errorf("%w: unknown purged filter %q (possible values: any, yes, no)", ErrInvalidInput, s)
}

// timeBoundForms are the forms ParseTimeBound accepts, all UTC.
var timeBoundForms = []string{
	"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z", "2006-01-02 15:04:05.999999999Z",
}

// ParseTimeBound parses a filter's date or date-time, in UTC: 2026-11-03, 2026-11-03T14:05,
// 2026-11-03 14:05:09, 2026-11-03T14:05:09.123456Z (the CLI's and the pages' forms). A date is
// its midnight. Anything else wraps ErrInvalidInput.
func ParseTimeBound(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, f := range timeBoundForms {
		if t, err := time.ParseInLocation(f, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a date or date-time (use 2026-11-03, 2026-11-03T14:05 or 2026-11-03 14:05:09, UTC)", ErrInvalidInput, s)
}

// Cursor marks a row in a sorted list: its sort value and its ID.
type Cursor struct {
	At time.Time // the sort column's value (unused when sorting by ID)
	ID int64
}

const cursorTime = "2006-01-02T15:04:05.000000Z"

// String encodes the cursor for a URL: `2022-08-02T16:47:36.342338Z_784428093743988737`.
func (c Cursor) String() string {
	return c.At.UTC().Format(cursorTime) + "_" + strconv.FormatInt(c.ID, 10)
}

// ParseCursor decodes Cursor.String's form; anything else wraps ErrInvalidInput.
func ParseCursor(s string) (Cursor, error) {
	at, id, ok := strings.Cut(s, "_")
	t, err1 := time.Parse(cursorTime, at)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("%w: malformed page cursor", ErrInvalidInput)
	}
	return Cursor{At: t, ID: n}, nil
}

// Page is one page of List.
type Page struct {
	Sessions []Session
	// Next is the cursor for the following page, nil on the last page.
	Next *Cursor
	// Prev is the cursor for the preceding page, nil on the first page.
	Prev *Cursor
	// Now is the moment statuses were judged at.
	Now time.Time
}

// ParseStatus parses a status name; "" is StatusAll.
func ParseStatus(s string) (Status, error) {
	switch Status(s) {
	case StatusActive, StatusExpired, StatusRevoked, StatusAll:
		return Status(s), nil
	case "":
		return StatusAll, nil
	}
	return "", fmt.Errorf("%w: unknown status %q (possible values: active, expired, revoked, all)", ErrInvalidInput, s)
}

// ParseSort parses a sort key name; "" is SortCreated.
func ParseSort(s string) (SortKey, error) {
	if s == "" {
		return SortCreated, nil
	}
	if _, ok := SortKey(s).column(); !ok || SortKey(s) == SortID {
		return "", fmt.Errorf("%w: unknown sort %q (possible values: created, expires, last_used)", ErrInvalidInput, s)
	}
	return SortKey(s), nil
}

// query builds the SELECT for f. Only fixed column names enter the SQL text; every value is a
// parameter. asOf is a clause for the end of FROM (pgdb.Stream's AS OF SYSTEM TIME), or "".
func (s *Store) query(f Filter, now time.Time, limit int, asOf string) (string, []any, error) {
	return s.selectQuery(f, now, limit, asOf, "")
}

// selectQuery is query with another SELECT list than the session's columns ("" for those).
func (s *Store) selectQuery(f Filter, now time.Time, limit int, asOf, columnList string) (string, []any, error) {
	col, ok := f.Sort.column()
	if !ok {
		return "", nil, fmt.Errorf("%w: unknown sort %q", ErrInvalidInput, f.Sort)
	}
	if f.After != nil && f.Before != nil {
		return "", nil, fmt.Errorf("%w: both after and before cursors", ErrInvalidInput)
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where, err := s.where(f, now, arg)
	if err != nil {
		return "", nil, err
	}
	table, columns := s.table, sessionColumns
	if f.From != nil {
		table, columns = f.From.Table, sessionColumns+", "+f.From.Purged
	}
	if columnList != "" {
		columns = columnList
	}
	desc := f.Desc
	if c := f.After; c != nil || f.Before != nil {
		if c == nil {
			c = f.Before
			desc = !desc // walk backwards from the cursor, then reverse the page
		}
		op := ">"
		if desc {
			op = "<"
		}
		if f.Sort == SortID {
			where = append(where, "id "+op+" "+arg(c.ID))
		} else {
			where = append(where, "("+col+", id) "+op+" ("+arg(c.At.UTC())+", "+arg(c.ID)+")")
		}
	}
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	sql := `SELECT ` + columns + ` FROM ` + table
	if asOf != "" {
		sql += " " + asOf
	}
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Sort == SortID {
		sql += " ORDER BY id " + dir
	} else {
		sql += " ORDER BY " + col + " " + dir + ", id " + dir
	}
	if limit > 0 {
		sql += " LIMIT " + arg(limit)
	}
	return sql, args, nil
}

// where returns the conditions of f on the rows of its table, judged at now (f.At when set),
// with values through arg. It leaves out the keyset cursors and the order.
func (s *Store) where(f Filter, now time.Time, arg func(any) string) ([]string, error) {
	var where []string
	if w, err := s.userPredicate(f.Username, f.Prefix, arg); err != nil {
		return nil, err
	} else if w != "" {
		where = append(where, w)
	}
	if f.ID != 0 {
		where = append(where, "id = "+arg(f.ID))
	}
	for _, r := range []struct {
		col      string
		from, to time.Time
	}{{`"createdAt"`, f.CreatedAfter, f.CreatedBefore}, {`"expiresAt"`, f.ExpiresAfter, f.ExpiresBefore}, {`"lastUsedAt"`, f.UsedAfter, f.UsedBefore}} {
		if !r.from.IsZero() {
			where = append(where, r.col+" >= "+arg(r.from.UTC()))
		}
		if !r.to.IsZero() {
			where = append(where, r.col+" < "+arg(r.to.UTC()))
		}
	}
	if !f.At.IsZero() {
		where = append(where, `"createdAt" <= `+arg(f.At.UTC()))
	}
	table := s.table
	if f.From != nil {
		table = f.From.Table
		switch f.Purged {
		case PurgedOnly:
			where = append(where, f.From.Purged+" IS NOT NULL")
		case PurgedNot:
			where = append(where, f.From.Purged+" IS NULL")
		case PurgedAny:
		default:
			return nil, fmt.Errorf("%w: unknown purged filter %q", ErrInvalidInput, f.Purged)
		}
	} else if f.Purged != PurgedAny {
		return nil, fmt.Errorf("%w: the live table has no purged rows", ErrInvalidInput)
	}
	switch f.Status {
	case StatusActive:
		where = append(where, `"revokedAt" IS NULL AND "expiresAt" > `+arg(now))
	case StatusExpired:
		where = append(where, `"revokedAt" IS NULL AND "expiresAt" <= `+arg(now))
	case StatusRevoked:
		where = append(where, `"revokedAt" IS NOT NULL`)
	case StatusAll, "":
	default:
		return nil, fmt.Errorf("%w: unknown status %q", ErrInvalidInput, f.Status)
	}
	if f.Cond != nil {
		where = append(where, "("+f.Cond.SQL(TableRef(table), now, arg)+")")
	}
	return where, nil
}

// judgedAt is the moment f's statuses are judged at: f.At, or now.
func (f Filter) judgedAt(now time.Time) time.Time {
	if !f.At.IsZero() {
		return f.At.UTC()
	}
	return now
}

// userPredicate matches one user, or with prefix every name starting with name (as a range, so
// that an index on username serves it and `%` or `_` are plain characters).
func (s *Store) userPredicate(name string, prefix bool, arg func(any) string) (string, error) {
	if name == "" {
		return "", nil
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: username filter is not valid text", ErrInvalidInput)
	}
	name = s.Username(name)
	if !prefix {
		return "username = " + arg(name), nil
	}
	w := "username >= " + arg(name)
	if hi, ok := prefixEnd(name); ok {
		w += " AND username < " + arg(hi)
	}
	return w, nil
}

// prefixEnd is pgdb.PrefixEnd.
func prefixEnd(p string) (string, bool) { return pgdb.PrefixEnd(p) }

// collectSessions reads the rows of a list query (scanSession's columns, and with purged the
// history's purge time after them) into a slice with room for capacity rows. A page is the
// console's busiest read: the rows are scanned into one set of destinations, reused for every
// row, instead of a new Session and its scan arguments per row (a fifth of a page's decoding
// was those allocations and the slice's growth).
func collectSessions(rows pgx.Rows, capacity int, purged bool) ([]Session, error) {
	defer rows.Close()
	out := make([]Session, 0, capacity)
	var (
		s              Session
		revoked, purge pgtype.Timestamp
	)
	dest := []any{&s.ID, &s.Username, &s.CreatedAt, &s.ExpiresAt, &revoked, &s.LastUsedAt}
	if purged {
		dest = append(dest, &purge)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := s
		row.RevokedAt, row.PurgedAt = nil, nil
		if revoked.Valid {
			t := revoked.Time
			row.RevokedAt = &t
		}
		if purge.Valid {
			t := purge.Time
			row.PurgedAt = &t
		}
		row.utc()
		out = append(out, row)
	}
	return out, rows.Err()
}

// ListQuery returns the SQL and arguments List runs for f (for benchmarks that run the same
// statement on raw pgx, and for EXPLAIN).
func (s *Store) ListQuery(f Filter) (string, []any, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	return s.query(f, f.judgedAt(s.now().UTC()), f.Limit+1, "")
}

// List returns one page of sessions matching f, with cursors for the neighbouring pages.
func (s *Store) List(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > MaxPageSize {
		return Page{}, fmt.Errorf("%w: page size %d is over %d", ErrInvalidInput, f.Limit, MaxPageSize)
	}
	now := f.judgedAt(s.now().UTC())
	sql, args, err := s.query(f, now, f.Limit+1, "")
	if err != nil {
		return Page{}, err
	}
	var sessions []Session
	read := func(q pgdb.DBTX) error {
		return pgdb.Retry(ctx, func() error {
			rows, err := q.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			sessions, err = collectSessions(rows, f.Limit+1, f.From != nil)
			return err
		})
	}
	if f.Username != "" && f.From == nil {
		err = s.scanning(ctx, scanUserFilter, read)
	} else {
		err = read(s.pool)
	}
	if err != nil {
		return Page{}, s.listErr(err)
	}
	p := Page{Now: now}
	more := len(sessions) > f.Limit
	if more {
		sessions = sessions[:f.Limit]
	}
	if f.Before != nil {
		for i, j := 0, len(sessions)-1; i < j; i, j = i+1, j-1 {
			sessions[i], sessions[j] = sessions[j], sessions[i]
		}
	}
	p.Sessions = sessions
	if len(sessions) == 0 {
		return p, nil
	}
	first, last := f.cursorOf(sessions[0]), f.cursorOf(sessions[len(sessions)-1])
	switch {
	case f.Before != nil:
		p.Next = &last
		if more {
			p.Prev = &first
		}
	case f.After != nil:
		p.Prev = &first
		if more {
			p.Next = &last
		}
	default:
		if more {
			p.Next = &last
		}
	}
	return p, nil
}

func (f Filter) cursorOf(s Session) Cursor {
	switch f.Sort {
	case SortExpires:
		return Cursor{At: s.ExpiresAt, ID: s.ID}
	case SortLastUsed:
		return Cursor{At: s.LastUsedAt, ID: s.ID}
	case SortID:
		return Cursor{ID: s.ID}
	}
	return Cursor{At: s.CreatedAt, ID: s.ID}
}

// Each streams every session matching f (ignoring Limit and cursors' paging) to fn, in f's
// order, holding one row at a time. It stops at fn's first error and returns it. On CockroachDB
// it reads at one AS OF SYSTEM TIME and, cut off by the database, resumes after the last row
// it handed to fn (pgdb.Stream), so fn sees every row once.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Session) error) error {
	f.After, f.Before = nil, nil
	now := f.judgedAt(s.now().UTC())
	if _, _, err := s.query(f, now, 0, ""); err != nil {
		return err
	}
	// A username filter, or no filter at all, reads every row; a status alone has an index.
	// The history (f.From) has a username index; without one it reads every row too.
	scans := s.flavor == pgdb.Cockroach && f.From == nil && (f.Username != "" || f.Status == StatusAll || f.Status == "")
	if scans {
		op := scanEveryRow
		if f.Username != "" {
			op = scanUserFilter
		}
		if err := s.fullScan(op); err != nil {
			return err
		}
	}
	wholeHistory := f.From != nil && f.Username == ""
	var sess Session
	scan := []any{&sess.ID, &sess.Username, &sess.CreatedAt, &sess.ExpiresAt, &sess.RevokedAt, &sess.LastUsedAt}
	if f.From != nil {
		scan = append(scan, &sess.PurgedAt)
	}
	var fnErr error
	err := pgdb.Stream(ctx, s.pool, s.server, pgdb.StreamOptions{FullScan: scans || wholeHistory}, func(asOf string) (string, []any) {
		sql, args, _ := s.query(f, now, 0, asOf)
		return sql, args
	}, func(rows pgx.Rows) error {
		sess.RevokedAt, sess.PurgedAt = nil, nil
		if err := rows.Scan(scan...); err != nil {
			return err
		}
		sess.utc()
		if err := fn(sess); err != nil {
			fnErr = err
			return err
		}
		c := f.cursorOf(sess)
		f.After = &c // a resumed read continues after this row
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return s.listErr(err)
}

// listErr is dbErr for reads, passing refusals of full scans as they are.
func (s *Store) listErr(err error) error {
	var fse *FullScanError
	if errors.As(err, &fse) {
		return err
	}
	return s.dbErr("list", err)
}

// Counts are the numbers of sessions per status under a username filter, as counted at At.
type Counts struct {
	Active, Expired, Revoked int64
	At                       time.Time
}

// Total is the number of sessions counted.
func (c Counts) Total() int64 { return c.Active + c.Expired + c.Revoked }

// Counts returns per-status counts for the sessions of a username filter (Filter.Username and
// Prefix, and with From, the table and Purged; other fields are ignored). Counting is exact but not done per request: a count is
// reused for up to Options.CountsMaxAge (refreshed in the background meanwhile), so a page
// header never scans the table on every request. Writes through this store count afresh.
func (s *Store) Counts(ctx context.Context, f Filter) (Counts, error) {
	key := s.countKey(f)
	return s.counts.get(ctx, key, func(ctx context.Context, adjusted bool) (Counts, error) {
		if key.user == "" && key.purged == "" && !adjusted && s.shared != nil {
			if c, ok, err := s.shared(ctx, key.table); err == nil && ok {
				return c, nil
			}
		}
		return s.count(ctx, key)
	}, &s.bg)
}

// UseSharedCounts makes Counts take the counts of a whole table (no username filter) from
// shared, which returns counts made by another process (the counts job, run by one replica
// for all) and false when it has none fresh enough; Counts then counts by itself, as it does
// after this store's own writes.
func (s *Store) UseSharedCounts(shared func(ctx context.Context, table string) (Counts, bool, error)) {
	s.shared = shared
}

// CountNow counts like Counts but always asks the database: for a number someone acts on
// (a revoke confirmation), not for a page header.
func (s *Store) CountNow(ctx context.Context, f Filter) (Counts, error) {
	return s.count(ctx, s.countKey(f))
}

// countKey is the username part of f, as the dialect stores names, and its table.
func (s *Store) countKey(f Filter) countKey {
	k := countKey{user: s.Username(f.Username), prefix: f.Prefix, table: s.table}
	if f.From != nil {
		k.table = f.From.Table
		switch f.Purged {
		case PurgedNot:
			k.purged = f.From.Purged + " IS NULL"
		case PurgedOnly:
			k.purged = f.From.Purged + " IS NOT NULL"
		}
	}
	return k
}

func (s *Store) count(ctx context.Context, key countKey) (Counts, error) {
	now := s.now().UTC()
	args := []any{now}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	w, err := s.userPredicate(key.user, key.prefix, arg)
	if err != nil {
		return Counts{}, err
	}
	sql := `SELECT count(*) FILTER (WHERE "revokedAt" IS NULL AND "expiresAt" > $1),
		count(*) FILTER (WHERE "revokedAt" IS NULL AND "expiresAt" <= $1),
		count(*) FILTER (WHERE "revokedAt" IS NOT NULL)
		FROM ` + key.table
	if key.purged != "" {
		w = strings.TrimPrefix(w+" AND "+key.purged, " AND ")
	}
	if w != "" {
		sql += " WHERE " + w
	}
	c := Counts{At: now}
	read := func(q pgdb.DBTX) error {
		return pgdb.Retry(ctx, func() error {
			return q.QueryRow(ctx, sql, args...).Scan(&c.Active, &c.Expired, &c.Revoked)
		})
	}
	if key.table == s.table {
		err = s.scanning(ctx, scanCounts, read)
	} else { // the history: the console's own table, counted with its indexes where they serve
		err = pgdb.WithFullScan(ctx, s.pool, s.server, read)
	}
	if err != nil {
		var fse *FullScanError
		if errors.As(err, &fse) {
			return Counts{}, err
		}
		return Counts{}, s.dbErr("count", err)
	}
	return c, nil
}

type countKey struct {
	user   string
	prefix bool
	table  string
	// purged, for a history source, is the condition on its purge column of Filter.Purged:
	// count only rows still in the live table, or only those that left it.
	purged string
}

type countEntry struct {
	counts     Counts
	fetched    time.Time
	refreshing bool
	// adjusted: this store's writes changed the counts since they were fetched, so the shared
	// counts (counted elsewhere, maybe before those writes) will not do for the next refresh.
	adjusted bool
}

// countCache keeps recent counts per filter: fresh ones are returned as they are, stale ones are
// returned while one background refresh runs, invalidated ones are recounted before returning.
type countCache struct {
	table   string // the live table, the one this store's writes change
	mu      sync.Mutex
	maxAge  time.Duration
	gen     uint64 // bumped by invalidate
	entries map[countKey]*countEntry
	genOf   map[countKey]uint64
}

const maxCountEntries = 512

func newCountCache(maxAge time.Duration, table string) *countCache {
	return &countCache{table: table, maxAge: maxAge, entries: map[countKey]*countEntry{}, genOf: map[countKey]uint64{}}
}

func (c *countCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// countDelta is a change this store made to the status counts of one user's sessions.
type countDelta struct{ active, expired, revoked int64 }

// adjust applies d, a change to user's sessions, to every cached count whose filter includes
// that user, so that counts stay exact without counting the table again (which at a million
// rows takes a tenth of a second or more). Counts in flight when the change was made are
// discarded, as after invalidate; entries already invalidated stay so.
func (c *countCache) adjust(user string, d countDelta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.gen
	c.gen++
	for key, e := range c.entries {
		if c.genOf[key] != prev {
			continue
		}
		if key.table == c.table && (key.user == "" || key.user == user || (key.prefix && strings.HasPrefix(user, key.user))) {
			e.counts.Active += d.active
			e.counts.Expired += d.expired
			e.counts.Revoked += d.revoked
			e.adjusted = true
		}
		c.genOf[key] = c.gen
	}
}

func (c *countCache) get(ctx context.Context, key countKey, count func(ctx context.Context, adjusted bool) (Counts, error), bg *sync.WaitGroup) (Counts, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && c.genOf[key] == c.gen {
		if time.Since(e.fetched) < c.maxAge {
			defer c.mu.Unlock()
			return e.counts, nil
		}
		if !e.refreshing {
			e.refreshing = true
			gen, adjusted := c.gen, e.adjusted
			bg.Add(1)
			go func() {
				defer bg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				counts, err := count(ctx, adjusted)
				c.mu.Lock()
				defer c.mu.Unlock()
				e.refreshing = false
				if err == nil && c.genOf[key] == gen {
					if counts.At.Before(e.counts.At) { // shared counts older than what this store has
						counts = e.counts
					}
					e.counts, e.fetched, e.adjusted = counts, time.Now(), false
				}
			}()
		}
		defer c.mu.Unlock()
		return e.counts, nil
	}
	gen := c.gen
	c.mu.Unlock()

	counts, err := count(ctx, false)
	if err != nil {
		return Counts{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCountEntries {
		clear(c.entries)
		clear(c.genOf)
	}
	if cur, ok := c.entries[key]; !ok || c.genOf[key] <= gen {
		if ok {
			cur.counts, cur.fetched = counts, time.Now()
		} else {
			c.entries[key] = &countEntry{counts: counts, fetched: time.Now()}
		}
		c.genOf[key] = gen
	}
	return counts, nil
}
