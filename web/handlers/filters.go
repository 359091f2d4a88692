package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

// auditorFilters are the filters auditors ask for, on /sessions and /history alike: a session
// ID, created, expires and last-used ranges (after inclusive, before exclusive; UTC dates or
// date-times, kept as typed so the URL stays as written), and on /history whether the session
// left the live table.
type auditorFilters struct {
	ID     int64
	Ranges [6]string // created_after, created_before, expires_after, expires_before, used_after, used_before
	times  [6]time.Time
	Purged sessionstore.PurgedFilter
}

// rangeParams are the URL names of auditorFilters.Ranges, in order.
var rangeParams = [6]string{"created_after", "created_before", "expires_after", "expires_before", "used_after", "used_before"}

// parseAuditorFilters reads the filters from the URL; a bad value is a 400 naming it.
func parseAuditorFilters(v url.Values, inHistory bool) (auditorFilters, error) {
	var a auditorFilters
	if s := v.Get("id"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return a, echo.NewHTTPError(http.StatusBadRequest, "Invalid session ID in the address.")
		}
		a.ID = n
	}
	for i, name := range rangeParams {
		s := v.Get(name)
		if s == "" {
			continue
		}
		t, err := sessionstore.ParseTimeBound(s)
		if err != nil {
			return a, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("Invalid %s in the address: use 2026-11-03, 2026-11-03T14:05 or 2026-11-03 14:05:09 (UTC).", name))
		}
		a.Ranges[i], a.times[i] = s, t
	}
	if s := v.Get("purged"); s != "" {
		p, err := sessionstore.ParsePurged(s)
		if err != nil || !inHistory {
			return a, echo.NewHTTPError(http.StatusBadRequest, "Invalid purged filter in the address.")
		}
		a.Purged = p
	}
	return a, nil
}

// set writes the filters into URL values, leaving out what is unset.
func (a auditorFilters) set(v url.Values) {
	if a.ID != 0 {
		v.Set("id", strconv.FormatInt(a.ID, 10))
	}
	for i, name := range rangeParams {
		if a.Ranges[i] != "" {
			v.Set(name, a.Ranges[i])
		}
	}
	if a.Purged != sessionstore.PurgedAny {
		v.Set("purged", string(a.Purged))
	}
}

// apply puts the filters into a store filter; inHistory lists the history.
func (a auditorFilters) apply(f *sessionstore.Filter, inHistory bool) {
	f.ID = a.ID
	f.CreatedAfter, f.CreatedBefore = a.times[0], a.times[1]
	f.ExpiresAfter, f.ExpiresBefore = a.times[2], a.times[3]
	f.UsedAfter, f.UsedBefore = a.times[4], a.times[5]
	if inHistory {
		f.From, f.Purged = history.Source, a.Purged
	}
}

// any reports whether any of the filters is set (the form then shows them open).
func (a auditorFilters) any() bool {
	return a.ID != 0 || a.Ranges != [6]string{} || a.Purged != sessionstore.PurgedAny
}

// form is the filters' part of the filter form.
func (a auditorFilters) form(inHistory bool) templates.MoreFilters {
	m := templates.MoreFilters{Open: a.any(), History: inHistory}
	if a.ID != 0 {
		m.ID = strconv.FormatInt(a.ID, 10)
	}
	labels := [6]string{"Created from", "Created before", "Expires from", "Expires before", "Last used from", "Last used before"}
	for i, name := range rangeParams {
		m.Ranges = append(m.Ranges, templates.RangeField{Name: name, Label: labels[i], Value: a.Ranges[i]})
	}
	for _, o := range []struct {
		v     sessionstore.PurgedFilter
		label string
	}{{sessionstore.PurgedAny, "in the table or purged"}, {sessionstore.PurgedNot, "still in the table"}, {sessionstore.PurgedOnly, "purged only"}} {
		v := string(o.v)
		if v == "" {
			v = "any"
		}
		m.Purged = append(m.Purged, templates.Option{Value: v, Label: o.label, Selected: a.Purged == o.v})
	}
	return m
}
