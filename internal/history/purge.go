package history

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// ErrNotPostgres: the purge runs only where the console owns the session table.
var ErrNotPostgres = errors.New("history: the console purges only its own session table (PostgreSQL); CockroachDB purges system.web_sessions itself")

// maxPurgeBatches bounds one purge pass (PurgeBatch rows each); the rest waits for the next.
const maxPurgeBatches = 1000

// Purge deletes, on PostgreSQL, the sessions of console.web_sessions that expired or were
// revoked more than ttl ago, as CockroachDB purges system.web_sessions: one statement per
// column, at most PurgeBatch rows each, repeated until a statement deletes fewer. A row is
// deleted only once the history has recorded it as it is (same expiresAt and revokedAt; rows
// the sync has not recorded are recorded first), and the history marks it purged in the same
// transaction. It returns the number of rows deleted.
func (s *Store) Purge(ctx context.Context, tx Txer, ttl time.Duration) (int64, error) {
	if s.live.Flavor() != pgdb.Postgres {
		return 0, ErrNotPostgres
	}
	var total int64
	for _, col := range []string{`"expiresAt"`, `"revokedAt"`} {
		if err := s.recordStragglers(ctx, tx, col, ttl); err != nil {
			return 0, err
		}
		for range maxPurgeBatches {
			var n int64
			err := tx.Tx(ctx, func(tx pgx.Tx) error {
				var now time.Time
				if err := tx.QueryRow(ctx, `SELECT now() AT TIME ZONE 'UTC'`).Scan(&now); err != nil {
					return err
				}
				now = now.UTC()
				rows, err := tx.Query(ctx, `WITH c AS (
						SELECT w.id FROM console.web_sessions AS w
						JOIN `+Table+` AS h ON h.id = w.id AND h."expiresAt" = w."expiresAt"
							AND h."revokedAt" IS NOT DISTINCT FROM w."revokedAt"
						WHERE w.`+col+` < $1
						ORDER BY w.`+col+` LIMIT $2
						FOR UPDATE OF w),
					d AS (DELETE FROM console.web_sessions AS w USING c WHERE w.id = c.id RETURNING w.id)
					UPDATE `+Table+` AS h SET purged_at = $3 FROM d WHERE h.id = d.id AND h.purged_at IS NULL RETURNING h.id`,
					now.Add(-ttl), PurgeBatch, now)
				if err != nil {
					return err
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return err
				}
				n = int64(len(ids))
				return notePurge(ctx, tx, n, now)
			})
			if err != nil {
				return total, dbErr("purge", err)
			}
			total += n
			if n < PurgeBatch {
				break
			}
		}
	}
	return total, nil
}

// recordStragglers records the rows due for purging by col that the history lacks or has in
// another state (written back-dated, or changed since the last sync), so that the purge can
// take them too, never before they are recorded.
func (s *Store) recordStragglers(ctx context.Context, tx Txer, col string, ttl time.Duration) error {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT now() AT TIME ZONE 'UTC'`).Scan(&now); err != nil {
		return dbErr("purge", err)
	}
	now = now.UTC()
	for range maxPurgeBatches {
		rows, err := s.pool.Query(ctx, s.liveSelect()+` WHERE w.`+col+` < $1
			AND NOT EXISTS (SELECT 1 FROM `+Table+` AS h WHERE h.id = w.id AND h."expiresAt" = w."expiresAt"
				AND h."revokedAt" IS NOT DISTINCT FROM w."revokedAt")
			ORDER BY w.`+col+` LIMIT $2`, now.Add(-ttl), syncBatch)
		if err != nil {
			return dbErr("purge: unrecorded rows", err)
		}
		batch, err := scanLive(rows)
		if err != nil {
			return dbErr("purge: unrecorded rows", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if _, _, err := s.record(ctx, tx, batch, now, "", nil); err != nil {
			return err
		}
		if len(batch) < syncBatch {
			return nil
		}
	}
	return nil
}

// Expire deletes the history of sessions that ended more than retention ago and left the live
// table, with their activity, at most retentionBatch rows a transaction, and returns how many
// it deleted. History of sessions still in the live table is kept, whatever their age.
func (s *Store) Expire(ctx context.Context, tx Txer, retention time.Duration) (int64, error) {
	var total int64
	cutoff := s.now().UTC().Add(-retention)
	for range maxPurgeBatches {
		var n int
		err := tx.Tx(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `DELETE FROM `+Table+` WHERE id IN (
				SELECT id FROM `+Table+` WHERE purged_at IS NOT NULL AND purged_at < $1 AND ended_at < $1
				ORDER BY purged_at LIMIT $2) RETURNING id`, cutoff, retentionBatch)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			n = len(ids)
			if n == 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, `DELETE FROM console.session_activity WHERE session_id = ANY($1)`, ids); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `DELETE FROM console.session_clients WHERE session_id = ANY($1)`, ids)
			return err
		})
		if err != nil {
			return total, dbErr("expire", err)
		}
		total += int64(n)
		if n < retentionBatch {
			break
		}
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM console.history_daily WHERE day < $1::DATE`, cutoff); err != nil {
		return total, dbErr("expire", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+RollupTable+` WHERE hour < $1`, cutoff); err != nil {
		return total, dbErr("expire", err)
	}
	return total, nil
}
