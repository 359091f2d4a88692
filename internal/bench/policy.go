package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/policy"
)

// benchPolicy is the policy the bench's `console serve` runs with (every rule on, reported,
// not enforced), as policyArgs give it.
var benchPolicy = policy.Config{MaxLifetime: 720 * time.Hour, Idle: 24 * time.Hour, Orphans: true, Root: true}

var policyArgs = []string{"--policy-max-lifetime", "720h", "--policy-idle", "24h", "--policy-orphans", "--policy-root"}

// policyPageCase: GET /policy with every rule on. Both sides take the rules' counts from the
// policy's cache (policy.Counts, as the page does: neither counts per request) and read each
// rule's first sessions.
func (e *sizeEnv) policyPageCase(h *historyEnv) *benchCase {
	p := policy.New(e.store, h.store, benchPolicy)
	bc := e.pageCase(CasePolicy, "policy page /policy (4 rules: cached counts, first sessions of each)", "/policy", func(ctx context.Context, w io.Writer) error {
		// The floor's one round trip stands for the admin session lookup every page makes: the
		// rest of the page's data is cached on both sides.
		if err := e.sessionCheckTrip(ctx); err != nil {
			return err
		}
		counts, err := p.Counts(ctx)
		if err != nil {
			return err
		}
		for _, r := range policy.Rules {
			rows, err := p.Sample(ctx, r, policy.SampleRows)
			if err != nil {
				return err
			}
			if w != nil {
				fmt.Fprintf(w, "%s %d %d\n", r, counts.Rules[r], len(rows))
			}
		}
		return nil
	})
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		resp, err := c.Do(ctx, Request{Path: bc.path, Keep: true})
		if err != nil {
			return resp, err
		}
		for _, r := range policy.Rules {
			if !strings.Contains(string(resp.Body), `data-rule="`+string(r)+`"`) {
				return resp, fmt.Errorf("/policy has no count of %s", r)
			}
		}
		return resp, nil
	}
	return bc
}

// bulkRevokeCase: "revoke all matching" of a heavy user's sessions (10,000 at 1M, of which
// HeavyUnrevoked not revoked) from the sessions list: the confirmed POST, then the progress
// page until it says done (the revocation runs in batches of actions.DefaultBulkBatch in the
// background). Before each operation, untimed, the sessions an earlier one revoked are made
// unrevoked again. Floor: the same statements through raw pgx (the IDs matching, then one
// UPDATE ... WHERE id = ANY per batch, each in its own transaction).
func (e *sizeEnv) bulkRevokeCase() *benchCase {
	user := HeavyUser(1)
	n := e.seeded.HeavyUnrevoked
	bc := &benchCase{Key: CaseBulkRevoke, Kind: kindBulk, Unit: "req/s", Workers: 1, MaxOps: e.cfg.RevokeIterations,
		Name: fmt.Sprintf("bulk revoke of all matching user=%s (%d sessions, %d unrevoked), batches of %d", user, e.data.HeavySessions, n, actions.DefaultBulkBatch)}
	e.unrevokeBetween(bc, user)
	view := url.Values{"user": {user}, "status": {"all"}}.Encode()
	bc.console = func(ctx context.Context, c *Client, _, _ int) (int64, error) {
		resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/sessions/revoke", Keep: true, Want: []int{http.StatusOK, http.StatusSeeOther},
			Form: url.Values{"scope": {"all"}, "view": {view}, "return": {view}, "confirmed": {"1"},
				"at": {time.Now().UTC().Format(time.RFC3339Nano)}, "confirm_name": {strconv.Itoa(n)}}})
		if err != nil {
			return 0, err
		}
		loc := resp.Header.Get("Location")
		if n <= actions.DefaultBulkBatch && strings.HasPrefix(loc, "/sessions?") {
			return 1, nil // one batch: revoked before the answer
		}
		if !strings.HasPrefix(loc, "/sessions/revoke/") {
			return 0, fmt.Errorf("bulk revoke answered %d, Location %q: not the progress page", resp.Status, loc)
		}
		for {
			p, err := c.Do(ctx, Request{Path: loc, Keep: true})
			if err != nil {
				return 0, err
			}
			if strings.Contains(string(p.Body), `data-finished="true"`) {
				if !strings.Contains(string(p.Body), fmt.Sprintf(`data-testid="progress-revoked">%s<`, thousands(int64(n)))) {
					return 0, errors.New("the bulk revoke finished without revoking every session")
				}
				return 1, nil
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	bc.floor = func(ctx context.Context, _ io.Writer, _, _ int) (int64, error) {
		at := time.Now().UTC()
		rows, err := e.pool.Query(ctx, `SELECT id FROM console.web_sessions WHERE username = $1 AND "createdAt" <= $2 AND "revokedAt" IS NULL ORDER BY id`, user, at)
		if err != nil {
			return 0, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, err
		}
		var revoked int
		for i := 0; i < len(ids); i += actions.DefaultBulkBatch {
			part := ids[i:min(i+actions.DefaultBulkBatch, len(ids))]
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `UPDATE console.web_sessions SET "revokedAt" = now() AT TIME ZONE 'UTC'
					WHERE id = ANY($1::INT8[]) AND "revokedAt" IS NULL AND username = $2 AND "createdAt" <= $3`, part, user, at)
				revoked += int(tag.RowsAffected())
				return err
			})
			if err != nil {
				return 0, err
			}
		}
		if revoked != n {
			return 0, fmt.Errorf("the floor revoked %d sessions of %s, want %d", revoked, user, n)
		}
		return 1, nil
	}
	bc.check = func(ctx context.Context, c *Client) (Response, error) {
		if err := bc.prepare(ctx, 0, 0); err != nil {
			return Response{}, err
		}
		if _, err := bc.console(ctx, c, 0, 0); err != nil {
			return Response{}, err
		}
		var open int64
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM console.web_sessions WHERE username = $1 AND "revokedAt" IS NULL`, user).Scan(&open); err != nil {
			return Response{}, err
		}
		if open != 0 {
			return Response{}, fmt.Errorf("after the bulk revoke, %s still has %d unrevoked sessions", user, open)
		}
		return Response{}, nil
	}
	return bc
}
