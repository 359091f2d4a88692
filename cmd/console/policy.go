package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/jobs"
	"github.com/sessionconsole/console/internal/policy"
)

// jobPolicy is the enforcement job's name (its lease in console.job_leases).
const jobPolicy = "policy"

// policyFlags are the policy's settings: the rules (serve and auth-session logout --rule take
// the same ones) and, for serve, the enforcement job's.
type policyFlags struct {
	cfg  policy.Config
	fl   *pflag.FlagSet
	jobs bool // serve: the enforcement flags too
}

// policyEnv names the environment variable of each policy flag: CONSOLE_ and the flag's
// name in capitals with underscores (--policy-max-lifetime: CONSOLE_POLICY_MAX_LIFETIME).
func policyEnv(flag string) string {
	return "CONSOLE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func (p *policyFlags) register(fl *pflag.FlagSet, enforcement bool) {
	p.fl, p.jobs = fl, enforcement
	env := func(name string) string { return " [env " + policyEnv(name) + "]" }
	fl.DurationVar(&p.cfg.MaxLifetime, "policy-max-lifetime", 0,
		"policy rule max-lifetime: sessions whose expiresAt - createdAt exceeds this (0: off)"+env("policy-max-lifetime"))
	fl.DurationVar(&p.cfg.Idle, "policy-idle", 0,
		"policy rule idle: active sessions not used for this long (last use seen at /auth/verify, else lastUsedAt; 0: off)"+env("policy-idle"))
	fl.BoolVar(&p.cfg.Orphans, "policy-orphans", false,
		"policy rule orphans: active sessions of users that no longer exist, are roles now, or were dropped and created again"+env("policy-orphans"))
	fl.BoolVar(&p.cfg.Root, "policy-root", false,
		"policy rule root: active sessions of root (on PostgreSQL also of superusers)"+env("policy-root"))
	if !enforcement {
		return
	}
	fl.BoolVar(&p.cfg.Enforce, "policy-enforce", false,
		"revoke the sessions breaking an enabled policy rule, every --policy-interval, on one replica at a time, audited as actor policy"+env("policy-enforce"))
	fl.DurationVar(&p.cfg.Interval, "policy-interval", policy.DefaultInterval,
		"how often the policy enforcement runs"+env("policy-interval"))
	fl.BoolVar(&p.cfg.DryRun, "policy-dry-run", false,
		"with --policy-enforce: log and audit what the enforcement would revoke, and revoke nothing"+env("policy-dry-run"))
	fl.IntVar(&p.cfg.Batch, "policy-batch", actions.DefaultBulkBatch,
		"how many sessions one transaction of the enforcement (and of a bulk revoke) revokes"+env("policy-batch"))
}

// config returns the settings, taking each flag not given from its environment variable; a
// malformed value is an error naming the variable.
func (p *policyFlags) config() (policy.Config, error) {
	var err error
	p.fl.VisitAll(func(f *pflag.Flag) {
		if err != nil || !strings.HasPrefix(f.Name, "policy-") || f.Changed {
			return
		}
		v, ok := os.LookupEnv(policyEnv(f.Name))
		if !ok || v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = fmt.Errorf("%s: invalid value %q for --%s", policyEnv(f.Name), v, f.Name)
		}
	})
	if err != nil {
		return policy.Config{}, err
	}
	if err := p.cfg.Check(); err != nil {
		return policy.Config{}, fmt.Errorf("--policy-*: %s", userMessage(err))
	}
	if p.jobs && p.cfg.Interval <= 0 {
		return policy.Config{}, fmt.Errorf("--policy-interval must be positive")
	}
	if p.cfg.Batch <= 0 {
		p.cfg.Batch = actions.DefaultBulkBatch
	}
	return p.cfg, nil
}

// addPolicyJob adds the enforcement job to r when the policy is enforced and has a rule.
func addPolicyJob(r *jobs.Runner, a *app, p *policy.Policy, log *slog.Logger) {
	cfg := p.Config()
	if !cfg.Enforce {
		return
	}
	if len(cfg.EnabledRules()) == 0 {
		log.Warn("policy: --policy-enforce without a rule: nothing to enforce")
		return
	}
	r.Add(jobs.Job{Name: jobPolicy, Every: cfg.Interval, Run: func(ctx context.Context, pass *jobs.Pass) error {
		runs, err := p.Enforce(ctx, a.actions, pass.Tx, pass.StartedAt, pass.Seq)
		pass.Detail("%s", policy.Summary(runs, cfg.DryRun))
		for _, e := range runs {
			switch {
			case cfg.DryRun && e.Matched > 0:
				log.Info("policy: dry run: would revoke", "rule", e.Rule, "sessions", e.Matched, "first_ids", e.IDs)
			case e.Revoked > 0:
				log.Info("policy: revoked", "rule", e.Rule, "sessions", e.Revoked)
			}
		}
		return err
	}})
}
