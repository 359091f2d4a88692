package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// noPolicy is the policy of a console given none: every rule off.
type noPolicy struct{}

func (noPolicy) Config() policy.Config { return policy.Config{} }
func (noPolicy) Filter(r policy.Rule) (sessionstore.Filter, error) {
	return policy.New(nil, nil, policy.Config{}).Filter(r)
}
func (noPolicy) Counts(context.Context) (policy.Counts, error) {
	return policy.Counts{Rules: map[policy.Rule]int64{}, At: time.Now().UTC()}, nil
}
func (noPolicy) Sample(context.Context, policy.Rule, int) ([]policy.Row, error) { return nil, nil }
func (noPolicy) Generation() (uint64, bool)                                     { return 0, true }

// ruleDescriptions say what each rule finds, as the policy page explains it.
var ruleDescriptions = map[policy.Rule]string{
	policy.MaxLifetime: "Sessions minted for longer than this (expires − created), by this console, cockroach's CLI or anything else.",
	policy.Idle:        "Active sessions not used for this long: the latest use /auth/verify saw, else the table's lastUsedAt.",
	policy.Orphans:     "Active sessions of users that no longer exist, are roles now, or were dropped and created again (another user ID).",
	policy.Root:        "Active sessions of root (on PostgreSQL also of superusers).",
}

func (h *Handler) showPolicyPage(c echo.Context) error {
	ctx := c.Request().Context()
	cfg := h.policy.Config()
	counts, err := h.policy.Counts(ctx)
	if err != nil {
		return err
	}
	now := h.now()
	v := templates.PolicyPage{Page: h.page(c, "Policy", "policy"), Enforce: enforceText(cfg)}
	v.CountedAt, v.CountedAtISO = templates.Relative(counts.At, now), counts.At.UTC().Format(time.RFC3339Nano)
	if h.cfg.Background.Jobs != nil && cfg.Enforce {
		if st, err := h.cfg.Background.Jobs(ctx); err == nil {
			for _, s := range st {
				if s.Job == "policy" && s.LastFinishedAt != nil {
					v.LastRun = fmt.Sprintf("Last enforcement run %s by %s: %s.", templates.Relative(*s.LastFinishedAt, now), s.LastHolder, s.LastDetail)
					if s.LastError != "" {
						v.LastRun += " Error: " + s.LastError
					}
				}
			}
		}
	}
	canOperate := roleIn(ctx).Allows(admins.Operator)
	gen, fresh := h.policy.Generation()
	key := renderedRulesKey{gen: gen, countedAt: counts.At.UnixNano(), second: now.Unix(), operate: canOperate, csrf: v.CSRF}
	if r := h.policyRules.Load(); fresh && r != nil && r.key == key {
		v.RulesHTML = r.html
		return h.render(c, http.StatusOK, templates.PolicyView(v))
	}
	var rules []templates.PolicyRule
	for _, r := range policy.Rules {
		pr := templates.PolicyRule{Name: string(r), Describe: ruleDescriptions[r], Value: cfg.Value(r), Enabled: cfg.Enabled(r),
			CanOperate: canOperate}
		if pr.Enabled {
			q := defaultSessionsQuery()
			q.Rule = r
			pr.N = counts.Rules[r]
			pr.Count, pr.ListURL, pr.View = thousands(pr.N), q.url("/sessions"), q.values().Encode()
			rows, err := h.policy.Sample(ctx, r, policy.SampleRows)
			if err != nil {
				return err
			}
			for _, row := range rows {
				judged := &row // the idle rule says which use it judged by
				if r != policy.Idle {
					judged = nil
				}
				pr.Rows = append(pr.Rows, sampleRow(row.Session, now, judged))
			}
			// Cached counts may lag behind the rows (sessions since): never fewer than shown.
			if int64(len(pr.Rows)) > pr.N {
				pr.N = int64(len(pr.Rows))
				pr.Count = thousands(pr.N)
			}
		}
		rules = append(rules, pr)
	}
	if v.RulesHTML, err = renderString(c, templates.PolicyRules(rules, v.CSRF)); err != nil {
		return err
	}
	// Kept only if the samples came from the generation named (none replaced them meanwhile).
	if again, stillFresh := h.policy.Generation(); fresh && stillFresh && again == gen {
		h.policyRules.Store(&renderedRules{key: key, html: v.RulesHTML})
	}
	return h.render(c, http.StatusOK, templates.PolicyView(v))
}

// renderedRules are the policy page's rules as last rendered, for key.
type renderedRules struct {
	key  renderedRulesKey
	html string
}

// renderedRulesKey is everything the rendered rules depend on besides the process's settings:
// the policy's generation of counts and samples (policy.Policy.Generation) and the counts' time,
// the second their relative times are of, whether the admin may revoke, and the CSRF token of
// the admin's forms.
type renderedRulesKey struct {
	gen               uint64
	countedAt, second int64
	operate           bool
	csrf              string
}

// sampleRow is a session as a confirmation or the policy page names it (with the idle rule's
// judgement when row is given).
func sampleRow(s sessionstore.Session, now time.Time, row *policy.Row) templates.SampleRow {
	out := templates.SampleRow{ID: s.ID, Username: s.Username, Expires: timeCell(s.ExpiresAt, now)}
	if row != nil {
		lu := timeCell(row.LastUse, now)
		out.LastUse, out.LastUseFrom = &lu, row.LastUseFrom
	}
	return out
}

// enforceText says whether and how the policy is enforced.
func enforceText(cfg policy.Config) string {
	switch {
	case len(cfg.EnabledRules()) == 0:
		return "No rule is enabled: start the console with --policy-max-lifetime, --policy-idle, --policy-orphans or --policy-root."
	case !cfg.Enforce:
		return "Not enforced: the rules only report here. Serve with --policy-enforce to revoke what breaks them."
	case cfg.DryRun:
		return fmt.Sprintf("Enforced as a dry run every %s: what would be revoked is logged and audited; nothing is revoked.", sessionstore.FormatDuration(cfg.Interval))
	}
	return fmt.Sprintf("Enforced every %s: sessions breaking an enabled rule are revoked, audited as actor policy.", sessionstore.FormatDuration(cfg.Interval))
}
