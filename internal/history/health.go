package history

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgdb"
)

// Thresholds of the purge health warnings.
const (
	// healthDays is how many days of created, ended and purged counts the health shows.
	healthDays = 14
	// growthWindow, growthMinRows, growthShare: the table "grows faster than it is purged"
	// when, over growthWindow, more sessions were created than purged by more than
	// growthMinRows and more than growthShare of the live rows.
	growthWindow  = 7
	growthMinRows = 10_000
	growthShare   = 0.10
	// behindSlack is added to purge TTL + 2 purge periods before an ended row still in the
	// live table counts as the purge falling behind.
	behindSlack = time.Hour
)

// cockroachSettings are the cluster settings that govern the purge of system.web_sessions
// (reference: crdb-web-sessions.md section 4), read with SHOW CLUSTER SETTING.
var cockroachSettings = []string{
	"server.web_session.purge.ttl",
	"server.log_gc.period",
	"server.log_gc.max_deletions_per_cycle",
	"server.web_session.timeout",
}

// Setting is one cluster setting as the cluster reports it.
type Setting struct{ Name, Value string }

// Day is one UTC day of the history's counts.
type Day struct {
	Day                    time.Time
	Created, Ended, Purged int64
}

// PurgeConfig is how the live table is purged, and by whom.
type PurgeConfig struct {
	// ByConsole is true on PostgreSQL (the console's purge job), false on CockroachDB (the
	// cluster's own).
	ByConsole bool
	// TTL and Every are the purge's delay after a session ends, and its period. On
	// CockroachDB they come from the cluster settings when those could be read, otherwise
	// they are CockroachDB's defaults and FromCluster is false.
	TTL, Every  time.Duration
	FromCluster bool
	// Off is true when nothing purges the table (TTL 0 on CockroachDB, the purge job
	// disabled on PostgreSQL).
	Off bool
}

// Health is the state of the live table's purge and of the history, for the health page.
type Health struct {
	Purge PurgeConfig
	// Settings are the cluster's purge settings (CockroachDB); SettingsNote says why there
	// are none.
	Settings     []Setting
	SettingsNote string
	// LiveRows is the live table's row count (given by the caller, from its counts).
	LiveRows int64
	// OldestEnded is the end (expiry or revocation) of the oldest ended row still in the live
	// table, nil when none has ended.
	OldestEnded *time.Time
	// Days are the last healthDays UTC days, newest first.
	Days []Day
	// LastPurgeSeenAt is when the console last saw rows leave the live table (by its own purge
	// or the cluster's), and how many; PurgedRows is every row it has seen go.
	LastPurgeSeenAt   *time.Time
	LastPurgeSeenRows int64
	PurgedRows        int64
	// Warnings are the problems found, in words for an admin.
	Warnings []string
	Now      time.Time
}

// Health reads the purge settings and health. liveRows is the live table's row count; ttl and
// every are the console's purge on PostgreSQL (every 0: disabled).
func (s *Store) Health(ctx context.Context, liveRows int64, ttl, every time.Duration) (Health, error) {
	h := Health{LiveRows: liveRows}
	if err := s.pool.QueryRow(ctx, `SELECT now() AT TIME ZONE 'UTC'`).Scan(&h.Now); err != nil {
		return h, dbErr("health", err)
	}
	h.Now = h.Now.UTC()
	if s.live.Flavor() == pgdb.Postgres {
		h.Purge = PurgeConfig{ByConsole: true, TTL: ttl, Every: every, Off: every <= 0}
	} else {
		h.Purge = PurgeConfig{TTL: DefaultPurgeTTL, Every: DefaultPurgeEvery}
		s.clusterSettings(ctx, &h)
	}
	var minExpires, minRevoked *time.Time
	if err := s.oldest(ctx, "expiresAt", &minExpires); err != nil {
		return h, dbErr("health", err)
	}
	if err := s.oldest(ctx, "revokedAt", &minRevoked); err != nil {
		return h, dbErr("health", err)
	}
	if minExpires != nil && !minExpires.After(h.Now) {
		h.OldestEnded = utcPtr(minExpires)
	}
	if minRevoked != nil && !minRevoked.After(h.Now) && (h.OldestEnded == nil || minRevoked.Before(*h.OldestEnded)) {
		h.OldestEnded = utcPtr(minRevoked)
	}
	if err := s.pool.QueryRow(ctx, `SELECT last_purge_seen_at, last_purge_seen_rows, purged_rows FROM console.history_sync WHERE id = 1`).
		Scan(&h.LastPurgeSeenAt, &h.LastPurgeSeenRows, &h.PurgedRows); err != nil {
		return h, dbErr("health", err)
	}
	h.LastPurgeSeenAt = utcPtr(h.LastPurgeSeenAt)
	if err := s.days(ctx, &h); err != nil {
		return h, err
	}
	h.Warnings = warnings(h)
	return h, nil
}

// days fills the last healthDays days: created and purged from the daily counts the sync
// keeps, ended from the history's ended_at index.
func (s *Store) days(ctx context.Context, h *Health) error {
	today := day(h.Now)
	from := today.AddDate(0, 0, -(healthDays - 1))
	byDay := map[time.Time]*Day{}
	for i := range healthDays {
		d := today.AddDate(0, 0, -i)
		h.Days = append(h.Days, Day{Day: d})
	}
	for i := range h.Days {
		byDay[h.Days[i].Day] = &h.Days[i]
	}
	rows, err := s.pool.Query(ctx, `SELECT day::TIMESTAMP, created, purged FROM console.history_daily WHERE day >= $1::DATE`, from)
	if err != nil {
		return dbErr("health", err)
	}
	var d time.Time
	var created, purged int64
	if _, err := pgx.ForEachRow(rows, []any{&d, &created, &purged}, func() error {
		if x := byDay[day(d)]; x != nil {
			x.Created, x.Purged = created, purged
		}
		return nil
	}); err != nil {
		return dbErr("health", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT date_trunc('day', ended_at), count(*) FROM `+Table+`
		WHERE ended_at >= $1 AND ended_at <= $2 GROUP BY 1`, from, h.Now)
	if err != nil {
		return dbErr("health", err)
	}
	var ended int64
	if _, err := pgx.ForEachRow(rows, []any{&d, &ended}, func() error {
		if x := byDay[day(d)]; x != nil {
			x.Ended = ended
		}
		return nil
	}); err != nil {
		return dbErr("health", err)
	}
	return nil
}

// clusterPurge returns the purge TTL and period of the live table on CockroachDB, and whether
// the purge is off: the cluster's settings, read at most every settingsMaxAge, or
// CockroachDB's defaults where they cannot be read.
func (s *Store) clusterPurge(ctx context.Context) (ttl, every time.Duration, off bool) {
	s.settingsMu.Lock()
	defer s.settingsMu.Unlock()
	if s.settingsAt.IsZero() || time.Since(s.settingsAt) > settingsMaxAge {
		var h Health
		h.Purge = PurgeConfig{TTL: DefaultPurgeTTL, Every: DefaultPurgeEvery}
		s.clusterSettings(ctx, &h)
		s.settings, s.settingsAt = h.Purge, time.Now()
	}
	return s.settings.TTL, s.settings.Every, s.settings.Off
}

// settingsMaxAge is how long the sync reuses the cluster's purge settings.
const settingsMaxAge = 10 * time.Minute

// clusterSettings reads CockroachDB's purge settings, when the server really is CockroachDB.
func (s *Store) clusterSettings(ctx context.Context, h *Health) {
	if s.server != pgdb.Cockroach {
		h.SettingsNote = "The server is not CockroachDB (a PostgreSQL fixture of its tables), so there are no cluster settings to read; CockroachDB's defaults are assumed."
		return
	}
	// SHOW CLUSTER SETTING with the simple protocol, so every value arrives as text. Untested
	// here (there is no CockroachDB on this project's machines).
	var ttlKnown, periodKnown bool
	for _, name := range cockroachSettings {
		var v string
		err := s.pool.QueryRow(ctx, "SHOW CLUSTER SETTING "+name, pgx.QueryExecModeSimpleProtocol).Scan(&v)
		if err != nil && name == "server.web_session.timeout" {
			err = s.pool.QueryRow(ctx, "SHOW CLUSTER SETTING server.web_session_timeout", pgx.QueryExecModeSimpleProtocol).Scan(&v)
		}
		if err != nil {
			h.Settings = append(h.Settings, Setting{Name: name, Value: "(cannot read: " + pgdb.Unavailable(err).Error() + ")"})
			continue
		}
		h.Settings = append(h.Settings, Setting{Name: name, Value: v})
		switch name {
		case "server.web_session.purge.ttl":
			if d, ok := ParseInterval(v); ok {
				h.Purge.TTL, ttlKnown = d, true
			}
		case "server.log_gc.period":
			if d, ok := ParseInterval(v); ok {
				h.Purge.Every, periodKnown = d, true
			}
		}
	}
	h.Purge.FromCluster = ttlKnown && periodKnown
	h.Purge.Off = ttlKnown && h.Purge.TTL == 0
}

var intervalRE = regexp.MustCompile(`^(?:(-?\d+) days? ?)?(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)$`)

// ParseInterval reads a duration as CockroachDB prints a duration setting (01:00:00,
// 1 day 02:00:00, 00:00:00.5) or as Go does (1h30m).
func ParseInterval(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, true
	}
	m := intervalRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	days, _ := strconv.Atoi(m[1])
	hours, _ := strconv.Atoi(m[3])
	mins, _ := strconv.Atoi(m[4])
	secs, _ := strconv.ParseFloat(m[5], 64)
	d := time.Duration(hours)*time.Hour + time.Duration(mins)*time.Minute + time.Duration(secs*float64(time.Second))
	if m[2] == "-" {
		d = -d
	}
	return d + time.Duration(days)*24*time.Hour, true
}

func warnings(h Health) []string {
	var w []string
	who := "CockroachDB's purge"
	if h.Purge.ByConsole {
		who = "The console's purge"
	}
	if h.Purge.Off {
		if h.Purge.ByConsole {
			w = append(w, "Nothing purges the session table: the console's purge is disabled (--purge-interval 0). Ended sessions stay in it for ever.")
		} else {
			w = append(w, "Nothing purges system.web_sessions: server.web_session.purge.ttl is 0. Ended sessions stay in it for ever.")
		}
	} else if h.OldestEnded != nil {
		due := h.Purge.TTL + 2*h.Purge.Every + behindSlack
		if age := h.Now.Sub(*h.OldestEnded); age > due {
			w = append(w, fmt.Sprintf("%s is behind: the oldest ended session still in the table ended %s ago; it should have gone after about %s.",
				who, roundDuration(age), roundDuration(h.Purge.TTL+h.Purge.Every)))
		}
	}
	var created, purged int64
	for _, d := range h.Days[:min(growthWindow, len(h.Days))] {
		created += d.Created
		purged += d.Purged
	}
	if g := created - purged; g > growthMinRows && float64(g) > growthShare*float64(h.LiveRows) {
		w = append(w, fmt.Sprintf("The session table grows faster than it is purged: %d sessions were created and %d purged in the last %d days (%d live rows now). A script minting sessions?",
			created, purged, growthWindow, h.LiveRows))
	}
	return w
}

// roundDuration prints d to a sensible unit: 3d4h, 5h20m, 12m.
func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	}
	return d.Truncate(time.Second).String()
}
