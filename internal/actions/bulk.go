package actions

import (
	"context"
	"fmt"
	"slices"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
)

// Defaults of a Bulk revocation.
const (
	// DefaultBulkBatch is how many sessions one transaction of a bulk revocation revokes.
	DefaultBulkBatch = 1000
	// MaxSelected bounds the sessions selected one by one (IDs) in one bulk revocation.
	MaxSelected = 1000
)

// Bulk asks for a bulk revocation: the sessions selected one by one (IDs), or every session
// matching Filter as it stood at Filter.At (All). Either way a session is revoked only if it
// still matches Filter (the zero Filter matches every session not revoked yet).
type Bulk struct {
	// IDs are the selected sessions (at most MaxSelected); ignored with All.
	IDs []int64
	// All revokes every session that matched Filter at Filter.At, which must be set (when
	// the actor confirmed, or when the enforcement run started): a session that started
	// matching later, or was issued later, is left alone.
	All    bool
	Filter sessionstore.Filter
	// Rule is the policy rule a revocation enforces (the audit rows' target), or "".
	Rule string
	Note
	// Batch is how many sessions one transaction revokes (default DefaultBulkBatch); each
	// batch commits with its own audit row, counting what it revoked.
	Batch int
	// Max bounds how many sessions All takes on (default sessionstore.DefaultMaxBulk).
	Max int
	// Run is the transactions' runner (nil: the store's; a leased job passes its Pass.Tx).
	Run sessionstore.TxRunner
	// Progress, when set, is told after each batch how many of the matched sessions have
	// been dealt with and how many of those were revoked.
	Progress func(done, revoked, total int64)
}

// BulkResult is what a bulk revocation did.
type BulkResult struct {
	// Matched is how many sessions it took on (not revoked when it started); Revoked how many
	// it revoked (the others were revoked, or stopped matching, meanwhile); Active how many of
	// those were active.
	Matched, Revoked, Active int64
	// Batches is how many transactions revoked something (and how many audit rows it wrote).
	Batches int
}

// RevokeBulk revokes what b asks for, in batches, each committing its revocations with one
// audit row (action bulk-revoke, the count, the rule as target, and in the detail what was
// asked and the batch). A batch that revokes nothing records nothing. On an error, the
// batches before it stay committed and the result counts them.
func (s *Service) RevokeBulk(ctx context.Context, by Actor, b Bulk) (BulkResult, error) {
	var out BulkResult
	if err := s.CheckReason(b.Reason); err != nil && err != ErrReasonRequired {
		return out, err
	}
	ids, f := b.IDs, b.Filter
	if b.All {
		if b.Filter.At.IsZero() {
			return out, fmt.Errorf("%w: a bulk revocation of a filter needs the moment it was confirmed", sessionstore.ErrInvalidInput)
		}
		max := b.Max
		if max <= 0 {
			max = sessionstore.DefaultMaxBulk
		}
		var err error
		if ids, err = s.sessions.MatchingIDs(ctx, b.Filter, max); err != nil {
			return out, err
		}
	} else {
		if len(ids) > MaxSelected {
			return out, fmt.Errorf("%w: %d sessions selected, at most %d at once", sessionstore.ErrInvalidInput, len(ids), MaxSelected)
		}
		ids = slices.Clone(ids)
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	out.Matched = int64(len(ids))
	batch := b.Batch
	if batch <= 0 {
		batch = DefaultBulkBatch
	}
	run := b.Run
	if run == nil {
		run = s.sessions.RunTx
	}
	batches := (len(ids) + batch - 1) / batch
	for i := 0; i < len(ids); i += batch {
		part := ids[i:min(i+batch, len(ids))]
		var res sessionstore.BulkRevoked
		err := s.sessions.InTxOn(ctx, run, func(t *sessionstore.Tx) error {
			var err error
			if res, err = t.RevokeIDs(ctx, part, f); err != nil || res.Revoked == 0 {
				return err
			}
			detail := b.Detail
			if batches > 1 {
				detail = fmt.Sprintf("%s (batch %d of %d)", detail, i/batch+1, batches)
			}
			return s.record(ctx, t.DB(), by, audit.Entry{Action: audit.BulkRevoke, Target: b.Rule, Count: res.Revoked,
				Reason: b.Reason, Detail: detail})
		})
		if err != nil {
			return out, err
		}
		if res.Revoked > 0 { // committed: counted (metrics) like every other action
			s.notify(by, audit.Entry{Action: audit.BulkRevoke, Target: b.Rule, Count: res.Revoked})
		}
		out.Revoked += res.Revoked
		out.Active += res.Active
		if res.Revoked > 0 {
			out.Batches++
		}
		if b.Progress != nil {
			b.Progress(int64(i+len(part)), out.Revoked, out.Matched)
		}
	}
	return out, nil
}
