package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/web/static"
)

// Register installs the error handler, the middleware and every route on e.
//
// Middleware order, outermost first: recover -> request log -> security headers -> body limit
// (64 KB: every form here is small) -> database deadline; then per route: the login form's
// pre-session CSRF token (/login, /set-password), or admin sign-in -> the admin session's CSRF
// token -> the role the route needs (viewer, operator, owner). The exports and the JSON API
// also take an API token instead of the sign-in (and then no CSRF token: no cookie is
// involved); the HTML pages refuse tokens. The open routes change nothing and have no token.
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = h.handleError
	e.Pre(verifyAnyMethod)
	e.IPExtractor = clientAddress(h.cfg.TrustedProxies)
	e.Use(middleware.Recover(), h.logRequests, h.securityHeaders, middleware.BodyLimit("64K"), h.dbDeadline)

	// Open: no admin, no CSRF (nothing here changes state).
	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	// Every method alike: proxies may forward the original one (Traefik preserveRequestMethod).
	e.Any("/auth/verify", h.verifySession)

	e.GET(static.Prefix+"*", echo.WrapHandler(h.assets))
	e.GET("/favicon.ico", echo.WrapHandler(h.assets.File("favicon.svg")))

	// Sign-in: the pre-session's CSRF token only. Single sign-on starts and returns here too.
	e.GET("/login", h.showLogin, h.loginCSRF)
	e.POST("/login", h.login, h.loginCSRF)
	e.GET("/set-password", h.showSetPassword, h.loginCSRF)
	e.POST("/set-password", h.setPasswordByLink, h.loginCSRF)
	if h.sso != nil {
		e.GET("/login/oidc", h.startSSO)
		e.GET(h.sso.CallbackPath(), h.finishSSO)
	}

	viewer, operator, owner := h.allow(admins.Viewer), h.allow(admins.Operator), h.allow(admins.Owner)

	// Signed-in admins: the admin session, then its CSRF token, then the role.
	a := e.Group("", h.requireAdmin, h.sessionCSRF)
	a.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/overview") }, viewer)
	a.GET("/overview", h.showOverview, viewer)
	a.POST("/logout", h.logout, viewer)
	a.GET("/sessions", h.showSessionsPage, viewer)
	a.POST("/sessions", h.issueSession, operator)
	a.POST("/sessions/cookie-file", h.downloadCookieFile, operator)
	a.POST("/sessions/revoke", h.revokeSessionsBulk, operator)
	a.GET("/sessions/revoke/:run", h.showBulkProgress, operator)
	a.GET("/sessions/:id", h.showSessionPage, viewer)
	a.GET("/sessions/:id/revoke", h.confirmRevokeSession, operator)
	a.POST("/sessions/:id/revoke", h.revokeSession, operator)
	a.GET("/users.suggest", h.suggestUsers, viewer)
	a.GET("/users/:name", h.showUserPage, viewer)
	a.GET("/users/:name/revoke", h.confirmRevokeUser, operator)
	a.POST("/users/:name/revoke", h.revokeUserSessions, operator)
	a.GET("/history", h.showHistoryPage, viewer)
	a.GET("/policy", h.showPolicyPage, viewer)
	a.GET("/audit", h.showAuditPage, viewer)
	a.GET("/health", h.showHealthPage, viewer)
	a.GET("/account", h.showAccount, viewer)
	a.POST("/account/password", h.changeOwnPassword, viewer)
	a.POST("/account/sessions/:handle/end", h.endOwnSession, viewer)
	a.GET("/admins", h.showAdminsPage, owner)
	a.POST("/admins", h.addAdmin, owner)
	a.POST("/admins/:name/role", h.setAdminRole, owner)
	a.POST("/admins/:name/password", h.resetAdminPassword, owner)
	a.POST("/admins/:name/sessions/end", h.endAdminSessions, owner)
	a.POST("/admins/:name/throttle/clear", h.clearAdminThrottle, owner)
	a.GET("/admins/:name/remove", h.confirmRemoveAdmin, owner)
	a.POST("/admins/:name/remove", h.removeAdmin, owner)
	a.POST("/tokens", h.createToken, owner)
	a.GET("/tokens/:name/revoke", h.confirmRevokeToken, owner)
	a.POST("/tokens/:name/revoke", h.revokeToken, owner)

	// Exports: the admin session or an API token.
	byToken := []echo.MiddlewareFunc{h.requireAdminOrToken, h.sessionCSRF, viewer}
	e.GET("/sessions.csv", h.exportSessionsCSV, byToken...)
	e.GET("/sessions.json", h.exportSessionsJSON, byToken...)
	e.GET("/history.csv", h.exportHistoryCSV, byToken...)
	e.GET("/history.json", h.exportHistoryJSON, byToken...)
	e.GET("/audit.csv", h.exportAuditCSV, byToken...)
	// Prometheus metrics: a token (or a signed-in admin) here; --metrics-listen serves them
	// without one on an address of their own.
	e.GET("/metrics", echo.WrapHandler(h.meter.Handler()), byToken...)

	// The JSON API: the admin session or an API token; errors as JSON.
	api := e.Group("/api/v1", h.requireAdminOrToken, h.sessionCSRF)
	api.GET("/sessions", h.apiListSessions, viewer)
	api.GET("/sessions/:id", h.apiGetSession, viewer)
	api.POST("/sessions", h.apiIssueSession, operator)
	api.POST("/sessions/:id/revoke", h.apiRevokeSession, operator)
	api.POST("/users/:name/revoke", h.apiRevokeUserSessions, operator)
	api.GET("/admins", h.apiListAdmins, owner)
	api.GET("/tokens", h.apiListTokens, owner)
	api.POST("/tokens", h.apiCreateToken, owner)
	api.POST("/tokens/:name/revoke", h.apiRevokeToken, owner)
}

// verifyAnyMethod routes a request for /auth/verify with a method echo's router does not know
// (echo.Any covers only the standard ones) as a GET, as echo's MethodOverride middleware
// changes methods, so that it reaches verifySession instead of the admin group's catch-all.
func verifyAnyMethod(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path == "/auth/verify" {
			switch r.Method {
			case http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
				http.MethodPatch, http.MethodPost, echo.PROPFIND, http.MethodPut, http.MethodTrace, echo.REPORT:
			default:
				r.Method = http.MethodGet
			}
		}
		return next(c)
	}
}
