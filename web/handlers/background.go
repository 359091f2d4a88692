package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// BackgroundHeader marks a request the admin did not make: app.js sets it, with the value
// "refresh", on the sessions table's periodic auto-refresh and on nothing else. Such a request
// does not count as activity for --idle-timeout, so that an untouched tab times out. Only reads
// honour it (a state change is always the admin's doing); sending it can only make a session
// time out sooner, so it needs no protection.
const BackgroundHeader = "X-Console-Background"

func isBackground(c echo.Context) bool {
	r := c.Request()
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get(BackgroundHeader) == "refresh"
}
