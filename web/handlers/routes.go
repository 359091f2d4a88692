package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/sessionconsole/console/web/static"
)

// Register installs the error handler, the middleware and every route on e.
//
// Middleware order, outermost first: recover -> request log -> security headers -> body limit
// (64 KB: every form here is small) -> database deadline; then per route: the login form's pre-session CSRF token
// (/login), or admin sign-in -> the admin session's CSRF token (every other page). The open
// routes change nothing and have no token.
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

	// Sign-in: the pre-session's CSRF token only.
	e.GET("/login", h.showLogin, h.loginCSRF)
	e.POST("/login", h.login, h.loginCSRF)

	// Signed-in admins: the admin session, then its CSRF token.
	a := e.Group("", h.requireAdmin, h.sessionCSRF)
	a.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/sessions") })
	a.POST("/logout", h.logout)
	a.GET("/sessions", h.showSessionsPage)
	a.POST("/sessions", h.issueSession)
	a.GET("/sessions.csv", h.exportSessionsCSV)
	a.GET("/sessions.json", h.exportSessionsJSON)
	a.POST("/sessions/cookie-file", h.downloadCookieFile)
	a.GET("/sessions/:id/revoke", h.confirmRevokeSession)
	a.POST("/sessions/:id/revoke", h.revokeSession)
	a.GET("/users", h.suggestUsers)
	a.GET("/users/:name/revoke", h.confirmRevokeUser)
	a.POST("/users/:name/revoke", h.revokeUserSessions)
	a.GET("/audit", h.showAuditPage)
	a.GET("/audit.csv", h.exportAuditCSV)
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
