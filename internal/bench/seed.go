package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/sessionstore"
)

// Dataset describes the sessions a size seeds: Sessions rows in all, of which HeavyUsers users
// (heavy0, heavy1, ...) hold HeavySessions each and the rest belong to Users ordinary users
// (user00000, user00001, ...), picked at random. Every row is active, revoked or expired with
// the shares ActivePct and RevokedPct (the rest expired); creation times spread uniformly over
// the 30 days before Now, and IDs follow creation order, as in a table that grew over time.
type Dataset struct {
	Sessions      int
	Users         int
	HeavyUsers    int
	HeavySessions int
	ActivePct     int
	RevokedPct    int
	// IssueUsers is how many ordinary users (user00000 ...) get a LOGIN role, for the issue case.
	IssueUsers int
	// VerifySample is how many active sessions the verify case draws cookies from.
	VerifySample int
	Now          time.Time
}

// DatasetFor returns the issue's dataset for a size: 10,000 users, 20% active, 10% revoked,
// 70% expired, and four heavy users holding 10,000 sessions each, or 5% of the rows each when
// that is fewer (at 10k sessions a heavy user holds 500).
func DatasetFor(sessions int, now time.Time) Dataset {
	heavy := min(10_000, sessions/20)
	return Dataset{
		Sessions:      sessions,
		Users:         10_000,
		HeavyUsers:    4,
		HeavySessions: heavy,
		ActivePct:     20,
		RevokedPct:    10,
		IssueUsers:    64,
		VerifySample:  2_000,
		Now:           now.UTC().Truncate(time.Microsecond),
	}
}

// HeavyUser returns the name of heavy user i.
func HeavyUser(i int) string { return fmt.Sprintf("heavy%d", i) }

// OrdinaryUser returns the name of ordinary user i.
func OrdinaryUser(i int) string { return fmt.Sprintf("user%05d", i) }

// Seeded is what the cases need to know about the seeded data.
type Seeded struct {
	Rows     int
	Active   int
	Revoked  int
	Expired  int
	MaxID    int64
	Duration time.Duration // COPY, index build, VACUUM ANALYZE
	CopyTime time.Duration
	// Cookies are valid cookie values of active sessions spread over the table, each valid
	// for at least six more hours.
	Cookies []string
	// CookieIDs are the session IDs of Cookies, in the same order.
	CookieIDs []int64
	// IssueUsers are LOGIN roles that the issue case issues sessions for.
	IssueUsers []string
	// HeavyActive is heavy user 1's count of sessions that are not revoked (what a revoke-all
	// of that user writes).
	HeavyUnrevoked int
	TableBytes     int64
	IndexBytes     int64
}

const day = 24 * time.Hour

// secretOf derives the secret of session id from key, so that the seeder keeps no secrets
// in memory and can still build a valid cookie for any row.
func secretOf(key []byte, id int64) []byte {
	h := sha256.New()
	h.Write(key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	h.Write(b[:])
	return h.Sum(nil)[:sessionstore.SecretLength]
}

// rowSource generates the rows for COPY, one at a time.
type rowSource struct {
	d       Dataset
	key     []byte
	rng     *mrand.Rand
	created []int64 // microseconds before Now, sorted descending (oldest first)
	owner   []int32 // >= 0: ordinary user; < 0: heavy user -owner-1
	names   []string
	heavy   []string

	i      int
	vals   []any
	counts [3]int // active, revoked, expired

	sample     []int64 // reservoir of active session IDs
	seenActive int
	heavy1Open int
}

func newRowSource(d Dataset, key []byte, seed uint64) *rowSource {
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := d.Sessions
	span := int64(30 * day / time.Microsecond)
	created := make([]int64, n)
	for i := range created {
		created[i] = 1 + rng.Int64N(span)
	}
	slices.SortFunc(created, func(a, b int64) int { return cmp.Compare(b, a) }) // oldest first
	owner := make([]int32, n)
	heavyRows := d.HeavyUsers * d.HeavySessions
	for i := range owner {
		if i < heavyRows {
			owner[i] = -int32(i/d.HeavySessions) - 1
		} else {
			owner[i] = int32(rng.IntN(d.Users))
		}
	}
	rng.Shuffle(n, func(i, j int) { owner[i], owner[j] = owner[j], owner[i] })
	names := make([]string, d.Users)
	for i := range names {
		names[i] = OrdinaryUser(i)
	}
	heavy := make([]string, d.HeavyUsers)
	for i := range heavy {
		heavy[i] = HeavyUser(i)
	}
	return &rowSource{d: d, key: key, rng: rng, created: created, owner: owner, names: names, heavy: heavy,
		vals: make([]any, 7)}
}

// Next implements pgx.CopyFromSource.
func (s *rowSource) Next() bool {
	if s.i >= len(s.created) {
		return false
	}
	id := int64(s.i + 1)
	now := s.d.Now
	age := time.Duration(s.created[s.i]) * time.Microsecond
	createdAt := now.Add(-age)
	// between returns a time uniformly in (a, b), to the microsecond.
	between := func(a, b time.Time) time.Time {
		d := b.Sub(a)
		if d <= 2*time.Microsecond {
			return a.Add(time.Microsecond)
		}
		return a.Add(time.Microsecond + time.Duration(s.rng.Int64N(int64(d-time.Microsecond)))).Truncate(time.Microsecond)
	}
	maxExpiry := createdAt.Add(sessionstore.DefaultMaxTTL)
	var expiresAt time.Time
	var revokedAt *time.Time
	p := s.rng.IntN(100)
	switch {
	case p < s.d.ActivePct: // active: expires in the future, not revoked
		expiresAt = between(now, maxExpiry)
		s.counts[0]++
		// Verify's cookies must stay valid for the whole run: sample sessions that still
		// have hours to live.
		if expiresAt.Sub(now) > 6*time.Hour {
			s.seenActive++
			if len(s.sample) < s.d.VerifySample {
				s.sample = append(s.sample, id)
			} else if j := s.rng.IntN(s.seenActive); j < len(s.sample) {
				s.sample[j] = id
			}
		}
	case p < s.d.ActivePct+s.d.RevokedPct: // revoked some time after creation
		expiresAt = between(createdAt, maxExpiry)
		r := between(createdAt, now)
		revokedAt = &r
		s.counts[1]++
	default: // expired before now
		expiresAt = between(createdAt, now)
		s.counts[2]++
	}
	lastUsedEnd := now
	if expiresAt.Before(lastUsedEnd) {
		lastUsedEnd = expiresAt
	}
	if revokedAt != nil && revokedAt.Before(lastUsedEnd) {
		lastUsedEnd = *revokedAt
	}
	lastUsedAt := between(createdAt, lastUsedEnd)
	var user string
	if o := s.owner[s.i]; o >= 0 {
		user = s.names[o]
	} else {
		user = s.heavy[-o-1]
		if -o-1 == 1 && revokedAt == nil {
			s.heavy1Open++
		}
	}
	hash := sha256.Sum256(secretOf(s.key, id))
	s.vals[0], s.vals[1], s.vals[2], s.vals[3], s.vals[4], s.vals[6] = id, hash[:], user, createdAt, expiresAt, lastUsedAt
	if revokedAt != nil {
		s.vals[5] = *revokedAt
	} else {
		s.vals[5] = nil
	}
	s.i++
	return true
}

// Values implements pgx.CopyFromSource.
func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

// Err implements pgx.CopyFromSource.
func (s *rowSource) Err() error { return nil }

// Seed fills the console's session table (created by sessionstore.Open, which must have run on
// pool's database) with d by COPY, creates the LOGIN roles the cases need, and leaves the table
// vacuumed and analyzed, as autovacuum would after a while. The table must be empty.
// The secondary indexes are dropped during the COPY and rebuilt after it with their exact
// definitions (the bulk load of a big table, as pg_restore does it).
func Seed(ctx context.Context, pool *pgxpool.Pool, d Dataset, logf func(string, ...any)) (*Seeded, error) {
	start := time.Now()
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM console.web_sessions`).Scan(&n); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	if n > 0 {
		return nil, fmt.Errorf("bench: seed: console.web_sessions already holds %d rows", n)
	}
	if d.HeavyUsers < 2 || d.HeavySessions < 1 || d.HeavyUsers*d.HeavySessions > d.Sessions {
		return nil, fmt.Errorf("bench: seed: dataset needs at least 2 heavy users within %d sessions", d.Sessions)
	}
	seeded := &Seeded{Rows: d.Sessions}
	roles := []string{}
	for i := 0; i < d.IssueUsers && i < d.Users; i++ {
		roles = append(roles, OrdinaryUser(i))
		seeded.IssueUsers = append(seeded.IssueUsers, OrdinaryUser(i))
	}
	for i := 0; i < d.HeavyUsers; i++ {
		roles = append(roles, HeavyUser(i))
	}
	if err := createLoginRoles(ctx, pool, roles); err != nil {
		return nil, err
	}

	// Drop the secondary indexes, remembering their definitions.
	rows, err := pool.Query(ctx, `SELECT i.indexname, i.indexdef FROM pg_indexes i
		JOIN pg_class c ON c.relname = i.indexname
		JOIN pg_index x ON x.indexrelid = c.oid AND NOT x.indisprimary
		WHERE i.schemaname = 'console' AND i.tablename = 'web_sessions'`)
	if err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	type index struct{ name, def string }
	indexes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var ix index
		return ix, r.Scan(&ix.name, &ix.def)
	})
	if err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	for _, ix := range indexes {
		if _, err := pool.Exec(ctx, `DROP INDEX console.`+pgx.Identifier{ix.name}.Sanitize()); err != nil {
			return nil, fmt.Errorf("bench: seed: drop index %s: %w", ix.name, err)
		}
	}

	key := make([]byte, 32)
	rand.Read(key)
	var seed [8]byte
	rand.Read(seed[:])
	src := newRowSource(d, key, binary.LittleEndian.Uint64(seed[:]))
	copyStart := time.Now()
	copied, err := pool.CopyFrom(ctx, pgx.Identifier{"console", "web_sessions"},
		[]string{"id", "hashedSecret", "username", "createdAt", "expiresAt", "revokedAt", "lastUsedAt"}, src)
	if err != nil {
		return nil, fmt.Errorf("bench: seed: copy: %w", err)
	}
	seeded.CopyTime = time.Since(copyStart)
	if int(copied) != d.Sessions {
		return nil, fmt.Errorf("bench: seed: copied %d rows, want %d", copied, d.Sessions)
	}
	logf("copied %d rows in %s; building %d indexes", copied, seeded.CopyTime.Round(time.Millisecond), len(indexes))

	// Rebuild the indexes, two at a time (one per core here).
	errs := make(chan error, len(indexes))
	sem := make(chan struct{}, 2)
	for _, ix := range indexes {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			conn, err := pool.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '256MB'`); err != nil {
				errs <- err
				return
			}
			_, err = conn.Exec(ctx, ix.def)
			if err == nil {
				_, err = conn.Exec(ctx, `RESET maintenance_work_mem`)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", ix.def, err)
			}
			errs <- err
		}()
	}
	for range indexes {
		if err := <-errs; err != nil {
			return nil, fmt.Errorf("bench: seed: index: %w", err)
		}
	}
	seeded.MaxID = int64(d.Sessions)
	if _, err := pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('console.web_sessions', 'id'), $1)`, seeded.MaxID); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) console.web_sessions`); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT pg_table_size('console.web_sessions'), pg_indexes_size('console.web_sessions')`).
		Scan(&seeded.TableBytes, &seeded.IndexBytes); err != nil {
		return nil, fmt.Errorf("bench: seed: %w", err)
	}
	seeded.Active, seeded.Revoked, seeded.Expired = src.counts[0], src.counts[1], src.counts[2]
	seeded.HeavyUnrevoked = src.heavy1Open
	mrand.Shuffle(len(src.sample), func(i, j int) { src.sample[i], src.sample[j] = src.sample[j], src.sample[i] })
	for _, id := range src.sample {
		c := sessionstore.Cookie{ID: id, Secret: secretOf(key, id)}
		seeded.Cookies = append(seeded.Cookies, c.Value())
		seeded.CookieIDs = append(seeded.CookieIDs, id)
	}
	seeded.Duration = time.Since(start)
	return seeded, nil
}

// createLoginRoles creates LOGIN roles (the PostgreSQL dialect's users) that do not exist yet.
// Roles belong to the cluster, so a second size finds them already there.
func createLoginRoles(ctx context.Context, pool *pgxpool.Pool, names []string) error {
	var b strings.Builder
	for _, name := range names {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil {
			return fmt.Errorf("bench: roles: %w", err)
		}
		if !exists {
			fmt.Fprintf(&b, "CREATE ROLE %s LOGIN;\n", pgx.Identifier{name}.Sanitize())
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if _, err := pool.Exec(ctx, b.String()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: made meanwhile
			return nil
		}
		return fmt.Errorf("bench: roles: %w", err)
	}
	return nil
}
