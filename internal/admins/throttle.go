package admins

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
)

// throttleMigration creates the sign-in throttle's table: failed sign-ins counted per
// (account, address), per account (empty address) and per address (empty account), kept in the
// database so that restarts and replicas share them.
var throttleMigration = pgdb.Migration{Version: 2, SQL: `
CREATE TABLE IF NOT EXISTS console.signin_failures (
	account TEXT NOT NULL,
	address TEXT NOT NULL,
	failures INT8 NOT NULL DEFAULT 0,
	last_failure TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (account, address)
);
CREATE INDEX IF NOT EXISTS signin_failures_last_idx ON console.signin_failures (last_failure);
`}

// ThrottlePolicy says how failed sign-ins slow down further attempts. Nothing ever locks an
// account: every limit is a delay that doubles with each further failure up to MaxDelay, and a
// delay earned by an account's failures applies only to addresses that failed for it, so the
// right password from an address that has not failed always gets in.
type ThrottlePolicy struct {
	// FreeTries is how many failures one address may have for one account before each further
	// attempt from there waits.
	FreeTries int
	// AddressFreeTries is how many failures one address may have, for any accounts, before
	// each further attempt from there waits.
	AddressFreeTries int
	// AccountFreeTries is how many failures an account may have from all addresses together
	// before an address that failed for it waits, after its own last failure, a delay that
	// grows with the account's failures.
	AccountFreeTries int
	// Window: failures are forgotten this long after the last one of their kind.
	Window time.Duration
	// BaseDelay is the first delay; each further failure doubles it, up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
}

// The policy's defaults.
const (
	DefaultFreeTries        = 5
	DefaultAddressFreeTries = 20
	DefaultAccountFreeTries = 10
	DefaultThrottleWindow   = 15 * time.Minute
	DefaultBaseDelay        = time.Second
	DefaultMaxDelay         = 15 * time.Minute
)

// WithDefaults fills the zero fields of p with the defaults.
func (p ThrottlePolicy) WithDefaults() ThrottlePolicy {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.FreeTries, DefaultFreeTries)
	def(&p.AddressFreeTries, DefaultAddressFreeTries)
	def(&p.AccountFreeTries, DefaultAccountFreeTries)
	defDur(&p.Window, DefaultThrottleWindow)
	defDur(&p.BaseDelay, DefaultBaseDelay)
	defDur(&p.MaxDelay, DefaultMaxDelay)
	return p
}

// delay is the wait after failures against a limit of free tries (0: no wait yet).
func (p ThrottlePolicy) delay(failures int64, free int) time.Duration {
	over := failures - int64(free)
	if over < 0 {
		return 0
	}
	d := p.BaseDelay
	for i := int64(0); i < over && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Attempt is the throttle's answer to a sign-in attempt.
type Attempt struct {
	// Wait > 0 refuses the attempt: nothing was counted and the password must not be
	// checked; try again after Wait.
	Wait time.Duration
	// TriesLeft is how many more failures this address may have for this account, once this
	// attempt has failed, before attempts from here wait; 0 means the next one waits NextWait.
	TriesLeft int
	NextWait  time.Duration
}

// UnknownAccount is the account key of every name that cannot be an admin name, so that a
// flood of distinct junk names shares one account row.
const UnknownAccount = "?"

// throttleRow is one counter: an (account, address) pair, an account (empty address) or an
// address (empty account).
type throttleRow struct {
	failures int64
	last     time.Time
}

// StartSignIn decides whether a sign-in attempt for account from address may check its
// password under policy p, and if so counts it as a failure before the password is checked,
// so that parallel attempts cannot all pass through one free slot: a success takes the count
// back with SignInSucceeded. account should be UnknownAccount for names that cannot exist.
func (s *Store) StartSignIn(ctx context.Context, p ThrottlePolicy, account, address string) (Attempt, error) {
	p = p.WithDefaults()
	keys := [3][2]string{{account, address}, {account, ""}, {"", address}}
	var a Attempt
	err := pgdb.RunTx(ctx, s.pool, s.flavor, func(tx pgx.Tx) error {
		a = Attempt{}
		// Make sure the three rows exist, then lock them: attempts on the same keys queue here.
		if _, err := tx.Exec(ctx, `INSERT INTO console.signin_failures (account, address, failures)
			VALUES ('', $2, 0), ($1, '', 0), ($1, $2, 0) ON CONFLICT (account, address) DO NOTHING`, account, address); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT account, address, failures, last_failure, now()
			FROM console.signin_failures
			WHERE (account = $1 AND address IN ($2, '')) OR (account = '' AND address = $2)
			ORDER BY account, address FOR UPDATE`, account, address)
		if err != nil {
			return err
		}
		var now time.Time
		got := map[[2]string]throttleRow{}
		for rows.Next() {
			var k [2]string
			var r throttleRow
			if err := rows.Scan(&k[0], &k[1], &r.failures, &r.last, &now); err != nil {
				rows.Close()
				return err
			}
			if now.Sub(r.last) >= p.Window {
				r.failures = 0 // forgotten
			}
			got[k] = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
		pair, acct, addr := got[keys[0]], got[keys[1]], got[keys[2]]
		waitUntil := func(r throttleRow, free int) time.Duration {
			if d := p.delay(r.failures, free); d > 0 {
				return r.last.Add(d).Sub(now)
			}
			return 0
		}
		wait := max(waitUntil(pair, p.FreeTries), waitUntil(addr, p.AddressFreeTries))
		if pair.failures > 0 {
			if d := p.delay(acct.failures, p.AccountFreeTries); d > 0 {
				wait = max(wait, pair.last.Add(d).Sub(now))
			}
		}
		if wait > 0 {
			a.Wait = wait
			return nil
		}
		// Count the attempt as a failure on all three rows (a forgotten count starts again).
		if _, err := tx.Exec(ctx, `UPDATE console.signin_failures
			SET failures = CASE WHEN last_failure <= now() - $3::INT8 * INTERVAL '1 microsecond' THEN 1 ELSE failures + 1 END,
				last_failure = now()
			WHERE (account = $1 AND address IN ($2, '')) OR (account = '' AND address = $2)`,
			account, address, p.Window.Microseconds()); err != nil {
			return err
		}
		pair.failures++
		acct.failures++
		addr.failures++
		a.TriesLeft = max(0, min(p.FreeTries-int(pair.failures), p.AddressFreeTries-int(addr.failures)))
		next := max(p.delay(pair.failures, p.FreeTries), p.delay(addr.failures, p.AddressFreeTries),
			p.delay(acct.failures, p.AccountFreeTries))
		if next > 0 {
			a.TriesLeft, a.NextWait = 0, next
		}
		return nil
	})
	if err != nil {
		return Attempt{}, dbErr("sign-in throttle", err)
	}
	s.purgeThrottle(ctx, p)
	return a, nil
}

// SignInSucceeded takes back the failure StartSignIn counted for a sign-in whose password
// was right, and forgets the failures of that account from that address. Failures counted for
// the account or the address from elsewhere stay.
func (s *Store) SignInSucceeded(ctx context.Context, account, address string) error {
	err := pgdb.RunTx(ctx, s.pool, s.flavor, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console.signin_failures WHERE account = $1 AND address = $2`, account, address); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE console.signin_failures SET failures = failures - 1
			WHERE failures > 0 AND ((account = $1 AND address = '') OR (account = '' AND address = $2))`, account, address)
		return err
	})
	return dbErr("sign-in throttle", err)
}

// purgeThrottle deletes counters that are forgotten and wait for nothing, at most once a
// minute per process (every replica may do it; the DELETE is idempotent). A failure is
// ignored: the next sign-in tries again.
func (s *Store) purgeThrottle(ctx context.Context, p ThrottlePolicy) {
	now := time.Now()
	s.mu.Lock()
	due := now.Sub(s.purged) >= time.Minute
	if due {
		s.purged = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	keep := p.Window + p.MaxDelay
	s.pool.Exec(ctx, `DELETE FROM console.signin_failures WHERE last_failure < now() - $1::INT8 * INTERVAL '1 microsecond'`,
		keep.Microseconds())
}

// Throttled returns the accounts whose sign-in is delayed right now from at least one address
// under policy p (accounts that are not are absent), by their failures from that address or
// in all.
func (s *Store) Throttled(ctx context.Context, p ThrottlePolicy) (map[string]bool, error) {
	p = p.WithDefaults()
	out := map[string]bool{}
	err := pgdb.WithFullScan(ctx, s.pool, s.flavor, func(q pgdb.DBTX) error { // every recent failure
		rows, err := q.Query(ctx, `SELECT f.account, f.failures, f.last_failure, coalesce(a.failures, 0), now()
			FROM console.signin_failures AS f
			LEFT JOIN console.signin_failures AS a ON a.account = f.account AND a.address = ''
				AND a.last_failure > now() - $1::INT8 * INTERVAL '1 microsecond'
			WHERE f.account <> '' AND f.address <> '' AND f.failures > 0
			AND f.last_failure > now() - $1::INT8 * INTERVAL '1 microsecond'`, p.Window.Microseconds())
		if err != nil {
			return err
		}
		var (
			account    string
			pair, acct int64
			last, now  time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&account, &pair, &last, &acct, &now}, func() error {
			wait := max(p.delay(pair, p.FreeTries), p.delay(acct, p.AccountFreeTries))
			if wait > 0 && last.Add(wait).After(now) {
				out[account] = true
			}
			return nil
		})
		return err
	})
	return out, dbErr("throttle status", err)
}

// ClearThrottle forgets the failed sign-ins of account (from every address, and in all) and
// writes by (a throttle-clear entry with the number of failures forgotten) in the same
// transaction. Failures counted against addresses stay.
func (s *Store) ClearThrottle(ctx context.Context, account string, by audit.Entry) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `WITH d AS (DELETE FROM console.signin_failures WHERE account = $1 RETURNING failures, address)
			SELECT coalesce(sum(failures), 0)::INT8 FROM d WHERE address = ''`, account).Scan(&n); err != nil {
			return err
		}
		by.Action, by.Target, by.Count = audit.ThrottleClear, account, n
		return audit.InsertOrRollBack(ctx, tx, by)
	})
	return dbErr("clear throttle", err)
}
