package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/handlers"
)

// serveArgs are the flags the bench gives `console serve`: the bench records the history
// itself (so that its cost is measured, not paid during other cases) and keeps the seeded
// table whole (no purge of the 70% expired rows); it counts the overview's top users once
// itself (the overview job's read of every active session would run during other cases). The
// metrics job is off too: each process's pass every 15 s counts the policy rules afresh once
// their counts are older than the pages' (at 1M, three or four counts of 300-400 ms of
// PostgreSQL each), work done per second and not per request, which landed in whichever side
// of a case was running (PostgreSQL CPU per request 0.9x to 1.7x of the same floor from run to
// run). The pages' own counts stay on: the counts job counts while someone looks at them. The
// revoke-all case types the username, as a large revoke-all asks (--confirm-by-name-over stays
// at its default).
var serveArgs = append([]string{"--history-sync", "0", "--purge-interval", "0", "--overview-refresh", "0", "--metrics-refresh", "0"}, policyArgs...)

// historyEnv is the session history of one size, as the bench drives it.
type historyEnv struct {
	store *history.Store
	tx    history.Txer
	// Backfill is how long the first sync over the seeded table took, and how many rows it
	// recorded.
	Backfill time.Duration
	Rows     int64
}

// backfillHistory opens the history over the seeded table (after the audit log, which it reads)
// and runs sync passes until the first pass over it has recorded every row.
func backfillHistory(ctx context.Context, pool *pgxpool.Pool, store *sessionstore.Store) (*historyEnv, error) {
	h, err := history.Open(ctx, pool, history.Options{Live: store, Server: pgdb.Postgres})
	if err != nil {
		return nil, err
	}
	env := &historyEnv{store: h, tx: history.PlainTx{Pool: pool}}
	start := time.Now()
	for {
		res, err := h.Sync(ctx, env.tx)
		if err != nil {
			return nil, err
		}
		env.Rows += res.New
		if !res.Backfilling {
			break
		}
	}
	env.Backfill = time.Since(start)
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+history.Table); err != nil {
		return nil, err
	}
	return env, nil
}

// syncIdleCase times a sync pass when nothing changed (the bar: under 5 ms of
// database time at 1M live sessions). It runs in the bench process through history.Sync, on
// the bench's pool, one pass at a time: there is no floor, the figure is the pass's time.
func (e *sizeEnv) syncIdleCase(h *historyEnv) *benchCase {
	bc := &benchCase{Key: CaseSyncIdle, Name: "history sync pass, nothing new", Kind: kindJob, Unit: "req/s", Workers: 1, MaxOps: 400}
	bc.console = func(ctx context.Context, _ *Client, _, _ int) (int64, error) {
		res, err := h.store.Sync(ctx, h.tx)
		if err == nil && (res.New != 0 || res.Changed != 0 || res.Purged != 0) {
			err = fmt.Errorf("a pass with nothing new recorded %+v", res)
		}
		return 1, err
	}
	return bc
}

// syncNewBatch is how many sessions the sync-new case adds before each pass.
const syncNewBatch = 1000

// syncNewCase times a sync pass that finds syncNewBatch new sessions (added before each pass,
// untimed, and removed again after the case).
func (e *sizeEnv) syncNewCase(h *historyEnv) *benchCase {
	bc := &benchCase{Key: CaseSyncNew, Name: fmt.Sprintf("history sync pass, %d new sessions", syncNewBatch), Kind: kindJob, Unit: "req/s", Workers: 1, MaxOps: 30}
	bc.prepare = func(ctx context.Context, _, _ int) error {
		_, err := e.pool.Exec(ctx, `INSERT INTO console.web_sessions ("hashedSecret", username, "expiresAt")
			SELECT '\x00', 'user' || lpad((i % 10000)::TEXT, 5, '0'), now() AT TIME ZONE 'UTC' + INTERVAL '1 hour'
			FROM generate_series(1, $1) AS i`, syncNewBatch)
		return err
	}
	bc.console = func(ctx context.Context, _ *Client, _, _ int) (int64, error) {
		res, err := h.store.Sync(ctx, h.tx)
		if err == nil && res.New != syncNewBatch {
			err = fmt.Errorf("the pass recorded %d new sessions, want %d", res.New, syncNewBatch)
		}
		return 1, err
	}
	bc.cleanup = func(ctx context.Context) error {
		for _, sql := range []string{`DELETE FROM console.web_sessions WHERE id > $1`, `DELETE FROM ` + history.Table + ` WHERE id > $1`} {
			if _, err := e.pool.Exec(ctx, sql, e.seeded.MaxID); err != nil {
				return err
			}
		}
		_, err := e.pool.Exec(ctx, `VACUUM console.web_sessions, `+history.Table)
		return err
	}
	return bc
}

// historyListCase is a page of /history against the floor of the store's query for it (the
// list case's floor and check, on the /history path).
func (e *sizeEnv) historyListCase(key, name string, f sessionstore.Filter) (*benchCase, error) {
	f.From = history.Source
	bc, err := e.listCase(key, name, f, true)
	if err != nil {
		return nil, err
	}
	bc.path = "/history" + strings.TrimPrefix(listPath(f), "/sessions")
	return bc, nil
}

// verifyWithoutActivityCase is the verify case against a second console that records no
// activity (--activity-flush 0), for the bar "verify with activity on stays within 5% of verify
// without it"; its CPU is that console's.
func (e *sizeEnv) verifyWithoutActivityCase(srv *Server, plain *Client) *benchCase {
	bc := e.verifyCase()
	bc.Key, bc.Name, bc.Kind = CaseVerifyNoActivity, "GET /auth/verify, a console recording no activity", kindBaseline
	bc.floor, bc.check, bc.server = nil, nil, srv
	inner := bc.console
	bc.console = func(ctx context.Context, _ *Client, worker, i int) (int64, error) {
		return inner(ctx, plain, worker, i)
	}
	return bc
}

// sessionPageCase is GET /sessions/{id} of an active session used at verify (the verify case
// runs before it), against the floor of the same reads through the stores in the bench process:
// the row, its history, its activity and clients, its audit entries.
func (e *sizeEnv) sessionPageCase(h *historyEnv, log *audit.Store) *benchCase {
	id := e.seeded.CookieIDs[0]
	bc := e.pageCase(CaseSessionPage, "session page /sessions/{id} (a used session)", "/sessions/"+strconv.FormatInt(id, 10),
		func(ctx context.Context, w io.Writer) error {
			if _, err := e.store.GetDetail(ctx, id); err != nil {
				return err
			}
			rec, err := h.store.Get(ctx, id)
			if err != nil {
				return err
			}
			if _, _, err := h.store.Activity(ctx, id); err != nil {
				return err
			}
			if _, err := h.store.Clients(ctx, id, history.MaxClientsPerSession); err != nil {
				return err
			}
			if _, err := log.List(ctx, audit.Filter{SessionID: id, Limit: 20}); err != nil {
				return err
			}
			if w != nil {
				_, err = fmt.Fprintf(w, "%d %s\n", rec.ID, rec.Username)
			}
			return err
		})
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		resp, err := c.Do(ctx, Request{Path: bc.path, Keep: true})
		if err != nil {
			return resp, err
		}
		return resp, containsIDs(resp.Body, id)
	}
	return bc
}

// userPageCase is GET /users/{name} of a heavy user (10,000 sessions at 1M), against the floor
// of the same reads through the stores (the counts of the live table come from the console's
// cache, so neither side counts them per request).
func (e *sizeEnv) userPageCase(h *historyEnv, log *audit.Store) *benchCase {
	user := HeavyUser(0)
	newest := sessionstore.Filter{Username: user, Status: sessionstore.StatusAll, Sort: sessionstore.SortCreated, Desc: true, Limit: 50}
	purged := newest
	purged.From, purged.Purged = history.Source, sessionstore.PurgedOnly
	bc := e.pageCase(CaseUserDetail, fmt.Sprintf("user page /users/%s (%d sessions)", user, e.data.HeavySessions), "/users/"+user,
		func(ctx context.Context, w io.Writer) error {
			if _, err := e.store.LookupUser(ctx, user); err != nil {
				return err
			}
			if _, _, err := h.store.UserCounts(ctx, user); err != nil {
				return err
			}
			live, err := e.store.List(ctx, newest)
			if err != nil {
				return err
			}
			if _, err := e.store.List(ctx, purged); err != nil {
				return err
			}
			if _, err := log.List(ctx, audit.Filter{Target: user, Limit: 20}); err != nil {
				return err
			}
			if w != nil && len(live.Sessions) > 0 {
				_, err = fmt.Fprintf(w, "%d\n", live.Sessions[0].ID)
			}
			return err
		})
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		p, err := e.store.List(ctx, newest)
		if err != nil || len(p.Sessions) == 0 {
			return Response{}, fmt.Errorf("no sessions of %s (%v)", user, err)
		}
		resp, err := c.Do(ctx, Request{Path: bc.path, Keep: true})
		if err != nil {
			return resp, err
		}
		return resp, containsIDs(resp.Body, p.Sessions[0].ID, p.Sessions[len(p.Sessions)-1].ID)
	}
	return bc
}

// overviewPageCase is GET /overview?range=30d (the widest range: 30 days of hourly rollups),
// against the floor of the same reads through the stores: the rollups' buckets, the top users
// (counted once before by runSize, as the overview job would: the served console's job is off), the
// job statuses (the live table's counts come from the console's cache, so neither side counts
// them per request). The console reuses those reads for handlers.OverviewFresh (5 s), and so
// does the floor: per request it makes one round trip (standing for the admin session check
// every page makes, as the policy page's floor does) and reads again only when its copy is
// older than that.
func (e *sizeEnv) overviewPageCase(h *historyEnv) *benchCase {
	var (
		mu               sync.Mutex
		readAt           time.Time
		nBuckets, nUsers int
	)
	read := func(ctx context.Context) (int, int, error) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now().UTC()
		if !readAt.IsZero() && now.Sub(readAt) < handlers.OverviewFresh {
			return nBuckets, nUsers, nil
		}
		b, err := h.store.Buckets(ctx, now.Truncate(24*time.Hour).AddDate(0, 0, -29), now, 24*time.Hour)
		if err != nil {
			return 0, 0, err
		}
		top, _, err := h.store.TopUsers(ctx)
		if err != nil {
			return 0, 0, err
		}
		if _, err := jobs.Statuses(ctx, e.pool, pgdb.Postgres); err != nil {
			return 0, 0, err
		}
		readAt, nBuckets, nUsers = now, len(b), len(top)
		return nBuckets, nUsers, nil
	}
	bc := e.pageCase(CaseOverview, "overview page /overview?range=30d (reads reused for 5 s on both sides)", "/overview?range=30d", func(ctx context.Context, w io.Writer) error {
		if err := e.sessionCheckTrip(ctx); err != nil {
			return err
		}
		buckets, users, err := read(ctx)
		if err != nil {
			return err
		}
		if w != nil {
			_, err = fmt.Fprintf(w, "%d buckets, %d users\n", buckets, users)
		}
		return err
	})
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		resp, err := c.Do(ctx, Request{Path: bc.path, Keep: true})
		if err != nil {
			return resp, err
		}
		top, _, err := h.store.TopUsers(ctx)
		if err != nil || len(top) == 0 {
			return resp, fmt.Errorf("no top users to look for (%v)", err)
		}
		if !bytes.Contains(resp.Body, []byte(">"+top[0].Username+"<")) || !bytes.Contains(resp.Body, []byte(`data-testid="table-created"`)) {
			return resp, fmt.Errorf("the overview lacks the top user %s or its charts", top[0].Username)
		}
		return resp, nil
	}
	return bc
}
