package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/sessionstore"
)

func (h *Handler) exportSessionsCSV(c echo.Context) error {
	return h.exportSessions(c, output.CSV, "csv", false)
}

func (h *Handler) exportSessionsJSON(c echo.Context) error {
	return h.exportSessions(c, output.JSON, "json", false)
}

func (h *Handler) exportHistoryCSV(c echo.Context) error {
	return h.exportSessions(c, output.CSV, "csv", true)
}

func (h *Handler) exportHistoryJSON(c echo.Context) error {
	return h.exportSessions(c, output.JSON, "json", true)
}

// exportSessions streams every session of the current filter (paging ignored) with the
// columns of `auth-session list` (the history's with a purged column, as `auth-session list
// --history`), one row at a time: memory stays flat however many rows.
func (h *Handler) exportSessions(c echo.Context, f output.Format, ext string, inHistory bool) error {
	q, err := parseViewQuery(c.QueryParams(), inHistory)
	if err != nil {
		return err
	}
	filter, err := h.viewFilter(q.firstPage())
	if err != nil {
		return err
	}
	name, cols := "sessions", output.ListColumns
	if inHistory {
		name, cols = "history", output.HistoryColumns
	}
	return h.stream(c, f, name, ext, cols, func(ctx context.Context, row func(...string) error) error {
		return h.sessions.Each(ctx, filter, func(s sessionstore.Session) error {
			cells := output.ListRow(s.Username, s.ID, s.CreatedAt, s.ExpiresAt, s.RevokedAt, s.LastUsedAt)
			if inHistory {
				cells = append(cells, output.NullableTimestamp(s.PurgedAt))
			}
			return row(cells...)
		})
	})
}

var auditColumns = []output.Column{
	{Name: "at"}, {Name: "admin"}, {Name: "action"}, {Name: "target"}, {Name: "session ID", Align: output.AlignRight},
	{Name: "expires"}, {Name: "count", Align: output.AlignRight}, {Name: "address"}, {Name: "reason"},
}

func (h *Handler) exportAuditCSV(c echo.Context) error {
	q, err := parseAuditQuery(c)
	if err != nil {
		return err
	}
	return h.stream(c, output.CSV, "audit", "csv", auditColumns, func(ctx context.Context, row func(...string) error) error {
		return h.audit.Each(ctx, q.Filter, func(e audit.Entry) error {
			exp := ""
			if e.ExpiresAt != nil {
				exp = output.Timestamp(*e.ExpiresAt)
			}
			sid := ""
			if e.SessionID != 0 {
				sid = strconv.FormatInt(e.SessionID, 10)
			}
			return row(output.Timestamp(e.At), e.Admin, string(e.Action), e.Target, sid, exp, strconv.FormatInt(e.Count, 10), e.RemoteAddr, e.Reason)
		})
	})
}

// spreadsheetSafe keeps a CSV cell from being read as a formula by a spreadsheet, as OWASP's
// CSV injection advice says: a cell starting with =, +, -, @, a tab or a carriage return gets a
// leading '. Only the web exports do this; the CLI's --format=csv stays cockroach's.
func spreadsheetSafe(v string) string {
	if v != "" && strings.IndexByte("=+-@\t\r", v[0]) >= 0 {
		return "'" + v
	}
	return v
}

// stream writes a download in format f, reading its rows with each. A failure after the first
// byte cannot change the status any more, so the connection is cut instead: the client sees an
// incomplete download, never a silently truncated "complete" one. The read has no deadline as
// a whole but fails when no row comes for PageTimeout; each write has WriteTimeout.
func (h *Handler) stream(c echo.Context, f output.Format, name, ext string, cols []output.Column,
	each func(ctx context.Context, row func(...string) error) error) error {
	resp := c.Response()
	rc := http.NewResponseController(resp)
	rc.SetReadDeadline(time.Time{}) // the request is read; the server's read timeout would cancel the export
	ctx, watch, stop := watchStalls(requestContext(c), h.cfg.PageTimeout)
	defer stop()
	resp.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, name, time.Now().UTC().Format("20060102-150405"), ext))
	ct := "text/csv; charset=utf-8"
	if f == output.JSON {
		ct = "application/json; charset=utf-8"
	}
	resp.Header().Set("Content-Type", ct)
	w, err := output.NewWriter(&deadlineWriter{w: resp, rc: rc, timeout: h.cfg.WriteTimeout}, f, cols)
	if err != nil {
		return err
	}
	err = each(ctx, func(v ...string) error {
		defer watch.row()()
		if f == output.CSV {
			for i := range v {
				v[i] = spreadsheetSafe(v[i])
			}
		}
		return w.Row(v...)
	})
	if err == nil {
		err = w.Close()
	}
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errStalled) {
		err = cause
	}
	if err != nil && resp.Committed {
		if clientGone(c) {
			h.log.Info("client disconnected during an export", "export", name)
		} else {
			h.log.Error("export aborted", "export", name, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if err == nil && !resp.Committed {
		resp.WriteHeader(http.StatusOK)
	}
	return err
}
