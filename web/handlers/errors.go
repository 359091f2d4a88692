package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// handleError is the one place errors become responses: known errors get their status and a
// message written for people; anything else is a 500 with a generic message, logged once.
// Internal error text never reaches the browser.
func (h *Handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if clientGone(c) {
		// Nobody is there to answer: not a failure of ours.
		h.log.Info("client disconnected", "method", c.Request().Method, "path", logPath(c))
		c.Response().WriteHeader(statusClientClosed)
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. It has been logged."
	code := ""
	var (
		he  *echo.HTTPError
		ae  *apiError
		fse *sessionstore.FullScanError
	)
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.Status, ae.Code, ae.Message
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		} else {
			msg = http.StatusText(status)
		}
		if status == http.StatusNotFound && msg == "Not Found" {
			msg = "There is no such page."
		}
	case errors.Is(err, actions.ErrNotRecorded):
		msg = "Nothing was changed: the audit log could not record this action. It has been logged; try again in a moment."
	case errors.As(err, &fse):
		status, msg = http.StatusConflict, "Refused: "+fse.Error()+"."
	case errors.Is(err, pgdb.ErrAmbiguousCommit):
		msg = "The database did not confirm this change: it may or may not have been made. Look (the audit log records it if it was) before trying again."
	case errors.Is(err, pgdb.ErrRetriesExhausted):
		status, msg = http.StatusServiceUnavailable, "The database kept aborting this request because of conflicting transactions, so nothing was changed. Try again in a moment."
	case errors.Is(err, pgdb.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "The database is unavailable right now. The console keeps trying: reload in a moment."
	case errors.Is(err, sessionstore.ErrNotFound):
		status, msg = http.StatusNotFound, "No such session."
	case errors.Is(err, sessionstore.ErrInvalidInput):
		status, msg = http.StatusBadRequest, "Invalid input."
	}
	if status >= 500 {
		h.log.Error("request failed", "method", c.Request().Method, "path", logPath(c), "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	var rerr error
	if isAPI(c) || c.Request().Header.Get(echo.HeaderAuthorization) != "" {
		rerr = c.JSON(status, apiErrorBody{Error: apiErrorDetail{Code: orCode(code, status), Message: msg}})
	} else if isPartial(c) || c.Request().URL.Path == "/auth/verify" {
		rerr = h.render(c, status, templates.ErrorFragment(status, msg))
	} else {
		heading := http.StatusText(status)
		rerr = h.render(c, status, templates.ErrorView(templates.ErrorPage{
			Page: h.page(c, heading, ""), Status: status, Heading: heading, Message: msg,
		}))
	}
	if rerr != nil {
		h.log.Error("rendering an error page failed", "err", rerr)
	}
}

// apiErrorBody is the JSON API's error answer.
type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// orCode is code, or the generic code of status when code is "".
func orCode(code string, status int) string {
	if code != "" {
		return code
	}
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}
