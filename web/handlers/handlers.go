// Package handlers is the console's HTTP layer: echo routes, middleware (admin sign-in, CSRF,
// security headers) and the handlers that turn store results into templ views. Handlers never
// build SQL; they talk to the stores through the small interfaces below.
package handlers

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/metrics"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/internal/sso"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/static"
)

// SessionStore is what the handlers need of sessionstore.Store.
type SessionStore interface {
	List(ctx context.Context, f sessionstore.Filter) (sessionstore.Page, error)
	Counts(ctx context.Context, f sessionstore.Filter) (sessionstore.Counts, error)
	CountNow(ctx context.Context, f sessionstore.Filter) (sessionstore.Counts, error)
	Each(ctx context.Context, f sessionstore.Filter, fn func(sessionstore.Session) error) error
	Get(ctx context.Context, id int64) (sessionstore.Session, error)
	Verify(ctx context.Context, cookie string) (sessionstore.Verified, error)
	Users(ctx context.Context, prefix string, limit int) ([]string, error)
	GetDetail(ctx context.Context, id int64) (sessionstore.Detail, error)
	LookupUser(ctx context.Context, name string) (sessionstore.UserInfo, error)
	HasUserID() bool
	IndexedByUser() bool
	Flavor() pgdb.Flavor
	Username(name string) string
	CheckTTL(ttl time.Duration) error
	MaxTTL() time.Duration
	Ping(ctx context.Context) error
	// CountMatching counts exactly what a bulk revocation of a filter would act on.
	CountMatching(ctx context.Context, f sessionstore.Filter) (int64, error)
}

// PolicyRules are the console's session policy (policy.Policy): its rules' settings, filters,
// cached counts and sample rows.
type PolicyRules interface {
	Config() policy.Config
	Filter(r policy.Rule) (sessionstore.Filter, error)
	Counts(ctx context.Context) (policy.Counts, error)
	Sample(ctx context.Context, r policy.Rule, n int) ([]policy.Row, error)
	Generation() (gen uint64, fresh bool)
}

// Actions are the audited actions (actions.Service): each change commits with its audit row.
type Actions interface {
	Issue(ctx context.Context, by actions.Actor, r actions.IssueRequest) (sessionstore.Issued, error)
	EndUserSessions(ctx context.Context, by actions.Actor, user string, n actions.Note) (revoked, active int64, err error)
	RevokeSession(ctx context.Context, by actions.Actor, id int64, n actions.Note) (sessionstore.Revocation, error)
	// Do commits a change and the audit entry it returns together (an admin's sign-in and
	// sign-out); Record writes an entry that changes nothing else (a failed sign-in).
	Do(ctx context.Context, by actions.Actor, change func(t *sessionstore.Tx) (audit.Entry, error)) error
	Record(ctx context.Context, by actions.Actor, e audit.Entry) error
	// RevokeBulk revokes selected sessions, or what matched a filter when it was confirmed,
	// in audited batches.
	RevokeBulk(ctx context.Context, by actions.Actor, b actions.Bulk) (actions.BulkResult, error)
	// CheckReason and ReasonRequired: issuing's reason (--require-reason).
	CheckReason(reason string) error
	ReasonRequired() bool
}

// ActivityRecorder notes the uses of sessions that /auth/verify accepts (history.Recorder):
// cheaply, for writing later off the request path.
type ActivityRecorder interface {
	Note(id int64, at time.Time, addr, userAgent, host, path string)
}

// AdminStore is what the handlers need of admins.Store.
type AdminStore interface {
	Authenticate(ctx context.Context, name, password string) error
	StartSignIn(ctx context.Context, p admins.ThrottlePolicy, account, address string) (admins.Attempt, error)
	SignInSucceeded(ctx context.Context, account, address string) error
	StartSessionIn(ctx context.Context, q pgdb.DBTX, admin string, m admins.SessionMeta) (string, error)
	CheckSession(ctx context.Context, id string, idle, absolute time.Duration) (admins.Identity, error)
	EndSessionIn(ctx context.Context, q pgdb.DBTX, id string) error
	PeekSession(ctx context.Context, id string, idle, absolute time.Duration) (admins.Identity, error)

	// One-time forms (the issue form).
	ClaimForm(ctx context.Context, sid, token string) (prior string, err error)
	FinishForm(ctx context.Context, token, result string) error
	ReleaseForm(ctx context.Context, token string) error

	// Managing admins (/admins, owners).
	List(ctx context.Context) ([]admins.Admin, error)
	Get(ctx context.Context, name string) (admins.Admin, error)
	Create(ctx context.Context, nc admins.NewAdmin, by audit.Entry) (string, error)
	SetRole(ctx context.Context, name string, role admins.Role, by audit.Entry) error
	Remove(ctx context.Context, name string, by audit.Entry) error
	ResetPassword(ctx context.Context, name string, cred admins.Credential, linkTTL time.Duration, by audit.Entry) (string, error)
	EndSessions(ctx context.Context, admin string, by audit.Entry) (int64, error)
	ActiveSessions(ctx context.Context, idle, absolute time.Duration) (map[string]int, error)
	Throttled(ctx context.Context, p admins.ThrottlePolicy) (map[string]bool, error)
	ClearThrottle(ctx context.Context, account string, by audit.Entry) error

	// One's own account (/account) and set-password links.
	Sessions(ctx context.Context, admin string, idle, absolute time.Duration) ([]admins.Session, error)
	EndOwnSession(ctx context.Context, admin, handle string, by audit.Entry) error
	ChangeOwnPassword(ctx context.Context, name, current, password, keep string, by audit.Entry) error
	LinkAdmin(ctx context.Context, code string) (string, error)
	SetPasswordByLink(ctx context.Context, code, password string, by audit.Entry) (string, error)

	// Single sign-on.
	SignInOIDC(ctx context.Context, id admins.OIDCIdentity, m admins.SessionMeta, by audit.Entry) (string, string, error)
	RefuseOIDC(ctx context.Context, key string, by audit.Entry) error
}

// TokenStore is what the handlers need of tokens.Store.
type TokenStore interface {
	Create(ctx context.Context, name string, role admins.Role, ttl time.Duration, by audit.Entry) (string, tokens.Token, error)
	List(ctx context.Context) ([]tokens.Token, error)
	Revoke(ctx context.Context, name string, by audit.Entry) error
	Authenticate(ctx context.Context, secret string) (tokens.Token, error)
	CheckTTL(ttl time.Duration) error
	MaxTTL() time.Duration
}

// SSOClient is what the handlers need of sso.Client (nil: no single sign-on).
type SSOClient interface {
	Name() string
	RoleClaim() string
	CallbackPath() string
	Begin(ctx context.Context, next string) (sso.Flow, string, error)
	Finish(ctx context.Context, f sso.Flow, cb sso.Callback) (sso.Identity, error)
}

// AuditLog is what the handlers need of audit.Store.
type AuditLog interface {
	List(ctx context.Context, f audit.Filter) (audit.Page, error)
	Each(ctx context.Context, f audit.Filter, fn func(audit.Entry) error) error
}

var (
	_ SessionStore = (*sessionstore.Store)(nil)
	_ AdminStore   = (*admins.Store)(nil)
	_ AuditLog     = (*audit.Store)(nil)
	_ Actions      = (*actions.Service)(nil)
	_ TokenStore   = (*tokens.Store)(nil)
	_ SSOClient    = (*sso.Client)(nil)
)

// Config holds the settings of the HTTP layer.
type Config struct {
	// Secure marks cookies Secure and sends HSTS: set it when serving TLS.
	Secure bool
	// IdleTimeout and AbsoluteTimeout end an admin's browser session.
	IdleTimeout, AbsoluteTimeout time.Duration
	// Keys sign and encrypt the admin cookie: hash/block key pairs, the current pair first;
	// older pairs are still accepted (rotation).
	Keys [][]byte
	// ClusterURL is the HTTP address of the cluster (https://host:8080): the curl line and the
	// cookie file of an issued cookie point at its /_status/logfiles/local. Empty (or not an
	// http(s) URL with a host): they point at this console's own /auth/verify instead, at
	// SelfURL.
	ClusterURL string
	// SelfURL is this console's base URL (scheme://host:port, from its listener); empty: the
	// scheme and Host of each request.
	SelfURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed: the client
	// address is the right-most address of the chain that is not in one of them. With none,
	// the connection's peer is the client.
	TrustedProxies []*net.IPNet
	// Throttle slows down failed sign-ins (zero fields: admins' defaults).
	Throttle admins.ThrottlePolicy
	// VerifyTimeout and PageTimeout bound the database work of one /auth/verify request and
	// of one page (defaults DefaultVerifyTimeout, DefaultPageTimeout); past them the answer
	// is 503. A streamed export fails when no row comes for PageTimeout.
	VerifyTimeout, PageTimeout time.Duration
	// WriteTimeout bounds each write of a streamed export (the server's own write timeout,
	// which the export would outlive as a whole; 0: none).
	WriteTimeout time.Duration
	// RefreshEvery is the period of the sessions table's auto-refresh.
	RefreshEvery time.Duration
	// ConfirmByNameOver: a revoke-all that ends more active sessions than this asks for the
	// username to be typed (default DefaultConfirmByNameOver).
	ConfirmByNameOver int64
	Logger            *slog.Logger

	// Tokens keeps the API tokens (required).
	Tokens TokenStore
	// SSO signs admins in through an OpenID Provider (nil: no single sign-on).
	SSO SSOClient
	// NoLocalLogin turns password sign-in off (only with SSO).
	NoLocalLogin bool
	// LinkTTL is how long a set-password link works (default admins.DefaultLinkTTL).
	LinkTTL time.Duration
	// Activity records the uses /auth/verify accepts; nil records none.
	Activity ActivityRecorder
	// History is the session history (the history, session, user and health pages), and
	// Background the settings and state of the jobs that keep it.
	History    HistoryStore
	Background HistoryConfig
	// Overview is what the overview page reads (the rollups and top users the jobs keep; nil:
	// no overview). The overview's policy card reads Policy's cached counts.
	Overview OverviewStore
	// Metrics counts what the handlers see and serves /metrics (nil: no metrics; /metrics
	// answers 404).
	Metrics Meter
	// Policy is the session policy (the policy page, /sessions?rule=); nil: no rule enabled.
	Policy PolicyRules
	// BulkBatch is how many sessions one transaction of a bulk revoke revokes (default
	// actions.DefaultBulkBatch); a bulk revoke of more runs in the background with its
	// progress shown.
	BulkBatch int
}

// DefaultConfirmByNameOver is the default of Config.ConfirmByNameOver.
const DefaultConfirmByNameOver = 100

// Meter is what the handlers need of metrics.Metrics.
type Meter interface {
	Verified(r metrics.VerifyResult, took time.Duration)
	Handler() http.Handler
}

var _ Meter = (*metrics.Metrics)(nil)

// noMeter counts nothing.
type noMeter struct{}

func (noMeter) Verified(metrics.VerifyResult, time.Duration) {}
func (noMeter) Handler() http.Handler                        { return http.NotFoundHandler() }

// Handler serves the console. Build it with New; register its routes with Register.
type Handler struct {
	sessions SessionStore
	history  HistoryStore
	policy   PolicyRules
	bulks    *bulkRuns
	admins   AdminStore
	audit    AuditLog
	actions  Actions
	tokens   TokenStore
	sso      SSOClient // nil without single sign-on
	assets   *static.Assets
	cfg      Config
	codecs   []securecookie.Codec
	csrfKey  []byte
	formKey  []byte // binds one-time form tokens to an admin session
	// crossOrigin refuses state changes that browsers mark as cross-origin.
	crossOrigin *http.CrossOriginProtection
	log         *slog.Logger
	cluster     *url.URL // nil: issued cookies are shown against this console's /auth/verify
	now         func() time.Time
	meter       Meter
	overview    OverviewStore
	ovCache     overviewCache
	// policyRules are the policy page's rules as last rendered (see renderedRulesKey).
	policyRules atomic.Pointer[renderedRules]
}

// New returns the console's handler.
func New(sessions SessionStore, adminStore AdminStore, auditLog AuditLog, acts Actions, cfg Config) *Handler {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = 12 * time.Hour
	}
	cfg.Throttle = cfg.Throttle.WithDefaults()
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = DefaultVerifyTimeout
	}
	if cfg.PageTimeout <= 0 {
		cfg.PageTimeout = DefaultPageTimeout
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 10 * time.Second
	}
	if cfg.ConfirmByNameOver <= 0 {
		cfg.ConfirmByNameOver = DefaultConfirmByNameOver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Policy == nil {
		cfg.Policy = noPolicy{}
	}
	if cfg.BulkBatch <= 0 {
		cfg.BulkBatch = actions.DefaultBulkBatch
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = admins.DefaultLinkTTL
	}
	var meter Meter = noMeter{}
	if cfg.Metrics != nil {
		meter = cfg.Metrics
	}
	cluster, err := url.Parse(cfg.ClusterURL)
	if err != nil || cluster.Host == "" || (cluster.Scheme != "http" && cluster.Scheme != "https") {
		cluster = nil
	}
	codecs := securecookie.CodecsFromPairs(cfg.Keys...)
	for _, c := range codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int(cfg.AbsoluteTimeout.Seconds()))
			// Cookie values are plain bytes (a session ID, a notice): no gob on every request.
			sc.SetSerializer(securecookie.NopEncoder{})
		}
	}
	return &Handler{
		sessions:    sessions,
		history:     cfg.History,
		policy:      cfg.Policy,
		bulks:       newBulkRuns(),
		admins:      adminStore,
		audit:       auditLog,
		actions:     acts,
		tokens:      cfg.Tokens,
		sso:         cfg.SSO,
		assets:      static.New(),
		cfg:         cfg,
		codecs:      codecs,
		csrfKey:     deriveKey(cfg.Keys[0], "csrf"),
		formKey:     deriveKey(cfg.Keys[0], "form-once"),
		crossOrigin: http.NewCrossOriginProtection(),
		log:         cfg.Logger,
		cluster:     cluster,
		now:         time.Now,
		meter:       meter,
		overview:    cfg.Overview,
	}
}
