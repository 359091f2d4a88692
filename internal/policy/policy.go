// Package policy finds the sessions that break the console's session policy and ends them:
// CockroachDB's own page for auth-session tells operators to monitor system.web_sessions and
// enforce policy-mandated expirations, and nothing does that for them.
//
// A rule is a condition on a session row (a sessionstore.Condition), so the sessions list,
// its exports, the counts, a bulk revocation and the enforcement job all apply the same SQL.
// Every rule covers active sessions only (not revoked, not expired): an ended session breaks
// nothing any more.
package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
)

// Rule names a rule, as URLs, markup, the audit log and the CLI spell it.
type Rule string

// The rules.
const (
	// MaxLifetime: sessions whose expiresAt - createdAt exceeds Config.MaxLifetime.
	MaxLifetime Rule = "max-lifetime"
	// Idle: sessions whose last known use is older than Config.Idle.
	Idle Rule = "idle"
	// Orphans: sessions of users that no longer exist, are roles now, or were dropped and
	// created again (another user ID).
	Orphans Rule = "orphans"
	// Root: sessions of root (and on PostgreSQL of superusers).
	Root Rule = "root"
)

// Rules lists every rule in the order pages and runs take them.
var Rules = []Rule{MaxLifetime, Idle, Orphans, Root}

// ErrUnknownRule: a name that is no rule. ErrDisabled: a rule that is not configured.
var (
	ErrUnknownRule = fmt.Errorf("%w: unknown policy rule", sessionstore.ErrInvalidInput)
	ErrDisabled    = fmt.Errorf("%w: policy rule not enabled", sessionstore.ErrInvalidInput)
)

// ParseRule returns the rule named s.
func ParseRule(s string) (Rule, error) {
	for _, r := range Rules {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w %q (one of max-lifetime, idle, orphans, root)", ErrUnknownRule, s)
}

// Defaults.
const (
	// DefaultInterval is how often the enforcement job runs.
	DefaultInterval = time.Minute
	// SampleRows is how many of a rule's sessions the policy page shows.
	SampleRows = 5
)

// Config is the policy: which rules are on, with their values, and whether they are enforced.
type Config struct {
	// MaxLifetime enables MaxLifetime with that bound (0: off).
	MaxLifetime time.Duration
	// Idle enables Idle with that bound (0: off).
	Idle time.Duration
	// Orphans, Root enable those rules.
	Orphans, Root bool
	// Enforce runs the enforcement job every Interval; DryRun makes it revoke nothing, only
	// log and audit what it would revoke.
	Enforce, DryRun bool
	Interval        time.Duration
	// Batch is how many sessions one enforcement transaction revokes (0: actions' default).
	Batch int
}

// Enabled reports whether rule r is on.
func (c Config) Enabled(r Rule) bool {
	switch r {
	case MaxLifetime:
		return c.MaxLifetime > 0
	case Idle:
		return c.Idle > 0
	case Orphans:
		return c.Orphans
	case Root:
		return c.Root
	}
	return false
}

// EnabledRules lists the rules that are on.
func (c Config) EnabledRules() []Rule {
	var out []Rule
	for _, r := range Rules {
		if c.Enabled(r) {
			out = append(out, r)
		}
	}
	return out
}

// Value is the rule's setting as the policy page and --help show it ("720h0m0s", "on", "off").
func (c Config) Value(r Rule) string {
	switch {
	case !c.Enabled(r):
		return "off"
	case r == MaxLifetime:
		return sessionstore.FormatDuration(c.MaxLifetime)
	case r == Idle:
		return sessionstore.FormatDuration(c.Idle)
	}
	return "on"
}

// Check reports a setting that cannot work (a negative duration).
func (c Config) Check() error {
	if c.MaxLifetime < 0 || c.Idle < 0 || c.Interval < 0 {
		return fmt.Errorf("%w: policy durations must not be negative", sessionstore.ErrInvalidInput)
	}
	return nil
}

// Policy applies a Config to a session store.
type Policy struct {
	cfg      Config
	sessions *sessionstore.Store
	activity Activity

	mu      sync.Mutex
	cached  Counts
	samples map[Rule][]Row // the first SampleRows of each rule, counted with cached
	writes  uint64         // sessions.Writes() when cached was counted
	gen     uint64         // counts how many times cached and samples were replaced
	have    bool
	busy    bool
	bg      sync.WaitGroup
}

// Activity is where the console keeps the uses /auth/verify saw (history.Store): the idle
// rule's SQL reads its table, console.session_activity, and Sample asks it for the rows shown.
type Activity interface {
	LastUses(ctx context.Context, ids []int64) (map[int64]time.Time, error)
}

// New returns the policy cfg over sessions and the activity the console recorded.
func New(sessions *sessionstore.Store, activity Activity, cfg Config) *Policy {
	return &Policy{cfg: cfg, sessions: sessions, activity: activity}
}

// Config returns the policy's settings.
func (p *Policy) Config() Config { return p.cfg }

// Close waits for a background recount.
func (p *Policy) Close() { p.bg.Wait() }

// Filter returns the filter of the active sessions breaking rule r (ErrDisabled when it is
// off): add a moment (At) to act on exactly what matched then.
func (p *Policy) Filter(r Rule) (sessionstore.Filter, error) {
	if _, err := ParseRule(string(r)); err != nil {
		return sessionstore.Filter{}, err
	}
	if !p.cfg.Enabled(r) {
		return sessionstore.Filter{}, fmt.Errorf("%w: %s (enable it with --policy-%s)", ErrDisabled, r, r)
	}
	return sessionstore.Filter{Status: sessionstore.StatusActive, Cond: condition{rule: r, p: p}}, nil
}

// RuleOf returns the rule f's condition is, or "".
func RuleOf(f sessionstore.Filter) Rule {
	if c, ok := f.Cond.(condition); ok {
		return c.rule
	}
	return ""
}

// condition is a rule as a sessionstore.Condition.
type condition struct {
	rule Rule
	p    *Policy
}

// SQL returns the rule's predicate on row ref, at now. Each predicate starts with the active
// sessions' range of the expiresAt index and reads other tables (users, roles, activity) only
// by key per row.
func (c condition) SQL(ref string, now time.Time, arg func(any) string) string {
	col := func(name string) string { return ref + `."` + name + `"` }
	active := col("revokedAt") + " IS NULL AND " + col("expiresAt") + " > " + arg(now)
	s := c.p.sessions
	switch c.rule {
	case MaxLifetime:
		return active + " AND " + col("expiresAt") + " - " + col("createdAt") + " > " +
			arg(c.p.cfg.MaxLifetime.Microseconds()) + "::INT8 * INTERVAL '1 microsecond'"
	case Idle:
		// The latest use any source knows: the console's activity (seen at /auth/verify),
		// else lastUsedAt. lastUsedAt is never NULL in either dialect (it starts as createdAt).
		cutoff := arg(now.Add(-c.p.cfg.Idle))
		return active + " AND " + col("lastUsedAt") + " < " + cutoff +
			" AND NOT EXISTS (SELECT 1 FROM console.session_activity a WHERE a.session_id = " + ref + ".id AND a.last_used_at >= " + cutoff + ")"
	case Orphans:
		if s.Flavor() == pgdb.Postgres {
			return active + " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname::text = " + ref +
				".username AND r.rolcanlogin AND (" + ref + ".user_id IS NULL OR r.oid = " + ref + ".user_id))"
		}
		same := ""
		if s.HasUserID() {
			same = " AND u.user_id = " + ref + ".user_id"
		}
		return active + ` AND NOT EXISTS (SELECT 1 FROM system.users u WHERE u.username = ` + ref +
			`.username AND NOT u."isRole"` + same + ")"
	case Root:
		if s.Flavor() == pgdb.Postgres {
			// The names first (a handful), so the username index finds their sessions instead
			// of a lookup per active session.
			return active + " AND " + ref + ".username IN (SELECT " + arg("root") +
				"::text UNION ALL SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.rolsuper)"
		}
		return active + " AND " + ref + ".username = " + arg("root")
	}
	return "false"
}

// Counts are the numbers of active sessions breaking each enabled rule, as counted at At.
type Counts struct {
	// Rules has an entry for every enabled rule, and only for those.
	Rules map[Rule]int64
	At    time.Time
}

// Total is the number of breaches over all rules (a session breaking two rules counts twice).
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c.Rules {
		n += v
	}
	return n
}

// Counts returns the number of active sessions breaking each enabled rule, under the freshness
// rules of the sessions page's counts (sessionstore.Store.Counts): a count is reused for up to
// the store's CountsMaxAge and refreshed in the background once older (the stale numbers are
// returned meanwhile), and counted afresh before returning once this process has written
// sessions since. Every count reads the active sessions' range of the expiresAt index, never
// the whole table. With no rule enabled it returns empty counts without asking the database.
//
// This is the API the overview page and the metrics build on.
func (p *Policy) Counts(ctx context.Context) (Counts, error) {
	rules := p.cfg.EnabledRules()
	if len(rules) == 0 {
		return Counts{Rules: map[Rule]int64{}, At: time.Now().UTC()}, nil
	}
	writes := p.sessions.Writes()
	p.mu.Lock()
	if p.have && p.writes == writes {
		c := p.cached
		if time.Since(c.At) >= p.sessions.CountsMaxAge() && !p.busy {
			p.busy = true
			p.bg.Add(1)
			go func() {
				defer p.bg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				p.refresh(ctx, writes)
			}()
		}
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return p.refresh(ctx, writes)
}

// refresh counts now, reads each rule's first sessions, and caches both as of writes.
func (p *Policy) refresh(ctx context.Context, writes uint64) (Counts, error) {
	c, err := p.CountNow(ctx)
	samples := map[Rule][]Row{}
	for r := range c.Rules {
		if err != nil {
			break
		}
		samples[r], err = p.sample(ctx, r, SampleRows)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy = false
	if err != nil {
		return Counts{}, err
	}
	if !p.have || !c.At.Before(p.cached.At) {
		p.cached, p.samples, p.writes, p.have = c, samples, writes, true
		p.gen++
	}
	return c, nil
}

// CountNow counts the breaches of every enabled rule at once, without the cache: for a
// number someone acts on (the revoke confirmation).
func (p *Policy) CountNow(ctx context.Context) (Counts, error) {
	out := Counts{Rules: map[Rule]int64{}, At: time.Now().UTC()}
	for _, r := range p.cfg.EnabledRules() {
		f, _ := p.Filter(r)
		f.At = out.At
		n, err := p.sessions.CountMatching(ctx, f)
		if err != nil {
			return Counts{}, fmt.Errorf("policy: counting %s: %w", r, err)
		}
		out.Rules[r] = n
	}
	return out, nil
}

// Row is a session breaking a rule, with what the idle rule judged it by.
type Row struct {
	sessionstore.Session
	// LastUse is the latest use known (LastUseFrom: "activity" for the console's verify
	// activity, "lastUsedAt" for the session table's column).
	LastUse     time.Time
	LastUseFrom string
}

// Generation names the cached counts and samples: it changes each time a count replaces them.
// fresh says whether Sample (up to SampleRows) answers from them now; when it is false, Sample
// reads the database and the generation says nothing about its rows. A page rendered from the
// counts and samples of one fresh generation may be reused while the generation is the same.
func (p *Policy) Generation() (gen uint64, fresh bool) {
	writes := p.sessions.Writes()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen, p.have && p.writes == writes
}

// Sample returns the first n sessions breaking rule r, newest first. Up to SampleRows they come
// with the counts (see Counts: read with them, under the same freshness rules, so that a page
// view reads neither); more are read at once.
func (p *Policy) Sample(ctx context.Context, r Rule, n int) ([]Row, error) {
	if n <= SampleRows {
		p.mu.Lock()
		rows, ok := p.samples[r]
		fresh := p.have && p.writes == p.sessions.Writes()
		p.mu.Unlock()
		if ok && fresh {
			return rows[:min(n, len(rows))], nil
		}
	}
	return p.sample(ctx, r, n)
}

func (p *Policy) sample(ctx context.Context, r Rule, n int) ([]Row, error) {
	f, err := p.Filter(r)
	if err != nil {
		return nil, err
	}
	f.Sort, f.Desc, f.Limit = sessionstore.SortCreated, true, n
	page, err := p.sessions.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Row, len(page.Sessions))
	ids := make([]int64, len(page.Sessions))
	for i, s := range page.Sessions {
		out[i] = Row{Session: s, LastUse: s.LastUsedAt, LastUseFrom: "lastUsedAt"}
		ids[i] = s.ID
	}
	if len(ids) == 0 {
		return out, nil
	}
	uses, err := p.activity.LastUses(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if t, ok := uses[out[i].ID]; ok && t.After(out[i].LastUse) {
			out[i].LastUse, out[i].LastUseFrom = t, "activity"
		}
	}
	return out, nil
}

// ErrNothing: a run with no rule enabled.
var ErrNothing = errors.New("policy: no rule is enabled")

// Names returns the enabled rules' names joined by commas (for logs).
func (c Config) Names() string {
	var b strings.Builder
	for i, r := range c.EnabledRules() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(r))
	}
	return b.String()
}
