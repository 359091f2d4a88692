package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Limits of what the Recorder keeps of one use.
const (
	// DefaultActivityFlushEvery is how often a process writes the uses it noted.
	DefaultActivityFlushEvery = 5 * time.Second
	// maxPendingUses bounds the distinct (session, address, user agent) entries a process
	// holds between writes; uses of new entries beyond it are counted as dropped.
	maxPendingUses = 50_000
	maxUserAgent   = 256
	maxAddr        = 64
	maxHost        = 256
	maxPath        = 512
	// lastUsedGrain: lastUsedAt columns are rewritten only when the new use is at least this
	// much later than the stored one (the activity table has the exact time).
	lastUsedGrain = time.Minute
)

type useKey struct {
	id       int64
	addr, ua string
}

type useVal struct {
	first, last time.Time
	n           int64
	host, path  string
}

// Recorder notes the uses of sessions that /auth/verify accepts and writes them to the
// activity tables in batches, off the request path. Note is cheap (a map update under one of
// recorderShards mutexes, chosen by session, and no allocation for a client already noted);
// Flush, run every DefaultActivityFlushEvery by a local job in each process, writes what was
// noted. Writes from several processes add up (counts are added, times take the least or
// greatest), so every replica flushes its own.
type Recorder struct {
	store  *Store
	shards [recorderShards]noteShard
	kick   chan struct{}
}

// recorderShards spreads concurrent verifies over that many locks.
const recorderShards = 16

type noteShard struct {
	mu      sync.Mutex
	notes   map[useKey]useVal
	dropped int64
	_       [40]byte // keep the shards' locks on separate cache lines
}

// NewRecorder returns a recorder writing to s's tables.
func (s *Store) NewRecorder() *Recorder {
	r := &Recorder{store: s, kick: make(chan struct{}, 1)}
	for i := range r.shards {
		r.shards[i].notes = make(map[useKey]useVal, 64)
	}
	return r
}

// Kick is signalled when the pending uses reach half the bound, for an early flush.
func (r *Recorder) Kick() <-chan struct{} { return r.kick }

// shardBound is the most entries one shard holds.
const shardBound = maxPendingUses / recorderShards

// Note records one use of session id at `at` from a client: its address (as the trusted proxy
// chain gives it), User-Agent, and the host and path the proxy reports (the query string is
// dropped: it may hold secrets). Overlong values are cut.
func (r *Recorder) Note(id int64, at time.Time, addr, userAgent, host, path string) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	k := useKey{id: id, addr: cut(addr, maxAddr), ua: cut(userAgent, maxUserAgent)}
	sh := &r.shards[uint64(id)%recorderShards]
	sh.mu.Lock()
	v, ok := sh.notes[k]
	if !ok {
		if len(sh.notes) >= shardBound {
			sh.dropped++
			sh.mu.Unlock()
			return
		}
		v.first = at
	}
	v.n++
	if !at.Before(v.last) {
		v.last, v.host, v.path = at, cut(host, maxHost), cut(path, maxPath)
	}
	sh.notes[k] = v
	n := len(sh.notes)
	sh.mu.Unlock()
	if !ok && n == shardBound/2 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// clean makes a header value storable as text: valid UTF-8 without NUL (a value cut in the
// middle of a character, or a client's junk).
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Pending returns how many distinct entries wait for the next flush, and how many uses were
// dropped since the last flush because the bound was reached.
func (r *Recorder) Pending() (entries int, dropped int64) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		entries, dropped = entries+len(sh.notes), dropped+sh.dropped
		sh.mu.Unlock()
	}
	return entries, dropped
}

// Flush writes the uses noted so far: per session, first and last use, count and the last
// client, host and path (console.session_activity); per (session, address, user agent) the
// count and times (console.session_clients, at most MaxClientsPerSession per session); the
// history's "lastUsedAt"; and on PostgreSQL the live table's "lastUsedAt", with the time of
// the use. On CockroachDB it never writes system.web_sessions. When the write fails, the uses
// are kept for the next flush (within the bound).
func (r *Recorder) Flush(ctx context.Context, tx Txer) error {
	var taken [recorderShards]map[useKey]useVal
	notes := map[useKey]useVal{}
	var dropped int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		taken[i], dropped = sh.notes, dropped+sh.dropped
		if len(sh.notes) > 0 {
			sh.notes = make(map[useKey]useVal, len(sh.notes))
		}
		sh.dropped = 0
		sh.mu.Unlock()
		for k, v := range taken[i] {
			notes[k] = v
		}
	}
	if len(notes) == 0 && dropped == 0 {
		return nil
	}
	var err error
	if len(notes) > 0 {
		err = r.write(ctx, tx, notes)
	}
	if err != nil {
		for i := range r.shards {
			r.shards[i].putBack(taken[i])
		}
		r.shards[0].mu.Lock()
		r.shards[0].dropped += dropped
		r.shards[0].mu.Unlock()
		return err
	}
	if dropped > 0 {
		return fmt.Errorf("history: activity: %d uses not recorded (too many clients between two flushes)", dropped)
	}
	return nil
}

// putBack merges notes that could not be written into the shard, for the next flush.
func (sh *noteShard) putBack(notes map[useKey]useVal) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k, v := range notes {
		cur, ok := sh.notes[k]
		if !ok && len(sh.notes) >= shardBound {
			sh.dropped += v.n
			continue
		}
		if ok {
			v.n += cur.n
			if cur.first.Before(v.first) {
				v.first = cur.first
			}
			if cur.last.After(v.last) {
				v.last, v.host, v.path = cur.last, cur.host, cur.path
			}
		}
		sh.notes[k] = v
	}
}

type sessionUse struct {
	id                   int64
	first, last          time.Time
	n                    int64
	addr, ua, host, path string
}

func (r *Recorder) write(ctx context.Context, tx Txer, notes map[useKey]useVal) error {
	keys := make([]useKey, 0, len(notes))
	for k := range notes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.id != b.id {
			return a.id < b.id
		}
		if a.addr != b.addr {
			return a.addr < b.addr
		}
		return a.ua < b.ua
	})
	var per []sessionUse
	n := len(keys)
	cid, caddr, cua, cn := make([]int64, n), make([]string, n), make([]string, n), make([]int64, n)
	cfirst, clast := make([]time.Time, n), make([]time.Time, n)
	for i, k := range keys {
		v := notes[k]
		cid[i], caddr[i], cua[i], cn[i], cfirst[i], clast[i] = k.id, clean(k.addr), clean(k.ua), v.n, v.first.UTC(), v.last.UTC()
		if len(per) == 0 || per[len(per)-1].id != k.id {
			per = append(per, sessionUse{id: k.id, first: v.first, last: v.last})
		}
		p := &per[len(per)-1]
		p.n += v.n
		if v.first.Before(p.first) {
			p.first = v.first
		}
		if !v.last.Before(p.last) {
			p.last, p.addr, p.ua, p.host, p.path = v.last, caddr[i], cua[i], clean(v.host), clean(v.path)
		}
	}
	m := len(per)
	sid, sn := make([]int64, m), make([]int64, m)
	sfirst, slast := make([]time.Time, m), make([]time.Time, m)
	saddr, sua, shost, spath := make([]string, m), make([]string, m), make([]string, m), make([]string, m)
	for i, p := range per {
		sid[i], sn[i], sfirst[i], slast[i] = p.id, p.n, p.first.UTC(), p.last.UTC()
		saddr[i], sua[i], shost[i], spath[i] = p.addr, p.ua, p.host, p.path
	}
	s := r.store
	err := tx.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO console.session_activity AS a
				(session_id, first_used_at, last_used_at, uses, last_addr, last_user_agent, last_host, last_path)
			SELECT v.id, v.first, v.last, v.n, v.addr, v.ua, v.host, v.path
			FROM unnest($1::INT8[], $2::TIMESTAMP[], $3::TIMESTAMP[], $4::INT8[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
				AS v(id, first, last, n, addr, ua, host, path)
			ON CONFLICT (session_id) DO UPDATE SET
				first_used_at = LEAST(a.first_used_at, excluded.first_used_at),
				last_used_at = GREATEST(a.last_used_at, excluded.last_used_at),
				uses = a.uses + excluded.uses,
				last_addr = CASE WHEN excluded.last_used_at >= a.last_used_at THEN excluded.last_addr ELSE a.last_addr END,
				last_user_agent = CASE WHEN excluded.last_used_at >= a.last_used_at THEN excluded.last_user_agent ELSE a.last_user_agent END,
				last_host = CASE WHEN excluded.last_used_at >= a.last_used_at THEN excluded.last_host ELSE a.last_host END,
				last_path = CASE WHEN excluded.last_used_at >= a.last_used_at THEN excluded.last_path ELSE a.last_path END`,
			sid, sfirst, slast, sn, saddr, sua, shost, spath); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO console.session_clients AS c
				(session_id, addr, user_agent, uses, first_used_at, last_used_at)
			SELECT v.id, v.addr, v.ua, v.n, v.first, v.last
			FROM unnest($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[], $5::TIMESTAMP[], $6::TIMESTAMP[])
				AS v(id, addr, ua, n, first, last)
			WHERE EXISTS (SELECT 1 FROM console.session_clients AS x WHERE x.session_id = v.id AND x.addr = v.addr AND x.user_agent = v.ua)
				OR (SELECT count(*) FROM console.session_clients AS x WHERE x.session_id = v.id) < $7
			ON CONFLICT (session_id, addr, user_agent) DO UPDATE SET
				uses = c.uses + excluded.uses,
				first_used_at = LEAST(c.first_used_at, excluded.first_used_at),
				last_used_at = GREATEST(c.last_used_at, excluded.last_used_at)`,
			cid, caddr, cua, cn, cfirst, clast, MaxClientsPerSession); err != nil {
			return err
		}
		grain := lastUsedGrain.Microseconds()
		if _, err := tx.Exec(ctx, `UPDATE `+Table+` AS h SET "lastUsedAt" = v.last
			FROM unnest($1::INT8[], $2::TIMESTAMP[]) AS v(id, last)
			WHERE h.id = v.id AND h."lastUsedAt" <= v.last - $3::INT8 * INTERVAL '1 microsecond'`, sid, slast, grain); err != nil {
			return err
		}
		if s.live.Flavor() == pgdb.Postgres {
			if _, err := tx.Exec(ctx, `UPDATE console.web_sessions AS w SET "lastUsedAt" = v.last
				FROM unnest($1::INT8[], $2::TIMESTAMP[]) AS v(id, last)
				WHERE w.id = v.id AND w."lastUsedAt" <= v.last - $3::INT8 * INTERVAL '1 microsecond'`, sid, slast, grain); err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr("activity", err)
}

// Activity is what /auth/verify saw of one session.
type Activity struct {
	FirstUsedAt, LastUsedAt time.Time
	Uses                    int64
	LastAddr, LastUserAgent string
	LastHost, LastPath      string
}

// Client is one (address, user agent) pair a session was used from.
type Client struct {
	Addr, UserAgent         string
	Uses                    int64
	FirstUsedAt, LastUsedAt time.Time
}

// Activity returns what was recorded of session id's uses; ok is false when none was.
func (s *Store) Activity(ctx context.Context, id int64) (a Activity, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT first_used_at, last_used_at, uses, last_addr, last_user_agent, last_host, last_path
		FROM console.session_activity WHERE session_id = $1`, id).
		Scan(&a.FirstUsedAt, &a.LastUsedAt, &a.Uses, &a.LastAddr, &a.LastUserAgent, &a.LastHost, &a.LastPath)
	if errors.Is(err, pgx.ErrNoRows) {
		return Activity{}, false, nil
	}
	if err != nil {
		return Activity{}, false, dbErr("activity", err)
	}
	a.FirstUsedAt, a.LastUsedAt = a.FirstUsedAt.UTC(), a.LastUsedAt.UTC()
	return a, true, nil
}

// Clients returns the (address, user agent) pairs session id was used from, most recent first,
// at most limit.
func (s *Store) Clients(ctx context.Context, id int64, limit int) ([]Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT addr, user_agent, uses, first_used_at, last_used_at
		FROM console.session_clients WHERE session_id = $1 ORDER BY last_used_at DESC, addr, user_agent LIMIT $2`, id, limit)
	if err != nil {
		return nil, dbErr("clients", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Client, error) {
		var c Client
		err := r.Scan(&c.Addr, &c.UserAgent, &c.Uses, &c.FirstUsedAt, &c.LastUsedAt)
		c.FirstUsedAt, c.LastUsedAt = c.FirstUsedAt.UTC(), c.LastUsedAt.UTC()
		return c, err
	})
	return out, dbErr("clients", err)
}

// LastUses returns the recorded last use of each of ids that has one (for the live table's
// pages on CockroachDB, whose "lastUsedAt" never changes).
func (s *Store) LastUses(ctx context.Context, ids []int64) (map[int64]time.Time, error) {
	out := make(map[int64]time.Time, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT session_id, last_used_at FROM console.session_activity WHERE session_id = ANY($1)`, ids)
	if err != nil {
		return nil, dbErr("last uses", err)
	}
	var id int64
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		out[id] = at.UTC()
		return nil
	})
	return out, dbErr("last uses", err)
}
