package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// checkText refuses text that no filter can match and the database cannot even compare: a NUL
// byte or bytes that are not UTF-8. what names the field for the message ("user filter").
func checkText(what, s string) error {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid %s in the address: it contains a NUL byte.", what))
	case !utf8.ValidString(s):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid %s in the address: it is not valid UTF-8.", what))
	}
	return nil
}

// storableText makes text that someone typed storable in the audit log (valid UTF-8 without
// NUL bytes, at most max bytes), keeping what it can of it.
func storableText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
