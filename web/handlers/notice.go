package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/web/templates"
)

// Notice kinds: an action that changed something, and one that found nothing to change (not
// shown as a success).
const (
	noticeSuccess = "success"
	noticeInfo    = "info"
)

// afterChange answers a revoke: htmx gets the refreshed table and, out of band, the notice (kept
// above the table until dismissed or replaced; the table's refreshes leave it alone); a plain
// form post is redirected to the view it came from, the notice kept for it in a flash cookie.
func (h *Handler) afterChange(c echo.Context, kind, text string) error {
	if back := backParam(c); back != "" { // asked for on a session's or a user's page: back there
		h.setFlash(c, kind+"\n"+text)
		return c.Redirect(http.StatusSeeOther, back)
	}
	q := returnQuery(c)
	n := templates.Notice{Kind: kind, Text: text, DismissURL: q.url("/sessions"), Focus: true}
	if isPartial(c) {
		table, err := h.sessionsTable(c.Request().Context(), q)
		if err != nil {
			return err
		}
		c.Response().Header().Set("HX-Trigger", "dialog-done")
		return h.render(c, http.StatusOK, templates.TableAndNotice(table, n))
	}
	h.setFlash(c, kind+"\n"+text)
	return c.Redirect(http.StatusSeeOther, q.url("/sessions"))
}

// takeNotice returns (and clears) the notice a redirect left for the view q.
func (h *Handler) takeNotice(c echo.Context, q sessionsQuery) templates.Notice {
	kind, text, ok := strings.Cut(h.takeFlash(c), "\n")
	if !ok || (kind != noticeSuccess && kind != noticeInfo) {
		return templates.Notice{}
	}
	return templates.Notice{Kind: kind, Text: text, DismissURL: q.url("/sessions"), Focus: true}
}

// takePageNotice returns (and clears) the notice a redirect left for a session's or a user's
// page at path.
func (h *Handler) takePageNotice(c echo.Context, path string) templates.Notice {
	kind, text, ok := strings.Cut(h.takeFlash(c), "\n")
	if !ok || (kind != noticeSuccess && kind != noticeInfo) {
		return templates.Notice{}
	}
	return templates.Notice{Kind: kind, Text: text, DismissURL: path, Focus: true}
}
