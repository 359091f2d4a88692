package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

type health struct {
	Status   string `json:"status"`
	Database string `json:"database,omitempty"`
}

// healthz says the process is up.
func (h *Handler) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, health{Status: "ok"})
}

// readyz says whether the database answers (within 2 s).
func (h *Handler) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.sessions.Ping(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, health{Status: "unavailable", Database: "unreachable"})
	}
	return c.JSON(http.StatusOK, health{Status: "ok", Database: "ok"})
}
