package history

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/sessionstore"
)

const (
	// DefaultCountEvery is how often the counts job counts the tables someone looks at.
	DefaultCountEvery = 15 * time.Second
	// wantedFor: the job counts a table while a page asked for its counts this recently.
	wantedFor = 2 * time.Minute
	// wantEvery: a process records that it wants a table's counts at most this often.
	wantEvery = 30 * time.Second
)

// Counter shares the counts per status of whole tables (the live table, the history) among
// replicas: one replica's counts job (Refresh, under a lease) counts each table that some
// replica's pages asked for lately, and every replica's session store reads the result
// (Shared) instead of counting the table itself. A count of a million rows costs a tenth of
// a second of database time, so N replicas showing the sessions page cost one count per
// period instead of N.
type Counter struct {
	store *Store
	every time.Duration

	mu     sync.Mutex
	wanted map[string]time.Time // when this process last recorded its interest, per table
}

// NewCounter returns a counter whose job runs every `every`.
func (s *Store) NewCounter(every time.Duration) *Counter {
	if every <= 0 {
		every = DefaultCountEvery
	}
	return &Counter{store: s, every: every, wanted: map[string]time.Time{}}
}

// Shared returns the latest counts of table made by the counts job, if they are at most three
// periods old; it records (at most every wantEvery) that this process wants them.
func (c *Counter) Shared(ctx context.Context, table string) (sessionstore.Counts, bool, error) {
	c.mu.Lock()
	want := time.Since(c.wanted[table]) > wantEvery
	if want {
		c.wanted[table] = time.Now()
	}
	c.mu.Unlock()
	pool := c.store.pool
	if want {
		if _, err := pool.Exec(ctx, `INSERT INTO console.session_counts (table_name, wanted_at) VALUES ($1, now())
			ON CONFLICT (table_name) DO UPDATE SET wanted_at = now()`, table); err != nil {
			return sessionstore.Counts{}, false, dbErr("shared counts", err)
		}
	}
	var out sessionstore.Counts
	var at *time.Time
	var fresh bool
	err := pool.QueryRow(ctx, `SELECT active, expired, revoked, counted_at,
			COALESCE(counted_at > now() - $2::INT8 * INTERVAL '1 microsecond', false)
		FROM console.session_counts WHERE table_name = $1`, table, (3*c.every).Microseconds()).
		Scan(&out.Active, &out.Expired, &out.Revoked, &at, &fresh)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !fresh) {
		return sessionstore.Counts{}, false, nil
	}
	if err != nil {
		return sessionstore.Counts{}, false, dbErr("shared counts", err)
	}
	out.At = at.UTC()
	return out, true, nil
}

// Refresh counts every table wanted lately (the live table and the history) and stores the
// counts, through tx. It is the counts job's pass.
func (c *Counter) Refresh(ctx context.Context, tx Txer) (int, error) {
	rows, err := c.store.pool.Query(ctx, `SELECT table_name FROM console.session_counts
		WHERE wanted_at > now() - $1::INT8 * INTERVAL '1 microsecond'`, wantedFor.Microseconds())
	if err != nil {
		return 0, dbErr("counts", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, dbErr("counts", err)
	}
	n := 0
	for _, table := range tables {
		var f sessionstore.Filter
		switch table {
		case c.store.live.Table():
		case Table:
			f.From = Source
		default:
			continue
		}
		counts, err := c.store.live.CountNow(ctx, f)
		if err != nil {
			return n, err
		}
		if err := tx.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE console.session_counts SET active = $2, expired = $3, revoked = $4, counted_at = $5
				WHERE table_name = $1`, table, counts.Active, counts.Expired, counts.Revoked, counts.At)
			return err
		}); err != nil {
			return n, dbErr("counts", err)
		}
		n++
	}
	return n, nil
}
