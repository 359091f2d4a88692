package handlers

import (
	"net/url"

	"github.com/labstack/echo/v4"
)

// curlTarget is where the curl line and the cookie file of an issued cookie point: the
// cluster's /_status/logfiles/local, or with no cluster URL this console's own /auth/verify,
// so that the line works as printed.
func (h *Handler) curlTarget(c echo.Context) *url.URL {
	if h.cluster != nil {
		return h.cluster.JoinPath("/_status/logfiles/local")
	}
	self, err := url.Parse(h.cfg.SelfURL)
	if err != nil || self.Host == "" {
		// The request's own Host and connection, never headers a client could forge.
		self = &url.URL{Scheme: "http", Host: c.Request().Host}
		if c.Request().TLS != nil {
			self.Scheme = "https"
		}
	}
	return self.JoinPath("/auth/verify")
}
