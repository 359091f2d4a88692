package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/sessionstore"
)

// Enforced is what one enforcement run did about one rule.
type Enforced struct {
	Rule Rule
	// Matched is how many active sessions broke the rule when the run started; Revoked how
	// many the run revoked (0 in a dry run; fewer than Matched when some ended meanwhile).
	Matched, Revoked int64
	// IDs are the first few matched sessions (for the log of a dry run).
	IDs []int64
}

// sampleIDs is how many session IDs a dry run's log line names per rule.
const sampleIDs = 10

// Enforce is one run of the enforcement job (seq numbers it): for each enabled rule, the
// active sessions that broke it at started (the run's start, so no session issued after it
// began), revoked through svc in batches of Config.Batch, every transaction through run (a
// leased job's Pass.Tx: it commits only while this replica holds the job's lease, so two
// replicas never both revoke). Each batch that revokes something commits with its audit row,
// actor policy:<rule>, the rule as target and the count. With Config.DryRun it revokes
// nothing and writes one policy-dry-run audit row per rule that matched something, counting
// what it would have revoked (also through run, so it too is written once).
func (p *Policy) Enforce(ctx context.Context, svc *actions.Service, run sessionstore.TxRunner, started time.Time, seq int64) ([]Enforced, error) {
	var out []Enforced
	for _, r := range p.cfg.EnabledRules() {
		f, _ := p.Filter(r)
		f.At = started
		by := actions.Actor{Kind: actions.Policy, Name: string(r)}
		detail := fmt.Sprintf("policy enforcement run %d", seq)
		if p.cfg.DryRun {
			ids, err := p.sessions.MatchingIDs(ctx, f, sessionstore.DefaultMaxBulk)
			if err != nil {
				return out, fmt.Errorf("policy: %s: %w", r, err)
			}
			e := Enforced{Rule: r, Matched: int64(len(ids)), IDs: ids[:min(len(ids), sampleIDs)]}
			if len(ids) > 0 {
				err := svc.DoOn(ctx, run, by, func(*sessionstore.Tx) (audit.Entry, error) {
					return audit.Entry{Action: audit.PolicyDryRun, Target: string(r), Count: e.Matched,
						Detail: detail + " (dry run: nothing revoked)"}, nil
				})
				if err != nil {
					return out, fmt.Errorf("policy: %s: %w", r, err)
				}
			}
			out = append(out, e)
			continue
		}
		res, err := svc.RevokeBulk(ctx, by, actions.Bulk{All: true, Filter: f, Rule: string(r), Batch: p.cfg.Batch,
			Run: run, Note: actions.Note{Detail: detail}})
		out = append(out, Enforced{Rule: r, Matched: res.Matched, Revoked: res.Revoked})
		if err != nil {
			return out, fmt.Errorf("policy: %s: %w", r, err)
		}
	}
	return out, nil
}

// Summary is a run's one-line summary for the job log: "idle 3/3, root 0/0" (revoked/matched;
// "would revoke" counts in a dry run).
func Summary(runs []Enforced, dry bool) string {
	s := ""
	for i, e := range runs {
		if i > 0 {
			s += ", "
		}
		if dry {
			s += fmt.Sprintf("%s: would revoke %d", e.Rule, e.Matched)
		} else {
			s += fmt.Sprintf("%s: %d revoked of %d", e.Rule, e.Revoked, e.Matched)
		}
	}
	if s == "" {
		return "no rule enabled"
	}
	return s
}
