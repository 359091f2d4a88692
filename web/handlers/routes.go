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
// (64 KB: every form here is small); then per route: the login form's pre-session CSRF token
// (/login), or admin sign-in -> the admin session's CSRF token (every other page). The open
// routes change nothing and have no token.
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = h.handleError
	e.IPExtractor = clientAddress(h.cfg.TrustedProxies)
	e.Use(middleware.Recover(), h.logRequests, h.securityHeaders, middleware.BodyLimit("64K"))

	// Open: no admin, no CSRF (nothing here changes state).
	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	e.GET("/auth/verify", h.verifySession)
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
