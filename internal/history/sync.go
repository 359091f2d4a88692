package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// asOf is the one place where the history reads the live table in the past. On a real
// CockroachDB (SELECT version() says so) every read of system.web_sessions is a follower read,
// AS OF SYSTEM TIME follower_read_timestamp(): it never waits on, or conflicts with, the
// cluster's own writes to the table, at the price of seeing it a few seconds late (which the
// sync's overlap covers). Untested here: the PostgreSQL fixture that stands in for CockroachDB
// cannot run the clause, so the fixtures read the present.
func (s *Store) asOf() string {
	if s.server == pgdb.Cockroach {
		return " AS OF SYSTEM TIME follower_read_timestamp()"
	}
	return ""
}

// liveRow is a live table row as the sync reads it, with what the console knows of it.
type liveRow struct {
	id                 int64
	username           string
	userID             *int64
	created, expires   time.Time
	revoked            *time.Time
	lastUsed           time.Time
	auditInfo          *string
	activityLastUse    *time.Time
	issuedBy, issueWhy string
}

// liveSelect is the SELECT list and FROM clause of the sync's reads of the live table: its
// columns, the console's last recorded use (CockroachDB never updates "lastUsedAt") and, for
// sessions the console issued, who issued them and why (from the audit log).
func (s *Store) liveSelect() string {
	uid := "NULL::INT8"
	if s.live.HasUserID() {
		uid = "w.user_id::INT8"
	}
	return `SELECT w.id, w.username, ` + uid + `, w."createdAt", w."expiresAt", w."revokedAt", w."lastUsedAt", w."auditInfo",
		a.last_used_at,
		COALESCE((SELECT au.admin FROM console.audit_log AS au WHERE au.session_id = w.id AND au.action = 'issue' ORDER BY au.id LIMIT 1), ''),
		COALESCE((SELECT au.reason FROM console.audit_log AS au WHERE au.session_id = w.id AND au.action = 'issue' ORDER BY au.id LIMIT 1), '')
	FROM ` + s.live.Table() + ` AS w LEFT JOIN console.session_activity AS a ON a.session_id = w.id` + s.asOf()
}

func scanLive(rows pgx.Rows) ([]liveRow, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (liveRow, error) {
		var l liveRow
		err := r.Scan(&l.id, &l.username, &l.userID, &l.created, &l.expires, &l.revoked, &l.lastUsed, &l.auditInfo,
			&l.activityLastUse, &l.issuedBy, &l.issueWhy)
		l.created, l.expires, l.lastUsed = l.created.UTC(), l.expires.UTC(), l.lastUsed.UTC()
		l.revoked = utcPtr(l.revoked)
		if l.activityLastUse != nil && l.activityLastUse.After(l.lastUsed) {
			l.lastUsed = l.activityLastUse.UTC()
		}
		return l, err
	})
}

// SyncResult is what one sync pass recorded.
type SyncResult struct {
	New, Changed, Purged int64
	// Backfilling is true while the first pass over an existing table is still going.
	Backfilling bool
}

// syncState is the sync's progress, kept in console.history_sync.
type syncState struct {
	createdMark, revokedMark *time.Time
}

// maxSyncBatches bounds one pass (syncBatch rows each); a longer backfill goes on next pass.
const maxSyncBatches = 200

// Sync records what changed in the live table since the last pass: sessions created since
// (through the createdAt index), sessions revoked since (revokedAt index), and sessions that
// left the table (see detectPurged). It reads in batches of syncBatch rows, each written
// through tx in its own transaction together with the sync's watermarks, so a pass that stops
// halfway (a lost lease, a failed statement) is continued by the next, on any replica.
//
// The first pass over an existing table records every row in it, in createdAt order, over as
// many passes as it takes. Rows written later with a createdAt (or revokedAt) older than the
// watermark less syncOverlap are not seen by the index scans (back-dated writes); the purge
// detection notices them only if they were recorded before.
func (s *Store) Sync(ctx context.Context, tx Txer) (SyncResult, error) {
	var res SyncResult
	var st syncState
	var now time.Time
	err := s.pool.QueryRow(ctx, `SELECT created_mark, revoked_mark, now() AT TIME ZONE 'UTC' FROM console.history_sync WHERE id = 1`).
		Scan(&st.createdMark, &st.revokedMark, &now)
	if err != nil {
		return res, dbErr("sync", err)
	}
	now = now.UTC()
	if st.revokedMark == nil {
		// Everything revoked so far is recorded by the first pass over createdAt, with its state
		// at that time; revocations from now on are found through revokedAt.
		if err := tx.Tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE console.history_sync SET revoked_mark = $1 WHERE id = 1 AND revoked_mark IS NULL`, now)
			return err
		}); err != nil {
			return res, dbErr("sync", err)
		}
		st.revokedMark = &now
	}
	batches := 0
	// Sessions created since the mark, then sessions revoked since the mark whose revocation
	// the history lacks.
	from := time.Time{}
	if st.createdMark != nil {
		from = st.createdMark.Add(-syncOverlap)
	}
	scans := []scan{
		{what: "new sessions", col: "createdAt", mark: "created_mark", from: from,
			missing: `NOT EXISTS (SELECT 1 FROM ` + Table + ` AS h WHERE h.id = w.id)`,
			at:      func(l liveRow) time.Time { return l.created }},
		{what: "revocations", col: "revokedAt", mark: "revoked_mark", from: st.revokedMark.Add(-syncOverlap),
			missing: `NOT EXISTS (SELECT 1 FROM ` + Table + ` AS h WHERE h.id = w.id
				AND h."revokedAt" IS NOT DISTINCT FROM w."revokedAt" AND h."expiresAt" = w."expiresAt")`,
			at: func(l liveRow) time.Time { return *l.revoked }},
	}
	for _, sc := range scans {
		if err := s.scanSince(ctx, tx, sc, now, &batches, &res); err != nil {
			return res, err
		}
		if batches >= maxSyncBatches {
			res.Backfilling = true
			return res, nil
		}
	}
	purged, changed, err := s.detectPurged(ctx, tx, now)
	res.Purged += purged
	res.Changed += changed
	return res, err
}

// scan is one of the sync's index scans of the live table: rows whose col is at least from
// and that the missing condition finds wrong or absent in the history.
type scan struct {
	what, col, mark string
	from            time.Time
	missing         string
	at              func(liveRow) time.Time // the row's col
}

// scanSince records, batch after batch, the rows of sc, moving its watermark with each batch,
// until a batch is short or the pass has read maxSyncBatches batches (counted in *batches).
func (s *Store) scanSince(ctx context.Context, tx Txer, sc scan, now time.Time, batches *int, res *SyncResult) error {
	curAt, curID := sc.from, int64(-1<<63)
	for *batches < maxSyncBatches {
		*batches++
		rows, err := s.pool.Query(ctx, s.liveSelect()+`
			WHERE w."`+sc.col+`" >= $1 AND (w."`+sc.col+`", w.id) > ($2, $3) AND `+sc.missing+`
			ORDER BY w."`+sc.col+`", w.id LIMIT $4`, sc.from, curAt, curID, syncBatch)
		if err != nil {
			return dbErr("sync: read "+sc.what, err)
		}
		batch, err := scanLive(rows)
		if err != nil {
			return dbErr("sync: read "+sc.what, err)
		}
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1]
		curAt, curID = sc.at(last), last.id
		mark := curAt
		if mark.After(now) {
			mark = now // a time in the future must not hide the rows written until then
		}
		n, changed, err := s.record(ctx, tx, batch, now, `UPDATE console.history_sync
			SET `+sc.mark+` = CASE WHEN `+sc.mark+` IS NULL OR `+sc.mark+` < $1 THEN $1 ELSE `+sc.mark+` END WHERE id = 1`, mark)
		if err != nil {
			return err
		}
		res.New += n
		res.Changed += changed
		if len(batch) < syncBatch {
			return nil
		}
	}
	return nil
}

// record writes a batch of live rows into the history in one transaction with the statement
// mark, if any (which moves the sync's watermark): new sessions are inserted (and counted per day of
// creation), known ones get their new state. It returns how many were new and how many
// changed.
func (s *Store) record(ctx context.Context, tx Txer, batch []liveRow, now time.Time, mark string, markArg any) (int64, int64, error) {
	sort.Slice(batch, func(i, j int) bool { return batch[i].id < batch[j].id })
	n := len(batch)
	ids, users, uids := make([]int64, n), make([]string, n), make([]*int64, n)
	created, expires, revoked, used := make([]time.Time, n), make([]time.Time, n), make([]*time.Time, n), make([]time.Time, n)
	audit, by, why := make([]*string, n), make([]string, n), make([]string, n)
	for i, l := range batch {
		ids[i], users[i], uids[i] = l.id, l.username, l.userID
		created[i], expires[i], revoked[i], used[i] = l.created, l.expires, l.revoked, l.lastUsed
		audit[i], by[i], why[i] = l.auditInfo, l.issuedBy, l.issueWhy
	}
	byID := make(map[int64]*liveRow, n)
	for i := range batch {
		byID[batch[i].id] = &batch[i]
	}
	var inserted, changed int64
	var fresh [numOrigins]int64
	err := tx.Tx(ctx, func(tx pgx.Tx) error {
		inserted, changed, fresh = 0, 0, [numOrigins]int64{}
		roll := rollup{}
		// The known rows' end and revocation before this write, for the rollups.
		type before struct {
			ended   time.Time
			revoked *time.Time
		}
		known := map[int64]before{}
		rows, err := tx.Query(ctx, `SELECT id, ended_at, "revokedAt" FROM `+Table+` WHERE id = ANY($1) AND purged_at IS NULL
			ORDER BY id FOR UPDATE`, ids)
		if err != nil {
			return err
		}
		var kid int64
		var kb before
		if _, err := pgx.ForEachRow(rows, []any{&kid, &kb.ended, &kb.revoked}, func() error {
			known[kid] = before{ended: kb.ended.UTC(), revoked: utcPtr(kb.revoked)}
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `INSERT INTO `+Table+` (id, username, user_id, "createdAt", "expiresAt", "revokedAt",
				"lastUsedAt", "auditInfo", ended_at, first_seen_at, changed_at, issued_by, issue_reason)
			SELECT v.id, v.username, v.user_id, v.created, v.expires, v.revoked, v.used, v.audit,
				CASE WHEN v.revoked IS NOT NULL AND v.revoked < v.expires THEN v.revoked ELSE v.expires END, $12, $12, v.by, v.why
			FROM unnest($1::INT8[], $2::TEXT[], $3::INT8[], $4::TIMESTAMP[], $5::TIMESTAMP[], $6::TIMESTAMP[],
				$7::TIMESTAMP[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::INT8[])
				AS v(id, username, user_id, created, expires, revoked, used, audit, by, why, ord)
			ORDER BY v.ord
			ON CONFLICT (id) DO NOTHING
			RETURNING id`, ids, users, uids, created, expires, revoked, used, audit, by, why, seq(n), now)
		if err != nil {
			return err
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		inserted = int64(len(added))
		days := make([]time.Time, len(added))
		for i, id := range added {
			l := byID[id]
			days[i] = l.created
			o := OriginOf(l.issuedBy, l.auditInfo)
			roll.added(l.created, endOf(l.expires, l.revoked), l.revoked, o)
			if !l.created.Before(now.Add(-FreshFor)) {
				fresh[o]++
			}
		}
		rows, err = tx.Query(ctx, `UPDATE `+Table+` AS h SET "expiresAt" = v.expires, "revokedAt" = v.revoked,
				"lastUsedAt" = CASE WHEN v.used > h."lastUsedAt" THEN v.used ELSE h."lastUsedAt" END, "auditInfo" = v.audit,
				ended_at = CASE WHEN v.revoked IS NOT NULL AND v.revoked < v.expires THEN v.revoked ELSE v.expires END,
				changed_at = $7
			FROM unnest($1::INT8[], $2::TIMESTAMP[], $3::TIMESTAMP[], $4::TIMESTAMP[], $5::TEXT[], $6::INT8[])
				AS v(id, expires, revoked, used, audit, ord)
			WHERE h.id = v.id AND h.purged_at IS NULL AND (h."expiresAt" <> v.expires OR h."revokedAt" IS DISTINCT FROM v.revoked
				OR h."auditInfo" IS DISTINCT FROM v.audit)
			RETURNING h.id`,
			ids, expires, revoked, used, audit, seq(n), now)
		if err != nil {
			return err
		}
		updated, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		changed = int64(len(updated))
		for _, id := range updated {
			l, was := byID[id], known[id]
			roll.changed(was.ended, endOf(l.expires, l.revoked), was.revoked, l.revoked)
		}
		if err := roll.write(ctx, tx); err != nil {
			return err
		}
		if err := addDaily(ctx, tx, "created", perDay(days)); err != nil {
			return err
		}
		if mark == "" {
			return nil
		}
		_, err = tx.Exec(ctx, mark, markArg)
		return err
	})
	if err != nil {
		return 0, 0, dbErr("sync: record", err)
	}
	if s.onFresh != nil {
		for _, o := range Origins {
			if fresh[o] > 0 {
				s.onFresh(o, fresh[o])
			}
		}
	}
	return inserted, changed, nil
}

// endOf is when a session ends: the first of its expiry and its revocation (as ended_at).
func endOf(expires time.Time, revoked *time.Time) time.Time {
	if revoked != nil && revoked.Before(expires) {
		return *revoked
	}
	return expires
}

// seq returns 0..n-1, the input order of an unnest (so that rows lock in ID order).
func seq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// addDaily adds counts (per UTC day) to column (created or purged) of console.history_daily.
func addDaily(ctx context.Context, tx pgx.Tx, column string, per map[time.Time]int64) error {
	if len(per) == 0 {
		return nil
	}
	days := make([]time.Time, 0, len(per))
	for d := range per {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	counts := make([]int64, len(days))
	for i, d := range days {
		counts[i] = per[d]
	}
	_, err := tx.Exec(ctx, `INSERT INTO console.history_daily AS d (day, `+column+`)
		SELECT v.day::DATE, v.n FROM unnest($1::TIMESTAMP[], $2::INT8[]) AS v(day, n)
		ON CONFLICT (day) DO UPDATE SET `+column+` = d.`+column+` + excluded.`+column, days, counts)
	if err != nil {
		return fmt.Errorf("daily %s: %w", column, err)
	}
	return nil
}

// perDay counts times by UTC day.
func perDay(times []time.Time) map[time.Time]int64 {
	per := map[time.Time]int64{}
	for _, t := range times {
		per[day(t)]++
	}
	return per
}

// day is t's UTC midnight.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// oldest sets *t to the least value of the live table's column col (expiresAt or revokedAt),
// nil when it has none: the first entry of the column's index.
func (s *Store) oldest(ctx context.Context, col string, t **time.Time) error {
	err := s.pool.QueryRow(ctx, `SELECT "`+col+`" FROM `+s.live.Table()+s.asOf()+`
		WHERE "`+col+`" IS NOT NULL ORDER BY "`+col+`" LIMIT 1`).Scan(t)
	if errors.Is(err, pgx.ErrNoRows) {
		*t = nil
		return nil
	}
	return err
}

// maxPurgeChecks bounds the history rows one pass checks for having left the live table.
const maxPurgeChecks = 20 * PurgeBatch

// detectPurged marks as purged the sessions that left the live table, without scanning it:
// the live table's oldest expiresAt and oldest revokedAt (two index lookups) bound what it
// still holds, so every unpurged history row that expired, or was revoked, before those can
// no longer be there (unless its row changed, which a lookup by primary key settles before
// marking it). A pass with nothing purged costs those two lookups and two empty index ranges
// on the history.
func (s *Store) detectPurged(ctx context.Context, tx Txer, now time.Time) (purged, changed int64, err error) {
	var minExpires, minRevoked *time.Time
	if err := s.oldest(ctx, "expiresAt", &minExpires); err != nil {
		return 0, 0, dbErr("sync: live table bounds", err)
	}
	if err := s.oldest(ctx, "revokedAt", &minRevoked); err != nil {
		return 0, 0, dbErr("sync: live table bounds", err)
	}
	// With no rows (or no revoked rows) left, every such history row has gone.
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if minExpires == nil {
		minExpires = &far
	}
	if minRevoked == nil {
		minRevoked = &far
	}
	for checked := 0; checked < maxPurgeChecks; checked += PurgeBatch {
		rows, err := s.pool.Query(ctx, `(SELECT id FROM `+Table+` WHERE purged_at IS NULL AND "expiresAt" < $1 ORDER BY "expiresAt" LIMIT $3)
			UNION (SELECT id FROM `+Table+` WHERE purged_at IS NULL AND "revokedAt" IS NOT NULL AND "revokedAt" < $2 ORDER BY "revokedAt" LIMIT $3)`,
			*minExpires, *minRevoked, PurgeBatch)
		if err != nil {
			return purged, changed, dbErr("sync: purge candidates", err)
		}
		cands, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return purged, changed, dbErr("sync: purge candidates", err)
		}
		if len(cands) == 0 {
			break
		}
		rows, err = s.pool.Query(ctx, s.liveSelect()+` WHERE w.id = ANY($1)`, cands)
		if err != nil {
			return purged, changed, dbErr("sync: purge check", err)
		}
		present, err := scanLive(rows)
		if err != nil {
			return purged, changed, dbErr("sync: purge check", err)
		}
		if len(present) > 0 { // changed rows, not purged ones: record their new state
			_, c, err := s.record(ctx, tx, present, now, "", nil)
			if err != nil {
				return purged, changed, err
			}
			changed += c
		}
		still := make(map[int64]bool, len(present))
		for _, l := range present {
			still[l.id] = true
		}
		gone := cands[:0]
		for _, id := range cands {
			if !still[id] {
				gone = append(gone, id)
			}
		}
		n, err := s.markPurged(ctx, tx, gone, now)
		purged += n
		if err != nil {
			return purged, changed, err
		}
		if len(present) == len(cands) {
			// Every candidate changed instead: the bounds above are stale; the next pass
			// looks again.
			break
		}
	}
	// The bounds find rows purged in age order, as CockroachDB purges. A row the purge
	// should long have taken but did not (a back-dated revocation below a node's purge
	// bound, a purge that fell behind) holds them back: then walk the ended rows by
	// primary key instead, a batch a pass, from where the last pass stopped.
	if s.live.Flavor() == pgdb.Cockroach {
		p, c, err := s.walkEnded(ctx, tx, now, *minExpires, *minRevoked)
		purged += p
		changed += c
		if err != nil {
			return purged, changed, err
		}
	}
	return purged, changed, nil
}

// walkEnded checks, when the live table's bounds are stuck on rows older than the purge
// horizon, up to PurgeBatch history rows that ended before the purge TTL, by primary key in
// the live table, continuing from the previous pass's cursor.
func (s *Store) walkEnded(ctx context.Context, tx Txer, now, minExpires, minRevoked time.Time) (purged, changed int64, err error) {
	ttl, every, off := s.clusterPurge(ctx)
	stuck := now.Add(-(ttl + 2*every + behindSlack))
	if off || !(minExpires.Before(stuck) || minRevoked.Before(stuck)) {
		return 0, 0, nil
	}
	var afterAt *time.Time
	var afterID int64
	if err := s.pool.QueryRow(ctx, `SELECT check_after_at, check_after_id FROM console.history_sync WHERE id = 1`).Scan(&afterAt, &afterID); err != nil {
		return 0, 0, dbErr("sync: purge walk", err)
	}
	from := time.Time{}
	if afterAt != nil {
		from = *afterAt
	}
	rows, err := s.pool.Query(ctx, `SELECT id, ended_at FROM `+Table+` WHERE purged_at IS NULL AND (ended_at, id) > ($1, $2) AND ended_at < $3
		ORDER BY ended_at, id LIMIT $4`, from, afterID, now.Add(-ttl), PurgeBatch)
	if err != nil {
		return 0, 0, dbErr("sync: purge walk", err)
	}
	type cand struct {
		id    int64
		ended time.Time
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		return c, r.Scan(&c.id, &c.ended)
	})
	if err != nil {
		return 0, 0, dbErr("sync: purge walk", err)
	}
	ids := make([]int64, len(cands))
	for i, c := range cands {
		ids[i] = c.id
	}
	var present []liveRow
	if len(ids) > 0 {
		rows, err = s.pool.Query(ctx, s.liveSelect()+` WHERE w.id = ANY($1)`, ids)
		if err != nil {
			return 0, 0, dbErr("sync: purge walk", err)
		}
		if present, err = scanLive(rows); err != nil {
			return 0, 0, dbErr("sync: purge walk", err)
		}
	}
	if len(present) > 0 {
		if _, changed, err = s.record(ctx, tx, present, now, "", nil); err != nil {
			return 0, changed, err
		}
	}
	still := make(map[int64]bool, len(present))
	for _, l := range present {
		still[l.id] = true
	}
	var gone []int64
	for _, id := range ids {
		if !still[id] {
			gone = append(gone, id)
		}
	}
	if purged, err = s.markPurged(ctx, tx, gone, now); err != nil {
		return purged, changed, err
	}
	// Move the cursor on, or back to the start after the last batch.
	var nextAt any
	var nextID int64
	if len(cands) == PurgeBatch {
		nextAt, nextID = cands[len(cands)-1].ended, cands[len(cands)-1].id
	}
	err = tx.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE console.history_sync SET check_after_at = $1, check_after_id = $2 WHERE id = 1`, nextAt, nextID)
		return err
	})
	return purged, changed, dbErr("sync: purge walk", err)
}

// markPurged records that the sessions ids left the live table at `at`, in one transaction
// with the daily count and the sync's "last purge seen".
func (s *Store) markPurged(ctx context.Context, tx Txer, ids []int64, at time.Time) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var n int64
	err := tx.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE `+Table+` SET purged_at = $2 WHERE id = ANY($1) AND purged_at IS NULL`, ids, at)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return notePurge(ctx, tx, n, at)
	})
	if err != nil {
		return 0, dbErr("sync: mark purged", err)
	}
	return n, nil
}

// notePurge counts n purged rows at `at` in the daily counts and the sync state.
func notePurge(ctx context.Context, tx pgx.Tx, n int64, at time.Time) error {
	if n == 0 {
		return nil
	}
	if err := addDaily(ctx, tx, "purged", map[time.Time]int64{day(at): n}); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE console.history_sync SET last_purge_seen_at = $1, last_purge_seen_rows = $2,
		purged_rows = purged_rows + $2 WHERE id = 1`, at, n)
	return err
}
