package templates

// Field is one labelled value of a detail page: text, a time, or NULL.
type Field struct {
	Label  string
	Text   string
	Time   *TimeCell
	Code   bool // monospace (IDs, auditInfo)
	Null   bool // shown as NULL
	Link   string
	TestID string
}

// Event is one moment of a session's timeline.
type Event struct {
	Label  string
	At     TimeCell
	Note   string
	Future bool // the moment is still to come (expires)
	TestID string
}

// ClientRow is one (address, user agent) pair a session was used from.
type ClientRow struct {
	Addr, UserAgent, Uses string
	First, Last           TimeCell
}

// SessionPage is /sessions/{id}: every column, the timeline, the clients and the audit
// entries of one session, live or purged.
type SessionPage struct {
	Page
	ID       string
	Username string
	UserURL  string
	// Status is the session's state (active, expired, revoked); Purged says it has left the
	// live table, so Status is its last known state.
	Status string
	Purged bool
	// Recorded is false while the history has not seen the session yet (it syncs every
	// SyncEvery).
	Recorded  bool
	SyncEvery string
	Fields    []Field
	Timeline  []Event
	Clients   []ClientRow
	Audit     []AuditRow
	AuditURL  string
	RevokeURL string // "" when the session cannot be revoked (revoked already, or purged)
	Notice    Notice // what the last revoke changed
}

// ListRow is one session in a plain session list (the user page).
type ListRow struct {
	ID, URL  string
	Status   string
	Purged   bool
	Created  TimeCell
	Expires  TimeCell
	Revoked  TimeCell
	LastUsed TimeCell
	PurgedAt TimeCell
}

// UserPage is /users/{name}: what the database says of the name, the user's sessions in the
// live table and in the history, and the audit entries about them.
type UserPage struct {
	Page
	Name string
	// State is exists, role, dropped or unknown; StateText says it in words.
	State, StateText string
	Counts           Counts
	PurgedCount      string
	SeenCount        string
	Live             []ListRow
	LiveNote         string
	LiveMoreURL      string
	Purged           []ListRow
	PurgedMoreURL    string
	Audit            []AuditRow
	AuditURL         string
	RevokeAllURL     string
	Notice           Notice // what the last revoke-all changed
}

// Setting is one cluster setting on the health page.
type Setting struct{ Name, Value string }

// DayRow is one day of the health page's counts.
type DayRow struct{ Day, Created, Ended, Purged string }

// JobRow is one background job on the health page.
type JobRow struct {
	Name, Holder, Runs, LastHolder, LastError, LastDetail string
	LeaseExpires, LastStarted, LastFinished               TimeCell
	Held                                                  bool
}

// HealthPage is /health: the live table's purge and the background jobs.
type HealthPage struct {
	Page
	// Purger says who purges the table and how: "The console" / "CockroachDB".
	Purger, TTL, Every, PurgeSource string
	PurgeOff                        bool
	Settings                        []Setting
	SettingsNote                    string
	LiveRows                        string
	LiveCountedAt                   string
	OldestEnded                     TimeCell
	LastPurge                       TimeCell
	LastPurgeRows, PurgedTotal      string
	Days                            []DayRow
	Warnings                        []string
	Jobs                            []JobRow
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// RangeField is one date or date-time bound of the filter form (UTC, as typed).
type RangeField struct{ Name, Label, Value string }

// MoreFilters are the auditors' filters of the sessions and history filter forms: a session
// ID, created, expires and last-used ranges, and (history) purged or not.
type MoreFilters struct {
	Open    bool // some are set: show them
	History bool
	ID      string
	Ranges  []RangeField
	Purged  []Option
}

// HistoryPage is /history: the console's history with the sessions page's filters and table.
type HistoryPage struct {
	Page
	Filters   Filters
	Table     SessionsTable
	SyncEvery string
}
