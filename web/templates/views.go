// Package templates renders the console's pages with templ. Components take typed view models
// (below), filled by web/handlers; they never reach for data themselves.
package templates

import (
	"encoding/json"
	"time"
)

// Page is what every full page needs.
type Page struct {
	Title string
	Nav   string // "sessions" or "audit": the current section
	Admin string // the signed-in admin; "" on the sign-in page
	// Role is the signed-in admin's; CanOperate (issue, revoke) and IsOwner (manage admins
	// and tokens) say what the page may offer. The server checks again on every request.
	Role       string
	CanOperate bool
	IsOwner    bool
	CSRF       string
	// Asset URLs (content-hashed).
	CSS, HTMX, JS, Icon string
}

// htmxConfig: no eval, no inline style or script, no history snapshots in localStorage (a
// snapshot could hold an issued cookie: the back button asks the server instead), and the
// error-swap rule for htmx 2: 422 re-renders the form in place, 409 (an issue form sent twice)
// shows what happened in place; other 4xx/5xx are errors that app.js shows in the banner.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,` +
	`"historyCacheSize":0,"refreshOnHistoryMiss":false,"selfRequestsOnly":true,"scrollBehavior":"auto",` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},` +
	`{"code":"422","swap":true},{"code":"409","swap":true},{"code":"[45]..","swap":false,"error":true}]}`

func csrfHeaders(token string) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": token})
	return string(b)
}

// TimeCell is a timestamp as the CLI prints it, with a relative hint ("in 52m", "3h ago").
type TimeCell struct {
	Text string // CellTime: 2006-01-02 15:04:05.000000 UTC
	Hint string
	ISO  string // RFC 3339, for <time datetime>
}

// SessionRow is one row of the sessions table.
type SessionRow struct {
	ID                               int64
	Username                         string
	CreatedAt, ExpiresAt, LastUsedAt time.Time
	RevokedAt                        *time.Time
	// PurgedAt is set on history rows that left the live table.
	PurgedAt *time.Time
}

// Status is the row's status at now: active, expired or revoked.
func (r SessionRow) Status(now time.Time) string {
	switch {
	case r.RevokedAt != nil:
		return "revoked"
	case !now.Before(r.ExpiresAt):
		return "expired"
	}
	return "active"
}

// Option is one choice of a select or radio group.
type Option struct {
	Value, Label string
	Selected     bool
}

// Counts is the per-status header of the sessions table.
type Counts struct {
	Active, Expired, Revoked, Total           string
	ActiveURL, ExpiredURL, RevokedURL, AllURL string
	At                                        string // when they were counted: "now", "12s ago"
	AtISO                                     string // the same, RFC 3339
	Off                                       string // why there are no counts, shown instead of At
}

// Notice says what the last action changed. Kind is "success" (it changed something), "info"
// (nothing needed changing) or "" (no notice).
type Notice struct {
	Kind, Text string
	// DismissURL reloads the view without the notice (the Dismiss control without JavaScript).
	DismissURL string
	// Focus moves the keyboard focus to the notice when the page loads (a plain form post
	// redirected here); htmx swaps move it from app.js.
	Focus bool
}

// SessionsTable is the part of the sessions page that htmx swaps: counts, table, pager.
type SessionsTable struct {
	SelfURL string // this view: what the periodic refresh reloads
	// Heading names the view ("Active sessions of alice"); Summary is what the status region
	// announces after a swap the admin asked for ("Showing 2 of 2 active sessions of alice.").
	Heading, Summary string
	Counts           Counts
	Rows             []SessionRow
	// Now is the moment statuses and relative times are judged at.
	Now time.Time
	// CanOperate shows the revoke buttons (none for the viewer role, nor on the history's
	// rows: revoke from the session's page).
	CanOperate bool
	// Bulk shows the bulk form (checkboxes, revoke selected, all on this page, all N
	// matching); BulkView is the view's query it carries, BulkAll the "all N matching" label's
	// count ("" when not counted), CSRF its token.
	Bulk          bool
	BulkView      string
	BulkAll, CSRF string
	// ReturnQuery is "?return=<the view's query>", carried by the revoke links.
	ReturnQuery string
	NextURL     string
	PrevURL     string
	FirstURL    string
	CSVURL      string
	JSONURL     string
	UpdatedAt   string
	// User is set when the view shows exactly one user; UserRevokeAllURL when that user has
	// sessions left to revoke (one revoke-all per user view, none on the rows).
	User             string
	UserRevokeAllURL string
	// PrefixURL is the prefix view of an exact name with no sessions ("did you mean ...").
	PrefixURL  string
	StatusName string
}

// Filters is the filter form's state (all of it also in the URL).
type Filters struct {
	// Path is the page the form filters: /sessions or /history.
	Path string
	// More are the auditors' filters (ID, time ranges, purged).
	More     MoreFilters
	User     string
	Prefix   bool
	Statuses []Option
	Sorts    []Option
	Dirs     []Option
	Limits   []Option
}

// IssueForm is the form that issues a session, with its errors and its result.
type IssueForm struct {
	// Open shows the panel open (it holds a result or errors); without JavaScript the page
	// renders it so.
	Open bool
	// Once is the form's one-time token: a second submission of the same form issues nothing.
	Once string
	// Repeated says what a repeated submission of a used form had issued ("" otherwise).
	Repeated string
	// DismissURL is the sessions view without the panel (the result's Dismiss link).
	DismissURL    string
	Username      string
	Presets       []Option // expire_after radio choices, "custom" last
	Custom        string
	Max           string // the configured maximum, shown by the field
	UsernameError string
	ExpireError   string
	// Reason is why the session is issued (audit log, history, auditInfo); ReasonRequired
	// with --require-reason.
	Reason         string
	ReasonRequired bool
	ReasonError    string
	Return         string // the sessions view query to come back to
	CSRF           string
	Result         *Issued
}

// Issued is the one-time result panel of an issued session.
type Issued struct {
	Username  string
	SessionID string
	Expires   TimeCell
	Cookie    string // session=...; Path=/; HttpOnly; Secure
	Value     string // the bare cookie value
	Curl      string
	Header    string
	FileName  string
}

// SessionsPage is the whole sessions page.
type SessionsPage struct {
	Page
	Filters Filters
	Notice  Notice
	Table   SessionsTable
	Issue   IssueForm
}

// Confirm is a confirmation step for a revoke: a dialog with htmx, a page without.
type Confirm struct {
	Page
	Title     string
	Message   string
	Action    string // POST URL; "" when there is nothing to do (no revoke button)
	Return    string
	CancelURL string
	Cancel    string // the label of the way back: "Cancel", or "Close" when nothing can be done
	Button    string
	// ConfirmName, when set, must be typed into the form to confirm (a large revoke-all);
	// NameError says why the last try did not match.
	ConfirmName string
	NameError   string
	// Back is the session's or user's page the confirmation was asked for on: the form is a
	// plain POST that comes back there (no table to swap).
	Back string
	// Fields are further hidden fields of the form (a bulk revoke's selection or filter);
	// Sample are some of the sessions it acts on.
	Fields []HiddenField
	Sample []SampleRow
	// Plain makes the form a plain POST even with JavaScript: the confirmation is a page of
	// its own, with no table to swap (asked for from the policy page, or opened directly).
	Plain bool
	// Progress, when set, is the bulk revoke whose progress the page shows (Confirm is then
	// the progress page, refreshed until Done).
	Progress *BulkProgress
}

// Login is the sign-in page.
type Login struct {
	Page
	Username string
	Error    string
	Next     string
	Notice   string
	// SSOName is the identity provider's name for "Sign in with <SSOName>" ("" without single
	// sign-on); SSOURL starts that sign-in.
	SSOName, SSOURL string
	// LocalLogin shows the password form (off with --local-login=false).
	LocalLogin bool
}

// AuditRow is one entry of the audit page.
type AuditRow struct {
	At        TimeCell
	Admin     string
	Action    string
	Target    string
	SessionID string
	Expires   string
	Count     string
	Remote    string
	Reason    string
	// TargetURL and SessionURL are the pages of the target user and of the session.
	TargetURL, SessionURL string
}

// AuditPage is the audit log page.
type AuditPage struct {
	Page
	Admin        string
	AdminPrefix  bool
	Actions      []Option
	Target       string
	TargetPrefix bool
	Session      string
	// After and Before are the time range as typed (UTC).
	After, Before string
	Rows          []AuditRow
	NewerURL      string
	OlderURL      string
	CSVURL        string
	SelfURL       string
}

// ErrorPage is shown for errors on full-page requests.
type ErrorPage struct {
	Page
	Status  int
	Heading string
	Message string
}

// expireDescribedBy is the custom duration field's description: its help and its error.
func expireDescribedBy(f IssueForm) string {
	if f.ExpireError != "" {
		return "expire-help issue-expire-error"
	}
	return "expire-help"
}

// HiddenField is a hidden form field.
type HiddenField struct{ Name, Value string }

// SampleRow is a session a confirmation names.
type SampleRow struct {
	ID       int64
	Username string
	Expires  TimeCell
	// LastUse and LastUseFrom: the idle rule's judgement ("" elsewhere).
	LastUse     *TimeCell
	LastUseFrom string
}

// BulkProgress is a bulk revoke running in the background.
type BulkProgress struct {
	Done, Total, Revoked string
	Percent              int
	Finished             bool
	Error                string
	// RefreshURL is the page itself (refreshed every few seconds until Finished); ResultURL
	// the sessions view to go back to.
	RefreshURL, ResultURL string
}

// PolicyPage is /policy: every rule, its setting, count and first sessions.
type PolicyPage struct {
	Page
	// RulesHTML are the rules as PolicyRules renders them: trusted markup, written as is.
	RulesHTML string
	// Enforce says whether and how the rules are enforced; LastRun the enforcement's last pass.
	Enforce, LastRun string
	// CountedAt is when the counts were made.
	CountedAt, CountedAtISO string
}

// PolicyRule is one rule on the policy page.
type PolicyRule struct {
	Name, Describe, Value string
	Enabled               bool
	// Count is the number of active sessions breaking it (N), as text.
	Count string
	N     int64
	// ListURL is the sessions list of exactly those sessions; View its query (the bulk form's).
	ListURL, View string
	Rows          []SampleRow
	CanOperate    bool
}
