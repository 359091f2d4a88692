package handlers

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/web/templates"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render renders a component into a pooled buffer first, so that a template error becomes a
// clean 500 instead of half a page, then writes it with status and its length in one write
// (net/http would otherwise chunk anything over 2 KB: a chunk header, and a last chunk sent
// on its own).
func (h *Handler) render(c echo.Context, status int, comp templ.Component) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := comp.Render(requestContext(c), buf); err != nil {
		return err
	}
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	res.Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	res.WriteHeader(status)
	_, err := res.Write(buf.Bytes())
	return err
}

// renderString renders a component to a string under the context render uses (the request's,
// not the database deadline's): for a part of a page kept to be written again.
func renderString(c echo.Context, comp templ.Component) (string, error) {
	var b strings.Builder
	err := comp.Render(requestContext(c), &b)
	return b.String(), err
}

// isPartial reports whether htmx asked for a fragment: an htmx request that is neither boosted
// nor a history restore (those need the whole page).
func isPartial(c echo.Context) bool {
	r := c.Request()
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Boosted") != "true" &&
		r.Header.Get("HX-History-Restore-Request") != "true"
}

// page returns the common view model of a full page.
func (h *Handler) page(c echo.Context, title, nav string) templates.Page {
	a := signedInFrom(c)
	return templates.Page{
		Title:      title,
		Nav:        nav,
		Admin:      a.Admin,
		Role:       string(a.Role),
		CanOperate: a.Role.Allows(admins.Operator),
		IsOwner:    a.Role.Allows(admins.Owner),
		CSRF:       h.csrfToken(c),
		CSS:        h.assets.URL("app.css"),
		HTMX:       h.assets.URL("htmx.min.js"),
		JS:         h.assets.URL("app.js"),
		Icon:       h.assets.URL("favicon.svg"),
	}
}

// varyOnHTMX marks a response that differs between fragment and whole page.
func varyOnHTMX(c echo.Context) {
	c.Response().Header().Add("Vary", "HX-Request")
}

// noStore keeps a response out of every cache (pages that show a cookie).
func noStore(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
}
